"""Answer bodies of the early warnings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from services.gateway.early_warning.rules import RuleSet


class WarningRulesOut(RuleSet):
    """The rule set in force (the file loaded at start), with its version."""


class WarningOut(BaseModel):
    warning_id: str
    rule_id: str
    rule_set_version: str
    kind: str
    state: str = Field(description="open (acknowledging and closing: not yet)")
    summary: str
    product_category: str | None
    district_code: str | None
    uscc: str | None
    window_start: date
    window_end: date
    evidence: dict[str, Any] = Field(description="Counts, baseline, test statistic, and a link to the rows behind")
    raised_at: datetime
