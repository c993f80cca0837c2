"""Profile search ("Find people") at 1M profiles: database time and service-call latency.

    .venv/bin/python -m bench.profile_search                       # 1M profiles, the full query mix
    .venv/bin/python -m bench.profile_search --profiles 200000 --repeat 100
    .venv/bin/python -m bench.profile_search --keep /tmp/search-1m  # keep (or reuse) the data

Without `--keep` the benchmark makes a throw-away data folder, starts an embedded
PostgreSQL in it (`rapport.kernel.provisioning.start_embedded_server`), provisions the
roles, migrates to head, generates the people with COPY, and removes the folder at the
end. With `--keep DIR` the folder stays, and a later run with the same `--keep` and
`--profiles` reuses the data instead of generating it again.

Generation (as the embedded server's superuser, the only time it is used): accounts go
into `auth.users` with the table's triggers switched off (`tr_users_create_profile` would
make each profile one row at a time), then profiles, settings, contacts and blocks are
copied directly, the triggers are switched back on, and the tables are vacuumed and
analysed. Names come from word lists with skewed frequencies, so that a first name, a
full name and a bio word select as few or as many people as they would in real data.

Measurement (as `rapport_app`, the server's role, through row-level security): each
query of the mix runs `--repeat` times, rotating through `--callers` users, through
`rapport.social._search.search_profiles` in a `user_transaction` (the end-to-end service
call: BEGIN, the security context, the search, COMMIT), and `EXPLAIN (ANALYZE)` of the
same statement gives the time spent inside PostgreSQL. The table goes to stdout, the
figures to bench/results/profile_search.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from bench._database import open_bench_database
from bench._report import machine, percentile

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from sqlalchemy import TextClause
    from sqlalchemy.ext.asyncio import AsyncEngine

    from rapport.kernel.pagination import Page
    from rapport.kernel.provisioning import DatabaseUrls
    from rapport.social._search import ProfileMatch

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "profile_search.json"

out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

# --------------------------------------------------------------------------- word lists

# Frequencies fall with rank (weight 1 / (rank + 8)): the first name of the list is
# over 20 times as common as the last, as in real populations.
FIRST_NAMES = """
maria james anna john sofia michael emma david olivia daniel mia alexander laura thomas
sarah william elena lucas julia david2 chloe matteo lea paul nina peter hannah martin
eva jan zoe leon ava noah isabella liam amelia ethan charlotte oliver grace jacob lily
samuel ella henry aria sebastian nora mateo ana diego lucia carlos sara javier paula
pablo marta luis carmen jorge ines hugo clara adam alice victor julie louis manon arthur
camille jules ines2 theo louise gabriel jade raphael emma2 nathan lena felix mila jonas
sophie finn marie elias lina ben ida emil alma oskar astrid ivan olga dmitri irina
sergei natalia andrei tatiana pavel yulia mohamed fatima ahmed aisha omar layla yusuf
mariam ali zainab hassan noor ibrahim salma wei li jun mei hao xin yuki haruto sakura
ren aoi kenji hina min seo jiho yuna arjun priya rahul ananya vikram divya rohan kavya
amir sana kofi ama kwame abena chidi ngozi tunde amara diego2 valentina santiago camila
mateus beatriz rafael gabriela joao mariana tiago leonor rui ines3 bruno helena andre
""".split()  # noqa: SIM905 (a word list reads better as text)
LAST_NAMES = """
smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez
gonzalez wilson anderson taylor thomas moore jackson martin lee perez thompson white
harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres
nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts
muller schmidt schneider fischer weber meyer wagner becker schulz hoffmann koch richter
klein wolf schroder neumann schwarz zimmermann braun kruger hofmann hartmann lange
rossi russo ferrari esposito bianchi romano colombo ricci marino greco bruno gallo conti
dubois durand leroy moreau simon laurent lefebvre michel david bertrand roux vincent
fournier morel girard andre mercier dupont lambert bonnet francois martinez2 silva santos
ferreira pereira oliveira costa rodrigues almeida nascimento lima araujo fernandes
kowalski nowak wisniewski wojcik kowalczyk kaminski lewandowski zielinski szymanski
ivanov smirnov kuznetsov popov vasiliev petrov sokolov mikhailov novikov fedorov
wang li zhang liu chen yang huang zhao wu zhou sato suzuki takahashi tanaka watanabe
kim park choi jung kang cho yoon jang lim han patel shah kumar singh sharma gupta khan
ali hussain ahmed okafor mensah boateng adeyemi nwosu diallo traore kone yilmaz kaya
demir sahin celik jansen devries bakker visser smit meijer dejong vandijk bos mulder
""".split()  # noqa: SIM905 (a word list reads better as text)
# Bio words: the small words of any sentence first (they are in most bios, and the
# 'simple' configuration keeps them), then interests and trades.
BIO_WORDS = """
i a the and to of in my love with for on at is from about who all things life
coffee travel music photography hiking books food art design yoga running football
cooking dogs cats nature movies gaming fitness reading writing dance family friends
photographer developer designer engineer teacher nurse student artist writer musician
chef doctor lawyer marketing founder entrepreneur researcher scientist analyst manager
consultant architect painter singer producer filmmaker journalist editor volunteer
climbing cycling surfing skiing swimming tennis basketball chess guitar piano violin
jazz rock techno hiphop classical poetry history science math physics astronomy
philosophy languages spanish french german italian japanese korean chinese portuguese
london paris berlin madrid rome tokyo seoul lagos nairobi mumbai delhi toronto sydney
melbourne lisbon amsterdam warsaw prague vienna istanbul cairo dubai singapore bangkok
beach mountains ocean forest garden plants flowers sunsets stars rain snow summer
vegan vegetarian baking wine beer tea pizza sushi tacos pasta chocolate brunch
startup open source python javascript rust kubernetes cloud data machine learning ai
mom dad parent husband wife partner proud dog cat owner lover fan nerd geek enthusiast
based living working studying dreaming building exploring learning teaching making
weekend adventures stories moments memories smiles laughter kindness coffee2 podcasts
podcast blogger vlogger streamer gamer collector traveler wanderer foodie runner
""".split()  # noqa: SIM905 (a word list reads better as text)
AVATAR_HOST = "https://cdn.rapport.example/avatars/"


def _cumulative(words: list[str]) -> list[float]:
    return list(itertools.accumulate(1 / (rank + 8) for rank in range(len(words))))


@dataclass
class People:
    """Generated rows, column by column."""

    ids: list[UUID]
    usernames: list[str]
    display_names: list[str]
    bios: list[str]
    visibilities: list[str]


def _clean(word: str) -> str:
    return word.rstrip("0123456789")  # list entries like "emma2" are kept distinct only there


# Each helper below draws from `rng` in a fixed order: the same seed must keep giving the
# same people, so a change here changes every dataset kept with `--keep`.


def _username_shape(rng: random.Random, first: str, last: str) -> str:
    shape = rng.random()
    if shape < 0.25:
        return f"{first}.{last}"
    if shape < 0.45:
        return f"{first}_{last}"
    if shape < 0.65:
        return f"{first}{last}"
    if shape < 0.80:
        return f"{first}{rng.randint(1, 99)}"
    if shape < 0.90:
        return f"{first[0]}{last}"
    return f"{last}.{first}"


def _username(rng: random.Random, first: str, last: str, taken: set[str]) -> str:
    """A username not yet in `taken` (compared in lower case), which it joins."""
    base = _username_shape(rng, first, last)[:26]
    if rng.random() < 0.2:
        base = base.capitalize()
    name = base
    while name.lower() in taken:
        name = f"{base}{rng.randint(1, 9999)}"
    taken.add(name.lower())
    return name


def _display_name(rng: random.Random, first: str, last: str) -> str:
    shape = rng.random()
    if shape < 0.85:
        return f"{first.capitalize()} {last.capitalize()}"
    if shape < 0.95:
        return first.capitalize()
    return f"{first.capitalize()} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {last.capitalize()}"


def _bio(rng: random.Random, bio_cum: list[float]) -> str:
    if rng.random() >= 0.6:
        return ""
    words = rng.choices(BIO_WORDS, cum_weights=bio_cum, k=rng.randint(4, 16))
    return " ".join(_clean(w) for w in words).capitalize()[:500]


def _visibility(rng: random.Random) -> str:
    shape = rng.random()
    return "public" if shape < 0.80 else "contacts" if shape < 0.95 else "private"


def generate_people(count: int, seed: int) -> People:
    from rapport.kernel.ids import uuid7

    rng = random.Random(seed)
    first_cum, last_cum, bio_cum = _cumulative(FIRST_NAMES), _cumulative(LAST_NAMES), _cumulative(BIO_WORDS)
    firsts = [_clean(w) for w in rng.choices(FIRST_NAMES, cum_weights=first_cum, k=count)]
    lasts = [_clean(w) for w in rng.choices(LAST_NAMES, cum_weights=last_cum, k=count)]
    taken: set[str] = set()
    people = People(ids=[], usernames=[], display_names=[], bios=[], visibilities=[])
    for first, last in zip(firsts, lasts, strict=True):
        people.usernames.append(_username(rng, first, last, taken))
        people.display_names.append(_display_name(rng, first, last))
        people.bios.append(_bio(rng, bio_cum))
        people.visibilities.append(_visibility(rng))
        people.ids.append(uuid7())
    return people


# --------------------------------------------------------------------------- loading

CHUNK = 50_000
# The tables whose own triggers (profile creation, audit) would turn a bulk load into a
# million single-row statements; nothing they record matters for generated people.
BULK_TABLES = ("auth.users", "social.profiles", "social.settings", "social.contacts", "social.blocks")


@dataclass
class Dataset:
    profiles: int
    callers: list[UUID]
    sample_usernames: list[str]
    generated_in_s: float | None = None


async def load_people(admin: asyncpg.Connection, count: int, seed: int, progress: Progress) -> Dataset:
    began = time.perf_counter()
    task = progress.add_task("Generating people", total=count)
    people = generate_people(count, seed)
    progress.update(task, completed=count)
    rng = random.Random(seed + 1)
    await admin.execute("SET maintenance_work_mem = '256MB'")
    async with _user_triggers_disabled(admin):
        await _copy_users(admin, people, progress)
        await _copy_profiles(admin, people, progress)
        task = progress.add_task("settings, contacts, blocks", total=3)
        await admin.execute("INSERT INTO social.settings (user_id) SELECT id FROM auth.users ON CONFLICT DO NOTHING")
        progress.advance(task)
        callers = rng.sample(people.ids, 64)
        await _copy_contacts(admin, _contact_pairs(rng, people.ids, callers))
        progress.advance(task)
        await _copy_blocks(admin, _block_pairs(rng, people.ids, callers))
        progress.advance(task)
    await _vacuum(admin, progress)
    sample = [people.usernames[i] for i in rng.sample(range(count), 200)]
    return Dataset(
        profiles=count, callers=callers, sample_usernames=sample, generated_in_s=round(time.perf_counter() - began, 1)
    )


@contextlib.asynccontextmanager
async def _user_triggers_disabled(admin: asyncpg.Connection) -> AsyncIterator[None]:
    for table in BULK_TABLES:
        await admin.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        for table in BULK_TABLES:
            await admin.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def _chunks(count: int) -> Iterator[range]:
    for start in range(0, count, CHUNK):
        yield range(start, min(start + CHUNK, count))


async def _copy_users(admin: asyncpg.Connection, people: People, progress: Progress) -> None:
    task = progress.add_task("COPY auth.users", total=len(people.ids))
    for chunk in _chunks(len(people.ids)):
        await admin.copy_records_to_table(
            "users",
            schema_name="auth",
            columns=["id", "email", "status", "email_verified_at"],
            records=[(people.ids[i], f"p{i}@bench.example", "active", datetime.now(UTC)) for i in chunk],
        )
        progress.update(task, completed=chunk.stop)


async def _copy_profiles(admin: asyncpg.Connection, people: People, progress: Progress) -> None:
    task = progress.add_task("COPY social.profiles", total=len(people.ids))
    for chunk in _chunks(len(people.ids)):
        await admin.copy_records_to_table(
            "profiles",
            schema_name="social",
            columns=[
                "user_id",
                "username",
                "display_name",
                "bio",
                "avatar_url",
                "profile_visibility",
                "is_verified",
            ],
            records=[
                (
                    people.ids[i],
                    people.usernames[i],
                    people.display_names[i],
                    people.bios[i],
                    f"{AVATAR_HOST}{people.ids[i]}.webp" if i % 3 else None,
                    people.visibilities[i],
                    i % 97 == 0,
                )
                for i in chunk
            ],
        )
        progress.update(task, completed=chunk.stop)


def _contact_pairs(rng: random.Random, ids: list[UUID], callers: list[UUID]) -> set[tuple[UUID, UUID]]:
    pairs: set[tuple[UUID, UUID]] = set()
    for _ in range(len(ids) // 10):  # one person in five has a contact
        a, b = rng.sample(ids, 2)
        pairs.add((a, b))
    for caller in callers:  # and the callers have some, with every visibility
        for b in rng.sample(ids, 50):
            if b != caller:
                pairs.add((caller, b))
    return pairs


async def _copy_contacts(admin: asyncpg.Connection, pairs: set[tuple[UUID, UUID]]) -> None:
    from rapport.kernel.ids import uuid7

    rows: dict[tuple[UUID, UUID], None] = {}  # both directions: contacts between accounts are mutual
    for a, b in pairs:
        rows[(a, b)] = rows[(b, a)] = None
    await admin.copy_records_to_table(
        "contacts",
        schema_name="social",
        columns=["id", "owner_id", "contact_user_id"],
        records=[(uuid7(), a, b) for a, b in rows],
    )


def _block_pairs(rng: random.Random, ids: list[UUID], callers: list[UUID]) -> set[tuple[UUID, UUID]]:
    blocks: set[tuple[UUID, UUID]] = set()
    for _ in range(len(ids) // 50):
        a, b = rng.sample(ids, 2)
        blocks.add((a, b))
    for caller in callers:  # the callers block some people and are blocked by some
        for b in rng.sample(ids, 20):
            if b != caller:
                blocks.add((caller, b) if len(blocks) % 2 else (b, caller))
    return blocks


async def _copy_blocks(admin: asyncpg.Connection, blocks: set[tuple[UUID, UUID]]) -> None:
    await admin.copy_records_to_table(
        "blocks",
        schema_name="social",
        columns=["blocker_id", "blocked_id"],
        records=list(blocks),
    )


async def _vacuum(admin: asyncpg.Connection, progress: Progress) -> None:
    task = progress.add_task("VACUUM ANALYZE", total=None)
    for table in BULK_TABLES:
        await admin.execute(f"VACUUM (ANALYZE) {table}")
    progress.update(task, total=1, completed=1)


# --------------------------------------------------------------------------- the query mix


def query_mix(dataset: Dataset, seed: int) -> dict[str, list[str]]:
    """Queries by kind, from the same lists the people were made from."""
    rng = random.Random(seed + 2)
    firsts = [_clean(w) for w in FIRST_NAMES[:40]]
    lasts = [_clean(w) for w in LAST_NAMES[:60]]
    usernames = dataset.sample_usernames
    return {
        "1 letter": list("amjsklez"),
        "2 letters": ["ma", "an", "jo", "li", "sa", "el", "ka", "wu"],
        "3-4 letters": ["mar", "ann", "kow", "dav", "smi", "gar", "chen", "oli"],
        "first name": rng.sample(firsts, 8),
        "full name": [f"{rng.choice(firsts)} {rng.choice(lasts)}" for _ in range(8)],
        "name as typed": [f"{rng.choice(firsts)} {rng.choice(lasts)[: rng.randint(1, 3)]}" for _ in range(8)],
        "username": rng.sample(usernames, 8),
        "username prefix": ["@" + name[: rng.randint(3, 6)].lower() for name in rng.sample(usernames, 8)],
        "bio word": ["photographer", "coffee", "hiking", "london", "chess", "violin", "kubernetes", "sunsets"],
        "bio words": [
            "coffee hiking",
            "yoga travel",
            "jazz piano",
            "dog lover",
            "open source",
            "paris food",
            "teacher books",
            "surfing ocean",
        ],
        "name + bio": [
            f"{rng.choice(firsts)} {w}"
            for w in ("coffee", "yoga", "music", "photography", "travel", "chess", "design", "berlin")
        ],
        "common words": ["love", "the", "a i", "i love", "music", "and the", "my", "life"],
        "no match": ["zzyzx", "qwxz", "xylophonist", "kj", "q", "vvv", "zzz top", "ooo"],
    }


# --------------------------------------------------------------------------- measuring


@dataclass
class Tally:
    db_ms: list[float] = field(default_factory=list)
    service_ms: list[float] = field(default_factory=list)
    results: list[int] = field(default_factory=list)
    matches: list[int] = field(default_factory=list)
    by_query: dict[str, list[float]] = field(default_factory=dict)  # DB ms of each query


def summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def ms(value: float | None) -> float | None:
        return round(value, 2) if value is not None else None

    return {
        "n": len(ordered),
        "p50": ms(percentile(ordered, 0.50)),
        "p95": ms(percentile(ordered, 0.95)),
        "p99": ms(percentile(ordered, 0.99)),
        "max": ms(ordered[-1] if ordered else None),
    }


async def count_matches(admin: asyncpg.Connection, query: str) -> int:
    """How many profiles match every word of the query, as a prefix (visibility aside)."""
    from rapport.social._search import parse_query

    words = parse_query(query).words
    count: int = await admin.fetchval(
        """SELECT count(*) FROM social.profiles
            WHERE search_vector @@ (SELECT string_agg(quote_literal(l) || ':*', ' & ')::tsquery
                                      FROM unnest($1::text[]) w,
                                           unnest(tsvector_to_array(to_tsvector('simple', w))) l)""",
        words,
    )
    return count


@dataclass
class Searcher:
    """Runs a search as a user, the way the service does, through `rapport_app`'s engine."""

    engine: AsyncEngine
    explain: TextClause  # EXPLAIN ANALYZE of the service's statement: the time inside PostgreSQL

    @classmethod
    def for_app(cls, urls: DatabaseUrls) -> Searcher:
        from sqlalchemy import text

        from rapport.kernel.db import create_engine
        from rapport.social import _search

        explain = text("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + _search.SEARCH_STATEMENT.text)
        return cls(engine=create_engine(urls.app, pool_size=2), explain=explain)

    async def first_page(self, caller: UUID, query: str) -> Page[ProfileMatch]:
        """The first page, unmeasured: the way to a cursor."""
        from rapport.kernel.actor import Actor
        from rapport.kernel.db import user_transaction
        from rapport.social import _search

        async with user_transaction(self.engine, caller) as db:
            return await _search.search_profiles(db, actor=Actor(user_id=caller), query=query)

    async def timed(self, tally: Tally, caller: UUID, query: str, cursor: str | None = None) -> str | None:
        """One search measured twice, inside PostgreSQL then end to end; the next page's cursor."""
        from rapport.kernel.actor import Actor
        from rapport.kernel.db import user_transaction
        from rapport.social import _search

        terms = _search.parse_query(query)
        params = _search.statement_parameters(terms, limit=20, cursor=cursor)
        async with user_transaction(self.engine, caller) as db:
            plan = (await db.execute(self.explain, params)).scalar_one()
        db_ms = plan[0]["Planning Time"] + plan[0]["Execution Time"]
        tally.db_ms.append(db_ms)
        tally.by_query.setdefault(query, []).append(db_ms)
        started = time.perf_counter()
        async with user_transaction(self.engine, caller) as db:
            page = await _search.search_profiles(db, actor=Actor(user_id=caller), query=query, cursor=cursor)
        tally.service_ms.append((time.perf_counter() - started) * 1000)
        tally.results.append(len(page.items))
        return page.next


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )


async def _count_mix_matches(
    admin: asyncpg.Connection, mix: dict[str, list[str]], tallies: dict[str, Tally], progress: Progress
) -> None:
    task = progress.add_task("Counting matches", total=sum(len(q) for q in mix.values()))
    for kind, queries in mix.items():
        for query in queries:
            tallies[kind].matches.append(await count_matches(admin, query))
            progress.advance(task)


async def _warm_up(searcher: Searcher, mix: dict[str, list[str]], caller: UUID, progress: Progress) -> None:
    """Every query once, unmeasured (plans, caches)."""
    task = progress.add_task("Warming up", total=sum(len(q) for q in mix.values()))
    for queries in mix.values():
        for query in queries:
            await searcher.timed(Tally(), caller, query)
            progress.advance(task)


async def _measure_kind(
    searcher: Searcher,
    kind: str,
    tally: Tally,
    queries: list[str],
    *,
    callers: list[UUID],
    rng: random.Random,
    repeat: int,
    max_seconds: float,
    progress: Progress,
) -> None:
    """Up to `repeat` searches rotating through `queries`, each by a random caller; for
    "next page", the page after the first one's cursor (a query with one page is skipped)."""
    task = progress.add_task(kind, total=repeat)
    deadline = time.monotonic() + max_seconds
    for i in range(repeat):
        if time.monotonic() > deadline:
            break
        query, caller = queries[i % len(queries)], rng.choice(callers)
        if kind == "next page":  # page 2, after a cursor
            first = await searcher.first_page(caller, query)
            if first.next is None:
                continue
            await searcher.timed(tally, caller, query, first.next)
        else:
            await searcher.timed(tally, caller, query)
        progress.advance(task)
    progress.update(task, total=len(tally.db_ms), completed=len(tally.db_ms))


async def measure(
    urls: DatabaseUrls, admin: asyncpg.Connection, dataset: Dataset, *, repeat: int, max_seconds: float, seed: int
) -> dict[str, Tally]:
    searcher = Searcher.for_app(urls)
    mix = query_mix(dataset, seed)
    tallies: dict[str, Tally] = {kind: Tally() for kind in [*mix, "next page"]}
    rng = random.Random(seed + 3)
    try:
        with _progress() as progress:
            await _count_mix_matches(admin, mix, tallies, progress)
            await _warm_up(searcher, mix, dataset.callers[0], progress)
            for kind, queries in [*mix.items(), ("next page", mix["2 letters"] + mix["first name"])]:
                await _measure_kind(
                    searcher,
                    kind,
                    tallies[kind],
                    queries,
                    callers=dataset.callers,
                    rng=rng,
                    repeat=repeat,
                    max_seconds=max_seconds,
                    progress=progress,
                )
    finally:
        await searcher.engine.dispose()
    return tallies


# --------------------------------------------------------------------------- the report


def report(tallies: dict[str, Tally]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for kind, tally in tallies.items():
        rows[kind] = {
            "db_ms": summary(tally.db_ms),
            "service_ms": summary(tally.service_ms),
            "results_per_page_mean": round(sum(tally.results) / len(tally.results), 1) if tally.results else None,
            "matching_profiles": sorted(tally.matches),
            "db_ms_by_query": {
                query: {"p50": summary(values)["p50"], "max": summary(values)["max"]}
                for query, values in tally.by_query.items()
            },
        }
    every_db = [v for t in tallies.values() for v in t.db_ms]
    every_service = [v for t in tallies.values() for v in t.service_ms]
    rows["all queries"] = {"db_ms": summary(every_db), "service_ms": summary(every_service)}
    return rows


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    table = Table(title="Profile search: one page of 20, as rapport_app (ms)")
    for column in (
        "queries",
        "matching profiles (median)",
        "n",
        "DB p50",
        "DB p95",
        "DB p99",
        "DB max",
        "service p50",
        "service p99",
        "results/page",
    ):
        table.add_column(column, justify="left" if column == "queries" else "right")
    for kind, row in rows.items():
        matches = row.get("matching_profiles") or []
        table.add_row(
            kind,
            f"{matches[len(matches) // 2]:,}" if matches else "",
            str(row["db_ms"]["n"]),
            *(f"{row['db_ms'][k]}" for k in ("p50", "p95", "p99", "max")),
            f"{row['service_ms']['p50']}",
            f"{row['service_ms']['p99']}",
            f"{row.get('results_per_page_mean') or ''}",
            end_section=kind == "next page",
        )
    out.print(table)


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    # The machine may be shared: a high load here means other work competed for the CPU.
    load_at_start = [round(x, 2) for x in os.getloadavg()]

    database = await open_bench_database(data_dir)
    urls, admin = database.urls, database.admin
    try:
        marker = data_dir / f"dataset-{args.profiles}-{args.seed}.json"
        existing = await admin.fetchval("SELECT count(*) FROM social.profiles")
        if marker.exists() and existing >= args.profiles:
            saved = json.loads(marker.read_text())
            dataset = Dataset(
                profiles=args.profiles,
                callers=[UUID(c) for c in saved["callers"]],
                sample_usernames=saved["sample_usernames"],
            )
            err.print(f"Reusing {existing:,} profiles in {data_dir}")
        else:
            if existing:
                raise SystemExit(f"{data_dir} holds {existing:,} profiles of another run: use an empty --keep folder")
            with _progress() as progress:
                dataset = await load_people(admin, args.profiles, args.seed, progress)
            marker.write_text(
                json.dumps({"callers": [str(c) for c in dataset.callers], "sample_usernames": dataset.sample_usernames})
            )
        sizes = await admin.fetch(
            """SELECT c.relname, pg_relation_size(c.oid) AS bytes FROM pg_class c
                WHERE c.relnamespace = 'social'::regnamespace AND c.relname IN
                      ('profiles', 'ix_profiles_search_prefixes', 'ix_profiles_name_prefixes',
                       'ix_profiles_username_prefix', 'ux_profiles_username_lower', 'pk_profiles')"""
        )
        tallies = await measure(urls, admin, dataset, repeat=args.repeat, max_seconds=args.max_seconds, seed=args.seed)
    finally:
        await admin.close()
    return {
        "benchmark": "profile_search",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.profile_search", *sys.argv[1:]]),
        "profiles": args.profiles,
        "generated_in_s": dataset.generated_in_s,
        "page_size": 20,
        "callers": len(dataset.callers),
        "relation_mib": {row["relname"]: round(row["bytes"] / 2**20, 1) for row in sizes},
        "machine": machine() | {"loadavg_at_start": load_at_start},
        "results": report(tallies),
    }


def stop_embedded_server(data_dir: Path) -> None:
    """Stop the PostgreSQL this process started (pgserver would at exit, after the folder
    is gone)."""
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgserver.get_server(data_dir / "pgdata").cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profiles", type=int, default=1_000_000, help="people to generate (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=300, help="searches per kind of query (default 300)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60,
        help="stop a kind of query after this long, whatever --repeat says (default 60)",
    )
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--keep", type=Path, help="data folder to keep, and to reuse when it holds the same dataset")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    if args.profiles < 1000:
        parser.error("--profiles must be at least 1000")
    data_dir = args.keep.expanduser().resolve() if args.keep else Path(tempfile.mkdtemp(prefix="rapport-search-"))
    try:
        results = asyncio.run(run(args, data_dir))
    finally:
        stop_embedded_server(data_dir)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    print_table(results["results"])
    made = f"generated in {results['generated_in_s']} s" if results["generated_in_s"] else "reused"
    out.print(f"{results['profiles']:,} profiles ({made}), sizes (MiB): {results['relation_mib']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    out.print(f"Figures written to {args.output}")


if __name__ == "__main__":
    main()
