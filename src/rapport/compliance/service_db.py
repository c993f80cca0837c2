"""The database's integrity checks, as the rest of Rapport sees them (`rapport db check`)."""

from rapport.compliance._integrity import (
    ADDRESS_COLUMNS,
    CHECKS,
    LIMIT,
    MESSAGE_ROWS,
    Check,
    CheckResult,
    Fault,
    UnknownCheck,
    run_checks,
)

__all__ = [
    "ADDRESS_COLUMNS",
    "CHECKS",
    "LIMIT",
    "MESSAGE_ROWS",
    "Check",
    "CheckResult",
    "Fault",
    "UnknownCheck",
    "run_checks",
]
