"""The IP database: the sample GeoLite2 and DB-IP files imported (again without change),
addresses looked up through the SP-GiST index, files that are not a database refused, and
`location.calculate_distance` against known distances."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlalchemy import text

from rapport.kernel.db import system_transaction
from rapport.location import service
from tests.location.mmdb import write_ipv4_mmdb
from tests.location.support import (
    DATA,
    DBIP,
    LONDON,
    LONDON_IP,
    NEW_YORK,
    PARIS,
    PARIS_IP,
    SYDNEY,
    TOR_IP,
    VPN_IP,
    as_system,
    import_files,
)

pytestmark = pytest.mark.module_database


async def test_the_sample_files_import_and_a_second_import_changes_nothing(runtime):
    first = await import_files(runtime)
    rows = await as_system(
        runtime, "SELECT network::text AS net, updated_at FROM location.ip_addresses ORDER BY network"
    )

    again = await import_files(runtime)

    # Four City networks and one IPv6, an ASN network for the two London/Paris halves,
    # the Sydney and New York ones merged into theirs, and two single addresses flagged.
    assert [row[0] for row in rows] == [
        "192.0.2.0/24",
        "192.0.2.0/25",
        "192.0.2.128/25",
        "198.51.100.0/24",
        "198.51.100.200/32",
        "203.0.113.0/24",
        "203.0.113.66/32",
        "2001:db8::/32",
    ]
    assert first.records == 10 and first.written == 10
    assert again.records == 10 and again.written == 0
    assert (
        await as_system(runtime, "SELECT network::text AS net, updated_at FROM location.ip_addresses ORDER BY network")
        == rows
    )


async def test_an_address_is_placed_by_its_most_specific_network(runtime):
    await import_files(runtime)
    async with system_transaction(runtime.system_engine) as db:
        london = await service.lookup_ip(db, address=LONDON_IP)
        paris = await service.lookup_ip(db, address=PARIS_IP)
        tor = await service.lookup_ip(db, address=TOR_IP)
        vpn = await service.lookup_ip(db, address=VPN_IP)
        v6 = await service.lookup_ip(db, address="2001:db8::1")
        unknown = await service.lookup_ip(db, address="10.1.2.3")
        not_an_address = await service.lookup_ip(db, address="not an address")

    assert london is not None and paris is not None and tor is not None and vpn is not None and v6 is not None
    assert (london.city, london.country_code, london.region, london.ip_version) == ("London", "GB", "England", 4)
    assert (london.latitude, london.longitude, london.accuracy_radius_km) == (*LONDON, 5)
    # The operator comes from the /24 that contains both halves.
    assert (london.asn, london.organization) == (64500, "Example Transit London")
    assert (paris.city, paris.country_name, paris.asn) == ("Paris", "France", 64500)
    assert (tor.city, tor.is_tor, tor.risk_score, tor.threat_level) == ("New York", True, 90, "critical")
    assert tor.asn == 64502 and tor.network == "203.0.113.66/32"
    assert (vpn.city, vpn.is_vpn, vpn.risk_score, vpn.threat_level) == ("Sydney", True, 60, "medium")
    assert (v6.city, v6.ip_version, v6.network) == ("London", 6, "2001:db8::/32")
    assert london.risk_score == 0 and london.threat_level == "low" and not london.is_tor
    assert unknown is None and not_an_address is None


async def test_a_lookup_is_served_by_the_index(runtime):
    await import_files(runtime)
    async with system_transaction(runtime.system_engine) as db:
        # Eight rows would be scanned whole; the plan the index allows is what is checked.
        await db.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in await db.execute(
                text(
                    "EXPLAIN SELECT * FROM location.ip_addresses WHERE network >>= CAST(:ip AS inet)"
                    " ORDER BY masklen(network) DESC"
                ),
                {"ip": LONDON_IP},
            )
        )
    assert "ix_ip_addresses_network_spgist" in plan, plan


async def test_db_ip_files_import_and_nest_in_maxmind_networks(runtime):
    await import_files(runtime)
    report = await import_files(runtime, DBIP)
    async with system_transaction(runtime.system_engine) as db:
        berlin = await service.lookup_ip(db, address="100.64.1.9")
        berlin_v6 = await service.lookup_ip(db, address="2001:db8:ffff::5")
        london_v6 = await service.lookup_ip(db, address="2001:db8:1::5")

    assert report.written > 0
    assert berlin is not None and berlin_v6 is not None and london_v6 is not None
    assert (berlin.city, berlin.country_code, berlin.asn, berlin.organization) == (
        "Berlin",
        "DE",
        64510,
        "Example Carrier Berlin",
    )
    assert berlin.network == "100.64.0.0/23" and berlin.source == "dbip_csv"
    assert (berlin_v6.city, berlin_v6.network) == ("Berlin", "2001:db8:ffff::/48")
    assert london_v6.city == "London"


def test_files_that_are_no_ip_database_are_refused(tmp_path: Path):
    notes = tmp_path / "notes.csv"
    notes.write_text("name,phone\nalice,123\n")
    blocks_alone = tmp_path / "GeoLite2-City-Blocks-IPv4.csv"
    blocks_alone.write_text((DATA / "GeoLite2-City-Blocks-IPv4.csv").read_text())
    broken = tmp_path / "GeoLite2-ASN-Blocks-IPv4.csv"
    broken.write_text(
        "network,autonomous_system_number,autonomous_system_organization\n192.0.2.0/24,64500,ok\nnope,1,x\n"
    )
    bad_range = tmp_path / "dbip.csv"
    bad_range.write_text("10.0.0.9,10.0.0.1,ZZ\n")

    with pytest.raises(service.GeoDatabaseUnreadable, match="not a MaxMind"):
        list(service.read_geo_files([notes]))
    with pytest.raises(service.GeoDatabaseUnreadable, match="Locations file"):
        list(service.read_geo_files([blocks_alone]))
    with pytest.raises(service.GeoDatabaseUnreadable, match="line 3"):
        list(service.read_geo_files([broken]))
    with pytest.raises(service.GeoDatabaseUnreadable, match="not an address range"):
        list(service.read_geo_files([bad_range]))
    with pytest.raises(service.GeoDatabaseUnreadable):
        list(service.read_geo_files([tmp_path / "missing.csv"]))


def _haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lat1, lon1), (lat2, lon2) = (tuple(map(math.radians, point)) for point in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


@pytest.mark.parametrize(
    ("a", "b", "known_km"),
    [
        (LONDON, PARIS, 343.5),
        (LONDON, NEW_YORK, 5570.2),
        (LONDON, SYDNEY, 16993.9),
        ((0.0, 0.0), (0.0, 180.0), 20015.1),  # half the equator
        ((90.0, 0.0), (-90.0, 0.0), 20015.1),  # pole to pole
        (PARIS, PARIS, 0.0),
    ],
)
async def test_calculate_distance_gives_known_distances(app_engine, a, b, known_km):
    async with app_engine.connect() as db:
        km = (
            await db.execute(
                text("SELECT location.calculate_distance(:lat1, :lon1, :lat2, :lon2)"),
                {"lat1": a[0], "lon1": a[1], "lat2": b[0], "lon2": b[1]},
            )
        ).scalar_one()

    assert float(km) == pytest.approx(known_km, abs=0.5)
    assert float(km) == pytest.approx(_haversine_km(a, b), abs=0.001)


async def test_mmdb_files_import_with_maxminds_reader(runtime, tmp_path: Path):
    city = {
        "192.0.2.0/25": {
            "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
            "subdivisions": [{"names": {"en": "England"}}],
            "city": {"names": {"en": "London"}},
            "location": {
                "latitude": LONDON[0],
                "longitude": LONDON[1],
                "accuracy_radius": 5,
                "time_zone": "Europe/London",
            },
        },
        "198.51.100.0/24": {
            "country": {"iso_code": "AU", "names": {"en": "Australia"}},
            "city": {"names": {"en": "Sydney"}},
            "location": {"latitude": SYDNEY[0], "longitude": SYDNEY[1], "accuracy_radius": 20},
        },
    }
    paths = {
        "GeoLite2-City.mmdb": write_ipv4_mmdb(city, database_type="GeoLite2-City"),
        "GeoLite2-ASN.mmdb": write_ipv4_mmdb(
            {"192.0.2.0/24": {"autonomous_system_number": 64500, "autonomous_system_organization": "Example Transit"}},
            database_type="GeoLite2-ASN",
        ),
        "GeoIP2-Anonymous-IP.mmdb": write_ipv4_mmdb(
            {"198.51.100.66/32": {"is_anonymous": True, "is_tor_exit_node": True}},
            database_type="GeoIP2-Anonymous-IP",
        ),
    }
    files = []
    for name, data in paths.items():
        (tmp_path / name).write_bytes(data)
        files.append(tmp_path / name)

    first = await import_files(runtime, files)
    again = await import_files(runtime, files)
    async with system_transaction(runtime.system_engine) as db:
        london = await service.lookup_ip(db, address="192.0.2.1")
        tor = await service.lookup_ip(db, address="198.51.100.66")

    assert (first.records, first.written, again.written) == (4, 4, 0)
    assert london is not None and tor is not None
    assert (london.city, london.region, london.country_code, london.time_zone) == (
        "London",
        "England",
        "GB",
        "Europe/London",
    )
    assert (london.asn, london.organization, london.source) == (64500, "Example Transit", "mmdb")
    assert (tor.city, tor.is_tor, tor.risk_score) == ("Sydney", True, 90)


def test_a_broken_mmdb_file_is_refused(tmp_path: Path):
    broken = tmp_path / "GeoLite2-City.mmdb"
    broken.write_bytes(b"not a database at all")

    with pytest.raises(service.GeoDatabaseUnreadable):
        list(service.read_geo_files([broken]))
