"""Reading IP geolocation databases: MaxMind GeoLite2 / GeoIP2 CSV (City or Country
blocks with their Locations file, ASN or ISP blocks, Anonymous IP blocks), DB-IP CSV
(the lite City, Country and ASN files: start and end addresses, no header) and MMDB
(with the maintained `maxminddb` reader).

Each file is one kind of data about networks (where they are, who runs them, whether
they hide someone) and becomes `NetworkRecord`s of that kind; the import merges the kinds
of one network into one row (rapport.location._import)."""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rapport.location.errors import GeoDatabaseUnreadable
from rapport.location.schemas import Source

Kind = Literal["place", "operator", "anonymity"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# MaxMind's Locations file, keyed by geoname_id.
Places = dict[str, dict[str, str]]


@dataclass(frozen=True)
class NetworkRecord:
    """One network and what one file says of it (the fields of its kind)."""

    network: Network
    kind: Kind
    source: Source
    country_code: str | None = None
    country_name: str | None = None
    region: str | None = None
    city: str | None = None
    postal_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius_km: int | None = None
    time_zone: str | None = None
    isp: str | None = None
    asn: int | None = None
    organization: str | None = None
    is_proxy: bool = False
    is_vpn: bool = False
    is_tor: bool = False
    is_hosting: bool = False
    is_satellite: bool = False


@dataclass
class GeoFile:
    """A file to import, as recognised from its first line."""

    path: Path
    format: Literal["maxmind_blocks", "maxmind_locations", "maxmind_operator", "maxmind_anonymous", "dbip", "mmdb"]
    header: list[str] = field(default_factory=list)


def recognise(path: Path) -> GeoFile:
    """What kind of file this is, from its first bytes.

    Raises:
        GeoDatabaseUnreadable: not a format Rapport reads.
    """
    try:
        with path.open("rb") as raw:
            head = raw.read(4096)
    except OSError as error:
        raise GeoDatabaseUnreadable(f"{path}: {error.strerror or error}") from None
    if path.suffix.lower() == ".mmdb" or b"\xab\xcd\xefMaxMind.com" in _tail(path):
        return GeoFile(path, "mmdb")
    first = head.decode("utf-8", "replace").splitlines()[0] if head else ""
    header = [name.strip().lower() for name in next(csv.reader([first]), [])]
    if "network" in header and "geoname_id" in header:
        return GeoFile(path, "maxmind_blocks", header)
    if "geoname_id" in header and "locale_code" in header:
        return GeoFile(path, "maxmind_locations", header)
    if "network" in header and ("autonomous_system_number" in header or "isp" in header):
        return GeoFile(path, "maxmind_operator", header)
    if "network" in header and "is_tor_exit_node" in header:
        return GeoFile(path, "maxmind_anonymous", header)
    if header and _address(header[0]) is not None:
        return GeoFile(path, "dbip")
    raise GeoDatabaseUnreadable(
        f"{path}: not a MaxMind GeoLite2/GeoIP2 CSV (City, Country, ASN, ISP or Anonymous IP blocks, or "
        "Locations), a DB-IP CSV (City, Country or ASN lite) or an MMDB file"
    )


def _tail(path: Path) -> bytes:
    # An MMDB file's metadata marker is within its last 128 KiB.
    try:
        with path.open("rb") as raw:
            raw.seek(0, 2)
            size = raw.tell()
            raw.seek(max(0, size - 128 * 1024))
            return raw.read()
    except OSError:
        return b""


def read_all(paths: Iterable[Path]) -> Iterator[NetworkRecord]:
    """The records of every file, the Locations files read first (the City blocks name
    their places by id). A blocks file needs a Locations file: given, or beside it
    (`…-Locations-en.csv`).

    Raises:
        GeoDatabaseUnreadable: an unknown format, a bad row (named by file and line), or
            an MMDB file without the reader.
    """
    files = [recognise(path) for path in paths]
    places = _places_for(files)
    for file in files:
        if file.format == "maxmind_blocks":
            if not places:
                raise GeoDatabaseUnreadable(
                    f"{file.path}: City or Country blocks need their Locations file (…-Locations-en.csv): give it too"
                )
            yield from _rows(file, lambda row: _maxmind_place(row, places))
        elif file.format == "maxmind_operator":
            yield from _rows(file, _maxmind_operator)
        elif file.format == "maxmind_anonymous":
            yield from _rows(file, _maxmind_anonymity)
        elif file.format == "dbip":
            yield from _dbip(file.path)
        elif file.format == "mmdb":
            yield from _mmdb(file.path)


def _places_for(files: list[GeoFile]) -> Places:
    """The Locations files given, else those beside the blocks files."""
    places: Places = {}
    for file in files:
        if file.format == "maxmind_locations":
            places.update(_read_places(file.path))
    if places:
        return places
    for file in files:
        if file.format == "maxmind_blocks":
            for sibling in sorted(file.path.parent.glob("*Locations-en.csv")):
                places.update(_read_places(sibling))
    return places


def _read_places(path: Path) -> Places:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["geoname_id"]: row for row in csv.DictReader(handle) if row.get("geoname_id")}


def _rows(file: GeoFile, make: Any) -> Iterator[NetworkRecord]:
    with file.path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
        for line, row in enumerate(reader, start=2):
            try:
                record = make(row)
            except (ValueError, KeyError) as error:
                raise GeoDatabaseUnreadable(f"{file.path}, line {line}: {error}") from None
            if record is not None:
                yield record


def _network(value: str) -> Network:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not a network") from None


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _flag(value: str | None) -> bool:
    return (value or "").strip() in ("1", "true", "True")


def _number(value: str | None) -> float | None:
    text = (value or "").strip()
    if not text:
        return None
    number = float(text)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a number")
    return number


def _text(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _country(value: str | None) -> str | None:
    code = (value or "").strip().upper()
    return code if len(code) == 2 and code.isalpha() and code != "ZZ" else None


def _coordinates(latitude: float | None, longitude: float | None) -> tuple[float | None, float | None]:
    if latitude is None or longitude is None:
        return None, None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValueError(f"({latitude}, {longitude}) are not coordinates")
    return latitude, longitude


def _maxmind_place(row: dict[str, str], places: Places) -> NetworkRecord:
    place = places.get(row.get("geoname_id") or "") or places.get(row.get("registered_country_geoname_id") or "") or {}
    latitude, longitude = _coordinates(_number(row.get("latitude")), _number(row.get("longitude")))
    radius = _number(row.get("accuracy_radius"))
    return NetworkRecord(
        network=_network(row["network"]),
        kind="place",
        source="maxmind_csv",
        country_code=_country(place.get("country_iso_code")),
        country_name=_text(place.get("country_name")),
        region=_text(place.get("subdivision_1_name")),
        city=_text(place.get("city_name")),
        postal_code=_text(row.get("postal_code")),
        latitude=latitude,
        longitude=longitude,
        accuracy_radius_km=int(radius) if radius is not None and radius >= 0 else None,
        time_zone=_text(place.get("time_zone")),
        is_proxy=_flag(row.get("is_anonymous_proxy")),
        is_satellite=_flag(row.get("is_satellite_provider")),
    )


def _maxmind_operator(row: dict[str, str]) -> NetworkRecord:
    asn = _number(row.get("autonomous_system_number"))
    return NetworkRecord(
        network=_network(row["network"]),
        kind="operator",
        source="maxmind_csv",
        asn=int(asn) if asn is not None and asn >= 0 else None,
        organization=_text(row.get("autonomous_system_organization") or row.get("organization")),
        isp=_text(row.get("isp")),
    )


def _maxmind_anonymity(row: dict[str, str]) -> NetworkRecord:
    return NetworkRecord(
        network=_network(row["network"]),
        kind="anonymity",
        source="maxmind_csv",
        is_proxy=_flag(row.get("is_public_proxy")) or _flag(row.get("is_residential_proxy")),
        is_vpn=_flag(row.get("is_anonymous_vpn")),
        is_tor=_flag(row.get("is_tor_exit_node")),
        is_hosting=_flag(row.get("is_hosting_provider")),
    )


def _dbip(path: Path) -> Iterator[NetworkRecord]:
    """DB-IP's lite CSV files: `start,end,country` (Country), `start,end,asn,organisation`
    (ASN), `start,end,continent,country,region,city,latitude,longitude` (City). A range
    becomes the networks that cover it exactly."""
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            try:
                yield from _dbip_row(row)
            except ValueError as error:
                raise GeoDatabaseUnreadable(f"{path}, line {line}: {error}") from None


def _dbip_row(row: list[str]) -> Iterator[NetworkRecord]:
    if not row:
        return
    first, last = _address(row[0]), _address(row[1]) if len(row) > 1 else None
    if first is None or last is None or first.version != last.version or int(first) > int(last):
        raise ValueError(f"{row[:2]} is not an address range")
    base: dict[str, Any]
    if len(row) == 3:
        base = {"kind": "place", "country_code": _country(row[2])}
    elif len(row) == 4:
        asn = _number(row[2])
        base = {"kind": "operator", "asn": int(asn) if asn is not None else None, "organization": _text(row[3])}
    elif len(row) >= 8:
        latitude, longitude = _coordinates(_number(row[6]), _number(row[7]))
        base = {
            "kind": "place",
            "country_code": _country(row[3]),
            "region": _text(row[4]),
            "city": _text(row[5]),
            "latitude": latitude,
            "longitude": longitude,
        }
    else:
        raise ValueError(f"{len(row)} columns: DB-IP's lite files have 3 (Country), 4 (ASN) or 8 (City)")
    for network in ipaddress.summarize_address_range(first, last):
        yield NetworkRecord(network=network, source="dbip_csv", **base)


def _mmdb(path: Path) -> Iterator[NetworkRecord]:
    try:
        import maxminddb
    except ImportError:  # pragma: no cover - a dependency of Rapport's
        raise GeoDatabaseUnreadable(f"{path}: reading MMDB needs the maxminddb package") from None
    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
        raise GeoDatabaseUnreadable(f"{path}: {error}") from None
    with reader:
        kind = _mmdb_kind(str(reader.metadata().database_type))
        try:
            for network, record in reader:
                found = _ipv4_if_mapped(network)
                if found is not None and isinstance(record, dict):
                    yield _mmdb_record(found, kind, record)
        except (ValueError, maxminddb.InvalidDatabaseError) as error:
            raise GeoDatabaseUnreadable(f"{path}: {error}") from None


def _mmdb_kind(database_type: str) -> Kind:
    name = database_type.lower()
    if "asn" in name or "isp" in name:
        return "operator"
    if "anonymous" in name:
        return "anonymity"
    return "place"


def _ipv4_if_mapped(network: Network) -> Network | None:
    """IPv4 networks as IPv4 (an IPv6 database holds them under ::ffff:0:0/96 and, aliased,
    under ::/96: those copies are skipped)."""
    if isinstance(network, ipaddress.IPv6Network):
        mapped = ipaddress.IPv6Network("::ffff:0:0/96")
        if network.subnet_of(mapped) and network.prefixlen >= 96:
            address = network.network_address.ipv4_mapped
            assert address is not None
            return ipaddress.IPv4Network(f"{address}/{network.prefixlen - 96}")
        if network.prefixlen >= 96 and network.subnet_of(ipaddress.IPv6Network("::/96")):
            return None
    return network


def _names(part: Any) -> str | None:
    if isinstance(part, dict):
        names = part.get("names")
        if isinstance(names, dict):
            return _text(str(names.get("en") or "")) or None
    return None


def _mmdb_record(network: Network, kind: Kind, record: dict[str, Any]) -> NetworkRecord:
    if kind == "operator":
        asn = record.get("autonomous_system_number")
        return NetworkRecord(
            network=network,
            kind=kind,
            source="mmdb",
            asn=int(asn) if isinstance(asn, int) and asn >= 0 else None,
            organization=_text(str(record.get("autonomous_system_organization") or record.get("organization") or "")),
            isp=_text(str(record.get("isp") or "")),
        )
    if kind == "anonymity":
        return NetworkRecord(
            network=network,
            kind=kind,
            source="mmdb",
            is_proxy=bool(record.get("is_public_proxy") or record.get("is_residential_proxy")),
            is_vpn=bool(record.get("is_anonymous_vpn")),
            is_tor=bool(record.get("is_tor_exit_node")),
            is_hosting=bool(record.get("is_hosting_provider")),
        )
    country = record.get("country") or record.get("registered_country") or {}
    location = record.get("location") or {}
    subdivisions = record.get("subdivisions") or [None]
    traits = record.get("traits") or {}
    latitude, longitude = location.get("latitude"), location.get("longitude")
    latitude, longitude = _coordinates(
        float(latitude) if isinstance(latitude, int | float) else None,
        float(longitude) if isinstance(longitude, int | float) else None,
    )
    radius = location.get("accuracy_radius")
    return NetworkRecord(
        network=network,
        kind=kind,
        source="mmdb",
        country_code=_country(str(country.get("iso_code") or "")) if isinstance(country, dict) else None,
        country_name=_names(country),
        region=_names(subdivisions[0]),
        city=_names(record.get("city")),
        postal_code=_text(str((record.get("postal") or {}).get("code") or "")),
        latitude=latitude,
        longitude=longitude,
        accuracy_radius_km=radius if isinstance(radius, int) and radius >= 0 else None,
        time_zone=_text(str(location.get("time_zone") or "")),
        is_proxy=bool(traits.get("is_anonymous_proxy")),
        is_satellite=bool(traits.get("is_satellite_provider")),
    )
