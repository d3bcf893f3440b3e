"""Every query of the webhooks: subscriptions, their delivery outbox, the feed they fan out from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway.models import rm_changes, webhook_deliveries, webhook_subscriptions
from shared.clock import as_utc
from shared.executemany import insert_rows
from shared.pagination import keyset

S = webhook_subscriptions.c
D = webhook_deliveries.c


async def add_subscription(session: AsyncSession, row: dict[str, Any]) -> None:
    await insert_rows(session, webhook_subscriptions, [row])


async def subscription(session: AsyncSession, subscription_id: str) -> dict[str, Any] | None:
    found = (
        await session.execute(select(webhook_subscriptions).where(S.subscription_id == subscription_id))
    ).mappings()
    row = found.first()
    return dict(row) if row else None


async def list_subscriptions(
    session: AsyncSession, owner: str, after: tuple[str] | None, limit: int
) -> list[dict[str, Any]]:
    stmt = select(webhook_subscriptions).where(S.owner == owner)
    return [dict(x) for x in (await session.execute(keyset(stmt, [S.subscription_id], after, limit))).mappings()]


async def delete_subscription(session: AsyncSession, subscription_id: str) -> None:
    await session.execute(delete(webhook_deliveries).where(D.subscription_id == subscription_id))
    await session.execute(delete(webhook_subscriptions).where(S.subscription_id == subscription_id))


async def set_state(session: AsyncSession, subscription_id: str, **values: Any) -> None:
    await session.execute(update(webhook_subscriptions).where(S.subscription_id == subscription_id).values(**values))


async def advance_cursor(session: AsyncSession, subscription_id: str, read_from: int, to: int) -> bool:
    """Move the fan-out cursor only if nobody moved it since it was read (a replay resets it)."""
    done = await session.execute(
        update(webhook_subscriptions)
        .where(S.subscription_id == subscription_id, S.cursor_seq == read_from)
        .values(cursor_seq=to)
    )
    return bool(getattr(done, "rowcount", 0))


async def feed_end(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(rm_changes.c.seq), 0))) or 0)


async def with_work(session: AsyncSession, now: datetime, feed_end: int) -> list[str]:
    """Active subscriptions not leased by a live dispatcher, with feed events to fan out or a
    delivery due."""
    due = (
        select(D.subscription_id)
        .where(D.state == "pending", D.next_attempt_at <= now)
        .group_by(D.subscription_id)
        .subquery()
    )
    stmt = (
        select(S.subscription_id)
        .outerjoin(due, due.c.subscription_id == S.subscription_id)
        .where(
            S.state == "active",
            or_(S.lease_until.is_(None), S.lease_until < now),
            or_(S.cursor_seq < feed_end, due.c.subscription_id.is_not(None)),
        )
        .order_by(S.subscription_id)
    )
    return list((await session.execute(stmt)).scalars())


async def next_due(session: AsyncSession, now: datetime) -> datetime | None:
    """The next moment work falls due without a new event: a pending delivery's retry, or the end of
    a lease another dispatcher holds (if it died, its subscriptions are served again then)."""
    retry = (
        select(func.min(D.next_attempt_at))
        .select_from(webhook_deliveries.join(webhook_subscriptions, S.subscription_id == D.subscription_id))
        .where(D.state == "pending", D.next_attempt_at > now, S.state == "active")
        .scalar_subquery()
    )
    lease = select(func.min(S.lease_until)).where(S.state == "active", S.lease_until > now).scalar_subquery()
    row = (await session.execute(select(retry, lease))).one()
    found = [as_utc(t) for t in row if t is not None]
    return min(found) if found else None


async def claim(session: AsyncSession, subscription_id: str, owner: str, now: datetime, until: datetime) -> bool:
    """Lease one subscription to this dispatcher (one replica serves it at a time: order is kept)."""
    done = await session.execute(
        update(webhook_subscriptions)
        .where(
            S.subscription_id == subscription_id,
            S.state == "active",
            or_(S.lease_until.is_(None), S.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=until)
    )
    return bool(getattr(done, "rowcount", 0))


async def release(session: AsyncSession, subscription_id: str, owner: str) -> None:
    await session.execute(
        update(webhook_subscriptions)
        .where(S.subscription_id == subscription_id, S.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


async def feed_after(session: AsyncSession, after: int, limit: int, *, with_data: bool) -> list[dict[str, Any]]:
    """The feed's next events; their data only when a filter must look into it."""
    c = rm_changes.c
    cols = [c.seq, c.event_id, c.type, c.subject, *([c.data] if with_data else [])]
    stmt = select(*cols).where(c.seq > after).order_by(c.seq).limit(limit)
    return [dict(x) for x in (await session.execute(stmt)).mappings()]


async def add_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await insert_rows(session, webhook_deliveries, list(rows))


async def pending_head(session: AsyncSession, subscription_id: str, limit: int) -> list[dict[str, Any]]:
    """The oldest pending deliveries of a subscription with their events, in delivery order."""
    c = rm_changes.c
    stmt = (
        select(
            D.delivery_id,
            D.attempts,
            D.next_attempt_at,
            c.event_id,
            c.type,
            c.source,
            c.subject,
            c.time,
            c.data,
        )
        .join(rm_changes, c.seq == D.seq)
        .where(D.subscription_id == subscription_id, D.state == "pending")
        .order_by(D.delivery_id)
        .limit(limit)
    )
    return [dict(x) for x in (await session.execute(stmt)).mappings()]


async def record_attempt(session: AsyncSession, delivery_id: int, **values: Any) -> None:
    await session.execute(update(webhook_deliveries).where(D.delivery_id == delivery_id).values(**values))


async def mark_delivered(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Successes (`delivery_id`, `attempts`, `at`, `status`), one executemany; a delivery superseded
    by a replay meanwhile stays superseded."""
    stmt = (
        update(webhook_deliveries)
        .where(D.delivery_id == bindparam("b_id"), D.state == "pending")
        .values(
            state="delivered",
            attempts=bindparam("b_attempts"),
            last_attempt_at=bindparam("b_at", type_=D.last_attempt_at.type),
            delivered_at=bindparam("b_at", type_=D.delivered_at.type),
            last_status=bindparam("b_status"),
            last_error=None,
        )
    )
    params = [
        {"b_id": r["delivery_id"], "b_attempts": r["attempts"], "b_at": r["at"], "b_status": r["status"]} for r in rows
    ]
    await (await session.connection()).execute(stmt, params)


async def supersede_pending(session: AsyncSession, subscription_id: str) -> int:
    """A replay re-sends from its point: the pending deliveries are superseded by the replayed ones."""
    done = await session.execute(
        update(webhook_deliveries)
        .where(D.subscription_id == subscription_id, D.state == "pending")
        .values(state="superseded")
    )
    return int(getattr(done, "rowcount", 0) or 0)


async def retry_pending_now(session: AsyncSession, subscription_id: str, now: datetime) -> None:
    await session.execute(
        update(webhook_deliveries)
        .where(D.subscription_id == subscription_id, D.state == "pending")
        .values(next_attempt_at=now)
    )


async def list_deliveries(
    session: AsyncSession, subscription_id: str, state: str | None, after: tuple[int] | None, limit: int
) -> list[dict[str, Any]]:
    stmt = select(webhook_deliveries).where(D.subscription_id == subscription_id)
    if state is not None:
        stmt = stmt.where(D.state == state)
    return [dict(x) for x in (await session.execute(keyset(stmt, [D.delivery_id], after, limit))).mappings()]


async def delivery(session: AsyncSession, subscription_id: str, delivery_id: int) -> dict[str, Any] | None:
    found = await session.execute(
        select(webhook_deliveries).where(and_(D.subscription_id == subscription_id, D.delivery_id == delivery_id))
    )
    row = found.mappings().first()
    return dict(row) if row else None


async def backlog(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).where(D.state == "pending")) or 0)
