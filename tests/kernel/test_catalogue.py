"""One source of truth for tables: the migrations.

Each table is written as SQL in a migration (the truth), again as a SQLAlchemy Core table
in its domain's models (what queries use), and its enumerations a third time as pydantic
Literals (what the API accepts and answers). These tests migrate a database and compare
the other two with what PostgreSQL's catalogue holds, over whatever schemas and tables
the migrations made: a new table, column or enumeration is checked without being listed.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import asyncpg
import pydantic
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import rapport
from rapport.kernel.models import metadata
from rapport.kernel.provisioning import OWNER_ROLE, DatabaseUrls, asyncpg_dsn

pytestmark = pytest.mark.module_database

MIGRATIONS = Path(rapport.__file__).resolve().parent / "migrations" / "versions"

# Columns the migrations make and Core leaves out on purpose, with the reason.
NOT_IN_CORE = {
    "social.profiles.search_vector": "generated for the SQL function social.search_profiles, the only reader; "
    "select(profiles) should not carry it",
    "matching.user_features.embedding": "pgvector's copy of `features`, where the server has pgvector; read only by "
    "rapport.modules.matching._similarity's SQL",
}

# CHECK enumerations spelled as a Literal under another name or in another package than
# the table's models: (module, pydantic model, field), or (module, function, parameter or
# "return") where no request or response shows the value and the code that writes it is
# what the Literal types.
LITERAL_ELSEWHERE = {
    "support.rooms.status": ("rapport.modules.support.schemas", "RoomOut", "status"),
    "support.escalations.status": ("rapport.modules.support.schemas", "EscalationOut", "status"),
    "bots.bots.status": ("rapport.bots.schemas", "BotOut", "status"),
    "bots.robot_interactions.status": ("rapport.bots.schemas", "InteractionOut", "status"),
    "audit.sensitive_data_access.action": ("rapport.social.schemas_parts", "SensitiveAccessOut", "action"),
    # identity.schemas.Accepted has a `status` of its own ("accepted"), not an account's.
    "auth.users.status": ("rapport.identity.schemas", "UserOut", "status"),
    "auth.sessions.revoked_reason": ("rapport.identity._sessions", "revoke_sessions", "reason"),
    "auth.otp_verifications.purpose": ("rapport.identity._accounts", "_code_mail", "purpose"),
    "kernel.jobs.status": ("rapport.kernel.jobs._queue", "fail", "return"),
    # Several messaging tables have a `type` or `status`; each is spelled by its own shape.
    "messaging.conversations.type": ("rapport.messaging.schemas_conversations", "ConversationOut", "type"),
    "messaging.conversations.status": ("rapport.messaging.schemas_conversations", "ConversationOut", "status"),
    "messaging.participants.status": ("rapport.messaging.schemas_conversations", "ParticipantOut", "status"),
    "messaging.messages.type": ("rapport.messaging.schemas", "MessageOut", "type"),
    "messaging.calls.type": ("rapport.messaging.schemas_calls", "CallOut", "type"),
    # Co-parenting's pairings and tasks each have a `status` of their own.
    "coparenting.pairing_sessions.status": ("rapport.modules.coparenting.schemas_pairing", "PairingOut", "status"),
    "coparenting.tasks.status": ("rapport.modules.coparenting.schemas_family", "TaskOut", "status"),
    # Matching's matches and subscriptions each have a `status` of their own.
    "matching.matches.status": ("rapport.modules.matching.schemas_matches", "MatchOut", "status"),
    "matching.subscriptions.status": ("rapport.modules.matching.schemas_subscriptions", "SubscriptionOut", "status"),
    "messaging.calls.status": ("rapport.messaging.schemas_calls", "CallOut", "status"),
    "messaging.call_participants.status": ("rapport.messaging.schemas_calls", "CallParticipantOut", "status"),
    "messaging.reports.status": ("rapport.messaging.schemas_moderation", "ReportOut", "status"),
    "messaging.reports.reason": ("rapport.messaging.schemas_moderation", "ReportOut", "reason"),
    # Delivery records: written by the notification jobs, shown by no request or response.
    "notifications.push_delivery_log.status": ("rapport.notifications._deliver", "push_status", "return"),
    "notifications.sms_notifications.status": ("rapport.notifications._deliver", "sms_status", "return"),
    "notifications.email_notifications.status": ("rapport.notifications._digest", "set_status", "status"),
    "notifications.email_notifications.kind": ("rapport.notifications._consumer", "new_email", "kind"),
    # media.files and media.processing both have a `status`; each is spelled by its own shape.
    "media.files.status": ("rapport.media.schemas", "FileOut", "status"),
    "media.processing.status": ("rapport.media.schemas", "ProcessingStepOut", "status"),
    # The storage backend in use, recorded with each blob; no request or response shows it.
    "media.blobs.storage_provider": ("rapport.media._files", "reserve_blob", "provider"),
    # Audit rows written through compliance's functions, whose parameters the Literals type.
    "audit.admin_actions.action": ("rapport.compliance._admin", "record_action", "action"),
    "audit.data_exports.event": ("rapport.compliance._logs", "record_data_export", "event"),
}

# CHECK enumerations no request or response spells as a Literal, with the reason.
NO_LITERAL = {
    "audit.record_changes.operation": "written by the audit trigger from TG_OP; no Python code names the values",
    "notifications.templates.type": "the types of notifications.notifications.type and 'digest' (the e-mail digest's "
    "own template); looked up by rapport.notifications._compose, which names no Literal of them",
}

# Schemas whose owner is not plain from their name: their tables are defined there alone.
SCHEMA_PACKAGE = {"auth": "rapport.identity", "audit": "rapport.kernel", "kernel": "rapport.kernel"}


def _import_all(package: str, *, only: str = "") -> Iterator[types.ModuleType]:
    """Every module of a package (those whose last name starts with `only`), imported."""
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        if info.name.rsplit(".", 1)[-1].startswith(only):
            yield importlib.import_module(info.name)


def _tables_by_package() -> dict[str, set[str]]:
    """Each Core table's full name, with the packages whose models define it; importing
    every models module also completes the metadata."""
    packages: dict[str, set[str]] = {}
    for module in _import_all("rapport", only="models"):
        for value in vars(module).values():
            if isinstance(value, Table) and value.metadata is metadata:
                packages.setdefault(value.fullname, set()).add(module.__name__.rsplit(".", 1)[0])
    return packages


PACKAGES_OF = _tables_by_package()


@dataclass(frozen=True)
class Catalogue:
    """What the migrated database holds in Rapport's schemas."""

    schemas: set[str]
    # schema.table -> column -> (type, nullable, has a default, identity or expression)
    columns: dict[str, dict[str, tuple[str, bool, bool]]]
    primary_keys: dict[str, set[str]]
    # (schema.table, constraint name, definition) of every CHECK constraint
    checks: list[tuple[str, str, str]]
    functions: set[str]


_SCHEMAS = "SELECT nspname FROM pg_namespace WHERE nspowner = $1::text::regrole"
_COLUMNS = """
SELECT n.nspname || '.' || c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' AS has_default
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
_PRIMARY_KEYS = """
SELECT n.nspname || '.' || c.relname AS table_name, a.attname AS column_name
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(k.conkey)
 WHERE n.nspname = ANY($1) AND k.contype = 'p' AND NOT c.relispartition
"""
_CHECKS = """
SELECT n.nspname || '.' || c.relname AS table_name, k.conname, pg_get_constraintdef(k.oid) AS definition
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1) AND k.contype = 'c' AND NOT c.relispartition
"""
_FUNCTIONS = """
SELECT n.nspname || '.' || p.proname AS name
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = ANY($1)
"""


@pytest.fixture
async def catalogue(database: DatabaseUrls) -> AsyncIterator[Catalogue]:
    conn = await asyncpg.connect(asyncpg_dsn(database.owner))
    try:
        schemas = {row["nspname"] for row in await conn.fetch(_SCHEMAS, OWNER_ROLE)}
        columns: dict[str, dict[str, tuple[str, bool, bool]]] = {}
        for row in await conn.fetch(_COLUMNS, list(schemas)):
            shape = (row["type"], row["nullable"], row["has_default"])
            columns.setdefault(row["table_name"], {})[row["column_name"]] = shape
        primary_keys: dict[str, set[str]] = {}
        for row in await conn.fetch(_PRIMARY_KEYS, list(schemas)):
            primary_keys.setdefault(row["table_name"], set()).add(row["column_name"])
        checks = [
            (row["table_name"], row["conname"], row["definition"]) for row in await conn.fetch(_CHECKS, list(schemas))
        ]
        functions = {row["name"] for row in await conn.fetch(_FUNCTIONS, list(schemas))}
        yield Catalogue(schemas, columns, primary_keys, checks, functions)
    finally:
        await conn.close()


def _core_type(column: Column[Any]) -> str:
    compiled = column.type.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    return _normalised_type(compiled)


def _normalised_type(name: str) -> str:
    return re.sub(r",\s+", ",", name.lower())


def _core_shape(column: Column[Any]) -> tuple[str, bool, bool]:
    has_default = column.server_default is not None or column.identity is not None or column.computed is not None
    return _core_type(column), column.nullable is not False, has_default


def _table_differences(catalogue: Catalogue, name: str) -> Iterator[str]:
    table = metadata.tables[name]
    migrated = {
        column: (_normalised_type(kind), nullable, has_default)
        for column, (kind, nullable, has_default) in catalogue.columns[name].items()
        if f"{name}.{column}" not in NOT_IN_CORE
    }
    modelled = {column.name: _core_shape(column) for column in table.columns}
    for column in sorted(migrated.keys() | modelled.keys()):
        want, have = migrated.get(column), modelled.get(column)
        if want != have:
            yield f"{name}.{column}: (type, nullable, has a default) migrated as {want}, modelled as {have}"
    if catalogue.primary_keys.get(name, set()) != {column.name for column in table.primary_key}:
        yield f"{name}: the primary key differs"


async def test_every_table_and_column_is_modelled_as_migrated(catalogue: Catalogue) -> None:
    """Core knows every table the migrations made, with the same columns, types,
    nullability, primary key, and a server default exactly where the database has one."""
    migrated, modelled = set(catalogue.columns), set(metadata.tables)
    differences = [f"{name}: migrated, but no models module defines it" for name in sorted(migrated - modelled)]
    differences += [f"{name}: modelled, but no migration makes it" for name in sorted(modelled - migrated)]
    for name in sorted(migrated & modelled):
        differences += _table_differences(catalogue, name)
    assert differences == []


def test_columns_left_out_of_core_exist() -> None:
    """A reason to leave a column out names a real table of the metadata."""
    for name in NOT_IN_CORE:
        table, _ = name.rsplit(".", 1)
        assert table in metadata.tables, name


def _autogenerate_differences(connection: Connection, schemas: set[str]) -> list[Any]:
    wanted = schemas | {table.schema for table in metadata.tables.values() if table.schema}

    # A partition is its parent's storage (kernel.ensure_partitions makes them): Core
    # models the parent only.
    partitions = {
        row[0]
        for row in connection.exec_driver_sql(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relispartition"
        )
    }

    def include_name(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
        if type_ == "table":
            return f"{parent_names.get('schema_name')}.{name}" not in partitions
        return type_ != "schema" or name in wanted

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        # Indexes are the migrations' alone: each carries a comment naming the query it
        # serves, Core never creates or names one, and autogenerate compares them only in
        # part (neither WHERE clauses nor expression indexes such as the GIN ones).
        if type_ == "index":
            return False
        return not (type_ == "column" and f"{obj.table.fullname}.{name}" in NOT_IN_CORE)

    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": include_name,
            "include_object": include_object,
            "compare_type": True,
            # Reliable on PostgreSQL: alembic asks the server whether both expressions
            # give the same value.
            "compare_server_default": True,
            # Comments are prose the migrations hold (COMMENT ON); Core does not repeat
            # them. Policies, functions, triggers, grants and CHECK constraints are not
            # modelled by Core at all, by design: they live in the migrations, and the
            # CHECK enumerations are compared with the Literals below instead.
            "autogenerate_plugins": ["alembic.autogenerate.*", "~alembic.autogenerate.comments"],
        },
    )
    return list(compare_metadata(context, metadata))


async def test_autogenerate_finds_no_difference(database: DatabaseUrls, catalogue: Catalogue) -> None:
    """Alembic's autogenerate, run against the migrated database, would write nothing:
    tables, columns, types, nullability, server defaults, keys and foreign keys agree."""
    engine = create_async_engine(database.owner)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_autogenerate_differences, catalogue.schemas)
    finally:
        await engine.dispose()
    assert differences == []


def test_each_schema_is_modelled_by_its_owner() -> None:
    """The tables of one schema are defined by one package, the schema's owner: a
    reader finds each table where its owner is."""
    by_schema: dict[str, set[str]] = {}
    for name, packages in PACKAGES_OF.items():
        # rapport.kernel.jobs is the kernel's.
        by_schema.setdefault(name.split(".", 1)[0], set()).update(".".join(p.split(".")[:2]) for p in packages)
    for schema, domains in by_schema.items():
        owner = SCHEMA_PACKAGE.get(schema)
        assert len(domains) == 1, (schema, domains)
        assert owner is None or domains == {owner}, (schema, domains)


# `column IN ('a', 'b')` as PostgreSQL gives it back: `(column = ANY (ARRAY['a'::text, 'b'::text]))`,
# with a cast around the column and the array when the column is not text.
_ENUMERATION = re.compile(r'"?(\w+)"?\)?(?:::[\w ]+)? = ANY \(\(?ARRAY\[([^\]]*)\]')
_VALUE = re.compile(r"'((?:[^']|'')*)'::\w+")


def _check_enumerations(catalogue: Catalogue) -> dict[str, set[str]]:
    """schema.table.column -> the values a `column IN (...)` CHECK allows."""
    enumerations: dict[str, set[str]] = {}
    for table, _, definition in catalogue.checks:
        for column, values in _ENUMERATION.findall(definition):
            allowed = {value.replace("''", "'") for value in _VALUE.findall(values)}
            enumerations[f"{table}.{column}"] = enumerations.get(f"{table}.{column}", allowed) & allowed
    return enumerations


def _literal_values(annotation: Any) -> set[str] | None:
    """The values of the Literal in a field's annotation (through Optional, unions and
    Annotated), or None when it has none."""
    origin = get_origin(annotation)
    if origin is Literal:
        return {str(value) for value in get_args(annotation)}
    if origin in (Union, types.UnionType, Annotated):
        found = [values for values in map(_literal_values, get_args(annotation)) if values is not None]
        return set().union(*found) if found else None
    return None


def _literals_of(package: str, field: str) -> dict[str, set[str]]:
    """`module.Model.field` -> its Literal values, for every pydantic model of a package."""
    literals: dict[str, set[str]] = {}
    for module in _import_all(package):
        for model in vars(module).values():
            if not (isinstance(model, type) and issubclass(model, pydantic.BaseModel)):
                continue
            if model.__module__ != module.__name__ or field not in model.model_fields:
                continue
            values = _literal_values(model.model_fields[field].annotation)
            if values is not None:
                literals[f"{module.__name__}.{model.__name__}.{field}"] = values
    return literals


def _literal_elsewhere(module: str, owner: str, field: str) -> dict[str, set[str]]:
    """The Literal values of a pydantic model's field, or of a function's parameter or
    return annotation, keyed by its dotted name (empty when it has no Literal)."""
    target = getattr(importlib.import_module(module), owner)
    if isinstance(target, type) and issubclass(target, pydantic.BaseModel):
        annotation = target.model_fields[field].annotation if field in target.model_fields else None
    else:
        annotation = get_type_hints(target).get(field)
    values = _literal_values(annotation)
    return {} if values is None else {f"{module}.{owner}.{field}": values}


async def test_check_enumerations_match_the_literals(catalogue: Catalogue) -> None:
    """Every `CHECK (column IN (...))` is spelled, value for value, by the Literal of
    each request or response field of that name in the owning package (or where
    LITERAL_ELSEWHERE points), or is listed in NO_LITERAL with its reason."""
    enumerations = _check_enumerations(catalogue)
    assert enumerations, "no CHECK enumeration was found: the pattern no longer matches PostgreSQL's"
    differences: list[str] = []
    for key, allowed in sorted(enumerations.items()):
        if key in NO_LITERAL:
            continue
        table, column = key.rsplit(".", 1)
        if key in LITERAL_ELSEWHERE:
            found = _literal_elsewhere(*LITERAL_ELSEWHERE[key])
        else:
            found = {}
            for package in PACKAGES_OF.get(table, set()):
                found.update(_literals_of(package, column))
        if not found:
            differences.append(f"{key} allows {sorted(allowed)}: no Literal spells it (or list it in NO_LITERAL)")
        for name, values in sorted(found.items()):
            if values != allowed:
                differences.append(f"{key} allows {sorted(allowed)}, but {name} allows {sorted(values)}")
    listed = NO_LITERAL.keys() | LITERAL_ELSEWHERE.keys()
    differences += [
        f"{key} is listed here, but no CHECK enumerates it any more" for key in listed - enumerations.keys()
    ]
    assert differences == []


_SERVES = re.compile(r"[Ss]erves\b(.*)")
_DOTTED = re.compile(r"\b[a-z_][a-z0-9_]*(?:\.[A-Za-z_]\w*)+\b")


def _named_in_index_comments() -> Iterator[tuple[str, str]]:
    """(migration, dotted name) for each name an index comment says it serves."""
    for path in sorted(MIGRATIONS.glob("*.py")):
        for line in path.read_text().splitlines():
            served = _SERVES.search(line)
            if served and ("--" in line or "COMMENT ON INDEX" in line or line.strip().startswith("'")):
                for name in _DOTTED.findall(served.group(1)):
                    yield path.name, name


def _resolves(name: str) -> bool:
    """Whether a dotted name is a module of Rapport, or a function or value in one."""
    module_name, _, attribute = name.rpartition(".")
    for candidate in (name, module_name):
        try:
            module = importlib.import_module(candidate)
        except ImportError:
            continue
        return candidate == name or hasattr(module, attribute)
    return False


async def test_index_comments_name_what_exists(catalogue: Catalogue) -> None:
    """An index comment names what it serves: a Python function or module by its path
    (`rapport.social._search.search_profiles`, or within Rapport `identity._limits`), or
    an SQL function by its schema (`social.search_profiles`). Names of modules that do
    not exist (`identity.queries.*`) mislead."""
    named = list(_named_in_index_comments())
    assert named, "no index comment names what it serves: the pattern no longer matches"
    wrong = [
        (migration, name)
        for migration, name in named
        if not (name in catalogue.functions or _resolves(name if name.startswith("rapport.") else f"rapport.{name}"))
    ]
    assert wrong == []
