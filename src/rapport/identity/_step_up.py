"""A sign-in held for a second proof, of an account without TOTP (a step-up).

A domain's check of a sign-in (rapport.kernel.sign_ins; location: impossible travel, a
risky address) may hold it. An account with TOTP is asked for it; any other is sent a
one-time code: to its verified address, or by SMS to its verified number when it has no
address. The sign-in answers with a challenge (`factor` says which channel) and completes
at `POST /v1/auth/login/step-up` with the challenge token and the code.

The code is a `second_factor` code of auth.otp_verifications (identity._phone_codes, the
SMS fallback of TOTP): a new one retires the earlier ones, it lives `otp_ttl_minutes`
and `otp_max_attempts` guesses, and every wrong guess spends the budgets a wrong TOTP
code spends (the account's `second_factor_guesses_per_account_per_day`, the client's
`code_guesses_per_ip`). Sending spends the address's mail cap (`mails_per_address`) or the
number's SMS cap and the deployment's SMS of the day, never refused aloud: past a cap no
new code is issued, the one already sent still works, and the answer is the same.

A sign-in whose first step was an SMS code, of an account with no address, is not held:
a second SMS to the same number would prove the same thing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import _limits as limits
from rapport.identity import tokens
from rapport.identity._phone_codes import issue_second_factor, try_notice
from rapport.identity._sms import Sms, enqueue_sms
from rapport.identity.models import users
from rapport.identity.schemas import MfaChallenge
from rapport.kernel.mail import Mail, enqueue_mail
from rapport.kernel.runtime import Runtime


@dataclass(frozen=True)
class StepUpChannel:
    """Where the code of a held sign-in goes."""

    kind: tokens.StepUp
    to: str


async def step_up_channel(db: AsyncConnection, *, user_id: UUID, method: str) -> StepUpChannel | None:
    """The account's verified address, else its verified number (unless the sign-in began
    with a code by SMS); None when it has neither."""
    row = (
        await db.execute(
            select(users.c.email, users.c.email_verified_at, users.c.phone_number, users.c.phone_verified_at).where(
                users.c.id == user_id
            )
        )
    ).one()
    if row.email is not None and row.email_verified_at is not None:
        return StepUpChannel("email", str(row.email))
    if row.phone_number is not None and row.phone_verified_at is not None and method != "sms":
        return StepUpChannel("sms", str(row.phone_number))
    return None


async def hold_for_code(
    db: AsyncConnection, *, rt: Runtime, user_id: UUID, method: str, channel: StepUpChannel
) -> MfaChallenge:
    """Send a sign-in code by `channel` (within its cap) and answer with the challenge it completes."""
    if await _admit(db, rt=rt, channel=channel):
        minutes = rt.settings.otp_ttl_minutes
        if channel.kind == "email":
            code = await issue_second_factor(db, rt=rt, user_id=user_id, to=channel.to, identifier_type="email")
            await enqueue_mail(db, _code_mail(channel.to, code=code, minutes=minutes))
        else:
            code = await issue_second_factor(db, rt=rt, user_id=user_id, to=channel.to, identifier_type="phone")
            await enqueue_sms(
                db,
                Sms(
                    channel.to,
                    f"Rapport: an unusual sign-in to your account needs this code: {code}. "
                    f"It expires in {minutes} minutes. Never share it.",
                ),
            )
    return MfaChallenge(
        mfa_token=tokens.issue_mfa_token(rt.keyring, user_id=user_id, method=method, step_up=channel.kind),
        expires_in=tokens.MFA_TOKEN_TTL_SECONDS,
        factor=channel.kind,
    )


async def _admit(db: AsyncConnection, *, rt: Runtime, channel: StepUpChannel) -> bool:
    # The password was right: the sign-in is not refused for the cap, only left with the
    # code already sent.
    if channel.kind == "email":
        rule = limits.rules(rt).mails_per_address
        return await limits.try_take(db, rule=rule, subject=limits.address(rt, channel.to)) is None
    return await try_notice(db, rt=rt, phone=channel.to)


def _code_mail(to: str, *, code: str, minutes: int) -> Mail:
    return Mail(
        to=to,
        subject="Your Rapport sign-in code",
        body=f"Your sign-in code is {code}\n\nIt expires in {minutes} minutes.\n\n"
        "We ask for it because this sign-in looked unusual: from a place far from your last one, "
        "or from an address with a poor reputation. If you are not signing in, someone knows your "
        "password: change it, and sign out your other sessions.\n",
    )
