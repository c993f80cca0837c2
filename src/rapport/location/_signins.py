"""Where a sign-in comes from (rapport.kernel.sign_ins' check, in the sign-in's system
transaction, once the first factor has passed).

The client's address is looked up in the IP database; when it places the address, the
sign-in becomes an `ip_based` location of the person's (tested against geofences like any
other). The sign-in is flagged, in `location.suspicious_locations`, as:

- `impossible_travel`: from the previous location, the move is faster than
  RAPPORT_LOCATION_TRAVEL_MAX_KMH once both locations' accuracy radii are taken off the
  distance (an IP's place is a city at best), over at least a minute;
- `risky_address`: a Tor exit, or an address whose risk score is at least
  RAPPORT_LOCATION_RISKY_SCORE or whose threat level is high or critical.

Each flag is a security event of the account's (`suspicious_sign_in`, warning; critical
for a Tor exit); the person is told once per sign-in through the outbox
(`account.suspicious_sign_in`, which the notifications pipeline makes a security
notification of). With RAPPORT_LOCATION_SUSPICIOUS_SECOND_FACTOR (the default) a flagged
sign-in is held for a second proof: the account's TOTP when it has one, otherwise a
one-time code identity sends to its verified address (or number): identity._step_up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.identity import service as identity_service
from rapport.kernel.ids import uuid7
from rapport.kernel.outbox import Scope, publish
from rapport.kernel.runtime import Runtime
from rapport.kernel.sign_ins import SignInAttempt, SignInVerdict, add_sign_in_check
from rapport.location._geofences import detect_events
from rapport.location._locations import Placed, place_location
from rapport.location._lookup import lookup_ip
from rapport.location.models import suspicious_locations
from rapport.location.schemas import IpLocation, Reason

# Two sign-ins a few seconds apart measure no speed worth the name: the time is taken as
# at least this long.
MIN_HOURS = 1 / 60


def travel_speed_kmh(*, distance_km: float, seconds: float, allowance_km: float) -> float:
    """The speed a move implies once the locations' accuracy is allowed for (0 within it)."""
    beyond = max(0.0, distance_km - allowance_km)
    return beyond / max(seconds / 3600, MIN_HOURS)


def is_risky(found: IpLocation, *, risky_score: int) -> bool:
    return found.is_tor or found.risk_score >= risky_score or found.threat_level in ("high", "critical")


async def check_sign_in(db: AsyncConnection, rt: Runtime, attempt: SignInAttempt) -> SignInVerdict:
    """Locate a sign-in, flag it when suspicious, and say whether to hold it for the second factor."""
    if attempt.client.ip is None:
        return SignInVerdict()
    found = await lookup_ip(db, address=attempt.client.ip, count=True)
    if found is None:
        return SignInVerdict()
    settings = rt.settings
    placed: Placed | None = None
    if found.latitude is not None and found.longitude is not None:
        placed = await place_location(
            db,
            user_id=attempt.user_id,
            location_type="ip_based",
            latitude=found.latitude,
            longitude=found.longitude,
            accuracy_m=found.accuracy_radius_km * 1000.0 if found.accuracy_radius_km is not None else None,
            captured_at=datetime.now(UTC),
            country_code=found.country_code,
            region=found.region,
            city=found.city,
            ip_address=attempt.client.ip,
        )
        await detect_events(db, user_id=attempt.user_id, placed=placed.location)

    flags: list[tuple[Reason, dict[str, Any]]] = []
    speed = None
    if placed is not None and placed.previous is not None:
        previous = placed.previous
        allowance_km = ((previous.accuracy_m or 0) + (placed.location.accuracy_m or 0)) / 1000
        seconds = (placed.location.captured_at - previous.captured_at).total_seconds()
        speed = travel_speed_kmh(distance_km=previous.distance_km, seconds=seconds, allowance_km=allowance_km)
        if speed > settings.location_travel_max_kmh:
            flags.append(
                (
                    "impossible_travel",
                    {
                        "allowance_km": round(allowance_km, 3),
                        "seconds_since_previous": round(seconds, 1),
                        "max_kmh": settings.location_travel_max_kmh,
                    },
                )
            )
    if is_risky(found, risky_score=settings.location_risky_score):
        flags.append(
            (
                "risky_address",
                {
                    "is_tor": found.is_tor,
                    "is_proxy": found.is_proxy,
                    "is_vpn": found.is_vpn,
                    "is_hosting": found.is_hosting,
                    "threat_level": found.threat_level,
                },
            )
        )
    if not flags:
        return SignInVerdict()

    second_factor = settings.location_suspicious_second_factor and attempt.can_be_held
    first_id = None
    for reason, details in flags:
        flag_id = uuid7()
        first_id = first_id or flag_id
        await db.execute(
            insert(suspicious_locations).values(
                id=flag_id,
                user_id=attempt.user_id,
                user_location_id=placed.location.id if placed else None,
                reason=reason,
                ip_address=attempt.client.ip,
                country_code=found.country_code,
                city=found.city,
                previous_location_id=placed.previous.id if placed and placed.previous else None,
                distance_km=placed.previous.distance_km if placed and placed.previous else None,
                speed_kmh=speed if reason == "impossible_travel" else None,
                risk_score=found.risk_score,
                sign_in_method=attempt.method,
                second_factor_required=second_factor,
                details=details,
            )
        )
        await identity_service.record_security_event(
            db,
            user_id=attempt.user_id,
            event_type="suspicious_sign_in",
            severity="critical" if found.is_tor else "warning",
            client=attempt.client,
            details={"reason": reason, "suspicious_location_id": str(flag_id), "country_code": found.country_code},
        )
    await publish(
        db,
        scope=Scope.user(attempt.user_id),
        type="account.suspicious_sign_in",
        payload={
            "suspicious_location_id": str(first_id),
            "reasons": [reason for reason, _ in flags],
            "ip": attempt.client.ip,
            "headline": "Unusual sign-in to your account",
            "detail": _wording(
                found,
                [reason for reason, _ in flags],
                held=("second_factor" if attempt.has_second_factor else "code") if second_factor else None,
            ),
        },
        actor_id=None,
    )
    return SignInVerdict(second_factor=second_factor)


def _wording(found: IpLocation, reasons: list[Reason], *, held: Literal["second_factor", "code"] | None) -> str:
    where = ", ".join(part for part in (found.city, found.country_name or found.country_code) if part) or "an address"
    why = []
    if "impossible_travel" in reasons:
        why.append("too far from where you last were for the time since")
    if "risky_address" in reasons:
        why.append("through an anonymising network" if found.is_tor or found.is_proxy else "from a high-risk address")
    until = {
        "second_factor": " It was held for your second factor.",
        "code": " It was held until the code we sent you is entered.",
        None: "",
    }[held]
    return (
        f"Someone signed in from {where}, {' and '.join(why)}.{until} "
        "If this was not you, change your password and sign out your other sessions."
    )


add_sign_in_check(check_sign_in)
