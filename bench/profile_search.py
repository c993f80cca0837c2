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

from bench._report import machine, percentile

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


def generate_people(count: int, seed: int) -> People:
    from rapport.kernel.ids import uuid7

    rng = random.Random(seed)
    first_cum, last_cum, bio_cum = _cumulative(FIRST_NAMES), _cumulative(LAST_NAMES), _cumulative(BIO_WORDS)
    firsts = [_clean(w) for w in rng.choices(FIRST_NAMES, cum_weights=first_cum, k=count)]
    lasts = [_clean(w) for w in rng.choices(LAST_NAMES, cum_weights=last_cum, k=count)]
    taken: set[str] = set()
    ids, usernames, display_names, bios, visibilities = [], [], [], [], []
    for i in range(count):
        first, last = firsts[i], lasts[i]
        shape = rng.random()
        if shape < 0.25:
            base = f"{first}.{last}"
        elif shape < 0.45:
            base = f"{first}_{last}"
        elif shape < 0.65:
            base = f"{first}{last}"
        elif shape < 0.80:
            base = f"{first}{rng.randint(1, 99)}"
        elif shape < 0.90:
            base = f"{first[0]}{last}"
        else:
            base = f"{last}.{first}"
        base = base[:26]
        if rng.random() < 0.2:
            base = base.capitalize()
        name = base
        while name.lower() in taken:
            name = f"{base}{rng.randint(1, 9999)}"
        taken.add(name.lower())
        shape = rng.random()
        if shape < 0.85:
            display = f"{first.capitalize()} {last.capitalize()}"
        elif shape < 0.95:
            display = first.capitalize()
        else:
            display = f"{first.capitalize()} {rng.choice('ABCDEFGHJKLMNPRSTW')}. {last.capitalize()}"
        if rng.random() < 0.6:
            words = rng.choices(BIO_WORDS, cum_weights=bio_cum, k=rng.randint(4, 16))
            bio = " ".join(_clean(w) for w in words).capitalize()[:500]
        else:
            bio = ""
        shape = rng.random()
        visibility = "public" if shape < 0.80 else "contacts" if shape < 0.95 else "private"
        ids.append(uuid7())
        usernames.append(name)
        display_names.append(display)
        bios.append(bio)
        visibilities.append(visibility)
    return People(ids, usernames, display_names, bios, visibilities)


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
    for table in BULK_TABLES:
        await admin.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        task = progress.add_task("COPY auth.users", total=count)
        for start in range(0, count, CHUNK):
            stop = min(start + CHUNK, count)
            await admin.copy_records_to_table(
                "users",
                schema_name="auth",
                columns=["id", "email", "status", "email_verified_at"],
                records=[
                    (people.ids[i], f"p{i}@bench.example", "active", datetime.now(UTC)) for i in range(start, stop)
                ],
            )
            progress.update(task, completed=stop)
        task = progress.add_task("COPY social.profiles", total=count)
        for start in range(0, count, CHUNK):
            stop = min(start + CHUNK, count)
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
                    for i in range(start, stop)
                ],
            )
            progress.update(task, completed=stop)
        task = progress.add_task("settings, contacts, blocks", total=3)
        await admin.execute("INSERT INTO social.settings (user_id) SELECT id FROM auth.users ON CONFLICT DO NOTHING")
        progress.advance(task)
        callers = rng.sample(people.ids, 64)
        contact_pairs: set[tuple[UUID, UUID]] = set()
        for _ in range(count // 10):  # one person in five has a contact
            a, b = rng.sample(people.ids, 2)
            contact_pairs.add((a, b))
        for caller in callers:  # and the callers have some, with every visibility
            for b in rng.sample(people.ids, 50):
                if b != caller:
                    contact_pairs.add((caller, b))
        rows = {}
        for a, b in contact_pairs:
            rows[(a, b)] = rows[(b, a)] = None
        from rapport.kernel.ids import uuid7

        await admin.copy_records_to_table(
            "contacts",
            schema_name="social",
            columns=["id", "owner_id", "contact_user_id"],
            records=[(uuid7(), a, b) for a, b in rows],
        )
        progress.advance(task)
        blocks: set[tuple[UUID, UUID]] = set()
        for _ in range(count // 50):
            a, b = rng.sample(people.ids, 2)
            blocks.add((a, b))
        for caller in callers:  # the callers block some people and are blocked by some
            for b in rng.sample(people.ids, 20):
                if b != caller:
                    blocks.add((caller, b) if len(blocks) % 2 else (b, caller))
        await admin.copy_records_to_table(
            "blocks",
            schema_name="social",
            columns=["blocker_id", "blocked_id"],
            records=list(blocks),
        )
        progress.advance(task)
    finally:
        for table in BULK_TABLES:
            await admin.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    task = progress.add_task("VACUUM ANALYZE", total=None)
    for table in ("auth.users", "social.profiles", "social.settings", "social.contacts", "social.blocks"):
        await admin.execute(f"VACUUM (ANALYZE) {table}")
    progress.update(task, total=1, completed=1)
    sample = [people.usernames[i] for i in rng.sample(range(count), 200)]
    return Dataset(
        profiles=count, callers=callers, sample_usernames=sample, generated_in_s=round(time.perf_counter() - began, 1)
    )


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


def summary(values: list[float]) -> dict:
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
    return await admin.fetchval(
        """SELECT count(*) FROM social.profiles
            WHERE search_vector @@ (SELECT string_agg(quote_literal(l) || ':*', ' & ')::tsquery
                                      FROM unnest($1::text[]) w, unnest(tsvector_to_array(to_tsvector('simple', w))) l)""",
        words,
    )


async def measure(
    urls, admin: asyncpg.Connection, dataset: Dataset, *, repeat: int, max_seconds: float, seed: int
) -> dict[str, Tally]:
    from sqlalchemy import text

    from rapport.kernel.actor import Actor
    from rapport.kernel.db import create_engine, user_transaction
    from rapport.social import _search

    explain = text("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + _search.SEARCH_STATEMENT.text)
    engine = create_engine(urls.app, pool_size=2)
    mix = query_mix(dataset, seed)
    tallies: dict[str, Tally] = {kind: Tally() for kind in [*mix, "next page"]}
    callers = dataset.callers
    rng = random.Random(seed + 3)

    async def one(tally: Tally, caller: UUID, query: str, cursor: str | None = None) -> str | None:
        terms = _search.parse_query(query)
        params = _search.statement_parameters(terms, limit=20, cursor=cursor)
        async with user_transaction(engine, caller) as db:
            plan = (await db.execute(explain, params)).scalar_one()
        db_ms = plan[0]["Planning Time"] + plan[0]["Execution Time"]
        tally.db_ms.append(db_ms)
        tally.by_query.setdefault(query, []).append(db_ms)
        started = time.perf_counter()
        async with user_transaction(engine, caller) as db:
            page = await _search.search_profiles(db, actor=Actor(user_id=caller), query=query, cursor=cursor)
        tally.service_ms.append((time.perf_counter() - started) * 1000)
        tally.results.append(len(page.items))
        return page.next

    try:
        with Progress(
            TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        ) as progress:
            task = progress.add_task("Counting matches", total=sum(len(q) for q in mix.values()))
            for kind, queries in mix.items():
                for query in queries:
                    tallies[kind].matches.append(await count_matches(admin, query))
                    progress.advance(task)
            # Warm-up: every query once, unmeasured (plans, caches).
            task = progress.add_task("Warming up", total=sum(len(q) for q in mix.values()))
            for queries in mix.values():
                for query in queries:
                    await one(Tally(), callers[0], query)
                    progress.advance(task)
            for kind, queries in [*mix.items(), ("next page", mix["2 letters"] + mix["first name"])]:
                task = progress.add_task(kind, total=repeat)
                deadline = time.monotonic() + max_seconds
                for i in range(repeat):
                    if time.monotonic() > deadline:
                        break
                    query, caller = queries[i % len(queries)], rng.choice(callers)
                    if kind == "next page":  # page 2, after a cursor
                        async with user_transaction(engine, caller) as db:
                            first = await _search.search_profiles(db, actor=Actor(user_id=caller), query=query)
                        if first.next is None:
                            continue
                        await one(tallies[kind], caller, query, first.next)
                    else:
                        await one(tallies[kind], caller, query)
                    progress.advance(task)
                progress.update(task, total=len(tallies[kind].db_ms), completed=len(tallies[kind].db_ms))
    finally:
        await engine.dispose()
    return tallies


# --------------------------------------------------------------------------- the report


def report(tallies: dict[str, Tally]) -> dict:
    rows = {}
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


def print_table(rows: dict) -> None:
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


async def run(args: argparse.Namespace, data_dir: Path) -> dict:
    from rapport.config import Settings
    from rapport.kernel import migrate, provisioning

    # The machine may be shared: a high load here means other work competed for the CPU.
    load_at_start = [round(x, 2) for x in os.getloadavg()]

    settings = Settings(_env_file=None, owner_password=None, app_password=None, database_name="rapport_bench")
    with err.status("Starting the embedded PostgreSQL…"):
        admin_url = provisioning.start_embedded_server(data_dir)
    urls = provisioning.urls_for(admin_url, database="rapport_bench", settings=settings)
    await provisioning.provision(urls, settings)
    with err.status("Migrating…"):
        await migrate.upgrade(urls.owner)
    admin = await asyncpg.connect(
        provisioning.asyncpg_dsn(urls.admin.set(database="rapport_bench")), command_timeout=None
    )
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
            with Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
            ) as progress:
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
