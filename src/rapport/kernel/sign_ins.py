"""Checks of a sign-in by the domains above identity (the location domain's impossible
travel and risky addresses), without identity importing them: each such domain adds its
check when it is imported, and identity asks them all once the first factor has passed,
in the sign-in's own system transaction.

A check may record what it likes in that transaction (a location, a flag, a security
event, an outbox event) and answer whether the sign-in must be held for a second proof:
the account's second factor (TOTP) when it has one, otherwise a one-time code sent to
the account's verified address (or its verified number when it has no address)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.kernel.actor import Client
from rapport.kernel.runtime import Runtime


@dataclass(frozen=True)
class SignInAttempt:
    """A sign-in whose first factor passed: who, how, and from where."""

    user_id: UUID
    method: str
    client: Client
    # Whether the account has a second factor it can be asked for.
    has_second_factor: bool
    # Whether an account without one can be sent a one-time code to prove the sign-in
    # (a step-up): it has a verified address, or a verified number and no address.
    can_step_up: bool = False

    @property
    def can_be_held(self) -> bool:
        """Whether a verdict asking for a second proof can be honoured."""
        return self.has_second_factor or self.can_step_up


@dataclass(frozen=True)
class SignInVerdict:
    """What a check asks of the sign-in: `second_factor` holds it for a second proof, and
    counts only for an account that can give one (`SignInAttempt.can_be_held`)."""

    second_factor: bool = False


SignInCheck = Callable[[AsyncConnection, Runtime, SignInAttempt], Awaitable[SignInVerdict]]

_checks: list[SignInCheck] = []


def add_sign_in_check(check: SignInCheck) -> None:
    """Ask `check` of every sign-in from now on (once, however often it is added)."""
    if check not in _checks:
        _checks.append(check)


async def check_sign_in(db: AsyncConnection, *, rt: Runtime, attempt: SignInAttempt) -> SignInVerdict:
    """Every check's verdict on a sign-in, combined: a second proof when any asks for one
    and the account can give one."""
    second_factor = False
    for check in _checks:
        verdict = await check(db, rt, attempt)
        second_factor = second_factor or (verdict.second_factor and attempt.can_be_held)
    return SignInVerdict(second_factor=second_factor)
