"""Raising warnings from a consumed batch, in the batch's transaction (docs/warnings.md).

After the batch is applied to the read models, each rule looks at what the batch touched: the
groups and quarters of its results (fail rates), the enterprises with final fails (repeated
fails), the fails of listed enterprises. A warning is kept once per condition (its `dedup_key`,
from which its id is derived), written to the outbox (Kafka subscribers) and appended to the
change feed (the feed readers and the webhooks), all in the same transaction as the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.gateway import repository as read_models
from services.gateway.early_warning import repository
from services.gateway.early_warning.domain import (
    RateCounts,
    RateTest,
    look_due,
    occurrence_key,
    quarter_label,
    quarter_of,
    quarters_before,
    rate_test,
    warning_id,
)
from services.gateway.early_warning.rules import FailRateRule, ListedFailsRule, RepeatedFailsRule, Rule, RuleSet
from services.gateway.models import outbox
from shared.consumer import Handler, Received
from shared.contracts import registry
from shared.contracts.gateway import (
    SOURCE,
    WARNING_ACKNOWLEDGED,
    WARNING_CLOSED,
    WARNING_RAISED,
    WarningAcknowledged,
    WarningClosed,
    WarningRaised,
    WarningSnapshot,
)
from shared.contracts.sampling import ResultEvent, ResultSnapshot
from shared.events import Envelope
from shared.outbox import add_to_outbox, outbox_rows


def with_warnings(apply: Handler, rules: RuleSet) -> Handler:
    """The consumer's batch handler: apply the batch (`apply`), then raise what it shows, in its transaction."""

    async def apply_and_warn(session: AsyncSession, events: Sequence[Received[Any]]) -> None:
        await apply(session, events)
        # Wall-clock time: when the suite saw it (the service clock is for business dates).
        await evaluate(session, events, rules, datetime.now(UTC))

    return apply_and_warn


async def evaluate(
    session: AsyncSession, events: Sequence[Received[Any]], rules: RuleSet, now: datetime
) -> list[WarningSnapshot]:
    """Every warning the batch raises (already applied to the read models); returns the new ones."""
    results = [e.payload.result for e in events if isinstance(e.payload, ResultEvent)]
    if not results:
        return []
    found: list[tuple[str, WarningSnapshot]] = []
    for rule in rules.rules:
        raise_ = partial(_snapshot, rule, rules.version, now)
        if isinstance(rule, FailRateRule):
            found += await _fail_rate(session, rule, results, raise_)
        elif isinstance(rule, RepeatedFailsRule):
            found += await _repeated(session, rule, results, raise_)
        elif isinstance(rule, ListedFailsRule):
            found += await _listed(session, rule, results, raise_)
    return await _keep_new(session, found)


def _snapshot(rule: Rule, version: str, now: datetime, dedup_key: str, **fields: Any) -> tuple[str, WarningSnapshot]:
    """A warning of `rule` for the condition `dedup_key`: what every warning has, and the rule's own `fields`."""
    return dedup_key, WarningSnapshot(
        warning_id=warning_id(dedup_key),
        rule_id=rule.id,
        rule_set_version=version,
        kind=rule.kind,
        state="open",
        raised_at=now,
        **fields,
    )


class Raise(Protocol):
    """`_snapshot` bound to one rule, its rule set's version and the time: a rule says only what it saw."""

    def __call__(self, dedup_key: str, /, **fields: Any) -> tuple[str, WarningSnapshot]: ...


@dataclass(frozen=True)
class _Look:
    """One look at a group's fail rate in a quarter, at a checkpoint of its results."""

    where: dict[str, str]
    start: date
    end: date
    baseline_start: date
    counts: RateCounts
    checkpoint: int
    test: RateTest


async def _fail_rate(
    session: AsyncSession, rule: FailRateRule, results: list[ResultSnapshot], raise_: Raise
) -> list[tuple[str, WarningSnapshot]]:
    touched = _touched_quarters(rule, results)
    done = await repository.known_keys(session, [f"{rule.id}|{g}|{p}" for g, p in touched])
    held = await repository.looked(session, rule.id, touched)
    looks: list[dict[str, Any]] = []
    out: list[tuple[str, WarningSnapshot]] = []
    for (group, period), (values, start, events) in sorted(touched.items()):
        dedup = f"{rule.id}|{group}|{period}"
        if dedup in done:
            continue
        looked_n, seen = held.get((group, period), (0, 0))
        # Events seen for the group and quarter bound its results from above (each result counted
        # there had an event there): no look can be due before they reach the next checkpoint, so
        # the counting query runs a few times per group and quarter, not once per batch.
        seen += events
        row = {"rule_id": rule.id, "group_key": group, "period": period, "looked_n": looked_n, "seen": seen}
        looks.append(row)
        if look_due(seen, tuple(rule.checkpoints), looked_n) is None:
            continue
        look = await _look(session, rule, values, start, looked_n)
        if look is None:
            continue
        row["looked_n"] = look.checkpoint
        if look.test.fired:
            out.append(raise_(dedup, **_fail_rate_fields(rule, values, period, look)))
    await repository.record_looks(session, looks)
    return out


def _touched_quarters(
    rule: FailRateRule, results: list[ResultSnapshot]
) -> dict[tuple[str, str], tuple[tuple[str, ...], date, int]]:
    """Per (group key, quarter) the batch touched: the group's values, the quarter's start, the batch's events."""
    touched: dict[tuple[str, str], tuple[tuple[str, ...], date, int]] = {}
    for r in results:
        values = tuple(getattr(r, name) for name in rule.group_by)
        start = quarter_of(r.sampling_date)[0]
        key = ("|".join(values), quarter_label(start))
        events = touched[key][2] if key in touched else 0
        touched[key] = (values, start, events + 1)
    return touched


async def _look(
    session: AsyncSession, rule: FailRateRule, values: tuple[str, ...], start: date, looked_n: int
) -> _Look | None:
    """Count the group's results in the quarter and its baseline; test them if they reached a new checkpoint."""
    where: dict[str, str] = dict(zip(rule.group_by, values, strict=True))
    end = quarter_of(start)[1]
    baseline_start = quarters_before(start, rule.baseline_quarters)
    counts = await repository.rate_counts(session, where, baseline_start, start, end)
    checkpoint = look_due(counts.n_window, tuple(rule.checkpoints), looked_n)
    if checkpoint is None:
        return None
    test = rate_test(
        counts,
        alpha=rule.alpha,
        looks=len(rule.checkpoints),
        min_baseline_n=rule.min_baseline_n,
        min_window_fails=rule.min_window_fails,
        min_ratio=rule.min_ratio,
    )
    return _Look(where, start, end, baseline_start, counts, checkpoint, test)


def _fail_rate_fields(rule: FailRateRule, values: tuple[str, ...], period: str, look: _Look) -> dict[str, Any]:
    """The warning's own fields when a look fired: what was seen, where and when, and the evidence."""
    counts, test, where = look.counts, look.test, look.where
    rate_w, rate_b = test.evidence["window"]["rate"], test.evidence["baseline"]["rate"]
    return {
        "summary": f"{' / '.join(values)}: {counts.fails_window} fails of {counts.n_window} ({rate_w:.1%}) "
        f"in {period} against {rate_b:.1%} over the {rule.baseline_quarters} quarters before "
        f"(p = {test.p_value:.2g})",
        "product_category": where.get("product_category"),
        "district_code": where.get("district_code"),
        "window_start": look.start,
        "window_end": look.end,
        "evidence": {
            **test.evidence,
            "period": period,
            "baseline_from": look.baseline_start.isoformat(),
            "look_at_n": look.checkpoint,
            "group": where,
            "rows": _facts_link(where, look.start, look.end),
        },
    }


def _facts_link(where: dict[str, str], start: date, end: date) -> str:
    """The drill-down to the results behind a figure (GET /v1/facts/results)."""
    link = f"/v1/facts/results?sampled_from={start.isoformat()}&sampled_to={end.isoformat()}"
    if "district_code" in where:
        link += f"&district={where['district_code']}"
    return link


async def _repeated(
    session: AsyncSession, rule: RepeatedFailsRule, results: list[ResultSnapshot], raise_: Raise
) -> list[tuple[str, WarningSnapshot]]:
    latest: dict[tuple[str, str], date] = {}
    for r in results:
        if r.state == "final" and r.conclusion == "fail":
            key = (r.uscc, r.product_category)
            latest[key] = max(latest.get(key, r.sampling_date), r.sampling_date)
    out: list[tuple[str, WarningSnapshot]] = []
    dedups = {k: f"{rule.id}|{k[0]}|{k[1]}|{d.year}" for k, d in latest.items()}
    done = await repository.known_keys(session, dedups.values())
    for (uscc, category), day in sorted(latest.items()):
        if dedups[(uscc, category)] in done:
            continue
        start = day - timedelta(days=rule.window_days - 1)
        fails = await repository.final_fails(session, uscc, category, start, day)
        if len(fails) < rule.min_fails:
            continue
        out.append(
            raise_(
                dedups[(uscc, category)],
                summary=f"{uscc}: {len(fails)} final fails of {category} between {start} and {day}",
                product_category=category,
                uscc=uscc,
                window_start=start,
                window_end=day,
                evidence={
                    "method": f"count of final fails >= {rule.min_fails} within {rule.window_days} days",
                    "fails": len(fails),
                    "results": [
                        {
                            "result_id": f["result_id"],
                            "report_no": f["report_no"],
                            "sampling_date": str(f["sampling_date"]),
                        }
                        for f in fails
                    ],
                    "rows": f"/v1/credit/{uscc}",
                },
            )
        )
    return out


async def _listed(
    session: AsyncSession, rule: ListedFailsRule, results: list[ResultSnapshot], raise_: Raise
) -> list[tuple[str, WarningSnapshot]]:
    fails = [r for r in results if r.conclusion == "fail" and r.state != "retracted"]
    if not fails:
        return []
    standing = await repository.standing_of(session, {r.uscc for r in fails}, rule.include_suspended_honours)
    dedups = {r.result_id: f"{rule.id}|{r.result_id}" for r in fails if r.uscc in standing}
    # A result fails once: its warning, even closed, is not raised again when the result changes state.
    done = await repository.known_keys(session, dedups.values(), closed_too=True)
    out: list[tuple[str, WarningSnapshot]] = []
    for r in fails:
        dedup = dedups.get(r.result_id)
        if dedup is None or dedup in done:
            continue
        done.add(dedup)
        why = standing[r.uscc]
        out.append(
            raise_(
                dedup,
                summary=f"{r.enterprise_name} ({r.uscc}), "
                f"{'blacklisted' if why['listed'] else 'with a suspended honour'}, failed on {r.product_name} "
                f"(report {r.report_no})",
                product_category=r.product_category,
                district_code=r.district_code,
                uscc=r.uscc,
                window_start=r.sampling_date,
                window_end=r.sampling_date,
                evidence={
                    "method": "a fail of an enterprise listed (or with a suspended honour) when the fail arrived",
                    "result": {"result_id": r.result_id, "report_no": r.report_no, "state": r.state},
                    **why,
                    "rows": f"/v1/credit/{r.uscc}",
                },
            )
        )
    return out


async def _keep_new(session: AsyncSession, found: list[tuple[str, WarningSnapshot]]) -> list[WarningSnapshot]:
    """Store the warnings, put each on the outbox and the change feed (one event per warning).

    A condition whose warnings were all closed raises its next occurrence, with an id of its own."""
    if not found:
        return []
    last = await repository.last_occurrences(session, [dedup for dedup, _ in found])
    found = [
        (dedup, w.model_copy(update={"occurrence": n, "warning_id": warning_id(occurrence_key(dedup, n))}))
        for dedup, w in found
        for n in (last.get(dedup, 0) + 1,)
    ]
    rows = [{**snapshot_row(w), "dedup_key": dedup} for dedup, w in found]
    await repository.add_warnings(session, rows)
    warnings = [w for _, w in found]
    await publish(session, [warning_event(WARNING_RAISED, w) for w in warnings], warnings[0].raised_at)
    return warnings


def snapshot_row(w: WarningSnapshot) -> dict[str, Any]:
    """The stored row of a warning (evidence as JSON text), without its condition key."""
    return {**w.model_dump(), "evidence": orjson.dumps(w.evidence).decode()}


async def publish(session: AsyncSession, envelopes: list[Envelope], applied_at: datetime) -> None:
    """Warning events to the gateway's outbox (Kafka) and its change feed (readers, webhooks), in the
    caller's transaction."""
    await add_to_outbox(session, outbox, envelopes)
    await read_models.append_changes(session, [{**row, "applied_at": applied_at} for row in outbox_rows(envelopes)])
    await read_models.count_applied(session, len(envelopes))


def subject_of(w: WarningSnapshot) -> str:
    """The partition key: the enterprise when there is one, else the district, else the rule."""
    return w.uscc or w.district_code or w.rule_id


#: The payload model of each warning event.
PAYLOADS: dict[str, type[WarningRaised | WarningAcknowledged | WarningClosed]] = {
    WARNING_RAISED: WarningRaised,
    WARNING_ACKNOWLEDGED: WarningAcknowledged,
    WARNING_CLOSED: WarningClosed,
}


def warning_event(type_: str, w: WarningSnapshot) -> Envelope:
    """A warning's event: raising it has the warning's own id (one per warning, derived from the
    condition); a transition is identified by the warning and its new version."""
    env = registry.make(type_, PAYLOADS[type_](warning=w), subject=subject_of(w), source=SOURCE)
    env.id = w.warning_id if type_ == WARNING_RAISED else warning_id(f"{w.warning_id}@{w.version}")
    env.time = w.raised_at if type_ == WARNING_RAISED else (w.closed_at or w.acknowledged_at or w.raised_at)
    return env
