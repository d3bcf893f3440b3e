"""Notices (公告): an agency, or the bureau, publishes final fails under a numbered, dated notice, which
the public list of non-conforming products cites (docs/assessment.md).

A notice is versioned like a result: a correction after publication (its date, title or the results
it cites; never its number) makes a new version, and every version is kept with who made it and why.
Use cases add and flush in the caller's unit of work; they never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.sampling import repository
from services.sampling.domain import (
    NothingToCorrect,
    NoticeNotFound,
    NoticeNumberTaken,
    NotNoticePublisher,
    NotPublishable,
    publish_problem,
)
from services.sampling.models import notices
from services.sampling.schemas import NoticeCorrection, NoticeIn
from shared.context import Context
from shared.errors import ValidationFailed, field_error
from shared.preconditions import check_if_match, update_if_version
from shared.uuid7 import new_ids

#: What a notice's version records (its snapshot): the fields a correction may change, and its number.
SNAPSHOT = ("notice_no", "notice_date", "title", "publisher", "result_ids")


async def _check_results(
    session: AsyncSession,
    ctx: Context,
    result_ids: Sequence[str],
    notice_date: date,
    publisher: str | None,
    notice_id: str | None,
) -> None:
    """Every cited result must be a final fail of the publisher's, reported by the notice's date and
    cited by no other notice; otherwise nothing is stored and each refused one is named with why."""
    if notice_date > ctx.clock.today():
        raise ValidationFailed.one("notice_date", "body", f"{notice_date.isoformat()} is in the future")
    rows = await repository.results_by_ids(session, result_ids)
    cited = await repository.citing_notices(session, result_ids)
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, rid in enumerate(result_ids):
        other = cited.get(rid)
        by_other = other[1] if other is not None and other[0] != notice_id else None
        why = publish_problem(rows.get(rid), notice_date, publisher, by_other)
        if why is None and rid in seen:
            why = "listed twice"
        seen.add(rid)
        if why is not None:
            errors.append(field_error(f"result_ids[{i}]", "body", why))
    if errors:
        raise NotPublishable(f"{len(errors)} of {len(result_ids)} results cannot be published in this notice", errors)


def _version(
    notice: dict[str, Any], result_ids: Sequence[str], change: str, reason: str | None, ctx: Context
) -> dict[str, Any]:
    snapshot = {**{k: notice[k] for k in SNAPSHOT if k != "result_ids"}, "result_ids": sorted(result_ids)}
    return {
        "notice_id": notice["id"],
        "version": notice["version"],
        "change": change,
        "reason": reason,
        "actor": ctx.actor,
        "agency": ctx.agency,
        "at": notice["updated_at"],
        "snapshot": orjson.dumps(snapshot).decode(),
    }


async def publish(session: AsyncSession, ctx: Context, body: NoticeIn) -> str:
    """A new notice, version 1, of the token's agency (or the bureau's); answers its id."""
    taken = await repository.notice_by_no(session, body.notice_no)
    if taken is not None:
        raise NoticeNumberTaken(body.notice_no, taken["id"])
    await _check_results(session, ctx, body.result_ids, body.notice_date, ctx.agency, None)
    now = ctx.clock.now()
    (notice_id,) = new_ids(1)
    row = {
        "id": notice_id,
        "version": 1,
        "notice_no": body.notice_no,
        "notice_date": body.notice_date,
        "title": body.title,
        "publisher": ctx.agency,
        "published_at": now,
        "published_by": ctx.actor,
        "updated_at": now,
    }
    await repository.insert_notice(session, row)
    await repository.set_notice_results(session, notice_id, body.result_ids)
    await repository.insert_notice_version(session, _version(row, body.result_ids, "published", None, ctx))
    return notice_id


async def correct(
    session: AsyncSession, ctx: Context, notice_id: str, if_match: str | None, body: NoticeCorrection
) -> dict[str, Any]:
    """A new version of a notice by its publisher; the earlier ones stay in its history."""
    old = await repository.get_notice(session, notice_id)
    if old is None:
        raise NoticeNotFound(notice_id)
    if old["publisher"] != ctx.agency:
        raise NotNoticePublisher(old["publisher"])
    check_if_match(if_match, old["version"])
    old_ids = (await repository.notice_result_ids(session, [notice_id]))[notice_id]
    new = dict(old)
    for field in ("notice_date", "title"):
        value = getattr(body, field)
        if value is not None:
            new[field] = value
    new_ids_ = list(body.result_ids) if body.result_ids is not None else old_ids
    if new["notice_date"] == old["notice_date"] and new["title"] == old["title"] and sorted(new_ids_) == old_ids:
        raise NothingToCorrect()
    await _check_results(session, ctx, new_ids_, new["notice_date"], old["publisher"], notice_id)
    new["updated_at"] = ctx.clock.now()
    values = {"notice_date": new["notice_date"], "title": new["title"], "updated_at": new["updated_at"]}
    new["version"] = await update_if_version(session, notices, notices.c.id == notice_id, old["version"], values)
    if sorted(new_ids_) != old_ids:
        await repository.set_notice_results(session, notice_id, new_ids_)
    await repository.insert_notice_version(session, _version(new, new_ids_, "corrected", body.reason, ctx))
    return new
