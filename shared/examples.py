"""The example a request model shows in the OpenAPI document (and in every generated client's docs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict


def example(body: Mapping[str, Any], **config: Any) -> ConfigDict:
    """A model's config whose schema carries `body` as its one example; `config` adds other settings."""
    settings = ConfigDict(json_schema_extra={"examples": [dict(body)]})
    settings.update(config)  # type: ignore[typeddict-item]
    return settings
