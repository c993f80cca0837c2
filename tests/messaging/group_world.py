"""The world several messaging test modules share: alice, bob, carol and mallory signed in,
and alice's group with bob and carol in it (carol with the role the module's `CAROL_ROLE`
names, a member by default). Built once per module (module_scope.build_once): each test's
reset puts it back as it was. A module takes the fixtures by importing them."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import pytest
from fastapi import FastAPI

from rapport.kernel.provisioning import DatabaseUrls
from tests.messaging.support import make_conversation
from tests.module_scope import build_once
from tests.support import Persona


@dataclass(frozen=True)
class World:
    alice: Persona
    bob: Persona
    carol: Persona
    mallory: Persona
    group: UUID


@pytest.fixture(scope="module")
async def module_world(request: pytest.FixtureRequest, module_app: FastAPI, module_database: DatabaseUrls) -> World:
    role = getattr(request.module, "CAROL_ROLE", "member")
    async with build_once(module_app, module_database) as built:
        alice, bob, carol, mallory = await built.personas("alice", "bob", "carol", "mallory")
        group = await make_conversation(built.app_engine, alice, bob, carol, roles={"carol": role})
        return World(alice, bob, carol, mallory, group)


@pytest.fixture
def world(module_world: World, database: DatabaseUrls) -> World:
    """The module's world, as built: the test's database was reset to it."""
    return module_world


@pytest.fixture
def group(world: World) -> UUID:
    return world.group


# The world's people, for the tests that name them.
@pytest.fixture
def alice(world: World) -> Persona:
    return world.alice


@pytest.fixture
def bob(world: World) -> Persona:
    return world.bob


@pytest.fixture
def carol(world: World) -> Persona:
    return world.carol


@pytest.fixture
def mallory(world: World) -> Persona:
    return world.mallory
