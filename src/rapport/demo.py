"""The demo: three accounts that already know each other, so that `make serve` shows a
living system. Alice and Bob are contacts, and so are Bob and Carol; Carol has asked
Alice, who has not answered yet; Alice keeps Bob in her group "Friends"; Alice and Bob
have a direct conversation with a first exchange, and are paired as co-parents (their
shared room made by the pairing). Each has a display name and a bio.

A support desk is open too: Bob works its first level (T1) and Carol its second (T2).
Alice has two rooms: in the first, about a refund, Bob answered and escalated it to T2,
where the escalation waits in Carol's queue; the second, where Bob's bot "Desk Helper"
greeted her, waits unanswered in the T1 queue.

Safe to run at every start: an account is made only when missing, a profile is filled
in only while it still holds what registration put there, and two people are introduced
only when they have never had a contact request between them, and paired only when Alice
has never had a pairing, so nothing anyone changed since (a bio, a rejected request, a
removed contact, a canceled pairing) is undone; the desk is set up only while Alice has
never opened a support room. The credentials printed are only those that sign in: the
demo password of an account this run made, or of one whose password still is the demo
password; beside each, the support level it works, as its grants stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal
from uuid import UUID

from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.access import service as access_service
from rapport.bots import service as bots_service
from rapport.config import Settings
from rapport.identity import service as identity_service
from rapport.kernel.actor import Actor, Client
from rapport.kernel.db import system_transaction, user_transaction
from rapport.kernel.pagination import PageRequest
from rapport.kernel.provisioning import DatabaseUrls
from rapport.kernel.runtime import Runtime, one_off_runtime
from rapport.messaging import service as messaging_service
from rapport.modules.coparenting import schemas_pairing as coparenting_schemas
from rapport.modules.coparenting import service as coparenting_service
from rapport.modules.support import schemas as support_schemas
from rapport.modules.support import service as support_service
from rapport.social import schemas as social_schemas
from rapport.social import service as social_service

DEMO_PASSWORD = "rapport-demo-password"
GROUP_NAME = "Friends"
# Alice (0) and Bob (1) in their direct conversation.
DIRECT_MESSAGES = (
    (0, "Hi Bob! Are we still on for the trail run on Saturday?"),
    (1, "Yes! 7am at the usual spot. I'll bring the sourdough for after."),
    (0, "Perfect, see you there."),
)


@dataclass(frozen=True)
class DemoPerson:
    email: str
    display_name: str
    bio: str
    pronouns: str


PEOPLE = (
    DemoPerson(
        "alice@example.com",
        "Alice Martin",
        "Product designer in Lyon. Trail running at dawn, too many houseplants.",
        "she/her",
    ),
    DemoPerson(
        "bob@example.com",
        "Bob Okafor",
        "Backend developer and weekend baker. Ask me about sourdough or PostgreSQL.",
        "he/him",
    ),
    DemoPerson(
        "carol@example.com",
        "Carol Nguyen",
        "Nurse on night shifts, co-parent of two, board games on Sundays.",
        "she/her",
    ),
)
ALICE, BOB, CAROL = (person.email for person in PEOPLE)
# Who becomes whose contact (the first asks, the second accepts), and who only asks.
CONTACTS = ((ALICE, BOB), (BOB, CAROL))
PENDING = ((CAROL, ALICE),)

# The support desk: who works which level (built-in roles), and what Bob may make.
DESK_ROLES = ((BOB, "support-t1"), (CAROL, "support-t2"), (BOB, "bot-developer"))
DESK_LEVELS = ("manager", "T3", "T2", "T1")
REFUND_ROOM = support_schemas.RoomCreate(
    issue_description="My refund for the March subscription has not arrived.", issue_id="REF-2031", priority=2
)
# Alice (0) and Bob (1) in the refund room.
REFUND_MESSAGES = (
    (0, "Hello, I cancelled in March and was promised a refund of 79 EUR. Nothing yet."),
    (1, "Hi Alice, I'm Bob from support. I can see the cancellation; let me check the refund."),
    (1, "Refunds above 50 EUR are approved at the second level: I'm passing this on to them."),
)
REFUND_ESCALATION = support_schemas.EscalationCreate(
    reason="Refund of 79 EUR, above what the first level may approve.", to_level="T2"
)
EXPORT_ROOM = support_schemas.RoomCreate(issue_description="Where do I export the co-parenting calendar?")
DESK_BOT = bots_service.BotCreate(
    name="Desk Helper",
    description="Greets people in support rooms; answers when mentioned.",
    # A developer's own receiver: point it elsewhere with PATCH /v1/bots/{id}.
    webhook_url="http://localhost:8765/desk-helper",
    receives="mentions",
    is_visible_to_guests=True,
)
BOT_GREETING = "Hi! I'm Desk Helper. An agent will be with you soon; mention me for the help pages meanwhile."
EXPORT_QUESTION = "I'd like to print the calendar for the school. Is there an export?"


@dataclass(frozen=True)
class DemoAccount:
    """One demo account as the run left it. `password` is the one that signs in, or None
    when its owner changed it (or the account cannot sign in with one)."""

    email: str
    user_id: UUID
    password: str | None
    state: str
    desk: str = ""


async def seed_demo(runtime: Runtime) -> list[DemoAccount]:
    """Make what is missing of the demo (see the module's docstring); the accounts."""
    accounts = [await _ensure_account(runtime, person) for person in PEOPLE]
    ids = {account.email: account.user_id for account in accounts}
    for person in PEOPLE:
        async with user_transaction(runtime.engine, ids[person.email]) as db:
            await _fill_in_profile(db, Actor(user_id=ids[person.email]), person)
    for asker, asked in CONTACTS:
        if await _introduce(runtime, ids[asker], ids[asked], accept=True) and (asker, asked) == (ALICE, BOB):
            async with user_transaction(runtime.engine, ids[ALICE]) as db:
                await _group_with(db, Actor(user_id=ids[ALICE]), ids[BOB])
    for asker, asked in PENDING:
        await _introduce(runtime, ids[asker], ids[asked], accept=False)
    await _start_conversation(runtime, ids[ALICE], ids[BOB])
    await _pair(runtime, ids[ALICE], ids[BOB])
    await _open_desk(runtime, ids)
    return [replace(account, desk=await _level_of(runtime, account.user_id)) for account in accounts]


async def _pair(runtime: Runtime, alice: UUID, bob: UUID) -> None:
    """Alice invites Bob as the other parent with a code, and Bob accepts it, when Alice
    has no pairing, pending or past."""
    async with user_transaction(runtime.engine, alice) as db:
        if await coparenting_service.has_any_pairing(db, actor=Actor(user_id=alice)):
            return
        invited = await coparenting_service.do_create_pairing(
            db, actor=Actor(user_id=alice), body=coparenting_schemas.PairingCreate(invite_type="code")
        )
    async with user_transaction(runtime.engine, bob) as db:
        await coparenting_service.do_accept_pairing(
            db, actor=Actor(user_id=bob), body=coparenting_schemas.PairingAccept(code=invited.pairing_code)
        )


async def _start_conversation(runtime: Runtime, alice: UUID, bob: UUID) -> None:
    """Alice and Bob's direct conversation, with a first exchange, when it is new: a
    conversation either of them has since used or left is theirs."""
    async with user_transaction(runtime.engine, alice) as db:
        conversation, made = await messaging_service.do_open_direct(db, actor=Actor(user_id=alice), user_id=bob)
    if not made or conversation.last_seq > 0:
        return
    for sender, content in DIRECT_MESSAGES:
        author = (alice, bob)[sender]
        async with user_transaction(runtime.engine, author) as db:
            await messaging_service.do_post_message(
                db, actor=Actor(user_id=author), conversation_id=conversation.id, content=content
            )


async def run_demo(settings: Settings, urls: DatabaseUrls) -> list[DemoAccount]:
    """seed_demo with a runtime of its own, for the `rapport demo` and `serve` commands."""
    async with one_off_runtime(settings, urls, authenticate=identity_service.authenticate) as runtime:
        return await seed_demo(runtime)


def print_accounts(accounts: Sequence[DemoAccount], console: Console) -> None:
    table = Table(title="Demo accounts (POST /v1/auth/login)")
    for column in ("e-mail", "password", "support desk", ""):
        table.add_column(column)
    for account in accounts:
        password = account.password or "(not the demo password any more)"
        table.add_row(account.email, password, account.desk, account.state)
    if any(account.desk for account in accounts):
        table.caption = "The support desk: GET /v1/support/queues/T1 (or T2) as its agents, /v1/support/rooms as Alice."
    console.print(table)


async def _ensure_account(runtime: Runtime, person: DemoPerson) -> DemoAccount:
    async with system_transaction(runtime.system_engine) as db:
        user = await identity_service.get_user_by_email(db, email=person.email)
        if user is None:
            user_id = await identity_service.do_create_user(
                db, rt=runtime, email=person.email, password=DEMO_PASSWORD, verified=True
            )
            return DemoAccount(person.email, user_id, DEMO_PASSWORD, "created")
    # Never claim a password that does not work: its owner may have changed it.
    signs_in = user.status == "active" and (await runtime.passwords.verify(user.password_hash, DEMO_PASSWORD)).ok
    if not signs_in:
        return DemoAccount(person.email, user.id, None, "exists, password changed")
    return DemoAccount(person.email, user.id, DEMO_PASSWORD, "exists")


async def _fill_in_profile(db: AsyncConnection, actor: Actor, person: DemoPerson) -> None:
    profile = await social_service.get_own_profile(db, actor=actor)
    # What registration made: the address's local part, no bio. Anything else is the owner's.
    if profile.display_name != person.email.split("@")[0] or profile.bio:
        return
    changes = social_schemas.ProfileUpdate.model_validate(
        {"display_name": person.display_name, "bio": person.bio, "pronouns": person.pronouns}
    )
    await social_service.do_update_profile(db, actor=actor, changes=changes)


async def _introduce(runtime: Runtime, asker: UUID, asked: UUID, *, accept: bool) -> bool:
    """`asker` asks `asked` to be a contact, and `asked` accepts if `accept`, unless the
    two ever had a request between them. Whether it happened now."""
    async with user_transaction(runtime.engine, asker) as db:
        if await _ever_asked(db, Actor(user_id=asker), asked):
            return False
        request = await social_service.do_request_contact(db, actor=Actor(user_id=asker), user_id=asked, message=None)
    if accept:
        async with user_transaction(runtime.engine, asked) as db:
            await social_service.do_answer_request(
                db, actor=Actor(user_id=asked), request_id=request.id, answer="accept"
            )
    return True


async def _ever_asked(db: AsyncConnection, actor: Actor, other: UUID) -> bool:
    page = PageRequest(limit=200, after_id=None)
    directions: tuple[Literal["incoming", "outgoing"], ...] = ("incoming", "outgoing")
    for direction in directions:
        requests = await social_service.list_requests(db, actor=actor, direction=direction, status=None, page=page)
        if any(other in (r.requester_id, r.addressee_id) for r in requests.items):
            return True
    return False


async def _group_with(db: AsyncConnection, actor: Actor, contact_user_id: UUID) -> None:
    groups = await social_service.list_groups(db, actor=actor, page=social_service.GroupPageRequest(limit=200))
    if any(group.name.lower() == GROUP_NAME.lower() for group in groups.items):
        return
    group = await social_service.do_create_group(db, actor=actor, name=GROUP_NAME)
    contacts = await social_service.list_contacts(db, actor=actor, page=PageRequest(limit=200, after_id=None))
    for contact in contacts.items:
        if contact.contact_user_id == contact_user_id:
            await social_service.do_add_to_group(db, actor=actor, group_id=group.id, contact_id=contact.id)


# --- the support desk ---------------------------------------------------------------------


async def _open_desk(runtime: Runtime, ids: dict[str, UUID]) -> None:
    """Bob and Carol become agents (T1, T2) and Alice opens two rooms (see the module's
    docstring), when Alice has never opened a support room."""
    alice, bob = Actor(user_id=ids[ALICE]), Actor(user_id=ids[BOB])
    async with user_transaction(runtime.engine, alice.user_id) as db:
        if (await support_service.list_rooms(db, actor=alice, page=PageRequest(limit=1, after_id=None))).items:
            return
    async with system_transaction(runtime.system_engine) as db:
        for email, role in DESK_ROLES:
            await access_service.grant_role_system(db, ids[email], role)
    refund = await _open_room(runtime, alice, REFUND_ROOM)
    async with user_transaction(runtime.engine, bob.user_id) as db:
        joining = await support_service.authorise_join_room(db, actor=bob, conversation_id=refund)
    async with system_transaction(runtime.system_engine) as db:
        await support_service.do_join_room(db, permit=joining)
    for sender, content in REFUND_MESSAGES:
        await _post(runtime, (alice, bob)[sender], refund, content)
    async with user_transaction(runtime.engine, bob.user_id) as db:
        escalating = await support_service.authorise_escalate(
            db, actor=bob, conversation_id=refund, body=REFUND_ESCALATION
        )
    async with system_transaction(runtime.system_engine) as db:
        await support_service.do_escalate(db, permit=escalating, body=REFUND_ESCALATION)
    export = await _open_room(runtime, alice, EXPORT_ROOM)
    bot = await _make_bot(runtime, bob)
    async with system_transaction(runtime.system_engine) as db:
        await messaging_service.do_admit(db, conversation_id=export, user_id=bot, role="member")
    await _post(runtime, Actor(user_id=bot), export, BOT_GREETING)
    await _post(runtime, alice, export, EXPORT_QUESTION)


async def _open_room(runtime: Runtime, customer: Actor, body: support_schemas.RoomCreate) -> UUID:
    async with user_transaction(runtime.engine, customer.user_id) as db:
        permit = await support_service.authorise_open_room(db, actor=customer)
    async with system_transaction(runtime.system_engine) as db:
        return (await support_service.do_open_room(db, permit=permit, body=body)).room.conversation_id


async def _post(runtime: Runtime, sender: Actor, room: UUID, content: str) -> None:
    async with user_transaction(runtime.engine, sender.user_id) as db:
        await messaging_service.do_post_message(db, actor=sender, conversation_id=room, content=content)


async def _make_bot(runtime: Runtime, owner: Actor) -> UUID:
    async with user_transaction(runtime.engine, owner.user_id) as db:
        await bots_service.check_may_make_bot(db, actor=owner, body=DESK_BOT, settings=runtime.settings)
    async with system_transaction(runtime.system_engine) as db:
        made = await bots_service.do_create_bot(db, rt=runtime, actor=owner, body=DESK_BOT, client=Client())
    return made.id


async def _level_of(runtime: Runtime, user_id: UUID) -> str:
    """The highest support level the account works, as its grants stand ("" for none)."""
    async with system_transaction(runtime.system_engine) as db:
        for level in DESK_LEVELS:
            if await access_service.holds_permission(db, user_id, f"support:queue:{level.lower()}"):
                return f"agent, {level}"
    return ""
