"""The webhook dispatcher's look for work only reads: on SQLite it takes no write lock.

A look follows every consumer batch that grew the change feed; if it took the write lock (every
ordinary unit of work does, `BEGIN IMMEDIATE`), the consumer's next batch would queue behind it, and
a writer holding the lock would stall the look for the whole busy timeout and then fail it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.gateway.main import create_app
from services.gateway.settings import GatewaySettings
from shared.settings import PlatformSettings
from tests.helpers import running


async def test_the_look_for_work_runs_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    app = create_app(
        GatewaySettings(database_url=f"sqlite+aiosqlite:///{db}", platform=PlatformSettings(log_json=False))
    )
    async with running(app):
        writer = sqlite3.connect(db, timeout=0)
        writer.execute("BEGIN IMMEDIATE")  # the write lock, as a consumer's batch holds it
        try:
            worked, due = await app.state.webhooks.pass_once()
        finally:
            writer.rollback()
            writer.close()
    assert (worked, due) == (0, None)
