"""The delivery loop: fans the change feed out to each subscription's delivery outbox and sends it.

Per subscription, in one lease (so one replica at a time serves it and order is kept):
1. fan-out: the feed events after the subscription's cursor that it may see and asked for become
   pending deliveries, and the cursor moves, in one transaction (nothing skipped, nothing twice);
2. delivery: the oldest pending delivery is posted; on a 2xx the next one follows (the successes
   are marked delivered per batch, docs/webhooks.md); a failure schedules a retry with exponential
   back-off and holds the later ones back (in order per subscription). A subscription failing for
   `webhook_disable_after_s` is disabled with the reason; a 410 Gone disables it at once (the
   receiver says it is gone for good).

Supervised like the relay and the consumer (task `webhooks`, on /readyz and /metrics).
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter

from services.gateway.repository import cloud_event
from services.gateway.settings import GatewaySettings
from services.gateway.visibility import OFFICER_ONLY_EVENTS
from services.gateway.webhooks import repository
from services.gateway.webhooks.domain import (
    Filters,
    address_refused,
    next_attempt,
    ping_event,
    sign,
    signing_secrets,
)
from shared.clock import as_utc
from shared.db import UnitOfWork
from shared.supervisor import Supervisor
from shared.tasks import BackgroundLoop

log = structlog.get_logger("gateway.webhooks")

TASK = "webhooks"
#: Feed events read per fan-out step, deliveries sent per step of one subscription.
FAN_OUT_BATCH = 1000
SEND_BATCH = 100
#: Successes are recorded at least this often while a batch is being sent.
MARK_EVERY_S = 1.0
#: After a wake-up, the loop waits this long before looking, so a burst of commits makes one look.
WAKE_COALESCE_S = 0.2


def _now() -> datetime:
    # Wall-clock time, not the service clock: retries and leases are about real seconds.
    return datetime.now(UTC)


class WebhookDispatcher(BackgroundLoop):
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        settings: GatewaySettings,
        registry: CollectorRegistry,
        transport: httpx.AsyncBaseTransport | None = None,
        reader: Callable[[], UnitOfWork] | None = None,
    ) -> None:
        self.unit_of_work = unit_of_work
        # The look for work only reads: on SQLite it must not take the write lock the consumer waits
        # for (a look follows every batch that grew the feed).
        self.reader = reader or unit_of_work
        self.settings = settings
        self.owner = str(uuid.uuid4())
        self._wake = asyncio.Event()
        self._between_passes = asyncio.Event()
        self._between_passes.set()
        self._stopping = False
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self.sent = Counter(
            "qc_webhook_attempts", "Webhook delivery attempts by outcome", ["outcome"], registry=registry
        )
        self.disabled = Counter("qc_webhook_disabled", "Subscriptions disabled after failing", registry=registry)

    @property
    def task_name(self) -> str:
        return TASK

    def notify(self) -> None:
        self._wake.set()

    def start(self, supervisor: Supervisor) -> None:
        self._stopping = False
        self._client = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_s,
            follow_redirects=False,  # a redirect could lead anywhere, past the address checks
            transport=self._transport,
            limits=httpx.Limits(max_connections=self.settings.webhook_concurrency * 2),
        )
        self.start_loop(supervisor)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let the pass under way finish, then stop: a task cancelled inside a SQLite transaction
        leaves its connection's thread holding the write lock while the pool closes it, and every
        other writer of the file (the relay, the consumer) then waits out the busy timeout."""
        self._stopping = True
        self._wake.set()
        try:
            async with asyncio.timeout(grace_s):  # not wait_for: see shared/outbox.py
                await self._between_passes.wait()
        except TimeoutError:
            log.warning("webhook pass still running at stop; cancelled")
        await self.stop_loop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the webhook dispatcher is not started")
        return self._client

    async def run(self) -> None:
        # Between passes the loop sleeps until the feed grows here (`notify`, after the consumer's
        # commit), the next retry or foreign lease falls due, or `webhook_poll_s` passes (the poll is
        # for what another replica wrote): an idle suite runs no query for seconds at a time.
        while not self._stopping:
            # Cleared before the pass reads, so a commit during the pass wakes the next one.
            self._wake.clear()
            self._between_passes.clear()
            try:
                worked, due = await self.pass_once()
            finally:
                self._between_passes.set()
            if self._stopping:
                break
            if not worked:
                wait_s = self.settings.webhook_poll_s
                if due is not None:
                    wait_s = min(wait_s, max((due - _now()).total_seconds(), 0.0))
                try:
                    async with asyncio.timeout(wait_s):  # not wait_for: see shared/outbox.py
                        await self._wake.wait()
                    # Let the commits of a busy feed gather: one look per burst, not one per batch.
                    await asyncio.sleep(WAKE_COALESCE_S)
                except TimeoutError:
                    pass
        await asyncio.Event().wait()  # stopping: wait to be cancelled (a return would be restarted)

    async def pass_once(self) -> tuple[int, datetime | None]:
        """Serve every subscription with work now, a few at a time; returns the deliveries attempted
        and when a retry or another dispatcher's lease next falls due (None: nothing waits)."""
        now = _now()
        async with self.reader() as uow:
            end = await repository.feed_end(uow.session)
            ids = await repository.with_work(uow.session, now, end)
            due = await repository.next_due(uow.session, now)
        if not ids:
            return 0, due
        done = await asyncio.gather(*(self._serve(sid) for sid in ids))
        return sum(done), due

    async def _serve(self, subscription_id: str) -> int:
        async with self._slots:
            now = _now()
            async with self.unit_of_work() as uow:
                lease = now + timedelta(seconds=self.settings.webhook_lease_s)
                if not await repository.claim(uow.session, subscription_id, self.owner, now, lease):
                    return 0
                await uow.commit()
            try:
                await self._fan_out(subscription_id)
                return await self._deliver(subscription_id)
            finally:
                async with self.unit_of_work() as uow:
                    await repository.release(uow.session, subscription_id, self.owner)
                    await uow.commit()

    async def _fan_out(self, subscription_id: str) -> None:
        while True:
            async with self.unit_of_work() as uow:
                sub = await repository.subscription(uow.session, subscription_id)
                if sub is None or sub["state"] != "active":
                    return
                filters = Filters.of(orjson.loads(sub["filters"]) if sub["filters"] else None)
                rows = await repository.feed_after(
                    uow.session, sub["cursor_seq"], FAN_OUT_BATCH, with_data=not filters.empty
                )
                if not rows:
                    return
                types = set(orjson.loads(sub["event_types"]))
                subjects = set(orjson.loads(sub["subjects"])) if sub["subjects"] else None
                hidden = frozenset() if sub["officer"] else OFFICER_ONLY_EVENTS
                now = _now()
                await repository.add_deliveries(
                    uow.session,
                    [
                        {
                            "subscription_id": subscription_id,
                            "seq": r["seq"],
                            "event_id": r["event_id"],
                            "event_type": r["type"],
                            "state": "pending",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                        for r in rows
                        if r["type"] in types
                        and r["type"] not in hidden
                        and (subjects is None or r["subject"] in subjects)
                        and (filters.empty or filters.passes(orjson.loads(r["data"])))
                    ],
                )
                if not await repository.advance_cursor(
                    uow.session, subscription_id, sub["cursor_seq"], rows[-1]["seq"]
                ):
                    return  # replayed meanwhile: rolled back, the next pass fans out from the new point
                await uow.commit()
            if len(rows) < FAN_OUT_BATCH:
                return

    async def _deliver(self, subscription_id: str) -> int:
        attempted = 0
        # Within half the lease: a pass that ran past its lease could meet another replica's.
        deadline = time.monotonic() + self.settings.webhook_lease_s / 2
        while time.monotonic() < deadline:
            async with self.unit_of_work() as uow:
                sub = await repository.subscription(uow.session, subscription_id)
                head = await repository.pending_head(uow.session, subscription_id, SEND_BATCH)
            if sub is None or sub["state"] != "active" or not head:
                return attempted
            # Successes are marked in one transaction per batch (or per second), not one each: that
            # commit was most of a delivery's cost (bench webhook_fanout). A crash before it re-sends
            # them, which at-least-once delivery allows (receivers de-duplicate on webhook-id).
            delivered: list[dict[str, Any]] = []
            marked_at = time.monotonic()
            try:
                for d in head:
                    if time.monotonic() >= deadline:
                        return attempted
                    if as_utc(d["next_attempt_at"]) > _now():
                        return attempted  # the head waits for its retry; the later ones wait behind it
                    attempted += 1
                    at = _now()
                    status, error = await self.post(sub, cloud_event(d), at)
                    if status is not None and 200 <= status < 300:
                        self.sent.labels(outcome="delivered").inc()
                        delivered.append(
                            {"delivery_id": d["delivery_id"], "attempts": d["attempts"] + 1, "at": at, "status": status}
                        )
                        if time.monotonic() - marked_at >= MARK_EVERY_S:
                            await self._mark_delivered(sub, delivered)
                            marked_at = time.monotonic()
                        continue
                    self.sent.labels(outcome="failed").inc()
                    await self._mark_delivered(sub, delivered)
                    await self._failed(sub, d, at, status, error)
                    return attempted
            finally:
                await self._mark_delivered(sub, delivered)
            if len(head) < SEND_BATCH:
                return attempted
        return attempted

    async def _mark_delivered(self, sub: dict[str, Any], delivered: list[dict[str, Any]]) -> None:
        """Record the successes so far (and empty the list); a success ends a run of failures."""
        if not delivered:
            return
        async with self.unit_of_work() as uow:
            await repository.mark_delivered(uow.session, delivered)
            if sub["failing_since"] is not None:
                await repository.set_state(uow.session, sub["subscription_id"], failing_since=None)
            await uow.commit()
        sub["failing_since"] = None
        delivered.clear()

    async def post(self, sub: dict[str, Any], event: dict[str, Any], at: datetime) -> tuple[int | None, str | None]:
        """One signed POST of a CloudEvent to the subscription's URL: (HTTP status, error)."""
        body = orjson.dumps(event).decode()
        secrets_ = signing_secrets(
            sub["secret"],
            sub["previous_secret"],
            as_utc(sub["previous_secret_until"]) if sub["previous_secret_until"] else None,
            at,
        )
        try:
            await self._check_address(sub["url"])
            headers = {
                "content-type": "application/cloudevents+json",
                "webhook-id": event["id"],
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": sign(secrets_, event["id"], at, body),
                "user-agent": "QualityCity-Webhooks/1",
            }
            # The body is never read whole: only the status counts (and a receiver's page is not ours to keep).
            async with self.client.stream("POST", sub["url"], content=body.encode(), headers=headers) as response:
                return response.status_code, None
        except (httpx.HTTPError, OSError, _Refused) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]

    async def ping(self, sub: dict[str, Any]) -> dict[str, Any]:
        """Send a signed test event now (not from the outbox, not retried, not recorded) and say how it went."""
        at = _now()
        event = ping_event(sub["subscription_id"], at)
        started = time.monotonic()
        status, error = await self.post(sub, event, at)
        ok = status is not None and 200 <= status < 300
        self.sent.labels(outcome="ping_ok" if ok else "ping_failed").inc()
        return {
            "webhook_id": event["id"],
            "ok": ok,
            "status": status,
            "error": error if error or ok else f"HTTP {status}",
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
        }

    async def _failed(
        self, sub: dict[str, Any], d: dict[str, Any], at: datetime, status: int | None, error: str | None
    ) -> None:
        """Record a failed attempt: the retry's time, and the subscription disabled if it failed too long."""
        async with self.unit_of_work() as uow:
            attempts = d["attempts"] + 1
            values: dict[str, Any] = {"attempts": attempts, "last_attempt_at": at, "last_status": status}
            values["last_error"] = error or f"HTTP {status}"
            s = self.settings
            values["next_attempt_at"] = next_attempt(at, attempts, s.webhook_retry_base_s, s.webhook_retry_max_s)
            since = as_utc(sub["failing_since"]) if sub["failing_since"] else at
            reason = None
            if status == 410:
                reason = "the receiver answered 410 Gone"
            elif (at - since).total_seconds() >= s.webhook_disable_after_s:
                reason = (
                    f"failing since {since.isoformat()} (over {s.webhook_disable_after_s:g} s); "
                    f"last attempt: {values['last_error']}"
                )
            changes: dict[str, Any] = {"failing_since": since}
            if reason is not None:
                changes.update(state="disabled", disabled_reason=reason, disabled_at=at)
                self.disabled.inc()
                log.warning("webhook subscription disabled", subscription=sub["subscription_id"], reason=reason)
            await repository.set_state(uow.session, sub["subscription_id"], **changes)
            sub["failing_since"] = since
            await repository.record_attempt(uow.session, d["delivery_id"], **values)
            await uow.commit()

    async def _check_address(self, url: str) -> None:
        """Resolve the host now and refuse a private address unless it is allow-listed."""
        host = httpx.URL(url).host
        if host in self.settings.webhook_allowed_hosts:
            return
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        refused = sorted({str(i[4][0]) for i in infos if address_refused(str(i[4][0]))})
        if refused:
            raise _Refused(f"{host} resolves to {', '.join(refused)} (not allow-listed)")


class _Refused(Exception):
    """A callback host resolving to an address deliveries must not reach."""
