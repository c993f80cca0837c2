"""The kernel outbox (docs/decisions/0012).

Every state change a client could want to hear about `publish`es one row of
`kernel.events` in the transaction of the change, naming its scope (a conversation or the
one user it concerns): O(1) rows however many people receive it. PostgreSQL numbers it
with a position that follows the order of transaction ids; once the transaction commits,
the process announces it (`wakeup`, docs/decisions/0015) and readers read; a rolled-back
change leaves and announces nothing. `read_after` returns the events of some scopes after a position, never past the
safe position below which no running transaction can still commit, so a reader that
resumes from the position it was given never misses an event nor sees one twice.
"""

from rapport.kernel.outbox._events import (
    ORDINAL_BITS,
    Event,
    EventBatch,
    JsonObject,
    Scope,
    batch_of,
    publish,
    read_after,
)
from rapport.kernel.outbox._wakeup import COALESCE_S, Wakeup, WakeupTransport, transaction_ended, wakeup
from rapport.kernel.outbox.models import ScopeKind

__all__ = [
    "COALESCE_S",
    "ORDINAL_BITS",
    "Event",
    "EventBatch",
    "JsonObject",
    "Scope",
    "ScopeKind",
    "Wakeup",
    "WakeupTransport",
    "batch_of",
    "publish",
    "read_after",
    "transaction_ended",
    "wakeup",
]
