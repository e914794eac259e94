"""Domain events: past-tense facts that other parts of the product react to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class LeadCreated:
    lead_id: int
    at: datetime


@dataclass(frozen=True)
class StageChanged:
    lead_id: int
    action: str
    from_state: str
    to_state: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class LeadsMerged:
    survivor_id: int
    merged_id: int
    actor: str
    at: datetime
