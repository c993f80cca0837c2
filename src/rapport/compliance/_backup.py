"""The pieces of a backup: PostgreSQL's own client tools, the manifest beside the dump,
and what the database holds outside its schemas (roles, the database's grants).

A backup is a folder: `rapport.dump`, a custom-format `pg_dump` of the whole database
(schemas, rows, functions, policies, owners and grants), and `manifest.json`, which holds
what pg_dump leaves out and what a restore checks against:

- the roles the database names (owners, grantees, policies' roles) with their attributes,
  role-wide settings and memberships, never their passwords: Rapport's three roles get
  the passwords the restoring deployment configures, as provisioning gives them;
- the database's own grants and settings (`GRANT CONNECT ON DATABASE`, `ALTER DATABASE
  ... SET`), which pg_dump writes only with `--create`, for a database of the same name;
- the row count and a checksum of every table, taken in the snapshot pg_dump dumps, so
  that a restore proves it brought back exactly what was backed up;
- the server's version, the tools' version, the migration revision and the dump's SHA-256.

Reading every row past row-level security (forced on every table with user data, for the
owner too) takes a superuser or a role with BYPASSRLS: the role in `RAPPORT_DATABASE_URL`,
or the embedded server's superuser.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from rapport.compliance._backup_tools import BackupError, Progress

FORMAT = "rapport-backup"
FORMAT_VERSION = 1
DUMP_FILE = "rapport.dump"
MANIFEST_FILE = "manifest.json"


# --- the manifest -----------------------------------------------------------------------


@dataclass
class TableState:
    rows: int
    checksum: str


@dataclass
class RoleRecord:
    """A role the database names, as far as a restore may recreate it (no password)."""

    name: str
    login: bool
    inherit: bool
    createdb: bool
    createrole: bool
    superuser: bool
    replication: bool
    bypassrls: bool
    connection_limit: int
    settings: list[str] = field(default_factory=list)
    member_of: list[str] = field(default_factory=list)


@dataclass
class Manifest:
    database: str
    created_at: str
    server_version: str
    server_major: int
    tools_version: str
    tools_major: int
    revision: str | None
    dump_sha256: str
    dump_bytes: int
    tables: dict[str, TableState]
    roles: list[RoleRecord]
    database_acl: list[str] | None
    database_settings: list[str]
    role_database_settings: dict[str, list[str]]
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest of a backup folder.

        Raises:
            BackupError: the folder is no Rapport backup, or one of a later format.
        """
        path = folder / MANIFEST_FILE
        if not folder.is_dir() or not path.is_file() or not (folder / DUMP_FILE).is_file():
            raise BackupError(f"{folder} is not a Rapport backup: it needs {MANIFEST_FILE} and {DUMP_FILE}.")
        try:
            data: dict[str, Any] = orjson.loads(path.read_bytes())
            if data.get("format") != FORMAT:
                raise ValueError("not a Rapport backup manifest")
            if int(data["format_version"]) > FORMAT_VERSION:
                raise BackupError(
                    f"{folder} was written by a newer Rapport (backup format {data['format_version']}); "
                    "restore it with that version."
                )
            data["tables"] = {name: TableState(**state) for name, state in data["tables"].items()}
            data["roles"] = [RoleRecord(**role) for role in data["roles"]]
            return cls(**data)
        except BackupError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(f"{path} is not a readable Rapport backup manifest ({exc}).") from exc


# --- what the catalogue says -------------------------------------------------------------

# Every table that holds rows, partitions included (their parents hold none of their own).
_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
 ORDER BY n.nspname, c.relname
"""

# Row texts are compared, so every setting that changes how a value is written is fixed.
_STABLE_OUTPUT = """
SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
SET extra_float_digits = 1; SET bytea_output = 'hex'; SET row_security = off
"""


async def list_tables(conn: asyncpg.Connection) -> list[str]:
    """Every table's name, schema-qualified and quoted where needed (`auth.users`)."""
    return [r["name"] for r in await conn.fetch(_TABLES)]


async def table_states(conn: asyncpg.Connection, progress: Progress, step: str) -> dict[str, TableState]:
    """The row count and checksum of every table: the sum of the first 64 bits of each
    row's MD5, so that the order rows are read in does not matter and no sort is needed.

    Row-level security is off for the session (`row_security = off` makes a read that a
    policy would filter fail instead): the role must be a superuser or have BYPASSRLS.
    """
    await conn.execute(_STABLE_OUTPUT)
    tables = await list_tables(conn)
    states: dict[str, TableState] = {}
    progress(step, 0, len(tables))
    for done, name in enumerate(tables, start=1):
        # The alias has a space in it, so that no column can shadow the whole-row reference.
        row = await conn.fetchrow(
            f"SELECT count(*) AS rows, coalesce(sum(('x' || left(md5(\"backup row\"::text), 16))::bit(64)::bigint"
            f'::numeric), 0)::text AS checksum FROM ONLY {name} AS "backup row"'
        )
        assert row is not None
        states[name] = TableState(rows=row["rows"], checksum=row["checksum"])
        progress(step, done, len(tables))
    return states


async def can_read_every_row(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"))


async def server_version(conn: asyncpg.Connection) -> tuple[str, int]:
    version = str(await conn.fetchval("SHOW server_version")).split()[0]
    number = int(await conn.fetchval("SHOW server_version_num"))
    return version, number // 10000


async def revision(conn: asyncpg.Connection) -> str | None:
    if not await conn.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL"):
        return None
    value = await conn.fetchval("SELECT version_num FROM public.alembic_version")
    return str(value) if value is not None else None


# Every role the database's objects name: owners, grantees (PUBLIC is oid 0 and joins no
# role), default privileges, policies, the database's ACL and its per-role settings.
_REFERENCED_ROLES = """
WITH objects AS (
    SELECT c.relowner AS owner, c.relacl AS acl FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
    UNION ALL
    SELECT n.nspowner, n.nspacl FROM pg_namespace n
     WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
    UNION ALL
    SELECT p.proowner, p.proacl FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
    UNION ALL
    SELECT t.typowner, t.typacl FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
    UNION ALL
    SELECT d.defaclrole, d.defaclacl FROM pg_default_acl d
    UNION ALL
    SELECT d.datdba, d.datacl FROM pg_database d WHERE d.datname = current_database()
),
named AS (
    SELECT owner AS oid FROM objects
    UNION SELECT (aclexplode(acl)).grantee FROM objects WHERE acl IS NOT NULL
    UNION SELECT (aclexplode(a.attacl)).grantee FROM pg_attribute a WHERE a.attacl IS NOT NULL
    UNION SELECT unnest(polroles) FROM pg_policy
    UNION SELECT s.setrole FROM pg_db_role_setting s
           WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT r.oid, r.rolname AS name, r.rolcanlogin AS login, r.rolinherit AS inherit, r.rolcreatedb AS createdb,
       r.rolcreaterole AS createrole, r.rolsuper AS superuser, r.rolreplication AS replication,
       r.rolbypassrls AS bypassrls, r.rolconnlimit AS connection_limit,
       coalesce((SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0),
                '{}') AS settings
  FROM pg_roles r JOIN named ON named.oid = r.oid
 WHERE r.rolname NOT LIKE 'pg\\_%'
 ORDER BY r.rolname
"""


_ROLE_ATTRIBUTES = (
    "name", "login", "inherit", "createdb", "createrole", "superuser", "replication", "bypassrls", "connection_limit",
)  # fmt: skip


async def referenced_roles(conn: asyncpg.Connection) -> list[RoleRecord]:
    rows = await conn.fetch(_REFERENCED_ROLES)
    names = {r["oid"]: r["name"] for r in rows}
    memberships: dict[int, list[str]] = {}
    for m in await conn.fetch("SELECT roleid, member FROM pg_auth_members ORDER BY roleid"):
        if m["roleid"] in names and m["member"] in names:
            memberships.setdefault(m["member"], []).append(names[m["roleid"]])
    return [
        RoleRecord(
            **{key: r[key] for key in _ROLE_ATTRIBUTES},
            settings=list(r["settings"]),
            member_of=memberships.get(r["oid"], []),
        )
        for r in rows
    ]


async def database_acl(conn: asyncpg.Connection) -> list[str] | None:
    acl = await conn.fetchval("SELECT datacl::text[] FROM pg_database WHERE datname = current_database()")
    return list(acl) if acl is not None else None


async def database_settings(conn: asyncpg.Connection) -> tuple[list[str], dict[str, list[str]]]:
    """The database's own settings, and each role's settings in it."""
    rows = await conn.fetch(
        """
        SELECT coalesce(r.rolname, '') AS role, s.setconfig
          FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole
         WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
        """
    )
    own = [list(r["setconfig"]) for r in rows if r["role"] == ""]
    per_role = {r["role"]: list(r["setconfig"]) for r in rows if r["role"] != ""}
    return (own[0] if own else []), per_role


# --- putting them back ------------------------------------------------------------------


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _setting_clause(setting: str) -> str:
    name, _, value = setting.partition("=")
    return f"SET {quote_ident(name)} TO {quote_literal(value)}"


async def create_roles(conn: asyncpg.Connection, roles: list[RoleRecord], *, missing: set[str]) -> list[str]:
    """Recreate the recorded roles that were missing before the restore (Rapport's own were
    just made by provisioning, with this deployment's passwords; the others get none), with
    their attributes, role-wide settings and memberships. SUPERUSER, REPLICATION and
    BYPASSRLS are never given back: what a restore grants that way would outlive it
    unnoticed. Returns what an operator must still do by hand."""
    existing = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
    notes: list[str] = []
    for role in roles:
        if role.name in missing:
            notes += await _recreate_role(conn, role, exists=role.name in existing)
    for role in roles:
        if role.name in missing:
            for parent in role.member_of:
                await conn.execute(f"GRANT {quote_ident(parent)} TO {quote_ident(role.name)}")
    return notes


async def _recreate_role(conn: asyncpg.Connection, role: RoleRecord, *, exists: bool) -> list[str]:
    name = quote_ident(role.name)
    notes: list[str] = []
    if not exists:
        await conn.execute(f"CREATE ROLE {name} NOLOGIN")
        if role.login:
            notes.append(f"role {role.name} was made without a password: set one (ALTER ROLE ... PASSWORD)")
    attributes = [
        "LOGIN" if role.login else "NOLOGIN",
        "INHERIT" if role.inherit else "NOINHERIT",
        "CREATEDB" if role.createdb else "NOCREATEDB",
        "CREATEROLE" if role.createrole else "NOCREATEROLE",
        f"CONNECTION LIMIT {int(role.connection_limit)}",
    ]
    await conn.execute(f"ALTER ROLE {name} WITH {' '.join(attributes)}")
    notes += [
        f"role {role.name} had {attribute.upper()} in the backup and was made without it"
        for attribute in ("superuser", "replication", "bypassrls")
        if getattr(role, attribute)
    ]
    for setting in role.settings:
        await conn.execute(f"ALTER ROLE {name} {_setting_clause(setting)}")
    return notes


async def restore_database_level(conn: asyncpg.Connection, manifest: Manifest, database: str) -> None:
    """The database's grants and settings, which the dump leaves out."""
    target = quote_ident(database)
    if manifest.database_acl is not None:
        entries = await conn.fetch(
            "SELECT coalesce(r.rolname, 'PUBLIC') AS grantee, a.privilege_type, a.is_grantable "
            "  FROM aclexplode($1::text[]::aclitem[]) a LEFT JOIN pg_roles r ON r.oid = a.grantee",
            manifest.database_acl,
        )
        await conn.execute(f"REVOKE ALL ON DATABASE {target} FROM PUBLIC")
        for entry in entries:
            grantee = "PUBLIC" if entry["grantee"] == "PUBLIC" else quote_ident(entry["grantee"])
            option = " WITH GRANT OPTION" if entry["is_grantable"] else ""
            await conn.execute(f"GRANT {entry['privilege_type']} ON DATABASE {target} TO {grantee}{option}")
    for setting in manifest.database_settings:
        await conn.execute(f"ALTER DATABASE {target} {_setting_clause(setting)}")
    for role, settings in manifest.role_database_settings.items():
        for setting in settings:
            await conn.execute(f"ALTER ROLE {quote_ident(role)} IN DATABASE {target} {_setting_clause(setting)}")


# A database is empty when nothing but an empty `public` schema and PL/pgSQL is in it:
# what CREATE DATABASE makes.
_CONTENTS = """
SELECT (SELECT count(*) FROM pg_namespace
         WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%')
     + (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)
     + (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)
     + (SELECT count(*) FROM pg_type WHERE typnamespace = 'public'::regnamespace)
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
"""


async def is_empty(conn: asyncpg.Connection) -> bool:
    return int(await conn.fetchval(_CONTENTS)) == 0


def compare(expected: dict[str, TableState], found: dict[str, TableState]) -> list[str]:
    """What differs between two sets of table states, one line each."""
    problems = [f"{name} is missing" for name in sorted(expected.keys() - found.keys())]
    problems += [f"{name} was not in the backup" for name in sorted(found.keys() - expected.keys())]
    for name in sorted(expected.keys() & found.keys()):
        want, got = expected[name], found[name]
        if want.rows != got.rows:
            problems.append(f"{name} has {got.rows} rows, the backup {want.rows}")
        elif want.checksum != got.checksum:
            problems.append(f"{name} has the backup's {want.rows} rows but not the same contents")
    return problems
