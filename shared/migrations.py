"""Alembic, driven from code: each service keeps its own `migrations/` folder and version table.

`upgrade(url, service_dir)` runs inside an async program (lifespan, tests, the CLI) by lending
Alembic a connection from the async engine, the pattern Alembic documents for asyncio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shared.db import create_engine


def alembic_config(url: str, service_dir: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(service_dir / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(url: str, service_dir: Path, revision: str = "head") -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync, alembic_config(url, service_dir), revision)
    finally:
        await engine.dispose()


def _upgrade_sync(conn: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's `migrations/env.py`."""
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
    )
    with context.begin_transaction():
        context.run_migrations()
