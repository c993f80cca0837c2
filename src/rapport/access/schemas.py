"""Request and response shapes of permissions, roles and grants.

Every name is checked here as the database's CHECK constraints check it, so that a bad
one is refused with a 422 and never reaches PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from rapport.kernel.schemas import JsonUuid, NotNull, PatchBody, Strict, Text

_PERMISSION = re.compile(r"[a-z][a-z0-9_-]{0,30}:[a-z][a-z0-9_-]{0,30}:[a-z][a-z0-9_-]{0,30}")
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
MAX_PERMISSIONS = 200


def permission_name(value: str) -> str:
    """A permission's name as the catalogue spells it: domain:function:action.

    Raises:
        ValueError: not shaped so.
    """
    if not _PERMISSION.fullmatch(value):
        raise ValueError(
            "must be domain:function:action, each part a lower-case letter then up to 30 letters, digits, - or _"
        )
    return value


def role_name(value: str) -> str:
    """A role's name in lower case (names are unique regardless of case).

    Raises:
        ValueError: not a letter then up to 62 letters, digits, - or _.
    """
    value = value.lower()
    if not _ROLE.fullmatch(value):
        raise ValueError("must be a letter then up to 62 letters, digits, - or _")
    return value


def _distinct(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError("must not name a permission twice")
    return sorted(values)


PermissionName = Annotated[str, Text(95), AfterValidator(permission_name)]
RoleName = Annotated[str, Text(63), AfterValidator(role_name)]
PermissionList = Annotated[list[PermissionName], Field(max_length=MAX_PERMISSIONS), AfterValidator(_distinct)]
Description = Annotated[str, Text(500, min_length=0)]
Reason = Annotated[str, Text(2000, multiline=True)]
REASON = "Why: recorded in the audit with who and what."


# What the caller holds


class HeldPermission(BaseModel):
    permission: str
    conversation_id: UUID | None = Field(description="The conversation the grant is for; null when platform-wide.")
    via_role: str = Field(description="The role that gives it.")


class MyPermissionsOut(BaseModel):
    is_admin: bool = Field(description="A platform administrator holds every permission, everywhere.")
    permissions: list[HeldPermission] = Field(description="What the caller's grants give, by permission.")


# The catalogue


class PermissionOut(BaseModel):
    name: str = Field(description="domain:function:action.")
    domain: str = Field(description="The domain's prefix, domain:function.")
    action: str
    description: str


class PermissionsOut(BaseModel):
    items: list[PermissionOut]


# Roles


class RoleIn(Strict):
    name: RoleName = Field(description="Unique; stored in lower case.")
    description: Description = ""
    permissions: PermissionList = Field(default_factory=list, description="What the role holds.")
    reason: Reason | None = Field(default=None, description=REASON)


class RoleUpdate(PatchBody):
    name: NotNull[RoleName] = Field(default=None, description="A built-in role keeps its name.")
    description: NotNull[Description] = None
    reason: Reason | None = Field(default=None, description=REASON)


class RolePermissionsIn(Strict):
    permissions: PermissionList = Field(description="Every permission the role holds from now on.")
    reason: Reason | None = Field(default=None, description=REASON)


class RoleOut(BaseModel):
    id: UUID
    name: str
    description: str
    is_builtin: bool = Field(description="Made with Rapport and named by its code: never deleted nor renamed.")
    permissions: list[str]
    created_at: datetime
    updated_at: datetime


# Grants


class GrantIn(Strict):
    user_id: JsonUuid
    role: RoleName = Field(description="The role's name.")
    conversation_id: JsonUuid | None = Field(
        default=None, description="Only within this conversation; else everywhere."
    )
    reason: Reason | None = Field(default=None, description=REASON)


class GrantOut(BaseModel):
    id: UUID
    user_id: UUID
    role_id: UUID
    role: str
    conversation_id: UUID | None = Field(description="The conversation it is for; null when platform-wide.")
    granted_by: UUID | None = Field(description="The administrator who granted it; null for system work.")
    created_at: datetime
