"""Keyset pagination: an opaque cursor holding the last row's sort key, decoded and typed in one place.

A route asks `decode_cursor(cursor, date, str)` for the key it sorts on; the repository applies it
with `keyset()`; the route answers `page(rows, limit, key)`. A cursor that is not one of ours — bad
base64, another shape, a value of the wrong type — is a 422 `invalid-cursor`, never a 500.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Generic, TypeVar, overload

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import Select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from shared.clock import as_utc
from shared.errors import InvalidCursor

T = TypeVar("T")
Row = TypeVar("Row")
S = TypeVar("S", bound=Select[Any])


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last page")


def encode_cursor(key: Sequence[Any]) -> str:
    values = [as_utc(v) if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def _typed(value: Any, kind: type[Any]) -> Any:
    """One key value as `kind`, or ValueError/TypeError when the cursor holds something else."""
    if kind is datetime:
        if not isinstance(value, str):
            raise TypeError("expected a timestamp")
        return as_utc(datetime.fromisoformat(value))
    if kind is date:
        if not isinstance(value, str):
            raise TypeError("expected a date")
        return date.fromisoformat(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected an integer")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise TypeError("expected a string")
        return value
    raise TypeError(f"no cursor decoding for {kind.__name__}")


@overload
def decode_cursor(cursor: str | None, k1: type[T], /) -> tuple[T] | None: ...
@overload
def decode_cursor(cursor: str | None, k1: type[T], k2: type[Any], /) -> tuple[T, Any] | None: ...
def decode_cursor(cursor: str | None, *kinds: type[Any]) -> tuple[Any, ...] | None:
    """The typed sort key a cursor holds (None without a cursor); 422 `invalid-cursor` otherwise."""
    if not cursor:
        return None
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidCursor() from None
    if not isinstance(raw, list) or len(raw) != len(kinds):
        raise InvalidCursor()
    try:
        return tuple(_typed(v, k) for v, k in zip(raw, kinds, strict=True))
    except (ValueError, TypeError):
        raise InvalidCursor() from None


def page(
    rows: Sequence[Row],
    limit: int,
    key: Callable[[Row], Sequence[Any]],
    out: Callable[[Row], Any] | None = None,
) -> dict[str, Any]:
    """`{"items", "next_cursor"}` from up to `limit + 1` rows fetched after the cursor's key."""
    more = len(rows) > limit
    kept = rows[:limit]
    return {
        "items": [out(r) for r in kept] if out else list(kept),
        "next_cursor": encode_cursor(key(kept[-1])) if more and kept else None,
    }


def where_given(stmt: S, *filters: tuple[ColumnElement[Any], Any]) -> S:
    """`stmt` narrowed to `column == value` for each `(column, value)` given (not None): a list's optional
    filters."""
    return stmt.where(*(column == value for column, value in filters if value is not None))


def keyset(
    stmt: S, columns: Sequence[ColumnElement[Any]], after: Sequence[Any] | None, limit: int, *, descending: bool = False
) -> S:
    """`stmt` ordered by `columns`, starting after the key `after` (row-value comparison), `limit` rows."""
    if after is not None:
        left = columns[0] if len(columns) == 1 else tuple_(*columns)
        right = after[0] if len(columns) == 1 else tuple_(*after)
        stmt = stmt.where(left < right if descending else left > right)
    order = [c.desc() for c in columns] if descending else list(columns)
    return stmt.order_by(*order).limit(limit)
