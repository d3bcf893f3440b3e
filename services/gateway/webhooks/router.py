"""Thin routes of the subscriptions (scope `subscriptions:write`; each caller sees its own)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.types import DecoratedCallable
from pydantic import BaseModel

from services.gateway.visibility import visibility
from services.gateway.webhooks import repository
from services.gateway.webhooks.domain import check_callback_url, new_secret
from services.gateway.webhooks.schemas import (
    CATALOG_TYPES,
    DEFAULT_OVERLAP_S,
    MAX_OVERLAP_S,
    DeliveryOut,
    PingOut,
    ReplayOut,
    SecretRotated,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
)
from shared.auth import Principal, require
from shared.clock import as_utc
from shared.errors import InvalidTransition, NotFound, ValidationFailed, field_error
from shared.pagination import decode_cursor, encode_cursor, page
from shared.routing import CURSOR_PATTERN, ERRORS, Cursor, Limit, Section, problems
from shared.runtime import Runtime, UoW

router = APIRouter(prefix="/v1")
_subs = Section(router, "subscriptions", ERRORS)
Subscriber = Annotated[Principal, require("subscriptions:write")]


class SubscriptionNotFound(NotFound, slug="subscription-not-found", title="No such subscription"):
    """None with this id, or it belongs to another token's subject."""


class DeliveryNotFound(NotFound, slug="delivery-not-found", title="No such delivery"):
    """The subscription has no delivery with this id."""


class UnknownEventTypes(ValidationFailed, slug="unknown-event-type", title="Unknown event type"):
    """A subscription names an event type that is not in the catalog."""


def _overlap_end(row: dict[str, Any]) -> datetime | None:
    """When the replaced secret stops signing, while it still does (secrets themselves are never read back)."""
    until = row.get("previous_secret_until")
    return as_utc(until) if until is not None and as_utc(until) > datetime.now(UTC) else None


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "subscription_id": row["subscription_id"],
        "url": row["url"],
        "event_types": orjson.loads(row["event_types"]),
        "subjects": orjson.loads(row["subjects"]) if row["subjects"] else None,
        "filters": orjson.loads(row["filters"]) if row.get("filters") else None,
        "description": row.get("description"),
        "state": row["state"],
        "disabled_reason": row["disabled_reason"],
        "disabled_at": row["disabled_at"],
        "failing_since": row["failing_since"],
        "cursor": encode_cursor([row["cursor_seq"]]),
        "previous_secret_expires_at": _overlap_end(row),
        "created_at": row["created_at"],
    }


async def _own(uow: UoW, owner: str, subscription_id: str) -> dict[str, Any]:
    row = await repository.subscription(uow.session, subscription_id)
    if row is None or row["owner"] != owner:
        raise SubscriptionNotFound(f"No subscription {subscription_id!r} of yours")
    return row


async def _own_subscription(subscription_id: str, principal: Subscriber, uow: UoW) -> dict[str, Any]:
    return await _own(uow, principal.subject, subscription_id)


#: `sub: OwnSubscription`: the caller's subscription named by the path (404 when none or another's). Only
#: for routes without query parameters: a dependency answers its 404 before a bad parameter's 422.
OwnSubscription = Annotated[dict[str, Any], Depends(_own_subscription)]


def _action(
    tail: str, model: type[BaseModel], summary: str, **options: Any
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """An action on one of the caller's subscriptions: `POST /subscriptions/{subscription_id}<tail>`
    answering `model` (`tail`: `:verb`, or a path below the subscription ending in `:verb`)."""
    return _subs.post(f"/subscriptions/{{subscription_id}}{tail}", response_model=model, summary=summary, **options)


def _wake(request: Request) -> None:
    dispatcher = getattr(request.app.state, "webhooks", None)
    if dispatcher is not None:
        dispatcher.notify()


@_subs.create(
    "/subscriptions",
    SubscriptionCreated,
    summary="Subscribe a callback to event types (signed Standard Webhooks); the secret is shown once",
)
async def create_subscription(
    body: SubscriptionIn, principal: Subscriber, runtime: Runtime, uow: UoW, response: Response
) -> Any:
    settings = runtime.settings
    url = check_callback_url(
        body.url.strip(),
        https_only=runtime.platform.env == "production",
        allowed_hosts=settings.webhook_allowed_hosts,  # type: ignore[attr-defined]
    )
    unknown = [t for t in body.event_types if t not in CATALOG_TYPES]  # a batch type is never delivered
    if unknown:
        raise UnknownEventTypes(
            f"Not event types of the catalog: {', '.join(sorted(set(unknown)))}",
            [field_error(f"event_types[{body.event_types.index(t)}]", "body", "not in the catalog") for t in unknown],
        )
    now = datetime.now(UTC)
    row = {
        "subscription_id": str(uuid.uuid4()),
        "owner": principal.subject,
        "url": url,
        "event_types": orjson.dumps(sorted(set(body.event_types))).decode(),
        "subjects": orjson.dumps(sorted({s.strip().upper() for s in body.subjects})).decode()
        if body.subjects is not None
        else None,
        "filters": orjson.dumps(body.filters.model_dump(exclude_none=True)).decode()
        if body.filters is not None and body.filters.model_dump(exclude_none=True)
        else None,
        "description": body.description,
        # What the change feed would show this token: officer-only credit events need an officer scope.
        "officer": visibility(principal).officer,
        "secret": new_secret(),
        "state": "active",
        "cursor_seq": await repository.feed_end(uow.session),  # from now on; history by replay
        "created_at": now,
    }
    await repository.add_subscription(uow.session, row)
    await uow.commit()
    response.headers["Location"] = f"/v1/subscriptions/{row['subscription_id']}"
    return {
        **_out({**row, "disabled_reason": None, "disabled_at": None, "failing_since": None}),
        "secret": row["secret"],
    }


@_subs.listing("/subscriptions", SubscriptionOut, summary="Your subscriptions")
async def list_subscriptions(principal: Subscriber, uow: UoW, cursor: Cursor = None, limit: Limit = 100) -> Any:
    rows = await repository.list_subscriptions(uow.session, principal.subject, decode_cursor(cursor, str), limit + 1)
    return page(rows, limit, lambda r: (r["subscription_id"],), _out)


@_subs.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    summary="One subscription: state, why it was disabled, how far the feed was delivered",
)
async def get_subscription(sub: OwnSubscription) -> Any:
    return _out(sub)


@_subs.route(
    "DELETE",
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Unsubscribe: nothing more is delivered",
)
async def delete_subscription(sub: OwnSubscription, uow: UoW) -> Response:
    await repository.delete_subscription(uow.session, sub["subscription_id"])
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@_subs.listing(
    "/subscriptions/{subscription_id}/deliveries",
    DeliveryOut,
    summary="A subscription's deliveries, oldest first: state, attempts, last response code and time",
)
async def list_deliveries(
    subscription_id: str,
    principal: Subscriber,
    uow: UoW,
    state: Literal["pending", "delivered", "superseded"] | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Any:
    await _own(uow, principal.subject, subscription_id)
    rows = await repository.list_deliveries(uow.session, subscription_id, state, decode_cursor(cursor, int), limit + 1)
    return page(rows, limit, lambda r: (r["delivery_id"],), _delivery_out)


def _delivery_out(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "next_attempt_at": r["next_attempt_at"] if r["state"] == "pending" else None}


@_action(
    "/deliveries/{delivery_id}:retry",
    DeliveryOut,
    "Retry a pending delivery now instead of at its back-off time",
    responses=problems(401, 403, 404, 409, 422),
)
async def retry_delivery(
    subscription_id: str, delivery_id: int, principal: Subscriber, request: Request, uow: UoW
) -> Any:
    await _own(uow, principal.subject, subscription_id)
    row = await repository.delivery(uow.session, subscription_id, delivery_id)
    if row is None:
        raise DeliveryNotFound(f"No delivery {delivery_id} in this subscription")
    if row["state"] != "pending":
        raise InvalidTransition(f"The delivery is {row['state']}; only a pending one is retried")
    now = datetime.now(UTC)
    await repository.record_attempt(uow.session, delivery_id, next_attempt_at=now)
    await uow.commit()
    _wake(request)
    return _delivery_out({**row, "next_attempt_at": now})


@_action(":replay", ReplayOut, "Re-send every matching event after a change-feed cursor (from the start without one)")
async def replay_subscription(
    subscription_id: str,
    principal: Subscriber,
    request: Request,
    uow: UoW,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description="A cursor of `/v1/changes` (or a subscription's `cursor`): events after it are re-sent",
            json_schema_extra={"pattern": CURSOR_PATTERN},
        ),
    ] = None,
) -> Any:
    await _own(uow, principal.subject, subscription_id)
    key = decode_cursor(from_, int)
    superseded = await repository.supersede_pending(uow.session, subscription_id)
    await repository.set_state(uow.session, subscription_id, cursor_seq=key[0] if key else 0)
    await uow.commit()
    _wake(request)
    return {"subscription_id": subscription_id, "from_cursor": from_, "superseded": superseded}


@_action(
    ":enable", SubscriptionOut, "Deliver again to a disabled subscription (its pending deliveries resume, in order)"
)
async def enable_subscription(sub: OwnSubscription, request: Request, uow: UoW) -> Any:
    subscription_id = sub["subscription_id"]
    await repository.set_state(
        uow.session, subscription_id, state="active", disabled_reason=None, disabled_at=None, failing_since=None
    )
    await repository.retry_pending_now(uow.session, subscription_id, datetime.now(UTC))
    await uow.commit()
    _wake(request)
    return _out(await _own(uow, sub["owner"], subscription_id))


@_action(
    ":rotate-secret", SecretRotated, "A new signing secret; the replaced one also signs deliveries during the overlap"
)
async def rotate_secret(
    subscription_id: str,
    principal: Subscriber,
    uow: UoW,
    overlap_s: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OVERLAP_S,
            description="Seconds during which deliveries carry signatures by both secrets (0: none)",
        ),
    ] = DEFAULT_OVERLAP_S,
) -> Any:
    row = await _own(uow, principal.subject, subscription_id)
    secret = new_secret()
    # Two secrets at most: a secret replaced during an earlier overlap signs nothing more.
    until = datetime.now(UTC) + timedelta(seconds=overlap_s) if overlap_s else None
    await repository.set_state(
        uow.session,
        subscription_id,
        secret=secret,
        previous_secret=row["secret"] if until else None,
        previous_secret_until=until,
    )
    await uow.commit()
    return {"subscription_id": subscription_id, "secret": secret, "previous_secret_expires_at": until}


@_action(":ping", PingOut, "Send a signed test event to the callback now and say how the receiver answered")
async def ping_subscription(sub: OwnSubscription, request: Request, uow: UoW) -> Any:
    await uow.commit()  # nothing written: the read's transaction ends before the network call
    return await request.app.state.webhooks.ping(sub)
