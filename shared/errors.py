"""One error hierarchy: a class per condition, raised wherever the condition is found.

Each class knows its problem slug, title and HTTP status (class attributes); an instance carries the
detail and any extension fields. `shared.problems` turns every `QualityCityError` into an RFC 9457
problem+json answer in one place at the edge, so domain modules name the condition and never an HTTP
status of their own (the shape of polar's `polar/exceptions.py` and yente's `yente/exc.py`).

Generic conditions live here; conditions of one service are subclasses in its `domain.py`
(e.g. `ResultNotFound(NotFound)` with the slug `result-not-found`). A subclass that only words the
title differently for one situation inherits its parent's slug: the problem type stays the same.
"""

from __future__ import annotations

from typing import Any, ClassVar


def field_error(field: str, where: str, reason: str, code: str | None = None) -> dict[str, Any]:
    """One entry of a problem's `errors`: the field, where it was sent (body, query, path, header)
    and why it is refused. Built by a function because `in` is a Python keyword."""
    out: dict[str, Any] = {"field": field, "in": where, "reason": reason}
    if code is not None:
        out["code"] = code
    return out


class QualityCityError(Exception):
    """The base of every error a request can answer with; raised as such it is a 500.

    A condition is declared on its class line, a real named subclass for `except` and the docs:
    `class ResultRetracted(Conflict, slug="result-retracted", title="Result retracted"): ...`; what
    is not given there is inherited (a status from the generic parent, the slug from a refined one).
    `default_detail` is the wording when the raiser gives none, for a condition that always reads the same."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    default_detail: ClassVar[str | None] = None
    #: A grouping class never raised itself (its subclasses give the slug and status).
    abstract: ClassVar[bool] = False

    def __init_subclass__(
        cls,
        *,
        status: int | None = None,
        slug: str | None = None,
        title: str | None = None,
        abstract: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if slug is not None:
            cls.slug = slug
        if title is not None:
            cls.title = title
        if abstract:
            cls.abstract = True

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        detail = detail or self.default_detail
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


# ---------------------------------------------------------------- 400


class BadRequest(QualityCityError, status=400, slug="bad-request", title="Bad request"): ...


class MalformedJson(BadRequest, slug="malformed-json", title="Malformed JSON"): ...


class MalformedCsv(BadRequest, slug="malformed-csv", title="Malformed CSV"): ...


class MalformedCsvHeader(MalformedCsv, title="Malformed CSV header"):
    """The same problem type, titled for the header row."""


# ---------------------------------------------------------------- 401 / 403


class Unauthenticated(QualityCityError, status=401, slug="unauthenticated", title="Authentication required"):
    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="qualitycity"'}, **extensions)


class Forbidden(QualityCityError, status=403, slug="forbidden", title="Forbidden"): ...


class InsufficientScope(Forbidden, slug="insufficient-scope", title="Insufficient scope"):
    def __init__(self, *scopes: str, detail: str | None = None) -> None:
        if detail is None:
            detail = (
                f"This operation needs the scope '{scopes[0]}'"
                if len(scopes) == 1
                else f"This operation needs one of the scopes {', '.join(scopes)}"
            )
        super().__init__(detail, required_scope=scopes[0])


# ---------------------------------------------------------------- 404 / 409


class NotFound(QualityCityError, status=404, slug="not-found", title="Not found"): ...


class JobNotFound(NotFound, slug="job-not-found", title="No such job"): ...


class Conflict(QualityCityError, status=409, slug="conflict", title="Conflict"): ...


class ConcurrentConflict(Conflict, slug="concurrent-conflict", title="Conflicting concurrent request"):
    default_detail = "Another request stored the same thing at the same moment; retry to see it."


class InvalidTransition(Conflict, slug="invalid-transition", title="Invalid transition"): ...


# ---------------------------------------------------------------- preconditions


def etag(version: int) -> str:
    return f'"{version}"'


class StaleVersion(QualityCityError, status=412, slug="precondition-failed", title="Stale If-Match"):
    """An update named a version (If-Match, or the one it read) that is no longer the stored one."""

    def __init__(self, current_version: int | None = None) -> None:
        if current_version is None:
            super().__init__("The resource changed since it was read; read it again and retry.")
        else:
            super().__init__(
                "The resource changed since it was read; read it again and retry.",
                current_etag=etag(current_version),
            )


class PreconditionRequired(QualityCityError, status=428, slug="precondition-required", title="If-Match required"):
    default_detail = "Send the ETag you read in If-Match, so a concurrent change is not overwritten."


# ---------------------------------------------------------------- 413 / 415


class PayloadTooLarge(QualityCityError, status=413, slug="payload-too-large", title="Payload too large"): ...


class BatchTooLarge(PayloadTooLarge, slug="batch-too-large", title="Too many rows"):
    def __init__(self, rows: int, max_rows: int) -> None:
        super().__init__(f"A batch holds at most {max_rows} rows; this one has {rows}.", max_rows=max_rows, rows=rows)


class UriTooLong(QualityCityError, status=414, slug="uri-too-long", title="URI too long"): ...


class UnsupportedMediaType(
    QualityCityError, status=415, slug="unsupported-media-type", title="Unsupported content type"
): ...


# ---------------------------------------------------------------- 422


class ValidationFailed(QualityCityError, status=422, slug="validation-error", title="The request is not valid"):
    """422 with `errors: [{field, in, reason[, code]}]`, the shape of FastAPI's own validation answer."""

    def __init__(
        self, detail: str | None = None, errors: list[dict[str, Any]] | None = None, **extensions: Any
    ) -> None:
        if errors is not None:
            extensions["errors"] = errors
        super().__init__(detail, **extensions)

    @classmethod
    def one(
        cls, field: str, where: str, reason: str, detail: str | None = None, code: str | None = None
    ) -> ValidationFailed:
        """One refused field; the detail defaults to the reason."""
        return cls(detail or reason, [field_error(field, where, reason, code)])


class InvalidCursor(ValidationFailed, slug="invalid-cursor", title="Invalid cursor"):
    def __init__(self) -> None:
        super().__init__(
            "The cursor was not issued by this API", [field_error("cursor", "query", "not a cursor from this API")]
        )


class InvalidUscc(ValidationFailed, slug="invalid-uscc", title="Invalid USCC"):
    @classmethod
    def of(cls, value: str, reason: str, field: str = "uscc", where: str = "query") -> InvalidUscc:
        """One code refused by `shared.uscc.validate_uscc` (its message is the reason)."""
        return cls(f"{value!r}: {reason}", [field_error(field, where, reason)])


class IdempotencyKeyReused(
    QualityCityError, status=422, slug="idempotency-key-reused", title="Idempotency-Key reused with another request"
):
    def __init__(self, key: str) -> None:
        super().__init__(f"The key {key!r} was first used with a different request body.")


# ---------------------------------------------------------------- 429 / 5xx


class RateLimited(QualityCityError, status=429, slug="rate-limited", title="Too many requests"):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Retry in {retry_after} s", headers={"Retry-After": str(retry_after)})


class BadGateway(QualityCityError, status=502, slug="bad-gateway", title="Bad gateway"): ...


class ServiceUnavailable(QualityCityError, status=503, slug="service-unavailable", title="Service unavailable"): ...


class DatabaseUnavailable(ServiceUnavailable, slug="database-unavailable", title="Database unavailable"):
    """The database cannot be reached (refused, reset, pool exhausted): nothing was stored; retry."""

    retry_after_s: ClassVar[int] = 5

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(
            detail or "The database cannot be reached right now; nothing was stored. Retry shortly.",
            headers={"Retry-After": str(self.retry_after_s)},
        )


class NotReady(ServiceUnavailable, slug="not-ready", title="Not ready"): ...


class GatewayTimeout(QualityCityError, status=504, slug="gateway-timeout", title="Gateway timeout"): ...


def all_error_classes() -> list[type[QualityCityError]]:
    """Every subclass imported so far, the base included (for the registry test and the docs)."""
    out: list[type[QualityCityError]] = [QualityCityError]
    todo = [QualityCityError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in out:
                out.append(sub)
                todo.append(sub)
    return out


class UncommittedWrites(QualityCityError, status=500, slug="uncommitted-writes", title="Writes were not committed"):
    """A route changed data and answered success without committing (a programming error: see
    shared.runtime's unit of work); nothing was stored."""
