"""What the access domain refuses, each with a stable problem type."""

from __future__ import annotations

from rapport.kernel.errors import Conflict, NotFound, ValidationFailed

# The platform's one problem type for a missing permission (the kernel's, so that domains
# below access, whose SQL asks access.has_permission, raise the same), raised here too.
from rapport.kernel.errors import PermissionRequired as PermissionRequired


class RoleNotFound(NotFound):
    slug = "role-not-found"
    title = "No such role"


class RoleNameTaken(Conflict):
    slug = "role-name-taken"
    title = "A role of that name exists already"


class BuiltinRoleRefused(Conflict):
    """Built-in roles are named by the code: they are never deleted nor renamed."""

    slug = "builtin-role"
    title = "A built-in role cannot be deleted or renamed"


class UnknownPermission(ValidationFailed):
    slug = "unknown-permission"
    title = "No such permission"


class GrantNotFound(NotFound):
    slug = "grant-not-found"
    title = "No such grant"


class GrantExists(Conflict):
    slug = "grant-exists"
    title = "The person holds this role there already"


class GrantConversationNotFound(NotFound):
    """A grant names a conversation that does not exist."""

    slug = "grant-conversation-not-found"
    title = "No such conversation to grant a role in"
