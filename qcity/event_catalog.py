"""The event catalog, generated from the event registry that every service's events.py fills."""

from __future__ import annotations

import json
from importlib import import_module
from typing import Any

from shared.events import registry

EVENT_MODULES = (
    "services.sampling.events",
    "services.credit.events",
    "services.awards.events",
)


def entries() -> list[dict[str, Any]]:
    for name in EVENT_MODULES:
        import_module(name)
    return registry.catalog()


def catalog_json() -> str:
    return json.dumps(entries(), ensure_ascii=False, indent=2) + "\n"


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
        "",
        "| type | topic | payload fields | what happened |",
        "|---|---|---|---|",
    ]
    for e in entries():
        lines.append(
            f"| `{e['type']}` | `{e['topic_service']}` | {', '.join(_fields(e['data_schema']))} | {e['description']} |"
        )
    lines += ["", "The full JSON Schema of each payload: `qcity catalog --format json`.", ""]
    return "\n".join(lines)
