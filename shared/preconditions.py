"""Optimistic concurrency over HTTP: ETag on reads, `If-Match` required on updates."""

from __future__ import annotations

from shared.errors import PreconditionRequired, StaleVersion, etag

__all__ = ["check_if_match", "etag"]


def check_if_match(if_match: str | None, current_version: int) -> None:
    """428 without `If-Match`, 412 when it names another version than the stored one."""
    if if_match is None:
        raise PreconditionRequired()
    wanted = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" not in wanted and etag(current_version) not in wanted:
        raise StaleVersion(current_version)
