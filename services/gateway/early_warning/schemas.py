"""Answer bodies of the early warnings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.gateway.early_warning.rules import RuleSet
from shared.contracts.gateway import WarningSnapshot


class WarningRulesOut(RuleSet):
    """The rule set in force (the file loaded at start), with its version."""


class WarningOut(WarningSnapshot):
    """A warning with its evidence and its workflow (who acknowledged and closed it, when, with what note)."""


class WarningNote(BaseModel):
    """The note of an acknowledgement or a close: what is being done, or why it is closed."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000, description="Free text kept with the transition")


class WarningClose(WarningNote):
    note: str = Field(min_length=1, max_length=2000, description="Why it is closed (required)")
