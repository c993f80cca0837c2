"""Every table in every schema Rapport owns, found in the catalogue rather than listed:
row-level security is on and FORCE'd, with at least one policy, the server's role owns
none, and some test in tests/security attacks it by name. A table added by any later
migration, in any schema, is held to this the day it lands.

Partitions (the monthly ones kernel.ensure_partitions() makes ahead) are reached through
their parent, whose policies and grants apply and whose name the attacks use: a partition
needs no test of its own, but forces row-level security and grants nothing to the serving
roles, so that no one reads or writes it around its parent."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest
from sqlalchemy import Table

from rapport.kernel import provisioning
from rapport.kernel.provisioning import DatabaseUrls, asyncpg_dsn

pytestmark = pytest.mark.module_database

SECURITY_TESTS = Path(__file__).resolve().parent

# Tables that hold no one's data, so need neither policies nor an attack, each with the
# reason. Empty today: every table Rapport has holds some person's data or traces of it.
NO_USER_DATA: dict[str, str] = {}

_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) AS name,
       c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       pg_get_userbyid(c.relowner) AS owner,
       (SELECT count(*) FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname) AS policies
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspowner = $1::text::regrole AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY 1
"""


_PARTITIONS = """
SELECT format('%I.%I', n.nspname, c.relname) AS name,
       c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
       pg_get_userbyid(c.relowner) AS owner,
       has_table_privilege($2, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS app_may,
       has_table_privilege($3, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS worker_may
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspowner = $1::text::regrole AND c.relkind IN ('r', 'p') AND c.relispartition
 ORDER BY 1
"""

# A table registered for monthly partitions, made as a domain's migration would, so that
# the partition check below always has partitions to look at, whichever domains exist.
_PARTITIONED = """
CREATE TABLE kernel.partitioned_probe (id uuid NOT NULL, created_at timestamptz NOT NULL)
    PARTITION BY RANGE (created_at);
ALTER TABLE kernel.partitioned_probe ENABLE ROW LEVEL SECURITY;
ALTER TABLE kernel.partitioned_probe FORCE ROW LEVEL SECURITY;
INSERT INTO kernel.monthly_partitions (parent) VALUES ('kernel.partitioned_probe');
SELECT kernel.ensure_partitions();
"""


async def _catalogue(urls: DatabaseUrls) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(urls.app))
    try:
        return list(await conn.fetch(_TABLES, provisioning.OWNER_ROLE))
    finally:
        await conn.close()


def _tables_named_in(module: ModuleType, source: str) -> set[str]:
    """The tables a test module names: as `schema.table` in its text, or as a SQLAlchemy
    table it refers to (`m.sessions`, `users`)."""
    named = set()
    for node in ast.walk(ast.parse(source)):
        target: object = None
        if isinstance(node, ast.Name):
            target = getattr(module, node.id, None)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = getattr(module, node.value.id, None)
            target = getattr(owner, node.attr, None) if isinstance(owner, ModuleType) else None
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            named.update(word.strip("\"'(),;") for word in node.value.split())
        if isinstance(target, Table):
            named.add(target.fullname)
    return named


def _tables_attacked() -> dict[str, set[str]]:
    """Each tests/security module (this one aside) with the tables it names."""
    attacked = {}
    for path in sorted(SECURITY_TESTS.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        module = importlib.import_module(f"tests.security.{path.stem}")
        attacked[path.name] = _tables_named_in(module, path.read_text())
    return attacked


async def test_the_catalogue_is_read_whole(database):
    names = {row["name"] for row in await _catalogue(database)}
    # A guard on the query itself: were it to find nothing, every check below would pass.
    assert {"auth.users", "auth.sessions", "social.profiles", "audit.record_changes"} <= names


async def test_every_table_forces_row_level_security_with_a_policy(database):
    rows = [row for row in await _catalogue(database) if row["name"] not in NO_USER_DATA]

    unprotected = [row["name"] for row in rows if not (row["enabled"] and row["forced"] and row["policies"])]
    assert unprotected == []


async def test_the_server_role_owns_no_table(database):
    rows = await _catalogue(database)

    assert [row["name"] for row in rows if row["owner"] == provisioning.APP_ROLE] == []


async def test_every_table_has_a_security_test_naming_it(database):
    attacked = set().union(*_tables_attacked().values())
    tables = {row["name"] for row in await _catalogue(database)} - set(NO_USER_DATA)

    unattacked = sorted(tables - attacked)
    assert unattacked == [], f"no test in tests/security names {', '.join(unattacked)}"


async def test_the_exemptions_name_tables_that_exist_and_say_why(database):
    names = {row["name"] for row in await _catalogue(database)}

    assert [name for name, reason in NO_USER_DATA.items() if name not in names or not reason.strip()] == []


async def test_every_partition_forces_row_level_security_and_grants_nothing(database):
    owner = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        await owner.execute(_PARTITIONED)
    finally:
        await owner.close()
    conn = await asyncpg.connect(asyncpg_dsn(database.app))
    try:
        rows = await conn.fetch(_PARTITIONS, provisioning.OWNER_ROLE, provisioning.APP_ROLE, provisioning.WORKER_ROLE)
    finally:
        await conn.close()

    # Their parent is what the other checks (and the attacks) look at.
    assert {row["name"] for row in rows} & {row["name"] for row in await _catalogue(database)} == set()
    assert any(row["name"].startswith("kernel.partitioned_probe_p") for row in rows)
    exposed = [
        row["name"]
        for row in rows
        if not (row["enabled"] and row["forced"])
        or row["app_may"]
        or row["worker_may"]
        or row["owner"] == provisioning.APP_ROLE
    ]
    assert exposed == []
