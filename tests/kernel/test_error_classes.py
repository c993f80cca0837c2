"""Errors live in the errors modules, and database refusals are told apart by the name of
the constraint they broke, never by the wording of PostgreSQL's message."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

import rapport
from rapport.kernel.errors import RapportError, constraint_of
from rapport.kernel.provisioning import DatabaseUrls

pytestmark = pytest.mark.module_database

SOURCE = Path(rapport.__file__).resolve().parent


def _every_module() -> Iterator[str]:
    for info in pkgutil.walk_packages(rapport.__path__, "rapport."):
        # Migrations run Alembic's environment when imported; they define no errors.
        if ".migrations" not in info.name and not info.name.endswith("__main__"):
            yield info.name


def _error_classes() -> set[type[RapportError]]:
    for name in _every_module():
        importlib.import_module(name)
    found: set[type[RapportError]] = set()
    pending: list[type[RapportError]] = [RapportError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            found.add(subclass)
            pending.append(subclass)
    return found


def test_every_error_class_lives_in_an_errors_module() -> None:
    """A reader finds every problem a domain can answer with in its errors.py."""
    misplaced = sorted(
        f"{error.__module__}.{error.__qualname__}"
        for error in _error_classes()
        if error.__module__.rsplit(".", 1)[-1] != "errors"
    )
    assert misplaced == []


def test_every_problem_type_is_its_own() -> None:
    """Clients tell problems apart by `type`: no two classes share one."""
    owners: dict[str, list[str]] = {}
    for error in _error_classes():
        owners.setdefault(error.slug, []).append(error.__qualname__)
    assert {slug: names for slug, names in owners.items() if len(names) > 1} == {}


def _handlers_reading_the_message(path: Path) -> Iterator[str]:
    """`except IntegrityError` handlers that turn the error into text or search it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for handler in ast.walk(tree):
        if not isinstance(handler, ast.ExceptHandler) or handler.type is None:
            continue
        if "IntegrityError" not in ast.unparse(handler.type):
            continue
        for node in ast.walk(ast.Module(body=handler.body, type_ignores=[])):
            reads_text = (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"str", "repr"}
            )
            searches = isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            if reads_text or searches:
                yield f"{path.relative_to(SOURCE)}:{node.lineno}"


def test_integrity_errors_are_mapped_by_constraint_name() -> None:
    """No handler of an IntegrityError reads PostgreSQL's message: it asks
    `constraint_of(exc)` for the name the migration gave the constraint."""
    found = sorted({where for path in SOURCE.rglob("*.py") for where in _handlers_reading_the_message(path)})
    assert found == []


@pytest.fixture
async def scratch(database: DatabaseUrls) -> AsyncIterator[AsyncConnection]:
    """A connection with a temporary table holding one of each kind of constraint."""
    engine = create_async_engine(database.owner)
    try:
        async with engine.connect() as conn:
            await conn.execute(
                text(
                    "CREATE TEMPORARY TABLE scratch ("
                    " id integer CONSTRAINT pk_scratch PRIMARY KEY,"
                    " name text CONSTRAINT ck_scratch_name CHECK (name <> ''),"
                    " parent integer CONSTRAINT fk_scratch_parent_scratch REFERENCES scratch (id))"
                )
            )
            await conn.execute(text("CREATE UNIQUE INDEX ux_scratch_name ON scratch (lower(name))"))
            await conn.execute(text("INSERT INTO scratch (id, name) VALUES (1, 'one')"))
            yield conn
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ("(1, 'two', NULL)", "pk_scratch"),
        ("(2, '', NULL)", "ck_scratch_name"),
        ("(2, 'two', 7)", "fk_scratch_parent_scratch"),
        ("(2, 'ONE', NULL)", "ux_scratch_name"),
    ],
)
async def test_constraint_of_names_the_broken_constraint(
    scratch: AsyncConnection, values: str, constraint: str
) -> None:
    with pytest.raises(IntegrityError) as caught:
        async with scratch.begin_nested():
            await scratch.execute(text(f"INSERT INTO scratch (id, name, parent) VALUES {values}"))
    assert constraint_of(caught.value) == constraint
