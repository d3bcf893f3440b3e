"""Parsing bulk requests (JSON array, NDJSON) into validated rows or per-row problems."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from services.sampling.schemas import ResultIn, RowProblem
from shared.problems import Problem, validation_errors

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
JSON_TYPES = ("application/json",)


def _validate(obj: Any) -> ResultIn | list[RowProblem]:
    if not isinstance(obj, dict):
        return [RowProblem(field="", reason="each row must be a JSON object")]
    try:
        return ResultIn.model_validate(obj)
    except ValidationError as exc:
        return [
            RowProblem(field=e["field"], reason=e["reason"]) for e in validation_errors([dict(e) for e in exc.errors()])
        ]


def _too_many(n: int, limit: int) -> Problem:
    return Problem(
        413,
        "batch-too-large",
        "Too many rows",
        f"A batch holds at most {limit} rows; this one has {n}.",
        max_rows=limit,
        rows=n,
    )


def parse_batch(body: bytes, content_type: str, max_rows: int) -> list[ResultIn | list[RowProblem]]:
    media = content_type.split(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        if len(lines) > max_rows:
            raise _too_many(len(lines), max_rows)
        rows: list[ResultIn | list[RowProblem]] = []
        for line in lines:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                rows.append([RowProblem(field="", reason=f"malformed JSON: {exc}")])
                continue
            rows.append(_validate(obj))
        return rows
    if media in JSON_TYPES:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Problem(400, "malformed-json", "Malformed JSON", str(exc)) from None
        if not isinstance(data, list):
            raise Problem(
                422,
                "validation-error",
                "The request is not valid",
                "The body must be a JSON array of rows",
                errors=[{"field": "body", "reason": "expected an array"}],
            )
        if len(data) > max_rows:
            raise _too_many(len(data), max_rows)
        return [_validate(obj) for obj in data]
    raise Problem(
        415,
        "unsupported-media-type",
        "Unsupported content type",
        f"Send {', '.join(JSON_TYPES + NDJSON_TYPES)}; got {media or 'none'}.",
    )
