"""The CloudEvents envelope and its Kafka binding, and the event registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from shared.events import Envelope, EventRegistry, EventType, from_kafka, to_kafka


class Thing(BaseModel):
    name: str
    count: int


def test_kafka_binding_round_trip_keeps_every_attribute() -> None:
    env = Envelope(
        type="x.thing.made.v1",
        source="/test",
        subject="91370200163562681G",
        data={"name": "质检", "count": 3},
        time=datetime(2014, 5, 6, 7, 8, 9, tzinfo=UTC),
    )
    record = to_kafka(env)
    headers = dict(record.headers)
    assert record.key == b"91370200163562681G"  # partition key = subject
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"x.thing.made.v1"
    assert headers["content-type"] == b"application/json"
    back = from_kafka(record.key, record.value, record.headers)
    assert back == env


def test_registry_rejects_unversioned_types_and_wrong_payloads() -> None:
    reg = EventRegistry()
    with pytest.raises(ValueError, match="past verb"):
        reg.register("thing-made", Thing, service="x", description="")
    t = reg.register("x.thing.made.v1", Thing, service="x", description="A thing was made")
    env = reg.make(t, Thing(name="a", count=1), subject="S", source="/x")
    assert env.data == {"name": "a", "count": 1}
    assert reg.parse(env) == Thing(name="a", count=1)

    class Other(BaseModel):
        z: int

    with pytest.raises(TypeError):
        reg.make(t, Other(z=1), subject="S", source="/x")
    assert [c["type"] for c in reg.catalog()] == ["x.thing.made.v1"]


def test_registry_refuses_a_batch_type_without_the_single_type_or_its_expand() -> None:
    reg = EventRegistry()
    single = reg.register("x.thing.made.v1", Thing, service="x", description="")

    def expand(envelope: Envelope, payload: BaseModel) -> list[tuple[Envelope, BaseModel]]:
        return [(envelope, payload)]

    with pytest.raises(ValueError, match="batch type"):
        reg.add(EventType("x.things.made.v1", Thing, "x", "", expands_to=single))
    with pytest.raises(ValueError, match="batch type"):
        reg.add(EventType("x.things.made.v1", Thing, "x", "", expand=expand))
    batch = reg.get(reg.add(EventType("x.things.made.v1", Thing, "x", "", expands_to=single, expand=expand)))
    env = Envelope(type=batch.name, source="/x", subject="S", data={"name": "a", "count": 1})
    assert batch.singles(env, Thing(name="a", count=1)) == [(env, Thing(name="a", count=1))]
    with pytest.raises(TypeError, match="not a batch type"):
        reg.get(single).singles(env, Thing(name="a", count=1))
