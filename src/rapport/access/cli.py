"""`rapport access`: roles and grants from the command line, for an operator with the
database at hand and no administrator's session (the first support agents, a supervisor,
a locked-out administrator's helpers). A typer app of its own, added to the `rapport`
command by rapport.cli.

Changes are the system's, at the operator's command: each is recorded in
`audit.admin_actions` as an administrator's change through the API is, with no
administrator, the operator's login and `via: command line` in its details, and the
person is told on their stream (`access.grant.created`, `access.grant.revoked`)."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import schemas as s
from rapport.access import service
from rapport.access.errors import GrantConversationNotFound, RoleNotFound
from rapport.config import get_settings
from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor
from rapport.kernel.commands import as_system, prepare_database
from rapport.kernel.schemas import normalise_email

T = TypeVar("T")

access_app = typer.Typer(
    help="Access: roles and grants, changed as the system at the operator's command and recorded in the audit.",
    no_args_is_help=True,
)
console = Console(stderr=True)
out = Console()

EVERYWHERE = "everywhere"

EmailArgument = Annotated[str, typer.Argument(help="The person's e-mail address.")]
RoleArgument = Annotated[str, typer.Argument(help="The role's name (`rapport access roles` lists them).")]
ConversationOption = Annotated[
    UUID | None, typer.Option("--conversation", help="Only within this conversation (its id); else everywhere.")
]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why: recorded in the audit.")]


class Refused(Exception):
    """What the command cannot do, said to the operator (exit status 1)."""


def _run(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    urls = prepare_database(get_settings(), console)
    try:
        return asyncio.run(as_system(urls, work))
    except Refused as refusal:
        console.print(f"[red]{refusal}[/red]")
        raise typer.Exit(1) from None


def _email(value: str) -> str:
    try:
        return normalise_email(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="EMAIL") from exc


def _role(value: str) -> str:
    try:
        return s.role_name(value.strip())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="ROLE") from exc


def _operator() -> str | None:
    """Who runs the command, as the machine knows them: recorded with the change."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def _where(conversation_id: UUID | None) -> str:
    return f"in conversation {conversation_id}" if conversation_id else EVERYWHERE


async def _person(db: AsyncConnection, email: str) -> UUID:
    found = await identity_service.get_user_by_email(db, email=email)
    if found is None:
        raise Refused(f"No account has the address {email}.")
    person: UUID = found.id
    return person


async def _names(db: AsyncConnection, user_ids: set[UUID]) -> dict[UUID, str]:
    """Each account's address, or its id when it has none (a bot, a guest)."""
    names: dict[UUID, str] = {}
    for user_id in user_ids:
        account = await identity_service.get_user(db, actor=Actor(user_id=user_id))
        names[user_id] = account.email or str(user_id)
    return names


@access_app.command("roles")
def access_roles() -> None:
    """List every role with the permissions it holds."""
    roles = _run(service.list_all_roles)
    table = Table(title=f"Roles ({len(roles)})")
    for column in ("role", "built-in", "permissions", "description"):
        table.add_column(column, overflow="fold")
    for role in roles:
        table.add_row(role.name, "yes" if role.is_builtin else "", "\n".join(role.permissions), role.description)
    out.print(table)


@access_app.command("grants")
def access_grants(
    email: Annotated[str | None, typer.Argument(help="Only this person's grants.")] = None,
) -> None:
    """List the grants of roles, newest first: everyone's, or one person's."""
    address = _email(email) if email is not None else None

    async def read(db: AsyncConnection) -> tuple[list[s.GrantOut], dict[UUID, str]]:
        person = await _person(db, address) if address is not None else None
        grants = await service.list_all_grants(db, user_id=person)
        people = {grant.user_id for grant in grants} | {g.granted_by for g in grants if g.granted_by}
        return grants, await _names(db, people)

    grants, names = _run(read)
    table = Table(title=f"Grants ({len(grants)})")
    for column in ("person", "role", "where", "granted by", "granted at", "grant"):
        table.add_column(column, overflow="fold")
    for grant in grants:
        table.add_row(
            names[grant.user_id],
            grant.role,
            _where(grant.conversation_id),
            names[grant.granted_by] if grant.granted_by else "the system",
            f"{grant.created_at:%Y-%m-%d %H:%M}",
            str(grant.id),
        )
    out.print(table)


@access_app.command("grant")
def access_grant(
    email: EmailArgument, role: RoleArgument, conversation: ConversationOption = None, reason: ReasonOption = None
) -> None:
    """Grant a role to a person, everywhere or within one conversation. Granting what
    they hold there already changes nothing."""
    address, name = _email(email), _role(role)

    async def grant(db: AsyncConnection) -> tuple[s.GrantOut, bool]:
        person = await _person(db, address)
        try:
            return await service.do_grant_role_operator(
                db, user_id=person, role=name, conversation_id=conversation, reason=reason, operator=_operator()
            )
        except RoleNotFound as exc:
            raise Refused(f"No role is named {name}: `rapport access roles` lists them.") from exc
        except GrantConversationNotFound as exc:
            raise Refused(f"No conversation has the id {conversation}.") from exc

    made, new = _run(grant)
    if not new:
        out.print(f"{address} already holds {name} {_where(conversation)} (grant {made.id}); nothing changed")
        return
    out.print(f"granted {name} to {address} {_where(conversation)} (grant {made.id})")


@access_app.command("revoke")
def access_revoke(
    email: EmailArgument, role: RoleArgument, conversation: ConversationOption = None, reason: ReasonOption = None
) -> None:
    """Revoke a person's role, the grant everywhere or the one within a conversation."""
    address, name = _email(email), _role(role)

    async def revoke(db: AsyncConnection) -> s.GrantOut:
        person = await _person(db, address)
        try:
            gone = await service.do_revoke_role_operator(
                db, user_id=person, role=name, conversation_id=conversation, reason=reason, operator=_operator()
            )
        except RoleNotFound as exc:
            raise Refused(f"No role is named {name}: `rapport access roles` lists them.") from exc
        if gone is None:
            raise Refused(f"{address} holds no {name} {_where(conversation)}: `rapport access grants {address}`.")
        return gone

    gone = _run(revoke)
    out.print(f"revoked {name} from {address} {_where(conversation)} (grant {gone.id})")
