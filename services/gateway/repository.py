"""Every query of the gateway's read models (Core statements; dialect upserts on the hot paths)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.models import (
    READ_MODELS,
    indicator_reports,
    rm_blacklist,
    rm_changes,
    rm_enterprises,
    rm_feed_counts,
    rm_honour_suspensions,
    rm_honours,
    rm_pass_counts,
    rm_pass_daily,
    rm_pass_monthly,
    rm_ratings,
    rm_results,
)
from shared.clock import as_utc
from shared.db import chunks
from shared.executemany import excluded, insert_rows, upsert_rows
from shared.pagination import keyset

#: The change feed's row in `rm_feed_counts`.
FEED = "changes"

CountKey = tuple[str, str, str, int, bool, bool]
DayKey = tuple[date, str, str, str, bool]


async def _upsert(session: AsyncSession, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    # Driver-level executemany: SQLAlchemy's per-parameter processing was a third of catch-up time.
    await upsert_rows(session, table, list(rows), keys)


async def _current(session: AsyncSession, table: Table, key: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The read model's rows for these ids, by id (one query per chunk of the IN list)."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunks(ids):
        rows = await session.execute(select(table).where(table.c[key].in_(chunk)))
        out.update({r[key]: dict(r) for r in rows.mappings()})
    return out


# ------------------------------------------------------------------------------------------ results


async def current_results(session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return await _current(session, rm_results, "result_id", ids)


async def upsert_results(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _upsert(session, rm_results, rows, ["result_id"])


async def add_pass_counts(session: AsyncSession, deltas: dict[CountKey, tuple[int, int]]) -> None:
    """Move the yearly counters by (results, passed) for each key."""
    rows = [
        {
            "sector": k[0],
            "level": k[1],
            "district_code": k[2],
            "year": k[3],
            "key_product": k[4],
            "final": k[5],
            "n": n,
            "passed": p,
        }
        for k, (n, p) in sorted(deltas.items())
        if n or p
    ]
    await _add_counts(session, rm_pass_counts, rows)


async def add_pass_daily(session: AsyncSession, deltas: dict[DayKey, tuple[int, int]]) -> None:
    """Move the daily counters, and the monthly ones by the same deltas summed by month."""
    await _add_period_counts(session, rm_pass_daily, "day", deltas)
    months: dict[DayKey, tuple[int, int]] = {}
    for (day, sector, level, district, key_product), (n, p) in deltas.items():
        first = (day if isinstance(day, date) else date.fromisoformat(str(day))).replace(day=1)
        key = (first, sector, level, district, key_product)
        n0, p0 = months.get(key, (0, 0))
        months[key] = (n0 + n, p0 + p)
    await _add_period_counts(session, rm_pass_monthly, "month", months)


async def _add_period_counts(
    session: AsyncSession, table: Any, period: str, deltas: dict[DayKey, tuple[int, int]]
) -> None:
    rows = [
        {period: k[0], "sector": k[1], "level": k[2], "district_code": k[3], "key_product": k[4], "n": n, "passed": p}
        for k, (n, p) in sorted(deltas.items())
        if n or p
    ]
    await _add_counts(session, table, rows)


async def _add_counts(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    await upsert_rows(session, table, rows, [c.name for c in table.primary_key.columns], add=("n", "passed"))


async def pass_rates_by_sector(session: AsyncSession) -> list[dict[str, Any]]:
    c = rm_pass_counts.c
    rows = await session.execute(
        select(c.sector, func.sum(c.n).label("n"), func.sum(c.passed).label("passed"))
        .group_by(c.sector)
        .having(func.sum(c.n) > 0)
        .order_by(c.sector)
    )
    return [{"sector": r.sector, "n": int(r.n), "passed": int(r.passed)} for r in rows]


async def yearly_counts(session: AsyncSession, first_year: int, last_year: int) -> list[dict[str, Any]]:
    """Counters by (sector, level, key product, district, year): a few thousand rows at most."""
    c = rm_pass_counts.c
    stmt = (
        select(c.sector, c.level, c.key_product, c.district_code, c.year, func.sum(c.n), func.sum(c.passed))
        .where(c.year >= first_year, c.year <= last_year)
        .group_by(c.sector, c.level, c.key_product, c.district_code, c.year)
    )
    return [
        {
            "sector": s,
            "level": lv,
            "key_product": bool(k),
            "district_code": d,
            "year": int(y),
            "n": int(n or 0),
            "passed": int(p or 0),
        }
        for s, lv, k, d, y, n, p in (await session.execute(stmt)).all()
    ]


async def year_to_date_counts(session: AsyncSession, as_of: date) -> list[dict[str, Any]]:
    """The counters summed over [1 January, as_of], as `yearly_counts` rows of as_of's year.

    One statement over the whole months before as_of's month and that month's days up to as_of, or
    over the whole month less its days after as_of when those are fewer: at most 11 months and 16
    days of rows, where summing the days alone read up to a year of them (~50,000 rows at a million
    results, the figure's whole cost)."""
    m, d = rm_pass_monthly.c, rm_pass_daily.c
    first = as_of.replace(day=1)
    after = date(first.year + first.month // 12, first.month % 12 + 1, 1)  # the next month's first day
    if (as_of - first).days < (after - as_of).days - 1:
        months = m.month < first
        days = select(d.sector, d.level, d.key_product, d.district_code, d.n, d.passed).where(
            d.day >= first, d.day <= as_of
        )
    else:
        months = m.month <= first
        days = select(d.sector, d.level, d.key_product, d.district_code, -d.n, -d.passed).where(
            d.day > as_of, d.day < after
        )
    parts = union_all(
        select(m.sector, m.level, m.key_product, m.district_code, m.n, m.passed).where(
            m.month >= date(as_of.year, 1, 1), months
        ),
        days,
    ).subquery()
    c = parts.c
    stmt = select(c.sector, c.level, c.key_product, c.district_code, func.sum(c.n), func.sum(c.passed)).group_by(
        c.sector, c.level, c.key_product, c.district_code
    )
    return [
        {
            "sector": s,
            "level": lv,
            "key_product": bool(k),
            "district_code": dc,
            "year": as_of.year,
            "n": int(n or 0),
            "passed": int(p or 0),
        }
        for s, lv, k, dc, n, p in (await session.execute(stmt)).all()
    ]


def results_clause(
    sector: str | None, level: str | None, key_product: bool | None, district: str | None, start: date, end: date
) -> ColumnElement[bool]:
    """The results a pass rate counts: not retracted, sampled in [start, end], matching the filter."""
    r = rm_results.c
    conds = [r.state != "retracted", r.sampling_date >= start, r.sampling_date <= end]
    if sector:
        conds.append(r.sector == sector)
    if level:
        conds.append(r.level == level)
    if key_product is not None:
        conds.append(r.key_product == key_product)
    if district:
        conds.append(r.district_code == district)
    return and_(*conds)


async def list_results(
    session: AsyncSession, where: ColumnElement[bool], after: tuple[date, str] | None, limit: int
) -> list[dict[str, Any]]:
    r = rm_results.c
    stmt = keyset(select(rm_results).where(where), [r.sampling_date, r.result_id], after, limit)
    return [dict(x) for x in (await session.execute(stmt)).mappings()]


async def results_summary(session: AsyncSession, uscc: str, as_of: date) -> dict[str, Any]:
    r = rm_results.c
    where = and_(r.uscc == uscc, r.state != "retracted", r.sampling_date <= as_of)
    year = cast(func.extract("year", r.sampling_date), Integer).label("year")
    # Counted in the database: the enterprise's whole history, however many results it has; the totals
    # are the years' sums (one query fewer on the credit profile's path).
    by_year = [
        {"year": int(y), "passed": int(p or 0), "failed": int(k) - int(p or 0)}
        for y, p, k in await session.execute(
            select(year, func.sum(case((r.conclusion == "pass", 1), else_=0)), func.count())
            .where(where)
            .group_by(year)
            .order_by(year)
        )
    ]
    fails = await session.execute(
        select(rm_results)
        .where(where, r.conclusion == "fail")
        .order_by(r.sampling_date.desc(), r.result_id.desc())
        .limit(5)
    )
    passed = sum(y["passed"] for y in by_year)
    return {
        "n": passed + sum(y["failed"] for y in by_year),
        "passed": passed,
        "by_year": by_year,
        "recent_fails": [dict(x) for x in fails.mappings()],
    }


# ------------------------------------------------------------------------------------------ honours


async def current_honours(session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return await _current(session, rm_honours, "honour_id", ids)


async def upsert_honours(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _upsert(session, rm_honours, rows, ["honour_id"])


async def suspensions_of(session: AsyncSession, ids: Sequence[str]) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    s = rm_honour_suspensions.c
    for chunk in chunks(ids):
        rows = await session.execute(select(rm_honour_suspensions).where(s.honour_id.in_(chunk)))
        out.update({(r["honour_id"], r["entry_id"]): dict(r) for r in rows.mappings()})
    return out


async def upsert_suspensions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _upsert(session, rm_honour_suspensions, rows, ["honour_id", "entry_id"])


def active_clause(day: date) -> ColumnElement[bool]:
    """SQL form of eligibility.active_on."""
    h, s = rm_honours.c, rm_honour_suspensions.c
    suspended = exists().where(
        s.honour_id == h.honour_id, s.suspended_on <= day, or_(s.reinstated_on.is_(None), s.reinstated_on > day)
    )
    return and_(
        h.granted_on <= day,
        or_(h.valid_until.is_(None), h.valid_until >= day),
        or_(h.revoked_on.is_(None), h.revoked_on > day),
        ~suspended,
    )


def granted_clause(start: date, end: date) -> ColumnElement[bool]:
    """SQL form of eligibility.granted_during."""
    h = rm_honours.c
    return and_(h.granted_on >= start, h.granted_on <= end, or_(h.revoked_on.is_(None), h.revoked_on > end))


async def honour_counts(
    session: AsyncSession, type_codes: Sequence[str], start: date, days: Sequence[date]
) -> dict[tuple[str, str | None], list[tuple[int, int]]]:
    """(type, district) -> per day of `days`: (granted during [start, day], active on day)."""
    h = rm_honours.c
    cols = []
    for d in days:
        cols.append(func.sum(case((granted_clause(start, d), 1), else_=0)))
        cols.append(func.sum(case((active_clause(d), 1), else_=0)))
    stmt = (
        select(h.type_code, h.district_code, *cols)
        .where(h.type_code.in_(list(type_codes)), h.granted_on <= max(days))
        .group_by(h.type_code, h.district_code)
    )
    out: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
    for row in (await session.execute(stmt)).all():
        values = [int(v or 0) for v in row[2:]]
        out[(row[0], row[1])] = [(values[2 * i], values[2 * i + 1]) for i in range(len(days))]
    return out


async def list_honours(
    session: AsyncSession,
    type_codes: Sequence[str],
    where: ColumnElement[bool],
    district: str | None,
    after: tuple[str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    h = rm_honours.c
    stmt = select(rm_honours).where(where)
    if type_codes:
        stmt = stmt.where(h.type_code.in_(list(type_codes)))
    if district:
        stmt = stmt.where(h.district_code == district)
    return [dict(x) for x in (await session.execute(keyset(stmt, [h.honour_id], after, limit))).mappings()]


async def honours_of_holder(session: AsyncSession, holder_id: str) -> list[dict[str, Any]]:
    h = rm_honours.c
    rows = await session.execute(select(rm_honours).where(h.holder_id == holder_id).order_by(h.granted_on))
    return [dict(x) for x in rows.mappings()]


# ------------------------------------------------------------------------------------------ credit


async def current_entries(session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return await _current(session, rm_blacklist, "entry_id", ids)


async def upsert_entries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _upsert(session, rm_blacklist, rows, ["entry_id"])


async def entries_of(session: AsyncSession, uscc: str) -> list[dict[str, Any]]:
    b = rm_blacklist.c
    rows = await session.execute(select(rm_blacklist).where(b.uscc == uscc).order_by(b.listed_on, b.entry_id))
    return [dict(x) for x in rows.mappings()]


async def upsert_ratings(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _upsert(session, rm_ratings, rows, ["uscc", "as_of"])


async def rating_on(session: AsyncSession, uscc: str, day: date) -> dict[str, Any] | None:
    r = rm_ratings.c
    row = (
        (
            await session.execute(
                select(rm_ratings).where(r.uscc == uscc, r.as_of <= day).order_by(r.as_of.desc()).limit(1)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def listed_clause(uscc_col: Any, day: date) -> ColumnElement[bool]:
    """SQL form of eligibility.listed_on, for any enterprise column."""
    b = rm_blacklist.c
    return exists().where(
        b.uscc == uscc_col,
        b.status.in_(("listed", "removed")),
        b.listed_on <= day,
        or_(b.removed_on.is_(None), b.removed_on > day),
    )


async def priority_list(
    session: AsyncSession, brand_types: Sequence[str], day: date, after: tuple[str] | None, limit: int
) -> list[dict[str, Any]]:
    """Holders of an active brand honour on `day` with no standing listing, by USCC."""
    h = rm_honours.c
    stmt = (
        select(h.holder_id, func.max(h.holder_name).label("holder_name"), func.count().label("brand_honours"))
        .where(
            h.type_code.in_(list(brand_types)),
            h.holder_kind.in_(("enterprise", "organisation")),
            active_clause(day),
            ~listed_clause(h.holder_id, day),
        )
        .group_by(h.holder_id)
    )
    return [dict(x) for x in (await session.execute(keyset(stmt, [h.holder_id], after, limit))).mappings()]


# ------------------------------------------------------------------------------------------ enterprises


async def upsert_enterprises(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """The name of the latest event (by event time) wins; a district once learned is kept when the
    newer event carries none."""
    e, x = rm_enterprises.c, excluded(rm_enterprises)
    newer = x.updated_at >= e.updated_at
    # Driver-level executemany: through Core, SQLAlchemy processed every parameter of every row in
    # Python (≈ 15 µs a row in a cProfile of the projection).
    await upsert_rows(
        session,
        rm_enterprises,
        rows,
        ["uscc"],
        set_={
            "name": case((newer, x.name), else_=e.name),
            "district_code": case(
                (and_(newer, x.district_code.is_not(None)), x.district_code),
                else_=func.coalesce(e.district_code, x.district_code),
            ),
            "updated_at": case((newer, x.updated_at), else_=e.updated_at),
        },
    )


async def enterprise(session: AsyncSession, uscc: str) -> dict[str, Any] | None:
    row = (await session.execute(select(rm_enterprises).where(rm_enterprises.c.uscc == uscc))).mappings().first()
    return dict(row) if row else None


async def search_enterprises(
    session: AsyncSession, q: str, after: tuple[str] | None, limit: int
) -> list[dict[str, Any]]:
    e = rm_enterprises.c
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = select(rm_enterprises).where(or_(e.uscc == q.upper(), e.name.like(pattern, escape="\\")))
    return [dict(x) for x in (await session.execute(keyset(stmt, [e.uscc], after, limit))).mappings()]


# ------------------------------------------------------------------------------------------ change feed


#: Set on a session whose transaction appended to the change feed: its commit wakes the webhooks.
FEED_APPENDED = "qc_feed_appended"


async def append_changes(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await insert_rows(session, rm_changes, list(rows))
        session.info[FEED_APPENDED] = True


async def count_applied(session: AsyncSession, n: int) -> None:
    """Add a batch's `n` events to the feed's count, in the batch's transaction. The batch's last
    statement: the one row it locks is then held only until the commit that follows, so concurrent
    batches (two replicas) wait on it briefly and never while holding it."""
    if n:
        await upsert_rows(session, rm_feed_counts, [{"feed": FEED, "applied": n}], ["feed"], add=("applied",))


async def changes(
    session: AsyncSession, after: int, subject: str | None, limit: int, hidden_types: Collection[str] = ()
) -> list[dict[str, Any]]:
    """The feed after `after`, without the event types the caller may not see (services.gateway.visibility)."""
    c = rm_changes.c
    stmt = select(rm_changes).where(c.seq > after)
    if hidden_types:
        stmt = stmt.where(c.type.not_in(sorted(hidden_types)))
    if subject:
        stmt = stmt.where(c.subject == subject)
    return [dict(x) for x in (await session.execute(stmt.order_by(c.seq).limit(limit))).mappings()]


def cloud_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """A change-feed row as the CloudEvent in structured JSON (what /v1/changes and webhooks carry)."""
    return {
        "specversion": "1.0",
        "id": row["event_id"],
        "source": row["source"],
        "type": row["type"],
        "subject": row["subject"],
        "time": as_utc(row["time"]).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": orjson.loads(row["data"]),
    }


async def feed_of_subject(session: AsyncSession, subject: str, types: Collection[str]) -> list[dict[str, Any]]:
    """One enterprise's events of these types from the change feed, in the order applied (its index)."""
    c = rm_changes.c
    stmt = select(c.type, c.data).where(c.subject == subject, c.type.in_(sorted(types))).order_by(c.seq)
    return [dict(x) for x in (await session.execute(stmt)).mappings()]


def _profile_head_statement() -> tuple[Any, tuple[tuple[str, Any, str], ...]]:
    """`profile_head`'s statement, built once: building it and computing its cache key on each request
    cost about a third of the profile's own CPU (cProfile: `coercions.expect`, `_gen_cache_key`)."""
    uscc, day = bindparam("uscc", type_=String), bindparam("day", type_=Date)
    e = select(rm_enterprises).where(rm_enterprises.c.uscc == uscc).subquery("e")
    r = (
        select(rm_ratings)
        .where(rm_ratings.c.uscc == uscc, rm_ratings.c.as_of <= day)
        .order_by(rm_ratings.c.as_of.desc())
        .limit(1)
        .subquery("r")
    )
    c = select(rm_changes.c.seq, rm_changes.c.time, rm_changes.c.applied_at).order_by(rm_changes.c.seq.desc())
    last = c.limit(1).subquery("c")
    applied = select(rm_feed_counts.c.applied).where(rm_feed_counts.c.feed == FEED).scalar_subquery()
    anchor = select(literal(1).label("one")).subquery("one")
    parts = (("e_", e, "uscc"), ("r_", r, "uscc"), ("c_", last, "seq"))
    cols = [col.label(prefix + col.name) for prefix, sub, _ in parts for col in sub.c]
    stmt = select(*cols, applied.label("applied")).select_from(
        anchor.outerjoin(e, true()).outerjoin(r, true()).outerjoin(last, true())
    )
    return stmt, parts


_PROFILE_HEAD, _PROFILE_PARTS = _profile_head_statement()


async def profile_head(
    session: AsyncSession, uscc: str, day: date
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    """The credit profile's single-row facts in one statement: the enterprise (`enterprise`), its rating
    on `day` (`rating_on`) and the feed's newest change with the applied count (`last_change`).

    One statement, not four: on SQLite each statement is four hops to the driver's thread, which cost
    more than the lookups (cProfile of the profile: ~40 queue hand-offs per request)."""
    row = (await session.execute(_PROFILE_HEAD, {"uscc": uscc, "day": day})).mappings().one()
    enterprise, rating, change = (
        None if row[prefix + key] is None else {col.name: row[prefix + col.name] for col in sub.c}
        for prefix, sub, key in _PROFILE_PARTS
    )
    if change is not None:
        change["applied"] = int(row["applied"] or 0)
    return enterprise, rating, change


async def last_change(session: AsyncSession) -> dict[str, Any] | None:
    """The newest applied event's times, and how many events were applied in all (`applied`).

    A count, not the newest `seq`: a rolled-back batch consumes sequence numbers it never keeps."""
    c = rm_changes.c
    row = (await session.execute(select(c.seq, c.time, c.applied_at).order_by(c.seq.desc()).limit(1))).mappings()
    found = row.first()
    if found is None:
        return None
    applied = await session.scalar(select(rm_feed_counts.c.applied).where(rm_feed_counts.c.feed == FEED))
    return {**found, "applied": int(applied or 0)}


async def clear_read_models(session: AsyncSession, *, feed: bool) -> None:
    """Empty every read model (and the feed when it is rebuilt too), inside the caller's transaction."""
    for table in (*READ_MODELS, *((rm_changes, rm_feed_counts) if feed else ())):
        await session.execute(delete(table))


# ------------------------------------------------------------------------------------------ reports


async def add_report(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(insert(indicator_reports), [row])


async def latest_reports(
    session: AsyncSession, plan_id: str, codes: Sequence[str], end: date, *, districts: bool = False
) -> list[dict[str, Any]]:
    """Per (indicator, period) the latest report with a period ending by `end`; older ones are history.
    The city's reports, or with `districts` every district's own (per district too)."""
    r = indicator_reports.c
    scope = r.district_code.is_not(None) if districts else r.district_code.is_(None)
    ranked = (
        select(
            indicator_reports,
            func.row_number()
            .over(
                partition_by=(r.indicator_code, r.district_code, r.period_start, r.period_end),
                order_by=(r.reported_at.desc(), r.report_id.desc()),
            )
            .label("rank"),
        )
        .where(r.plan_id == plan_id, r.indicator_code.in_(list(codes)), r.period_end <= end, scope)
        .subquery()
    )
    rows = await session.execute(select(ranked).where(ranked.c.rank == 1).order_by(ranked.c.period_end))
    return [dict(x) for x in rows.mappings()]


async def list_reports(
    session: AsyncSession, plan_id: str, code: str | None, after: tuple[datetime, str] | None, limit: int
) -> list[dict[str, Any]]:
    r = indicator_reports.c
    stmt = select(indicator_reports).where(r.plan_id == plan_id)
    if code:
        stmt = stmt.where(r.indicator_code == code)
    stmt = keyset(stmt, [r.reported_at, r.report_id], after, limit)
    return [dict(x) for x in (await session.execute(stmt)).mappings()]


async def close_open_suspensions(session: AsyncSession, honour_id: str, on: date) -> None:
    s = rm_honour_suspensions.c
    await session.execute(
        update(rm_honour_suspensions)
        .where(s.honour_id == honour_id, s.reinstated_on.is_(None))
        .values(reinstated_on=on)
    )


async def data_version(session: AsyncSession) -> tuple[Any, ...]:
    """Changes whenever an answer may change: the feed's last sequence and the reports received."""
    c, r = rm_changes.c, indicator_reports.c
    seq = (await session.execute(select(func.max(c.seq)))).scalar()
    n, last = (await session.execute(select(func.count(), func.max(r.reported_at)))).one()
    return (seq, n, str(last))
