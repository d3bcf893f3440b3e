"""The event contracts between the services (shared/contracts): every type a consumer subscribes to
is defined, every handler reads the model its types are published with, a misspelt subscription
stops the consumer at start-up, and an event of an unknown type is skipped loudly, never silently."""

from __future__ import annotations

import ast
import inspect
import re
import types
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import orjson
import pytest
from pydantic import BaseModel
from sqlalchemy import MetaData, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import CapturingLogger

import shared.consumer
import shared.quarantine
from qcity.event_catalog import SUBSCRIPTIONS, entries
from services.awards.main import SPEC as AWARDS_SPEC
from services.credit import domain as credit_domain
from services.credit.domain import RuleBook
from services.credit.main import build_spec
from services.gateway import consumers as gateway_consumers
from services.gateway.main import SPEC as GATEWAY_SPEC
from shared.bus import InProcessBus
from shared.clock import FixedClock
from shared.consumer import (
    Handler,
    IdempotentConsumer,
    Received,
    UnknownEventType,
    decode,
    inbox_table,
    latest_versions,
)
from shared.contracts import registry
from shared.contracts.awards import HonourSnapshot
from shared.contracts.sampling import (
    RESULT_BATCH_RECORDED,
    RESULT_RECORDED,
    RESULT_RETRACTED,
    ResultEvent,
    ResultRecorded,
    ResultSnapshot,
    item_id,
)
from shared.db import Database
from shared.events import Envelope
from shared.quarantine import quarantine_table
from shared.uuid7 import new_ids
from tests.factories import result_event

ROOT = Path(__file__).parents[2]
CLOCK = FixedClock(datetime(2014, 3, 3, 2, 0, tzinfo=UTC))
CREDIT_SPEC = build_spec(CLOCK, RuleBook.load(), 3600)

#: Each consuming service's handlers, as its runtime builds its consumer from them.
SERVICE_HANDLERS: dict[str, dict[str, Handler]] = {
    "awards": dict(AWARDS_SPEC.handlers),
    "credit": dict(CREDIT_SPEC.handlers),
    "gateway": dict(GATEWAY_SPEC.handlers),
}


def _declared_models(handler: Callable[..., Any]) -> tuple[type, ...]:
    """The payload model(s) a handler declares: `events: Sequence[Received[Model]]` (a union: several)."""
    hint = get_type_hints(handler)["events"]
    assert get_origin(hint) is Sequence or get_origin(hint).__name__ == "Sequence", hint
    (received,) = get_args(hint)
    assert get_origin(received) is Received, f"{handler.__qualname__} does not take Received[...] events"
    (model,) = get_args(received)
    if get_origin(model) in (Union, types.UnionType):
        return get_args(model)
    return (model,)


# ------------------------------------------------------------------------------ the registry


def test_every_type_a_service_subscribes_to_is_a_contract() -> None:
    for service, handlers in SERVICE_HANDLERS.items():
        assert handlers, f"{service} subscribes to nothing"
        unknown = sorted(t for t in handlers if t not in registry)
        assert unknown == [], f"{service} subscribes to types no contract defines: {unknown}"
    # What the catalog says each service consumes is what its consumer really handles.
    assert {s: set(t) for s, t in SUBSCRIPTIONS.items()} == {s: set(h) for s, h in SERVICE_HANDLERS.items()}


@pytest.mark.parametrize(
    ("name", "handlers"),
    [
        ("awards", AWARDS_SPEC.handlers),
        ("credit", CREDIT_SPEC.handlers),
        ("gateway appliers", gateway_consumers.APPLIERS),
    ],
)
def test_each_handler_reads_the_model_its_types_are_published_with(name: str, handlers: dict[str, Handler]) -> None:
    """Handlers read typed payloads (mypy holds every field they read to the model they declare);
    here the declared model must be the one the registry parses the type with, or its base."""
    for type_, handler in handlers.items():
        published = registry.get(type_).model
        declared = _declared_models(handler)
        assert any(issubclass(published, m) for m in declared), (
            f"{name}: {handler.__qualname__} declares {declared} but {type_} carries {published.__name__}"
        )


def test_batch_handlers_read_every_type_their_service_subscribes_to() -> None:
    credit_batch = CREDIT_SPEC.batch_handler
    assert credit_batch is not None
    declared = _declared_models(credit_batch)
    for type_ in CREDIT_SPEC.handlers:
        assert any(issubclass(registry.get(type_).model, m) for m in declared), type_
    # The gateway's batch handler takes any type and dispatches by type to the appliers checked above.
    assert GATEWAY_SPEC.batch_handler is gateway_consumers.apply_batch
    assert set(gateway_consumers.APPLIERS) == set(GATEWAY_SPEC.handlers)


def _dict_keys_read(func: Callable[..., Any]) -> set[str]:
    """The string keys a function reads from its first parameter (`p["k"]`, `p.get("k")`)."""
    tree = ast.parse(inspect.getsource(func))
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    param = fn.args.args[0].arg
    keys: set[str] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == param:
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                keys.add(node.slice.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == param
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            keys.add(str(node.args[0].value))
    return keys


@pytest.mark.parametrize(
    ("func", "model"),
    [(credit_domain.record_from_result, ResultSnapshot), (credit_domain.record_from_honour, HonourSnapshot)],
)
def test_credit_rules_read_only_fields_of_the_snapshot_they_get(
    func: Callable[..., Any], model: type[BaseModel]
) -> None:
    """The credit rules take the snapshot as a dict (model_dump of the parsed payload): every key they
    read must be a field of the model, or a renamed field would read None without a word."""
    read = _dict_keys_read(func)
    assert {"version", "uscc"} & read  # the walk finds the reads at all
    assert read - set(model.model_fields) == set()


def test_no_event_type_name_is_written_outside_the_contracts() -> None:
    """Type names are the contracts' constants: no literal and no f-string builds one elsewhere."""
    pattern = re.compile(r"""f?["'][a-z_{}]+\.[a-z_{}]+\.[a-z_{}]+\.v(\d+|\{[^}]*\})["']""")
    found = []
    for folder in ("services", "shared", "qcity", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.is_relative_to(ROOT / "shared" / "contracts"):
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []
    # ...and the contracts hold each name once, as the constant every producer and consumer imports.
    assert (
        len({e["type"] for e in entries()}) == len(entries()) == 25
    )  # with the 3 gateway.warning.*.v1 and the batch type


# ------------------------------------------------------------------------------ the consumer


async def _on_recorded(session: AsyncSession, events: Sequence[Received[ResultEvent]]) -> None:
    raise AssertionError("never called")


def test_a_consumer_subscribing_to_a_misspelt_type_does_not_start() -> None:
    metadata = MetaData()
    with pytest.raises(UnknownEventType, match=r"sampling\.result\.recordd\.v1"):
        IdempotentConsumer(
            "gateway",
            Database("sqlite+aiosqlite://"),
            inbox_table(metadata),
            {RESULT_RECORDED: _on_recorded, "sampling.result.recordd.v1": _on_recorded},
        )


async def _consumer_db(tmp_path: Path) -> tuple[Database, Table]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}")
    metadata = MetaData()
    inbox = inbox_table(metadata)
    quarantine_table(metadata)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return db, inbox


async def test_an_arriving_unknown_type_or_invalid_payload_is_quarantined_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured = CapturingLogger()
    monkeypatch.setattr(shared.quarantine, "log", captured)
    db, inbox = await _consumer_db(tmp_path)
    got: list[Received[ResultEvent]] = []

    async def on_recorded(session: AsyncSession, events: Sequence[Received[ResultEvent]]) -> None:
        got.extend(events)

    consumer = IdempotentConsumer("gateway", db, inbox, {RESULT_RECORDED: on_recorded})
    good = result_event(result_id="r1")
    stray = result_event("sampling.result.recorded.v9", result_id="r2")  # a type no contract defines
    unhandled = result_event(RESULT_RETRACTED, extra={"reason": "r"}, result_id="r3")  # known, not subscribed
    broken = Envelope(type=RESULT_RECORDED, source="/t", subject="S", data={"result": {"result_id": "r4"}})
    try:
        await consumer.handle_batch([stray, good, unhandled, broken])
        async with db.unit_of_work() as uow:
            processed = await uow.session.scalar(select(func.count()).select_from(inbox))
            quarantined = (
                await uow.session.execute(
                    text("SELECT event_id, type, reason, state FROM quarantined_events ORDER BY id")
                )
            ).all()
    finally:
        await db.dispose()

    assert [r.id for r in got] == [good.id]
    assert isinstance(got[0].payload, ResultRecorded) and got[0].payload.result.result_id == "r1"
    logged = [(c.method_name, c.args[0], c.kwargs.get("event_id"), c.kwargs.get("reason")) for c in captured.calls]
    assert logged == [
        ("error", "event quarantined", stray.id, "unknown-type"),
        ("error", "event quarantined", broken.id, "invalid"),
    ]  # the known but unsubscribed type is skipped quietly: another service's business
    assert [tuple(r) for r in quarantined] == [
        (stray.id, stray.type, "unknown-type", "quarantined"),
        (broken.id, RESULT_RECORDED, "invalid", "quarantined"),
    ]
    assert processed == 4  # events that can never apply are set aside: they are not redelivered forever


async def test_an_in_process_delivery_is_parsed_once_and_each_consumer_still_quarantines_a_poison_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway and credit consumers get the same envelopes from the in-process bus: the payload is
    validated once and both handlers read that one model; an invalid payload is set aside by each."""
    monkeypatch.setattr(shared.quarantine, "log", CapturingLogger())
    validated: list[Any] = []
    validate = ResultRecorded.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[ResultRecorded], obj: Any, *args: Any, **kwargs: Any) -> ResultRecorded:
        validated.append(obj)
        return validate(cls, obj, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(ResultRecorded, "model_validate", classmethod(counting))
    got: dict[str, list[Received[ResultEvent]]] = {"gateway": [], "credit": []}
    bus = InProcessBus()
    dbs = []
    for name in got:
        db, inbox = await _consumer_db(tmp_path / name)
        dbs.append((db, inbox))

        async def on_recorded(session: AsyncSession, events: Sequence[Received[ResultEvent]], name: str = name) -> None:
            got[name].extend(events)

        consumer = IdempotentConsumer(name, db, inbox, {RESULT_RECORDED: on_recorded})
        await bus.subscription(name, ["sampling"], consumer.handle_batch).start()
    await bus.start()
    good = [result_event(result_id=f"r{k}") for k in range(3)]
    poison = Envelope(type=RESULT_RECORDED, source="/t", subject="S", data={"result": {"result_id": "r9"}})
    batch = [*good[:2], poison, good[2]]
    try:
        await bus.publish("sampling", [(e, orjson.dumps(e.data)) for e in batch])
        quarantined = []
        for db, _ in dbs:
            async with db.unit_of_work() as uow:
                rows = await uow.session.execute(text("SELECT event_id, reason FROM quarantined_events"))
                quarantined.append([tuple(r) for r in rows])
    finally:
        for db, _ in dbs:
            await db.dispose()

    assert [r.id for r in got["gateway"]] == [r.id for r in got["credit"]] == [e.id for e in good]
    assert all(g.payload is c.payload for g, c in zip(got["gateway"], got["credit"], strict=True))
    assert [p.result.result_id for p in (r.payload for r in got["credit"])] == ["r0", "r1", "r2"]
    # Three good events parsed once each; the poison event is tried by each consumer and set aside by each.
    assert len(validated) == 3 + 2
    assert quarantined == [[(poison.id, "invalid")], [(poison.id, "invalid")]]


def test_decode_parses_with_the_contract_model() -> None:
    e = result_event(result_id="r1", sampling_date="2014-05-10")
    (received,) = decode([e], {RESULT_RECORDED}, "test")
    assert received.envelope is e and received.type == RESULT_RECORDED
    assert received.payload.result.sampling_date.isoformat() == "2014-05-10"  # a date, not a string


def test_latest_versions_keeps_the_newest_of_each_aggregate_in_first_seen_order() -> None:
    batch = [("a", 1, "a1"), ("b", 2, "b2"), ("a", 3, "a3"), ("b", 1, "b1"), ("a", 3, "a3-again")]
    latest = latest_versions(batch, key=lambda t: t[0], version=lambda t: t[1])
    assert list(latest) == ["a", "b"]
    assert [t[2] for t in latest.values()] == ["a3", "b2"]  # older and repeated versions lose


def test_batch_item_ids_are_uuid5_of_the_batch_id_and_result_id() -> None:
    """`item_id` computes uuid5 without the UUID object: held to the standard library's on many names."""
    batch_ids = [str(uuid.uuid4()) for _ in range(20)] + new_ids(20)
    for batch_id in batch_ids:
        for name in ("r1", "01a233b6-b29b-7000-8014-3775e3959820", "结果-1", ""):
            assert item_id(batch_id, name) == str(uuid.uuid5(uuid.UUID(batch_id), name))


def test_a_batch_expands_to_the_single_events_it_stands_for() -> None:
    snaps = [result_event(result_id=f"r{i}").data["result"] for i in range(3)]
    batch = Envelope(type=RESULT_BATCH_RECORDED, source="/t", subject="QD-AGENCY-1", data={"results": snaps})
    got = decode([batch], {RESULT_RECORDED}, "test")
    assert [(r.type, r.id, r.envelope.subject, r.envelope.data) for r in got] == [
        (RESULT_RECORDED, item_id(batch.id, s["result_id"]), s["uscc"], {"result": s}) for s in snaps
    ]
    assert all(isinstance(r.payload, ResultRecorded) and r.time == batch.time for r in got)
    assert decode([batch], {RESULT_RETRACTED}, "test") == []  # a consumer of other types leaves it alone
