"""The CloudEvents 1.0 envelope, the registry of event types, and the Kafka binding.

Every event carries a versioned `type` (`<service>.<aggregate>.<past verb>.v<N>`), a `subject`
(the enterprise's USCC or the holder id, which is also the Kafka partition key) and a payload
validated by the model registered for its type. The suite's registry, filled from the contracts,
is `shared.contracts.registry`.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel

SPECVERSION = "1.0"
JSON = "application/json"
_TYPE_RE = re.compile(r"^[a-z_]+\.[a-z_]+\.[a-z_]+\.v[0-9]+$")


@dataclass(frozen=True, slots=True)
class KafkaOrigin:
    """Where a consumed event was read from, as it arrived: what a dead letter republishes unchanged.

    `error` is set when the record is not a CloudEvent at all (the envelope is then a stand-in)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    error: BaseException | None = None


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times more on bulk paths
class Envelope:
    """One event as stored in the outbox and carried on the bus (CloudEvents 1.0 attributes)."""

    type: str
    source: str
    subject: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = JSON
    #: Set by the Kafka consumer: the record it was read from (None in process or from the outbox).
    origin: KafkaOrigin | None = None
    #: `data` parsed with its type's contract model, kept by the first consumer that parsed it: every
    #: in-process subscriber gets the same envelope, and the model is the type's, not the consumer's.
    parsed: BaseModel | None = field(default=None, init=False, compare=False, repr=False)
    #: For a batch type, the single events it stands for, kept like `parsed` for the other consumers.
    expanded: list[tuple[Envelope, BaseModel]] | None = field(default=None, init=False, compare=False, repr=False)

    def to_cloudevent_dict(self) -> dict[str, Any]:
        """The structured-mode JSON form, as the change feed and event catalog show it."""
        return {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": self.datacontenttype,
            "data": self.data,
        }


class _OrjsonFormat(JSONFormat):
    """The SDK's JSON format, reading payloads with orjson: the consumer hot path parses every event."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> dict[str, Any] | str | bytes | None:
        if not body:
            return None
        try:
            parsed: dict[str, Any] = orjson.loads(body)
            return parsed
        except orjson.JSONDecodeError:
            return super().read_data(body, datacontenttype)


_FORMAT = _OrjsonFormat()


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def to_kafka(envelope: Envelope, data_bytes: bytes | None = None) -> KafkaRecord:
    """Binary content mode of the CloudEvents Kafka binding (ce_* headers, payload as value).

    `data_bytes` lets the relay pass the payload exactly as stored in the outbox, unparsed.
    """
    event = CloudEvent(
        attributes={
            "specversion": SPECVERSION,
            "id": envelope.id,
            "source": envelope.source,
            "type": envelope.type,
            "subject": envelope.subject,
            "time": envelope.time,
            "datacontenttype": envelope.datacontenttype,
            "partitionkey": envelope.subject,
        },
        data=data_bytes if data_bytes is not None else orjson.dumps(envelope.data),
    )
    message = ce_kafka.to_binary(event, _FORMAT)
    key = message.key.encode() if isinstance(message.key, str) else (message.key or b"")
    # partitionkey travels as the Kafka key; a ce_partitionkey header would only repeat it.
    headers = [(k, v) for k, v in message.headers.items() if k != "ce_partitionkey"]
    return KafkaRecord(key=key, value=message.value, headers=headers)


def from_kafka(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | tuple[Any, ...]) -> Envelope:
    message = ce_kafka.KafkaMessage(headers=dict(headers), key=key, value=value)
    event = ce_kafka.from_binary(message, _FORMAT, CloudEvent)
    data = event.get_data()
    if not isinstance(data, dict):
        raise ValueError(f"event {event.get_id()} has no JSON object payload")
    time = event.get_time() or datetime.now(UTC)
    return Envelope(
        id=event.get_id(),
        source=event.get_source(),
        type=event.get_type(),
        subject=event.get_subject() or "",
        time=time,
        data=data,
        datacontenttype=event.get_datacontenttype() or JSON,
    )


def from_kafka_record(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes, headers: Any
) -> Envelope:
    """A consumed record as an envelope that knows its origin. A record that is not a CloudEvent
    becomes a stand-in (no type, its origin's `error` set, an id derived from its position so a
    redelivery is recognised) for the consumer to set aside: it must neither stop nor vanish."""
    origin = KafkaOrigin(topic, partition, offset, key, value, tuple(headers))
    try:
        envelope = from_kafka(key, value, headers)
    except Exception as exc:
        origin = dataclasses.replace(origin, error=exc)
        position = uuid.uuid5(uuid.NAMESPACE_URL, f"kafka:{topic}/{partition}/{offset}")
        return Envelope(
            type="",
            source=topic,
            subject=(key or b"").decode("utf-8", "replace")[:200],
            data={},
            id=str(position),
            origin=origin,
        )
    envelope.origin = origin
    return envelope


#: Turns a batch event (its envelope and parsed payload) into the single events it stands for.
Expand = Callable[["Envelope", BaseModel], "list[tuple[Envelope, BaseModel]]"]


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    model: type[BaseModel]
    topic_service: str
    description: str
    #: A batch type: every consumer of `expands_to` gets it, expanded by `expand` (`shared.consumer`).
    expands_to: str | None = None
    expand: Expand | None = None

    def singles(self, envelope: Envelope, payload: BaseModel) -> list[tuple[Envelope, BaseModel]]:
        """The single events a batch event stands for."""
        if self.expand is None:
            raise TypeError(f"{self.name} is not a batch type")
        return self.expand(envelope, payload)


class EventRegistry:
    """Event types with their payload models: what a service may publish, and the event catalog."""

    def __init__(self) -> None:
        self._types: dict[str, EventType] = {}

    def register(self, type_: str, model: type[BaseModel], *, service: str, description: str) -> str:
        return self.add(EventType(type_, model, service, description))

    def add(self, event_type: EventType) -> str:
        type_ = event_type.name
        if not _TYPE_RE.match(type_):
            raise ValueError(f"event type {type_!r} is not <service>.<aggregate>.<past verb>.v<N>")
        if (event_type.expands_to is None) != (event_type.expand is None):
            raise ValueError(f"batch type {type_!r} needs both the single type it expands to and its expand")
        if type_ in self._types and self._types[type_].model is not event_type.model:
            raise ValueError(f"event type {type_!r} registered twice")
        self._types[type_] = event_type
        return type_

    def get(self, type_: str) -> EventType:
        try:
            return self._types[type_]
        except KeyError:
            raise KeyError(f"unknown event type {type_!r}") from None

    def find(self, type_: str) -> EventType | None:
        return self._types.get(type_)

    def __contains__(self, type_: str) -> bool:
        return type_ in self._types

    def types(self) -> list[EventType]:
        return sorted(self._types.values(), key=lambda t: t.name)

    def make(self, type_: str, payload: BaseModel, *, subject: str, source: str) -> Envelope:
        """Build an envelope, checking the payload is the registered model for its type."""
        event_type = self.get(type_)
        if not isinstance(payload, event_type.model):
            raise TypeError(f"{type_} expects {event_type.model.__name__}, got {type(payload).__name__}")
        return Envelope(type=type_, source=source, subject=subject, data=payload.model_dump(mode="json"))

    def parse(self, envelope: Envelope) -> BaseModel:
        return self.get(envelope.type).model.model_validate(envelope.data)

    def catalog(self) -> list[dict[str, Any]]:
        return [
            {
                "type": t.name,
                "topic_service": t.topic_service,
                "description": t.description,
                "subject": "the enterprise's USCC or the holder id (also the Kafka partition key)",
                "data_schema": t.model.model_json_schema(),
            }
            for t in self.types()
        ]
