"""Where each kind of connection goes when a pooler or a replica stands beside PostgreSQL.

Requests and jobs hold a connection for one transaction at a time, so they may go through
PgBouncer in transaction pooling. Three things need a session of their own, which such a
pooler would hand to someone else after each transaction, and connect to PostgreSQL
itself, at RAPPORT_DATABASE_LISTEN_URL:
- LISTEN (the realtime bus, the job worker's wake-ups): a listening session must stay;
- provisioning, which holds a session advisory lock while it creates roles;
- migrations, which run DDL and Alembic's bookkeeping over several transactions.

A URL here is always one of Rapport's roles (`rapport_app`, `rapport_worker`, ...) moved
to another server: the target's host, port, database and options, the role's name and
password (docs/decisions/0029).
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

from rapport.config import Settings
from rapport.kernel.provisioning import DatabaseUrls


def moved_to(url: URL | str, target: URL | str, *, keep_database: bool = False) -> URL:
    """`url`'s role on the server `target` names, and in its database when it names one
    (a pooler may know the database by another name than PostgreSQL does)."""
    role_url = make_url(url)
    there = make_url(target)
    return role_url.set(
        host=there.host,
        port=there.port,
        database=role_url.database if keep_database else there.database or role_url.database,
        query=dict(there.query) or role_url.query,
    )


def listen_url(url: URL | str, settings: Settings, *, keep_database: bool = False) -> URL:
    """Where `url`'s role opens a session that must last: RAPPORT_DATABASE_LISTEN_URL when
    set, else `url` itself (no pooler in between)."""
    if settings.database_listen_url:
        return moved_to(url, settings.database_listen_url, keep_database=keep_database)
    return make_url(url)


def session_urls(urls: DatabaseUrls, settings: Settings) -> DatabaseUrls:
    """Every role's URL for provisioning and migrations: PostgreSQL itself."""
    return DatabaseUrls(
        # The administrator connects to its own maintenance database, not Rapport's.
        admin=listen_url(urls.admin, settings, keep_database=True),
        owner=listen_url(urls.owner, settings),
        app=listen_url(urls.app, settings),
        worker=listen_url(urls.worker, settings),
    )


def replica_url(url: URL | str, settings: Settings) -> URL | None:
    """`url`'s role on the replica, when one is configured."""
    if not settings.database_replica_url:
        return None
    return moved_to(url, settings.database_replica_url)
