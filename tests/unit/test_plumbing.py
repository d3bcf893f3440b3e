"""The shared request plumbing: cursors and pages, chunked IN lists, UTC and date coercion, compare-and-set
updates, idempotent creates scoped by agency, scope checks, USCC parameters, the context, settings mixins."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from shared import columns
from shared.auth import Principal, TokenService, require, require_any
from shared.clock import FixedClock, as_date, as_utc
from shared.context import Context, RequestContext
from shared.db import chunks, insert_all
from shared.errors import IdempotencyKeyReused, InsufficientScope, InvalidCursor, InvalidUscc, StaleVersion
from shared.idempotency import idempotency_table, idempotent, key_scope, request_hash
from shared.pagination import decode_cursor, encode_cursor, keyset, page, where_given
from shared.preconditions import update_if_version, update_row
from shared.problems import install_problem_handlers
from shared.regions import RegionOut, add_regions_route, load_regions
from shared.settings import ExpiryJobSettings, PlatformSettings, PublicRateLimitSettings
from shared.uscc import OptionalUsccQuery, UsccPath, parse_uscc, parse_usccs

USCC = "91370200163562681G"


def _raw_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


# ---------------------------------------------------------------- cursors and pages


def test_a_cursor_round_trips_its_typed_key() -> None:
    at = datetime(2015, 3, 1, 8, 30, tzinfo=UTC)
    assert decode_cursor(encode_cursor([at, "r-1"]), datetime, str) == (at, "r-1")
    assert decode_cursor(encode_cursor([date(2014, 5, 2), "x"]), date, str) == (date(2014, 5, 2), "x")
    assert decode_cursor(encode_cursor([41]), int) == (41,)
    assert decode_cursor(None, str) is None and decode_cursor("", str) is None


def test_a_naive_timestamp_is_encoded_as_utc() -> None:
    naive = datetime(2015, 3, 1, 8, 30)
    assert decode_cursor(encode_cursor([naive]), datetime) == (naive.replace(tzinfo=UTC),)


@pytest.mark.parametrize(
    ("cursor", "kinds"),
    [
        ("%%%not-base64", (str,)),
        (base64.urlsafe_b64encode(b"not json").decode(), (str,)),
        (_raw_cursor({"id": "x"}), (str,)),  # not a list
        (_raw_cursor(["x"]), (date, str)),  # too short
        (_raw_cursor(["x", "y", "z"]), (date, str)),  # too long
        (_raw_cursor(["x", "r-1"]), (date, str)),  # not a date
        (_raw_cursor(["x", "r-1"]), (datetime, str)),  # not a timestamp
        (_raw_cursor(["x"]), (int,)),  # not an integer
        (_raw_cursor([True]), (int,)),  # a boolean is not a sequence number
        (_raw_cursor([7]), (str,)),  # not a string
        (_raw_cursor([None, "r-1"]), (date, str)),
    ],
)
def test_a_tampered_cursor_is_invalid_cursor(cursor: str, kinds: tuple[type[Any], ...]) -> None:
    with pytest.raises(InvalidCursor) as caught:
        decode_cursor(cursor, *kinds)
    assert caught.value.status == 422 and caught.value.slug == "invalid-cursor"


def test_page_keeps_limit_rows_and_points_past_the_last() -> None:
    rows = [{"id": f"r{i}"} for i in range(4)]
    got = page(rows, 3, lambda r: (r["id"],), lambda r: r["id"].upper())
    assert got["items"] == ["R0", "R1", "R2"]
    assert decode_cursor(got["next_cursor"], str) == ("r2",)
    last = page(rows[:3], 3, lambda r: (r["id"],))
    assert last == {"items": rows[:3], "next_cursor": None}
    assert page([], 3, lambda r: (r,)) == {"items": [], "next_cursor": None}


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    async with async_sessionmaker(engine, expire_on_commit=False)() as s:
        yield s
    await engine.dispose()


METADATA = MetaData()
THINGS = Table(
    "things",
    METADATA,
    Column("day", String(10), primary_key=True),
    Column("id", String(8), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("note", String(40)),
)
KEYS = idempotency_table(METADATA)
STAMPED = Table(
    "stamped",
    METADATA,
    Column("id", String(8), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("note", String(40)),
    columns.updated_at(),
)


async def test_keyset_walks_a_two_column_key_both_ways(session: AsyncSession) -> None:
    keys = [("2014-01-02", "b"), ("2014-01-01", "b"), ("2014-01-02", "a"), ("2014-01-01", "a"), ("2014-01-03", "a")]
    await session.execute(insert(THINGS), [{"day": d, "id": i, "version": 1} for d, i in keys])
    cols = [THINGS.c.day, THINGS.c.id]
    seen: list[tuple[str, str]] = []
    after: tuple[str, str] | None = None
    while True:
        rows = (await session.execute(keyset(select(THINGS.c.day, THINGS.c.id), cols, after, 2))).all()
        seen += [(r.day, r.id) for r in rows]
        if len(rows) < 2:
            break
        after = (rows[-1].day, rows[-1].id)
    assert seen == sorted(keys)
    down = (await session.execute(keyset(select(THINGS.c.id), cols, ("2014-01-02", "a"), 10, descending=True))).all()
    assert [r.id for r in down] == ["b", "a"]  # 2014-01-01 b, a


async def test_where_given_applies_only_the_filters_given(session: AsyncSession) -> None:
    rows = [("d1", "a", "x"), ("d1", "b", "y"), ("d2", "a", "x")]
    await insert_all(session, THINGS, [{"day": d, "id": i, "version": 1, "note": n} for d, i, n in rows])
    await insert_all(session, THINGS, [])  # no rows: nothing is written

    async def found(*filters: tuple[Any, Any]) -> list[tuple[str, str]]:
        return sorted((r.day, r.id) for r in await session.execute(where_given(select(THINGS), *filters)))

    assert await found((THINGS.c.day, None), (THINGS.c.note, None)) == [("d1", "a"), ("d1", "b"), ("d2", "a")]
    assert await found((THINGS.c.day, "d1"), (THINGS.c.note, None)) == [("d1", "a"), ("d1", "b")]
    assert await found((THINGS.c.day, "d1"), (THINGS.c.note, "x")) == [("d1", "a")]


# ---------------------------------------------------------------- small helpers


def test_chunks_are_distinct_ordered_and_bounded() -> None:
    assert list(chunks(["a", "b", "a", "c", "d", "b", "e"], 2)) == [["a", "b"], ["c", "d"], ["e"]]
    assert list(chunks([], 5)) == []
    assert [len(c) for c in chunks(range(12_001))] == [5000, 5000, 2001]


def test_as_utc_and_as_date() -> None:
    naive = datetime(2015, 1, 1, 12)
    assert as_utc(naive) == naive.replace(tzinfo=UTC)
    cst = datetime(2015, 1, 1, 12, tzinfo=timezone(timedelta(hours=8)))
    assert as_utc(cst) is cst
    assert as_date("2014-06-01") == date(2014, 6, 1)
    assert as_date("2014-06-01T23:00:00+08:00") == date(2014, 6, 1)
    assert as_date(datetime(2014, 6, 1, 23)) == date(2014, 6, 1)
    assert as_date(date(2014, 6, 1)) == date(2014, 6, 1)


# ---------------------------------------------------------------- versioned updates


async def test_update_if_version_lets_exactly_one_writer_win(session: AsyncSession) -> None:
    await session.execute(insert(THINGS).values(day="d", id="x", version=3, note="old"))
    where = THINGS.c.id == "x"
    assert await update_if_version(session, THINGS, where, 3, {"note": "first"}) == 4
    with pytest.raises(StaleVersion) as caught:
        await update_if_version(session, THINGS, where, 3, {"note": "second"})
    assert caught.value.status == 412
    row = (await session.execute(select(THINGS))).one()
    assert (row.version, row.note) == (4, "first")


async def test_update_row_answers_the_row_as_it_now_stands(session: AsyncSession) -> None:
    now = datetime(2015, 1, 2, 9, tzinfo=UTC)
    row = {"id": "x", "version": 3, "note": "old", "updated_at": now - timedelta(days=1)}
    await insert_all(session, STAMPED, [row])
    new = await update_row(session, STAMPED, "id", row, {"note": "new"}, now)
    assert new == {"id": "x", "version": 4, "note": "new", "updated_at": now}
    assert dict((await session.execute(select(STAMPED))).mappings().one()) == new
    with pytest.raises(StaleVersion):  # the row as first read is no longer the stored one
        await update_row(session, STAMPED, "id", row, {"note": "again"}, now)


# ---------------------------------------------------------------- idempotent creates


def _principal(subject: str, agency: str | None) -> Principal:
    return Principal(subject, frozenset({"sampling:write"}), agency, token="t")


async def test_idempotent_replays_and_refuses_another_body(session: AsyncSession) -> None:
    calls: list[int] = []

    async def create() -> tuple[int, Any]:
        calls.append(1)
        return 201, {"id": f"n{len(calls)}"}

    who = _principal("alice", "QD-1")
    fp = request_hash("POST", "/v1/x", {"a": 1})
    first = await idempotent(session, KEYS, who, "k1", fp, create)
    again = await idempotent(session, KEYS, who, "k1", fp, create)
    assert (first.status, first.body, first.replayed) == (201, {"id": "n1"}, False)
    assert (again.status, again.body, again.replayed) == (201, {"id": "n1"}, True)
    assert len(calls) == 1
    with pytest.raises(IdempotencyKeyReused):
        await idempotent(session, KEYS, who, "k1", request_hash("POST", "/v1/x", {"a": 2}), create)
    # Without a key every call creates.
    await idempotent(session, KEYS, who, None, fp, create)
    await idempotent(session, KEYS, who, None, fp, create)
    assert len(calls) == 3


async def test_idempotency_keys_are_scoped_by_agency_and_subject(session: AsyncSession) -> None:
    made: list[str] = []

    def creator(tag: str) -> Any:
        async def create() -> tuple[int, Any]:
            made.append(tag)
            return 201, {"by": tag}

        return create

    fp = request_hash("POST", "/v1/x", {"a": 1})
    other = request_hash("POST", "/v1/x", {"a": 2})
    a = await idempotent(session, KEYS, _principal("svc", "QD-1"), "same", fp, creator("QD-1"))
    b = await idempotent(session, KEYS, _principal("svc", "QD-2"), "same", other, creator("QD-2"))
    c = await idempotent(session, KEYS, _principal("svc", None), "same", fp, creator("none"))
    assert (a.body, b.body, c.body) == ({"by": "QD-1"}, {"by": "QD-2"}, {"by": "none"})
    assert not (a.replayed or b.replayed or c.replayed) and made == ["QD-1", "QD-2", "none"]
    assert key_scope(_principal("svc", "QD-1")) != key_scope(_principal("svc", "QD-2"))
    assert len(key_scope(_principal("s" * 200, "QD-1"))) <= 128


# ---------------------------------------------------------------- the edge: scopes, USCC, context, regions


def _app() -> tuple[FastAPI, TokenService]:
    app = FastAPI()
    install_problem_handlers(app)
    tokens = TokenService(PlatformSettings(jwt_secret="x" * 40, jwt_issuer="qc", jwt_audience="qc"))
    app.state.tokens = tokens
    app.state.runtime = type("R", (), {"clock": FixedClock(datetime(2015, 6, 1, tzinfo=UTC))})()

    @app.get("/either")
    async def either(p: Annotated[Principal, require_any("credit:write", "credit:review")]) -> str:
        return p.subject

    @app.get("/one")
    async def one(p: Annotated[Principal, require("read")]) -> str:
        return p.subject

    @app.get("/e/{uscc}")
    async def by_path(code: UsccPath) -> str:
        return code

    @app.get("/q")
    async def by_query(uscc: OptionalUsccQuery = None) -> str | None:
        return uscc

    @app.get("/ctx")
    async def ctx(c: RequestContext) -> dict[str, Any]:
        return {"actor": c.actor, "agency": c.agency, "request_id": c.request_id, "now": c.clock.now().isoformat()}

    from fastapi import APIRouter

    router = APIRouter()
    add_regions_route(router, "reference")
    app.include_router(router)
    return app, tokens


async def test_scopes_uscc_parameters_context_and_regions_at_the_edge() -> None:
    app, tokens = _app()

    def bearer(*scopes: str, agency: str | None = None) -> dict[str, str]:
        return {"Authorization": "Bearer " + tokens.mint("ann", list(scopes), agency=agency)}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/either", headers=bearer("credit:review"))).json() == "ann"
        refused = await client.get("/either", headers=bearer("read"))
        assert refused.status_code == 403 and refused.json()["required_scope"] == "credit:write"
        assert "credit:review" in refused.json()["detail"]
        assert (await client.get("/either")).status_code == 401
        assert (await client.get("/one", headers=bearer("credit:write"))).status_code == 403

        assert (await client.get(f"/e/ {USCC.lower()}")).json() == USCC
        bad = await client.get("/e/91370200163562681X")
        assert bad.status_code == 422 and bad.json()["type"].endswith(":invalid-uscc")
        assert bad.json()["errors"][0]["in"] == "path"
        assert (await client.get("/q")).json() is None
        assert (await client.get("/q", params={"uscc": "nope"})).json()["errors"][0]["in"] == "query"

        got = await client.get("/ctx", headers=bearer("read", agency="QD-9") | {"x-request-id": "rq-1"})
        assert got.json()["actor"] == "ann" and got.json()["agency"] == "QD-9"
        assert got.json()["now"].startswith("2015-06-01")

        regions = (await client.get("/regions")).json()
        assert len(regions) == len(load_regions().regions)
        assert [RegionOut.model_validate(r).code for r in regions] == [r.code for r in load_regions().regions]


def test_parse_uscc_names_the_field_and_each_bad_item() -> None:
    assert parse_uscc(f" {USCC} ") == USCC
    with pytest.raises(InvalidUscc):
        parse_uscc("123")
    with pytest.raises(InvalidUscc) as caught:
        parse_usccs([USCC, "x", USCC, "y"], "usccs")
    assert [e["field"] for e in caught.value.extensions["errors"]] == ["usccs[1]", "usccs[3]"]


def test_insufficient_scope_is_a_403_naming_the_first_scope() -> None:
    err = InsufficientScope("a", "b")
    assert err.status == 403 and err.extensions["required_scope"] == "a"


def test_context_extends_with_a_service_s_own_fields() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True, kw_only=True)
    class ServiceContext(Context):
        rules: str

    clock = FixedClock(datetime(2015, 1, 1, tzinfo=UTC))
    base = Context(actor="a", clock=clock, agency="QD-1", request_id="rq")
    ctx = ServiceContext.extend(base, rules="v1")
    assert (ctx.actor, ctx.agency, ctx.request_id, ctx.clock, ctx.rules) == ("a", "QD-1", "rq", clock, "v1")


def test_settings_mixins_read_one_name_in_one_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.awards.settings import AwardsSettings
    from services.credit.settings import CreditSettings

    for cls in (AwardsSettings, CreditSettings):
        assert issubclass(cls, ExpiryJobSettings) and issubclass(cls, PublicRateLimitSettings)
    monkeypatch.setenv("QC_CREDIT_PUBLIC_RATE_PER_S", "5")
    monkeypatch.setenv("QC_AWARDS_EXPIRY_EVERY_S", "60")
    assert CreditSettings().public_rate_per_s == 5.0
    assert AwardsSettings().expiry_every_s == 60.0
