"""Autogenerate the next Alembic revision of one lineage against a scratch SQLite database at head.

    python -m shared.makemigration services/awards "holder index"   # the service's own tables
    python -m shared.makemigration outbox "retry count"             # a shared table, for every service

A service's revision leaves the shared tables out (their lineages are in shared/table_migrations/); a
shared table's revision holds that table alone, diffed against its definition in `shared/`.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from shared.db import create_engine
from shared.migrations import (
    SHARED_TABLES_DIR,
    alembic_config,
    shared_tables,
    shared_tables_config,
    upgrade_with,
)


async def make_revision(target: str, message: str) -> None:
    """`target` is a service package folder or the name of a shared table (a folder of
    shared/table_migrations/; for a new shared table, make its empty folder and add the table to
    shared/table_migrations/env.py first)."""
    shared = set(shared_tables())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        if target in shared:
            cfg, options = shared_tables_config(url), _shared_table_lineage(target)
            cfg.attributes["include_object"] = _tables_filter({target}, keep=True)
        else:
            service_dir = Path(target)
            cfg, options = alembic_config(url, service_dir), _service_lineage(service_dir)
            cfg.attributes["include_object"] = _tables_filter(shared, keep=False)
        await upgrade_with(url, cfg)
        await _autogenerate(url, cfg, message, options)


def _service_lineage(service_dir: Path) -> dict[str, Any]:
    """A service's own lineage carries the service's name as branch label."""
    return {"head": f"{service_dir.resolve().name}@head"}


def _shared_table_lineage(table: str) -> dict[str, Any]:
    """Where a shared table's next revision goes; ids read `outbox_0002`, in order."""
    folder = SHARED_TABLES_DIR / table
    n = len(list(folder.glob("*.py")))
    options: dict[str, Any] = {"rev_id": f"{table}_{n + 1:04d}"}
    if n:
        return options | {"head": f"{table}@head"}
    return options | {"head": "base", "branch_label": table, "version_path": str(folder)}


def _tables_filter(tables: set[str], keep: bool) -> Callable[..., bool]:
    """An autogenerate `include_object` keeping (or leaving out) these tables and what is on them."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return (table in tables) == keep

    return include


async def _autogenerate(url: str, cfg: Config, message: str, options: dict[str, Any]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:

            def _rev(sync_conn: object) -> None:
                cfg.attributes["connection"] = sync_conn
                command.revision(cfg, message=message, autogenerate=True, **options)

            await conn.run_sync(_rev)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    import sys

    asyncio.run(make_revision(sys.argv[1], sys.argv[2]))
