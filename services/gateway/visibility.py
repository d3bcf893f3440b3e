"""What of the credit service's officer-only data a caller may see through the gateway: one rule.

The credit service keeps proposals, rejections and repair applications (with their proposer,
decider and reasons) to `credit:write`/`credit:review` (and `admin`); a `read` token sees only what
was published: listings and removals. The gateway's read models hold every entry and the change
feed every event, so both the change feed and the credit profile ask this module what to leave out.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.auth import Principal
from shared.contracts.credit import ENTRY_EVENTS, ENTRY_LISTED, ENTRY_REMOVED

OFFICER_SCOPES = frozenset({"credit:write", "credit:review", "admin"})
#: Entry states on the public record (公示): listed, and removed after a listing.
PUBLIC_ENTRY_STATUSES = frozenset({"listed", "removed"})
#: Proposed, rejected, repair applied: the officers' own working data.
OFFICER_ONLY_EVENTS = frozenset(ENTRY_EVENTS) - {ENTRY_LISTED, ENTRY_REMOVED}


@dataclass(frozen=True)
class Visibility:
    officer: bool

    @property
    def hidden_event_types(self) -> frozenset[str]:
        return frozenset() if self.officer else OFFICER_ONLY_EVENTS

    def sees_entry(self, status: str) -> bool:
        return self.officer or status in PUBLIC_ENTRY_STATUSES


def visibility(principal: Principal) -> Visibility:
    return Visibility(officer=bool(principal.scopes & OFFICER_SCOPES))
