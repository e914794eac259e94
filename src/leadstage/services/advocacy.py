"""Customers become evangelists on their own (DOMAIN.md R12): a referral, a review, a case study or an NPS
answer of 9-10 moves a customer to evangelist through the ``advocate`` transition, actor ``system``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from leadstage.domain.activities import decoded_properties
from leadstage.domain.stages import ADVOCACY_ACTIVITY_TYPES, Action, Actor, Stage, Status, TransitionRequest
from leadstage.services.leads import transition_lead
from leadstage.services.ports import UnitOfWork

#: Where an NPS answer's score may be, in the activity's properties.
NPS_KEYS = ("score", "nps", "nps_score", "rating")


def is_advocacy(activity_type: str, properties: Any) -> bool:
    """Whether this activity makes a customer an evangelist (an NPS answer only when it is 9 or 10)."""
    if activity_type not in ADVOCACY_ACTIVITY_TYPES:
        return False
    if activity_type != "nps_response":
        return True
    props = decoded_properties(properties)
    for key in NPS_KEYS:
        value = props.get(key)
        try:
            return value is not None and float(value) >= 9
        except (TypeError, ValueError):
            return False
    return False


def advocate_from_activities(
    uow: UnitOfWork, activities: Iterable[tuple[int, str, Any]], *, at: datetime
) -> list[int]:
    """Advocate every customer among these (lead id, type, properties) whose activity is advocacy."""
    kinds: dict[int, str] = {}
    for lead_id, activity_type, properties in activities:
        if lead_id not in kinds and is_advocacy(activity_type, properties):
            kinds[lead_id] = activity_type
    if not kinds:
        return []
    done = []
    for lead in uow.leads.find_many(ids=kinds):
        assert lead.id is not None
        if lead.stage is Stage.CUSTOMER and lead.status is Status.OPEN:
            request = TransitionRequest(Action.ADVOCATE.value, advocacy_activity=kinds[lead.id])
            transition_lead(uow, lead.id, request, actor=Actor.system(), at=at)
            done.append(lead.id)
    return done
