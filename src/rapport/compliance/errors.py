"""What the compliance domain refuses, each with a stable problem type."""

from rapport.kernel.errors import Conflict, Forbidden, NotFound

# The platform's one problem type for what only its administrators may do, raised here too.
from rapport.kernel.errors import PlatformAdminRequired as PlatformAdminRequired


class AccountNotFound(NotFound):
    slug = "account-not-found"
    title = "No such account"


class AccountStatusConflict(Conflict):
    slug = "account-status-conflict"
    title = "The account's status does not allow this"


class OwnAccountRefused(Conflict):
    slug = "own-account-refused"
    title = "An administrator cannot suspend, ban or restore their own account"


class BreachNotFound(NotFound):
    slug = "breach-not-found"
    title = "No such breach"


# Exports and account deletion (/v1/me/exports, DELETE /v1/me)


class ExportNotFound(NotFound):
    """No such export, or someone else's: the two are never told apart."""

    slug = "export-not-found"
    title = "No such export"


class ExportNotReady(Conflict):
    """The archive is still being made: ask for the export's status, then download it."""

    slug = "export-not-ready"
    title = "The export is not ready yet"

    def __init__(self, detail: str | None = None, *, retry_after: int = 30) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.headers["Retry-After"] = str(retry_after)


class ExportFailed(Conflict):
    slug = "export-failed"
    title = "The export could not be made; ask for a new one"


class ExportExpired(NotFound):
    """Gone for good: its archive was removed when it expired."""

    slug = "export-expired"
    status = 410
    title = "The export has expired; ask for a new one"


class ReauthenticationRequired(Forbidden):
    """Deleting an account needs proof that its owner is at the keyboard."""

    slug = "reauthentication-required"
    title = "Confirm with your password, or sign in again first"


class WrongPassword(Forbidden):
    slug = "wrong-password"
    title = "The password is not correct"
