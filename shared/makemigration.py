"""Autogenerate a service's next Alembic revision against a scratch SQLite database at head."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from alembic import command

from shared.db import create_engine
from shared.migrations import alembic_config, upgrade


async def make_revision(service_dir: Path, message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        await upgrade(url, service_dir)
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:

                def _rev(sync_conn: object) -> None:
                    cfg = alembic_config(url, service_dir)
                    cfg.attributes["connection"] = sync_conn
                    command.revision(cfg, message=message, autogenerate=True)

                await conn.run_sync(_rev)
        finally:
            await engine.dispose()


if __name__ == "__main__":
    import sys

    asyncio.run(make_revision(Path(sys.argv[1]), sys.argv[2]))
