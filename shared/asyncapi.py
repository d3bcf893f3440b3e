"""The event contracts as an AsyncAPI 3.0 document, generated from the registry (`shared.contracts`).

One channel per producing service's topic, one message per event type (CloudEvents 1.0 in the Kafka
binary binding: `ce_*` headers, the JSON payload as the value, the subject as the key), a `send`
operation for the producer and a `receive` operation for any subscriber. Served by the gateway at
`/asyncapi.json` and written to docs/asyncapi.json by `qcity catalog --format asyncapi`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from shared.contracts import registry
from shared.events import EventType

ASYNCAPI_VERSION = "3.0.0"
#: The version of the event contract as a whole; each event type carries its own (`.v1`).
CONTRACT_VERSION = "1.0.0"
_DEFS = "#/$defs/"
_SCHEMAS = "#/components/schemas/"


def message_name(event_type: str) -> str:
    """`sampling.result.recorded.v1` → `SamplingResultRecordedV1`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[._-]", event_type))


def _refs_to_components(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (_SCHEMAS + v.removeprefix(_DEFS) if k == "$ref" and isinstance(v, str) else _refs_to_components(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_refs_to_components(v) for v in node]
    return node


def _headers(event_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes, Kafka binary binding",
        "properties": {
            "ce_specversion": {"const": "1.0"},
            "ce_id": {"type": "string", "description": "Unique per event: consumers deduplicate on it"},
            "ce_source": {"type": "string", "description": "The producing service"},
            "ce_type": {"const": event_type},
            "ce_subject": {"type": "string", "description": "The enterprise's USCC or the holder id"},
            "ce_time": {"type": "string", "format": "date-time"},
            "content-type": {"const": "application/json"},
        },
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time"],
    }


def _message(t: EventType, schemas: dict[str, Any]) -> dict[str, Any]:
    name = message_name(t.name)
    schema = t.model.model_json_schema()
    for def_name, definition in schema.pop("$defs", {}).items():
        hoisted = _refs_to_components(definition)
        if schemas.setdefault(def_name, hoisted) != hoisted:
            raise ValueError(f"two event payloads define {def_name} differently")
    schemas[name + "Data"] = {**_refs_to_components(schema), "title": name + "Data"}
    return {
        "name": t.name,
        "title": name,
        "summary": t.description,
        "contentType": "application/json",
        "headers": _headers(t.name),
        "payload": {"$ref": _SCHEMAS + name + "Data"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The event's subject: one enterprise's events stay in order"},
                "bindingVersion": "0.5.0",
            }
        },
    }


def asyncapi_document(topic_prefix: str = "qualitycity.") -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    by_service: dict[str, list[str]] = {}
    for t in registry.types():
        name = message_name(t.name)
        messages[name] = _message(t, schemas)
        by_service.setdefault(t.topic_service, []).append(name)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for service, names in sorted(by_service.items()):
        channels[service] = {
            "address": topic_prefix + service,
            "title": f"The {service} service's events",
            "description": f"Topic `<QC_TOPIC_PREFIX>{service}` (prefix `{topic_prefix}` by default), key: subject.",
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
        }
        refs = [{"$ref": f"#/channels/{service}/messages/{n}"} for n in names]
        title = service.capitalize()
        operations[f"publish{title}Events"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{service}"},
            "summary": f"The {service} service publishes (transactional outbox, at least once)",
            "messages": refs,
        }
        operations[f"consume{title}Events"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{service}"},
            "summary": "A subscriber reads them: deduplicate on `ce_id`, commit offsets after the effects",
            "messages": copy.deepcopy(refs),
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "QualityCity events",
            "version": CONTRACT_VERSION,
            "description": "Every event the suite publishes (generated from shared.contracts). The same event "
            "types, and each service's consumers, are listed in docs/event-catalog.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "The deployment's brokers (QC_KAFKA_BOOTSTRAP)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }
