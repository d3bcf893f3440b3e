"""Webhook fan-out: deliveries per second from the change feed to a local receiver with 100
subscriptions, embedded (SQLite), beside the same number of raw signed POSTs to that receiver.

The suite's figure is the whole path of services/gateway/webhooks/dispatcher.py: the feed's events
fanned out into each subscription's delivery outbox, each delivery signed (Standard Webhooks),
POSTed, and marked delivered in its own transaction, in order per subscription, 16 subscriptions
served at once. The baseline (same run) POSTs the same bodies, signed the same way, with 16 requests
in flight and no outbox: what the HTTP round trips alone cost. The receiver is a bare ASGI app in its
own uvicorn process that answers 204 to every request.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import common

NAME = "webhook_fanout"
SUBSCRIPTIONS = 100
CONCURRENCY = 16  # the dispatcher's default `webhook_concurrency`: the baseline keeps as many in flight


async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The local receiver: reads the request, answers 204 (and 200 to the readiness GET)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    status = 204 if scope["method"] == "POST" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _suite(url: str, hook: str) -> tuple[float, int]:
    """Subscriptions from the feed's start, the dispatcher running until every delivery is made."""
    from prometheus_client import CollectorRegistry
    from sqlalchemy import func, select

    from services.gateway.models import webhook_deliveries
    from services.gateway.settings import GatewaySettings
    from services.gateway.webhooks import repository
    from services.gateway.webhooks.dispatcher import WebhookDispatcher
    from services.gateway.webhooks.domain import new_secret
    from shared.contracts.sampling import RESULT_RECORDED
    from shared.db import Database
    from shared.supervisor import Supervisor

    db = Database(url)
    try:
        async with db.unit_of_work() as uow:
            events = await repository.feed_end(uow.session)
            for i in range(SUBSCRIPTIONS):
                row = {
                    "subscription_id": str(uuid.UUID(int=i)),
                    "owner": "bench",
                    "url": hook,
                    "event_types": orjson.dumps([RESULT_RECORDED]).decode(),
                    "officer": False,
                    "secret": new_secret(),
                    "state": "active",
                    "cursor_seq": 0,
                    "created_at": datetime.now(UTC),
                }
                await repository.add_subscription(uow.session, row)
            await uow.commit()
        total = events * SUBSCRIPTIONS
        settings = GatewaySettings(database_url=url, webhook_allowed_hosts=["127.0.0.1"], webhook_poll_s=0.05)
        supervisor = Supervisor()
        dispatcher = WebhookDispatcher(db.unit_of_work, settings, CollectorRegistry())
        delivered = select(func.count()).where(webhook_deliveries.c.state == "delivered")
        t = time.perf_counter()
        dispatcher.start(supervisor)
        try:
            done = 0
            while done < total:
                await asyncio.sleep(0.1)
                async with db.unit_of_work() as uow:
                    done = int(await uow.session.scalar(delivered) or 0)
            elapsed = time.perf_counter() - t
        finally:
            await dispatcher.stop()
            await supervisor.stop()
    finally:
        await db.dispose()
    return elapsed, total


async def _raw_posts(url: str, hook: str, total: int) -> float:
    """The baseline: the feed's events as signed CloudEvents, POSTed `total` times, 16 in flight."""
    from sqlalchemy import select

    from services.gateway.models import rm_changes
    from services.gateway.repository import cloud_event
    from services.gateway.webhooks.domain import new_secret, sign
    from shared.db import Database

    db = Database(url)
    try:
        async with db.unit_of_work() as uow:
            rows = [
                dict(r) for r in (await uow.session.execute(select(rm_changes).order_by(rm_changes.c.seq))).mappings()
            ]
    finally:
        await db.dispose()
    events = [cloud_event(r) for r in rows]
    secret = new_secret()
    next_i = 0
    limits = httpx.Limits(max_connections=CONCURRENCY * 2)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_i
            while next_i < total:
                event = events[next_i % len(events)]
                next_i += 1
                at = datetime.now(UTC)
                body = orjson.dumps(event).decode()
                headers = {
                    "content-type": "application/cloudevents+json",
                    "webhook-id": event["id"],
                    "webhook-timestamp": str(int(at.timestamp())),
                    "webhook-signature": sign([secret], event["id"], at, body),
                }
                async with client.stream("POST", hook, content=body.encode(), headers=headers) as r:
                    if r.status_code != 204:
                        raise RuntimeError(f"the receiver answered {r.status_code}")

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - t


def run(args: Any) -> list[dict[str, Any]]:
    from bench.warning_eval import _load, stream

    n_events = 30 if args.quick else 100
    tmp = Path(tempfile.mkdtemp(prefix="qc-bench-hooks-"))
    url = f"sqlite+aiosqlite:///{tmp}/gateway.db"
    asyncio.run(_load(url, stream(n_events), with_rules=False))  # the feed: recorded results, as consumed
    port = common.free_port()
    server = common.Server(
        "receiver",
        common.uvicorn_argv("bench.webhook_fanout:receiver", port, factory=False),
        port,
        tmp / "receiver.log",
    )
    with common.servers(server):
        server.wait_ready(path="/")
        hook = f"{server.url}/hook"
        print(f"[{NAME}] {n_events} feed events × {SUBSCRIPTIONS} subscriptions, data in {tmp}", flush=True)
        total = n_events * SUBSCRIPTIONS
        # The baseline before and after the suite, averaged: the machine's load drifts within a run.
        raw_before = asyncio.run(_raw_posts(url, hook, total))
        suite_s, delivered = asyncio.run(_suite(url, hook))
        raw_after = asyncio.run(_raw_posts(url, hook, total))
    assert delivered == total, (delivered, total)
    raw_s = (raw_before + raw_after) / 2
    suite_rate, raw_rate = total / suite_s, total / raw_s
    print(
        f"[{NAME}] {total:,} deliveries in {suite_s:.2f}s: {suite_rate:,.0f}/s through the outbox, "
        f"{raw_rate:,.0f}/s as raw signed POSTs ({total / raw_before:,.0f} before, {total / raw_after:,.0f} after)",
        flush=True,
    )
    return [
        common.figure(
            NAME,
            f"deliveries, {SUBSCRIPTIONS} subscriptions (outbox, signed, in order)",
            suite_rate,
            "deliveries/s",
            baseline=raw_rate,
            deliveries=total,
        ),
        common.figure(
            NAME, "time per delivery, 16 in flight", suite_s / total * 1e3, "ms", baseline=raw_s / total * 1e3
        ),
    ]
