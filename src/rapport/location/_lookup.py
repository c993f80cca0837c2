"""Looking an address up in the IP database (system work).

The networks containing an address are found through the SP-GiST index on `network`
(`network >>= address`, inet_ops), longest prefix first; there are few (one per kind
of file, at most a handful of nestings). The place comes from the most specific network
that has one, the operator likewise, and the flags, risk and threat from all of them."""

from __future__ import annotations

import ipaddress

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import INET
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.location.schemas import IpLocation

_CONTAINING = text(
    """
    SELECT ip.id, ip.network::text AS network, ip.ip_version, ip.country_code, ip.country_name, ip.region,
           ip.city, ip.postal_code, ip.latitude, ip.longitude, ip.accuracy_radius_km, ip.time_zone, ip.isp,
           ip.asn, ip.organization, ip.is_proxy, ip.is_vpn, ip.is_tor, ip.is_hosting, ip.threat_level,
           ip.risk_score, ip.connection_type, ip.source
      FROM location.ip_addresses ip
     WHERE ip.network >>= :address
     ORDER BY masklen(ip.network) DESC
    """
).bindparams(bindparam("address", type_=INET))
_COUNT = text("UPDATE location.ip_addresses SET lookup_count = lookup_count + 1, last_seen_at = now() WHERE id = :id")
_THREATS = ("low", "medium", "high", "critical")
_PLACE = ("country_code", "country_name", "region", "city", "postal_code", "time_zone")


def parse_address(value: str) -> str | None:
    """The address in canonical form, or None for text that is none."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


async def lookup_ip(db: AsyncConnection, *, address: str, count: bool = False) -> IpLocation | None:
    """What the IP database says of an address, or None when no network holds it (or it
    is not an address). `count`: a sign-in's lookup, kept as usage of the network."""
    canonical = parse_address(address)
    if canonical is None:
        return None
    rows = (await db.execute(_CONTAINING, {"address": canonical})).all()
    if not rows:
        return None
    most = rows[0]
    merged: dict[str, object] = {
        "network": most.network,
        "ip_version": most.ip_version,
        "source": most.source,
        "is_proxy": any(row.is_proxy for row in rows),
        "is_vpn": any(row.is_vpn for row in rows),
        "is_tor": any(row.is_tor for row in rows),
        "is_hosting": any(row.is_hosting for row in rows),
        "risk_score": max(row.risk_score for row in rows),
        "threat_level": max((row.threat_level for row in rows), key=_THREATS.index),
        "connection_type": next((row.connection_type for row in rows if row.connection_type != "unknown"), "unknown"),
    }
    placed = next((row for row in rows if row.latitude is not None), None) or next(
        (row for row in rows if row.country_code is not None), None
    )
    if placed is not None:
        merged.update({name: getattr(placed, name) for name in _PLACE})
        merged.update(
            latitude=placed.latitude, longitude=placed.longitude, accuracy_radius_km=placed.accuracy_radius_km
        )
    operator = next((row for row in rows if row.asn is not None or row.isp is not None), None)
    if operator is not None:
        merged.update(isp=operator.isp, asn=operator.asn, organization=operator.organization)
    if count:
        await db.execute(_COUNT, {"id": most.id})
    return IpLocation.model_validate(merged)
