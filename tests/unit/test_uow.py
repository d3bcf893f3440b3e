"""The unit of work itself (shared/db.py), and the request's unit of work refusing a success answer
over writes it did not commit (shared/runtime.py).

In the manner of cosmicpython's tests/integration/test_uow.py: write through the unit of work, then
look with a fresh session whether the rows are there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from sqlalchemy import func, insert, select
from structlog.testing import capture_logs

import services.sampling
from services.sampling.main import SPEC
from services.sampling.models import ingest_log
from services.sampling.settings import SamplingSettings
from shared.db import Database
from shared.executemany import insert_rows
from shared.migrations import upgrade
from shared.runtime import ServiceRuntime, UoW
from shared.service_app import service_app
from shared.settings import PlatformSettings
from tests.helpers import running

SERVICE_DIR = Path(services.sampling.__file__).parent
AT = datetime(2014, 3, 3, tzinfo=UTC)


class Boom(Exception):
    pass


def _log_row(agency: str) -> dict[str, Any]:
    return {"agency_code": agency, "at": AT, "received": 1, "created": 1, "duplicates": 0, "rejected": 0}


async def _agencies(db: Database) -> list[str]:
    async with db.sessions() as session:
        rows = await session.execute(select(ingest_log.c.agency_code).order_by(ingest_log.c.id))
        return list(rows.scalars())


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path}/uow.db"
    await upgrade(url, SERVICE_DIR)
    database = Database(url)
    yield database
    await database.dispose()


async def test_committed_work_is_kept(db: Database) -> None:
    async with db.unit_of_work() as uow:
        await uow.session.execute(insert(ingest_log).values(**_log_row("KEPT")))
        await uow.commit()
    assert await _agencies(db) == ["KEPT"]


async def test_rolls_back_uncommitted_work_by_default(db: Database) -> None:
    async with db.unit_of_work() as uow:
        await uow.session.execute(insert(ingest_log).values(**_log_row("FORGOTTEN")))
    assert await _agencies(db) == []


async def test_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(Boom):
        async with db.unit_of_work() as uow:
            await uow.session.execute(insert(ingest_log).values(**_log_row("FAILED")))
            raise Boom
    assert await _agencies(db) == []


async def test_work_after_the_commit_is_rolled_back(db: Database) -> None:
    async with db.unit_of_work() as uow:
        await uow.session.execute(insert(ingest_log).values(**_log_row("FIRST")))
        await uow.commit()
        await uow.session.execute(insert(ingest_log).values(**_log_row("AFTER")))
    assert await _agencies(db) == ["FIRST"]


async def test_after_commit_hooks_run_only_on_commit(db: Database) -> None:
    calls: list[str] = []
    async with db.unit_of_work() as uow:
        uow.after_commit(lambda: calls.append("rolled back"))
        await uow.session.execute(insert(ingest_log).values(**_log_row("A")))
    with pytest.raises(Boom):
        async with db.unit_of_work() as uow:
            uow.after_commit(lambda: calls.append("raised"))
            raise Boom
    assert calls == []
    async with db.unit_of_work() as uow:
        uow.after_commit(lambda: calls.append("committed"))
        await uow.session.execute(insert(ingest_log).values(**_log_row("B")))
        assert calls == []  # not before the commit
        await uow.commit()
        assert calls == ["committed"]
    assert calls == ["committed"]


async def test_uncommitted_writes_are_tracked_through_every_path(db: Database) -> None:
    async with db.unit_of_work() as uow:
        assert not await uow.has_uncommitted_writes()
        await uow.session.execute(select(func.count()).select_from(ingest_log))
        assert not await uow.has_uncommitted_writes()  # a read is not a write
        await uow.session.execute(insert(ingest_log).values(**_log_row("CORE")))
        assert await uow.has_uncommitted_writes()
        await uow.commit()
        assert not await uow.has_uncommitted_writes()
        # The bulk paths' driver-level executemany is seen too.
        await insert_rows(uow.session, ingest_log, [_log_row("BULK1"), _log_row("BULK2")])
        assert await uow.has_uncommitted_writes()
    # The mark does not outlive its transaction on the pooled connection.
    async with db.unit_of_work() as uow:
        await uow.session.execute(select(func.count()).select_from(ingest_log))
        assert not await uow.has_uncommitted_writes()
    assert await _agencies(db) == ["CORE"]


# ---------------------------------------------------------------- the request's unit of work


def _routes() -> APIRouter:
    """A write route that forgets to commit, next to correct ones."""
    router = APIRouter()

    @router.post("/forgets", status_code=201)
    async def forgets(uow: UoW) -> dict[str, str]:
        await uow.session.execute(insert(ingest_log).values(**_log_row("FORGETS")))
        return {"stored": "supposedly"}

    @router.post("/forgets-bulk", status_code=201)
    async def forgets_bulk(uow: UoW) -> dict[str, str]:
        await insert_rows(uow.session, ingest_log, [_log_row("BULK")])
        return {"stored": "supposedly"}

    @router.post("/commits", status_code=201)
    async def commits(uow: UoW) -> dict[str, str]:
        await uow.session.execute(insert(ingest_log).values(**_log_row("COMMITS")))
        await uow.commit()
        return {"stored": "yes"}

    @router.post("/declines")
    async def declines(uow: UoW, response: Response) -> dict[str, str]:
        # Wrote, then decided to refuse: rolling back is the point, not a mistake.
        await uow.session.execute(insert(ingest_log).values(**_log_row("DECLINES")))
        response.status_code = 409
        return {"stored": "no"}

    @router.get("/reads")
    async def reads(uow: UoW) -> dict[str, int]:
        n = (await uow.session.execute(select(func.count()).select_from(ingest_log))).scalar_one()
        return {"n": int(n)}

    return router


async def _serve(tmp_path: Path, environment: str) -> tuple[FastAPI, ServiceRuntime]:
    # Production mode wants every security setting explicit (shared/settings.py).
    secure = {"jwt_secret": "p" * 40, "jwt_issuer": "qc", "jwt_audience": "qc", "trusted_proxies": []}
    platform = PlatformSettings(env=environment, log_json=False, **secure)  # type: ignore[arg-type]
    settings = SamplingSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/guard-{environment}.db", run_jobs=False, platform=platform
    )
    runtime = ServiceRuntime(SPEC, settings)
    return service_app(runtime, title="guard", description="guard", routers=[_routes()]), runtime


async def _stored(runtime: ServiceRuntime) -> list[str]:
    assert runtime.db is not None
    return await _agencies(runtime.db)


@pytest.mark.parametrize("path", ["/forgets", "/forgets-bulk"])
async def test_a_write_route_that_forgets_to_commit_answers_500(tmp_path: Path, path: str) -> None:
    app, runtime = await _serve(tmp_path, "development")
    async with running(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            r = await client.post(path)
            assert r.status_code == 500, r.text
            assert r.json()["type"].endswith(":uncommitted-writes")
            assert await _stored(runtime) == []


async def test_committing_declining_and_reading_routes_pass_the_guard(tmp_path: Path) -> None:
    app, runtime = await _serve(tmp_path, "development")
    async with running(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            assert (await client.post("/commits")).status_code == 201
            assert (await client.post("/declines")).status_code == 409
            r = await client.get("/reads")
            assert r.status_code == 200
            assert r.json() == {"n": 1}
            assert await _stored(runtime) == ["COMMITS"]


async def test_in_production_the_guard_only_logs(tmp_path: Path) -> None:
    app, runtime = await _serve(tmp_path, "production")
    async with running(app) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as client:
            with capture_logs() as logs:
                r = await client.post("/forgets")
            assert r.status_code == 201
            assert await _stored(runtime) == []
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [(e["event"], e["path"]) for e in errors] == [("write route answered without committing", "/forgets")]
