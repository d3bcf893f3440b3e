"""`Idempotency-Key` on creates: the same key and body answer the first response again.

The key, a hash of the request and the response are stored in the same transaction as the
create, so a retry after a lost answer can never create twice. The same key with another body
is a 422 problem.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import IdempotencyKeyReused, ValidationFailed


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("principal", String(128), primary_key=True),
        Column("key", String(200), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status", Integer, nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def request_hash(method: str, path: str, body: Any) -> str:
    return hashlib.sha256(
        method.encode() + b" " + path.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


async def replay(
    session: AsyncSession, table: Table, principal: str, key: str | None, fingerprint: str
) -> StoredResponse | None:
    """The stored answer for this key, or None to go ahead; a reused key with another body is refused."""
    if not key:
        return None
    if len(key) > 200:
        raise ValidationFailed.one(
            "Idempotency-Key", "header", "at most 200 characters", "Idempotency-Key is longer than 200 characters"
        )
    row = (await session.execute(select(table).where(table.c.principal == principal, table.c.key == key))).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyKeyReused(key)
    return StoredResponse(row.status, orjson.loads(row.body))


async def remember(
    session: AsyncSession, table: Table, principal: str, key: str | None, fingerprint: str, status: int, body: Any
) -> None:
    if not key:
        return
    await session.execute(
        insert(table).values(
            principal=principal,
            key=key,
            request_hash=fingerprint,
            status=status,
            body=orjson.dumps(body).decode(),
            created_at=datetime.now(UTC),
        )
    )
