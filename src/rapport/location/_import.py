"""`rapport location import`: networks into `location.ip_addresses`, in batches through
COPY into a temporary table and one upsert per batch (system work, one transaction: an
import that fails leaves the database as it was).

Each kind of record writes its own columns of a network's row: a place (MaxMind City or
Country, DB-IP City or Country), its operator (ASN or ISP), its anonymity flags. Running
the same import again changes no row (an update is made only where a value differs); a
newer database updates what changed. The risk score and threat level follow from the
flags: Tor exit 90, public or residential proxy 80, VPN 60, hosting 40."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.location._geodata import Kind, NetworkRecord

BATCH = 10_000

_STAGE = text(
    """
    CREATE TEMPORARY TABLE location_import (
        network cidr NOT NULL, source text NOT NULL,
        country_code text, country_name text, region text, city text, postal_code text,
        latitude double precision, longitude double precision, accuracy_radius_km integer, time_zone text,
        isp text, asn bigint, organization text,
        is_proxy boolean NOT NULL, is_vpn boolean NOT NULL, is_tor boolean NOT NULL,
        is_hosting boolean NOT NULL, is_satellite boolean NOT NULL
    ) ON COMMIT DROP
    """
)
_COLUMNS = [
    "network",
    "source",
    "country_code",
    "country_name",
    "region",
    "city",
    "postal_code",
    "latitude",
    "longitude",
    "accuracy_radius_km",
    "time_zone",
    "isp",
    "asn",
    "organization",
    "is_proxy",
    "is_vpn",
    "is_tor",
    "is_hosting",
    "is_satellite",
]

# What each kind writes of a row, on insert and, where it differs, on update. One network
# named twice in a batch keeps its last record (DISTINCT ON by position in the file order).
_PLACE_COLUMNS = [
    "country_code",
    "country_name",
    "region",
    "city",
    "postal_code",
    "latitude",
    "longitude",
    "accuracy_radius_km",
    "time_zone",
]
_OPERATOR_COLUMNS = ["isp", "asn", "organization"]
_ANONYMITY_COLUMNS = ["is_proxy", "is_vpn", "is_tor", "is_hosting"]


def _upsert(
    columns: list[str], *, extra_set: str = "", extra_insert: tuple[str, str] = ("", ""), also_when: str = ""
) -> Any:
    names = ", ".join(columns)
    picked = ", ".join(f"i.{c}" for c in columns)
    assignments = ", ".join(f"{c} = excluded.{c}" for c in columns)
    before, after = ", ".join(f"ip.{c}" for c in columns), ", ".join(f"excluded.{c}" for c in columns)
    insert_names, insert_values = extra_insert
    return text(
        f"""
        INSERT INTO location.ip_addresses AS ip (id, network, ip_version, source, {names}{insert_names})
        SELECT DISTINCT ON (i.network)
               kernel.uuid7_like(), i.network, family(i.network), i.source, {picked}{insert_values}
          FROM location_import i
        ON CONFLICT (network) DO UPDATE SET source = excluded.source, {assignments}{extra_set}
         WHERE ({before}) IS DISTINCT FROM ({after}){also_when}
        """
    )


_UPSERTS: dict[Kind, Any] = {
    # A City file's legacy anonymous-proxy flag adds to what an Anonymous IP file says.
    "place": _upsert(
        _PLACE_COLUMNS,
        extra_set=", is_proxy = ip.is_proxy OR excluded.is_proxy, connection_type = CASE"
        " WHEN excluded.connection_type <> 'unknown' THEN excluded.connection_type ELSE ip.connection_type END",
        extra_insert=(
            ", is_proxy, connection_type",
            ", i.is_proxy, CASE WHEN i.is_satellite THEN 'satellite' ELSE 'unknown' END",
        ),
        also_when=" OR (excluded.is_proxy AND NOT ip.is_proxy)"
        " OR (excluded.connection_type <> 'unknown' AND excluded.connection_type <> ip.connection_type)",
    ),
    "operator": _upsert(_OPERATOR_COLUMNS),
    "anonymity": _upsert(
        _ANONYMITY_COLUMNS,
        extra_set=", connection_type = CASE WHEN excluded.is_hosting THEN 'hosting' ELSE ip.connection_type END",
        extra_insert=(", connection_type", ", CASE WHEN i.is_hosting THEN 'hosting' ELSE 'unknown' END"),
        also_when=" OR (excluded.is_hosting AND ip.connection_type <> 'hosting')",
    ),
}
# The score and level that follow from the flags, for the batch's networks.
_SCORE = text(
    """
    WITH scored AS (
        SELECT ip.id,
               CASE WHEN ip.is_tor THEN 90 WHEN ip.is_proxy THEN 80 WHEN ip.is_vpn THEN 60
                    WHEN ip.is_hosting THEN 40 ELSE 0 END AS risk_score
          FROM location.ip_addresses ip
         WHERE ip.network IN (SELECT i.network FROM location_import i)
    )
    UPDATE location.ip_addresses ip
       SET risk_score = s.risk_score,
           threat_level = CASE WHEN s.risk_score >= 85 THEN 'critical' WHEN s.risk_score >= 70 THEN 'high'
                               WHEN s.risk_score >= 40 THEN 'medium' ELSE 'low' END
      FROM scored s
     WHERE ip.id = s.id AND ip.risk_score <> s.risk_score
    """
)


@dataclass
class ImportReport:
    records: int = 0
    written: int = 0


Progress = Callable[[int], None]


async def do_import_networks(
    db: AsyncConnection, *, records: Iterable[NetworkRecord], progress: Progress | None = None
) -> ImportReport:
    """Write networks into the IP database (system work): `written` counts rows inserted
    or changed, so a second run of the same files reports 0."""
    raw = await db.get_raw_connection()
    driver: Any = raw.driver_connection
    await db.execute(_STAGE)
    report = ImportReport()
    iterator = iter(records)
    while batch := list(islice(iterator, BATCH)):
        for kind in ("place", "operator", "anonymity"):
            rows = [_row(record) for record in batch if record.kind == kind]
            if not rows:
                continue
            await driver.copy_records_to_table("location_import", records=rows, columns=_COLUMNS)
            result = await db.execute(_UPSERTS[kind])
            report.written += max(result.rowcount, 0)
            await db.execute(_SCORE)
            await db.execute(text("TRUNCATE location_import"))
        report.records += len(batch)
        if progress is not None:
            progress(len(batch))
    return report


def _row(record: NetworkRecord) -> tuple[Any, ...]:
    return (
        record.network,
        record.source,
        record.country_code,
        record.country_name,
        record.region,
        record.city,
        record.postal_code,
        record.latitude,
        record.longitude,
        record.accuracy_radius_km,
        record.time_zone,
        record.isp,
        record.asn,
        record.organization,
        record.is_proxy,
        record.is_vpn,
        record.is_tor,
        record.is_hosting,
        record.is_satellite,
    )
