"""Optimistic concurrency over HTTP: ETag on reads, `If-Match` required on updates."""

from __future__ import annotations

from shared.problems import Problem


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int) -> None:
    """428 without `If-Match`, 412 when it names another version than the stored one."""
    if if_match is None:
        raise Problem(
            428,
            "precondition-required",
            "If-Match required",
            "Send the ETag you read in If-Match, so a concurrent change is not overwritten.",
        )
    wanted = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if "*" not in wanted and etag(current_version) not in wanted:
        raise Problem(
            412,
            "precondition-failed",
            "Stale If-Match",
            f"The resource changed: its current ETag is {etag(current_version)}.",
            current_etag=etag(current_version),
        )
