"""The driver-level bulk writes (shared/executemany.py) store what SQLAlchemy Core stores, on both dialects:
the same rows written both ways read back the same, raw (SQLite's text forms) and through SQLAlchemy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Date, Integer, MetaData, String, Table, and_, case, func, insert, select

from shared.db import Database, UtcDateTime, dialect_insert
from shared.executemany import excluded, insert_rows, upsert_rows

metadata = MetaData()


def _table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("k", String(20), primary_key=True),
        Column("n", Integer, nullable=False),
        Column("flag", Boolean, nullable=True),
        Column("day", Date, nullable=True),
        Column("at", UtcDateTime, nullable=True),
        Column("name", String(40), nullable=True),
    )


by_driver, by_core = _table("by_driver"), _table("by_core")

FIRST: list[dict[str, Any]] = [
    # A whole second (isoformat would drop the microseconds unless told), an offset that is not UTC,
    # a naive value, a year before 1000 (strftime's %Y would not pad it), and NULLs.
    {"k": "a", "n": 1, "flag": True, "day": date(2014, 5, 10), "at": datetime(2014, 5, 10, 8, 0, tzinfo=UTC)},
    {
        "k": "b",
        "n": 2,
        "flag": False,
        "day": date(999, 1, 2),
        "at": datetime(2014, 5, 10, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
    },
    {"k": "c", "n": 3, "flag": None, "day": None, "at": None},
    {"k": "d", "n": 4, "flag": True, "day": date(2015, 12, 31), "at": datetime(999, 1, 2, 3, 4, 5, 6)},
]
#: …and the same values again under other keys: a column whose values repeat is converted per distinct value.
ROWS = FIRST + [{**FIRST[i % 4], "k": f"r{i:02d}", "n": i} for i in range(12)]


@pytest.fixture(params=["sqlite", "postgres"])
async def db(
    request: pytest.FixtureRequest, sqlite_url: Callable[[str], str], pg_database: Callable[[str], Any]
) -> AsyncIterator[Database]:
    url = sqlite_url("bulk") if request.param == "sqlite" else await pg_database("bulk")
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def _stored(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Each table's rows, raw from the driver and through SQLAlchemy's types."""
    raw: list[list[tuple[Any, ...]]] = []
    typed: list[list[tuple[Any, ...]]] = []
    async with db.unit_of_work() as uow:
        conn = await uow.session.connection()
        for t in (by_driver, by_core):
            rows = await conn.exec_driver_sql(f"SELECT k, n, flag, day, at, name FROM {t.name} ORDER BY k")
            raw.append([tuple(r) for r in rows])
            typed.append([tuple(r) for r in await uow.session.execute(select(t).order_by(t.c.k))])
    assert raw[0] == raw[1]
    assert typed[0] == typed[1]
    return raw[0], typed[0]


async def test_insert_rows_stores_what_core_stores(db: Database) -> None:
    async with db.unit_of_work() as uow:
        await insert_rows(uow.session, by_driver, ROWS)
        await uow.session.execute(insert(by_core), ROWS)
        await uow.commit()
    raw, typed = await _stored(db)
    assert len(typed) == 16 and [r[0] for r in typed[:4]] == ["a", "b", "c", "d"]
    assert [r[2:5] for r in typed[4:8]] == [r[2:5] for r in typed[:4]]
    assert typed[1][4] == datetime(2014, 5, 10, 0, 0, 0, 123456, tzinfo=UTC)  # stored in UTC, read back aware
    if db.is_sqlite:
        assert [r[4] for r in raw[:4]] == [
            "2014-05-10 08:00:00.000000",
            "2014-05-10 00:00:00.123456",
            None,
            "0999-01-02 03:04:05.000006",
        ]
        assert [r[3] for r in raw[:4]] == ["2014-05-10", "0999-01-02", None, "2015-12-31"]
        assert [r[2] for r in raw[:4]] == [1, 0, None, 1]
        assert [r[2:5] for r in raw[4:8]] == [r[2:5] for r in raw[:4]]


async def test_upsert_rows_with_expressions_does_what_core_does(db: Database) -> None:
    """`set_` expressions over the held row and `excluded`: here the newer `at` wins the name, and a NULL
    proposed name keeps the held one."""
    first = [{"k": r["k"], "n": r["n"], "at": datetime(2014, 1, 1, tzinfo=UTC), "name": "old"} for r in FIRST]
    second = [
        {"k": "a", "n": 10, "at": datetime(2015, 1, 1, tzinfo=UTC), "name": "newer"},
        {"k": "b", "n": 20, "at": datetime(2013, 1, 1, tzinfo=UTC), "name": "older"},
        {"k": "c", "n": 30, "at": datetime(2015, 1, 1, tzinfo=UTC), "name": None},
        {"k": "e", "n": 50, "at": datetime(2015, 1, 1, tzinfo=UTC), "name": "fresh"},
    ]

    def rule(t: Table, x: Any) -> dict[str, Any]:
        newer = x.at >= t.c.at
        return {
            "name": case((and_(newer, x.name.is_not(None)), x.name), else_=func.coalesce(t.c.name, x.name)),
            "at": case((newer, x.at), else_=t.c.at),
        }

    async with db.unit_of_work() as uow:
        for rows in (first, second):
            await upsert_rows(
                uow.session, by_driver, rows, ["k"], add=("n",), set_=rule(by_driver, excluded(by_driver))
            )
            ins = dialect_insert(uow.session)(by_core)
            stmt = ins.on_conflict_do_update(
                index_elements=[by_core.c.k], set_={"n": by_core.c.n + ins.excluded.n, **rule(by_core, ins.excluded)}
            )
            await uow.session.execute(stmt, rows)
        await uow.commit()
    _, typed = await _stored(db)
    assert [(r[0], r[1], r[5]) for r in typed] == [
        ("a", 11, "newer"),
        ("b", 22, "old"),
        ("c", 33, "old"),
        ("d", 4, "old"),
        ("e", 50, "fresh"),
    ]
