"""`Idempotency-Key` on creates: the same key and body answer the first response again.

The key, a hash of the request and the response are stored in the same transaction as the
create, so a retry after a lost answer can never create twice. The same key with another body
is a 422 problem. Keys belong to the token's subject within its agency: two agencies' clients
with the same subject name never share keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import columns
from shared.auth import Principal
from shared.db import UnitOfWork
from shared.errors import IdempotencyKeyReused, ValidationFailed, etag


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        columns.subject("principal", primary_key=True),
        Column("key", String(200), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("status", Integer, nullable=False),
        Column("body", Text, nullable=False),
        columns.timestamp("created_at"),
    )


def request_hash(method: str, path: str, body: Any) -> str:
    return hashlib.sha256(
        method.encode() + b" " + path.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    replayed: bool = False


def key_scope(principal: Principal) -> str:
    """Whose keys these are: the subject within its agency (the column is 128 characters wide)."""
    scope = f"{principal.agency}/{principal.subject}" if principal.agency else principal.subject
    return scope if len(scope) <= 128 else "sha256:" + hashlib.sha256(scope.encode()).hexdigest()


async def idempotent(
    session: AsyncSession,
    table: Table,
    principal: Principal,
    key: str | None,
    fingerprint: str,
    create: Callable[[], Awaitable[tuple[int, Any]]],
) -> StoredResponse:
    """The stored answer for a retried key (`replayed`), or `create()`'s `(status, body)`, remembered.

    The caller commits: the key is stored in the create's own transaction.
    """
    scope = key_scope(principal)
    stored = await replay(session, table, scope, key, fingerprint)
    if stored is not None:
        return StoredResponse(stored.status, stored.body, replayed=True)
    status, body = await create()
    await remember(session, table, scope, key, fingerprint, status, body)
    return StoredResponse(status, body)


async def post_once(
    uow: UnitOfWork,
    response: Response,
    table: Table,
    principal: Principal,
    key: str | None,
    path: str,
    body: BaseModel,
    create: Callable[[], Awaitable[tuple[int, Any]]],
) -> Any:
    """A POST route's answer under its Idempotency-Key: `create()` once, commit, the stored status, body and ETag."""
    fingerprint = request_hash("POST", path, body.model_dump(mode="json"))
    done = await idempotent(uow.session, table, principal, key, fingerprint, create)
    await uow.commit()
    response.status_code = done.status
    response.headers["ETag"] = etag(done.body["version"])
    return done.body


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
    return StoredResponse(row.status, orjson.loads(row.body), replayed=True)


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
