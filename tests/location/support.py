"""What the location tests share: the sample IP database (MaxMind GeoLite2 CSV files,
made for the tests on documentation networks: 192.0.2.0/25 London, 192.0.2.128/25 Paris,
198.51.100.0/24 Sydney, 203.0.113.0/24 New York with a Tor exit at 203.0.113.66,
2001:db8::/32 London; DB-IP lite files in data/dbip: 100.64.0.0/23 Berlin) and signing
in from an address."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import text

from rapport.identity import service as identity_service
from rapport.identity.schemas import Device
from rapport.kernel.actor import Client
from rapport.kernel.db import system_transaction
from rapport.kernel.runtime import Runtime
from rapport.location import service
from tests.support import Persona

DATA = Path(__file__).resolve().parent / "data"
MAXMIND = sorted(DATA.glob("*.csv"))
DBIP = sorted((DATA / "dbip").glob("*.csv"))

LONDON = (51.5074, -0.1278)
PARIS = (48.8566, 2.3522)
SYDNEY = (-33.8688, 151.2093)
NEW_YORK = (40.7128, -74.0060)

LONDON_IP = "192.0.2.10"
PARIS_IP = "192.0.2.200"
SYDNEY_IP = "198.51.100.7"
TOR_IP = "203.0.113.66"
VPN_IP = "198.51.100.200"


async def import_files(runtime: Runtime, files: list[Path] = MAXMIND) -> service.ImportReport:
    records = list(service.read_geo_files(files))
    async with system_transaction(runtime.system_engine) as db:
        return await service.do_import_networks(db, records=records)


async def sign_in_from(runtime: Runtime, persona: Persona, ip: str) -> Any:
    """A password sign-in from an address, as the API makes it (system work)."""
    async with system_transaction(runtime.system_engine) as db:
        return await identity_service.do_password_login(
            db,
            rt=runtime,
            email=persona.email,
            password=persona.password,
            client=Client(ip=ip, user_agent="location-tests"),
            device=Device(),
        )


async def as_system(runtime: Runtime, statement: str, **params: Any) -> list[Any]:
    async with system_transaction(runtime.system_engine) as db:
        result = await db.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


def user_id(persona: Persona) -> UUID:
    return UUID(persona.user_id)
