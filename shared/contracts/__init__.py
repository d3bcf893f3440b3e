"""The contracts between the services: every event type name and its payload model.

One module per producer (`sampling`, `credit`, `awards`) holds its type names as constants, its
payload models and its CloudEvents `source`. Producers build their events from them and
consumers subscribe to and parse with the same names and models, so a type name is written once
and a misspelt one fails at start-up (`shared.consumer`) instead of dropping events in silence.
"""

from __future__ import annotations

from shared.contracts import awards, credit, gateway, sampling
from shared.events import EventRegistry

#: Every event type of the suite with its payload model and producer: what consumers may subscribe
#: to, what producers may publish, and the event catalog (`qcity catalog`).
registry = EventRegistry()
for _contract in (*sampling.CONTRACTS, *credit.CONTRACTS, *awards.CONTRACTS, *gateway.CONTRACTS):
    registry.add(_contract)

__all__ = ["awards", "credit", "gateway", "registry", "sampling"]
