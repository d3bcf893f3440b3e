"""Alembic, driven from code: each service has its own database, `migrations/` folder and lineage.

The tables every service instantiates from `shared/` (outbox, inbox, idempotency_keys) are migrated
once, in `shared/table_migrations/<table>/`: one lineage per table, with its own base and the table's
name as branch label (Alembic's "multiple bases"). A service's Alembic environment adds the lineage of
each shared table its models define to `version_locations`, and `upgrade` goes to every head, so a
change to `shared/outbox.py` is one revision that every service with an outbox applies.

`upgrade(url, service_dir)` runs inside an async program (lifespan, tests, the CLI) by lending
Alembic a connection from the async engine, the pattern Alembic documents for asyncio.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection

from shared.db import create_engine

#: The script location of the shared tables; each sub-folder is one table's lineage.
SHARED_TABLES_DIR = Path(__file__).resolve().parent / "table_migrations"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_tables() -> list[str]:
    """The tables migrated in `shared/table_migrations/` (one folder each, named after the table)."""
    return sorted(p.name for p in SHARED_TABLES_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))


def service_metadata(service_dir: Path) -> MetaData:
    """The metadata of a service package's `models.py` (the one its `migrations/env.py` targets)."""
    package = ".".join(service_dir.resolve().relative_to(_REPO_ROOT).parts)
    metadata: MetaData = import_module(f"{package}.models").metadata
    return metadata


def alembic_config(url: str, service_dir: Path) -> Config:
    """A service's environment: its own versions plus the lineages of the shared tables it defines."""
    own = service_metadata(service_dir).tables
    locations = [service_dir / "migrations" / "versions"]
    locations += [SHARED_TABLES_DIR / name for name in shared_tables() if name in own]
    return _config(url, service_dir / "migrations", locations)


def shared_tables_config(url: str) -> Config:
    """The environment of the shared tables alone: for authoring their revisions."""
    return _config(url, SHARED_TABLES_DIR, [SHARED_TABLES_DIR / name for name in shared_tables()])


def _config(url: str, script_location: Path, version_locations: list[Path]) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in version_locations))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(url: str, service_dir: Path, revision: str = "heads") -> None:
    await upgrade_with(url, alembic_config(url, service_dir), revision)


async def upgrade_with(url: str, cfg: Config, revision: str = "heads") -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync, cfg, revision)
    finally:
        await engine.dispose()


def _upgrade_sync(conn: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def adopting(table: str) -> bool:
    """For the base revision of a shared table: True when the table is already there, made by the
    service's own first migration before the table had a lineage of its own; the revision then only
    records that the database is at it."""
    if context.is_offline_mode():
        return False
    return bool(inspect(op.get_bind()).has_table(table))


def run_env(target_metadata: MetaData) -> None:
    """The body of every `migrations/env.py`. `include_object` (in the config's attributes) narrows
    autogenerate to one lineage's tables."""
    include_object: Callable[..., bool] | None = context.config.attributes.get("include_object")
    conn: Any = context.config.attributes.get("connection")
    if conn is None:
        # Offline mode (SQL scripts): `alembic upgrade --sql`.
        context.configure(
            url=context.config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            literal_binds=True,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        render_as_batch=conn.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
