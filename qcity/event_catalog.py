"""The event catalog, generated from the contracts (`shared.contracts`) and the services' consumers."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from services.awards import consumers as awards_consumers
from services.credit import consumers as credit_consumers
from services.gateway import consumers as gateway_consumers
from shared.asyncapi import asyncapi_document
from shared.contracts import registry

#: The event types each consuming service subscribes to (its consumer's handlers).
SUBSCRIPTIONS: dict[str, Collection[str]] = {
    "awards": awards_consumers.HANDLERS,
    "credit": credit_consumers.SUBSCRIBED,
    "gateway": gateway_consumers.HANDLERS,
}


def entries() -> list[dict[str, Any]]:
    out = registry.catalog()
    for e in out:
        # A batch type reaches every consumer of the single type it expands to (shared/consumer.py).
        single = registry.get(e["type"]).expands_to
        e["consumers"] = [name for name, types in SUBSCRIPTIONS.items() if e["type"] in types or single in types]
    return out


def catalog_json() -> str:
    return json.dumps(entries(), ensure_ascii=False, indent=2) + "\n"


def asyncapi_json() -> str:
    """The AsyncAPI 3.0 document (docs/asyncapi.json; the gateway serves it at /asyncapi.json)."""
    return json.dumps(asyncapi_document(), ensure_ascii=False, indent=2) + "\n"


def _fields(schema: dict[str, Any]) -> list[str]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    return [f"`{k}`{'' if k in required else ' (optional)'}" for k in props]


def catalog_markdown() -> str:
    lines = [
        "# Event catalog",
        "",
        "Generated from the code by `qcity catalog --format md`; do not edit by hand (a test checks it is current).",
        "",
        "Every event is a CloudEvents 1.0 envelope (`id`, `source`, `type`, `subject`, `time`, `data`), carried on",
        "Kafka in the binary binding (`ce_*` headers, JSON payload), on the topic `<prefix><service>`, keyed by",
        "`subject`: the enterprise's USCC or the holder id, so one enterprise's events stay in order.",
        "A batch type (`sampling.result_batch.recorded.v1`: a bulk request's new results in the embedded",
        "suite; over Kafka they go as single events) reaches its consumers as the single events it stands",
        "for (shared/contracts/sampling.py).",
        "",
        "| type | topic | consumed by | payload fields | what happened |",
        "|---|---|---|---|---|",
    ]
    for e in entries():
        lines.append(
            f"| `{e['type']}` | `{e['topic_service']}` | {', '.join(e['consumers']) or '—'} "
            f"| {', '.join(_fields(e['data_schema']))} | {e['description']} |"
        )
    lines += ["", "The full JSON Schema of each payload: `qcity catalog --format json`.", ""]
    return "\n".join(lines)
