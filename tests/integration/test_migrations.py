"""Every service's migrations build exactly its models, on SQLite and PostgreSQL: on a fresh database,
and on one built before the shared tables (outbox, inbox, idempotency_keys) had lineages of their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import Connection

from shared.db import Database
from shared.migrations import alembic_config, shared_tables, upgrade

SERVICES = ("sampling", "credit", "awards", "gateway")
#: The shared tables that older databases got from their service's own first migration (adopted).
ADOPTED = ("outbox", "inbox", "idempotency_keys")
SHARED = tuple(shared_tables())  # ADOPTED, audit_log, quarantined_events, rate_limits

#: The head each service's single lineage had when it still created outbox, inbox and idempotency_keys
#: itself: the `alembic_version` of every database built before the shared tables got their own lineage.
OLD_HEADS = {
    "sampling": "e80cab71c513",
    "credit": "11ffe707d3c7",
    "awards": "fbaeb0324e52",
    "gateway": "714ace3056af",
}


def _service(name: str) -> tuple[Path, MetaData]:
    package = import_module(f"services.{name}")
    return Path(package.__file__ or "").parent, import_module(f"services.{name}.models").metadata


def _diff(conn: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(context, metadata))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _heads(url: str, service_dir: Path) -> dict[str, set[str]]:
    """Each head of the service's history (its own lineage's and its shared tables') with its labels."""
    script = ScriptDirectory.from_config(alembic_config(url, service_dir))
    return {head: set(script.get_revision(head).branch_labels) for head in script.get_heads()}


async def _url(kind: str, label: str, sqlite_url: Callable[[str], str], pg_database: Callable[[str], Any]) -> str:
    return sqlite_url(label) if kind == "sqlite" else await pg_database(label)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("name", SERVICES)
async def test_a_fresh_database_is_migrated_to_exactly_the_models(
    name: str, kind: str, sqlite_url: Callable[[str], str], pg_database: Callable[[str], Any]
) -> None:
    service_dir, metadata = _service(name)
    url = await _url(kind, f"fresh_{name}", sqlite_url, pg_database)
    await upgrade(url, service_dir)
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(_tables)
            diff = await conn.run_sync(_diff, metadata)
            versions = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    finally:
        await db.dispose()
    assert tables - {"alembic_version"} == set(metadata.tables)
    assert {t for t in SHARED if t in metadata.tables} <= tables
    assert diff == []
    heads = _heads(url, service_dir)
    assert versions == set(heads)
    # One lineage per shared table the service defines (the gateway keeps no idempotency keys), and its own.
    labels = set().union(*heads.values())
    assert labels == {name} | {t for t in SHARED if t in metadata.tables}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("name", SERVICES)
async def test_a_database_at_the_old_head_upgrades_in_place(
    name: str, kind: str, sqlite_url: Callable[[str], str], pg_database: Callable[[str], Any]
) -> None:
    """Such a database holds what the service's lineage up to the old head and the first revision of
    each shared table make (the old single lineage made exactly that: both built the same models),
    but `alembic_version` knows the old head only. Upgrading adopts the shared tables and keeps rows."""
    service_dir, metadata = _service(name)
    url = await _url(kind, f"old_{name}", sqlite_url, pg_database)
    await upgrade(url, service_dir, OLD_HEADS[name])
    for table in ADOPTED:
        if table in metadata.tables:
            await upgrade(url, service_dir, f"{table}_0001")
    db = Database(url)
    outbox = metadata.tables["outbox"]
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("DELETE FROM alembic_version WHERE version_num <> :v"), {"v": OLD_HEADS[name]})
            await conn.execute(
                text(
                    "INSERT INTO outbox (event_id, type, source, subject, time, data)"
                    " VALUES ('e1', 't', '/s', 'x', :time, '{}')"
                ),
                {"time": datetime.now(UTC)},
            )
        await upgrade(url, service_dir)
        await upgrade(url, service_dir)  # and again: nothing left to do
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(_diff, metadata)
            kept = (await conn.execute(select(outbox.c.event_id))).scalars().all()
            versions = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
    finally:
        await db.dispose()
    assert diff == []
    assert kept == ["e1"]
    assert versions == set(_heads(url, service_dir))
