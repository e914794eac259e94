"""The costlier parts of a lead at their own URLs: its activities (the timeline, in cursor pages) and the
leads that may be the same person. ``GET /leads/{ref}?include=...`` embeds them too."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from leadstage.api.routes import PROBLEM_RESPONSES, Ref
from leadstage.api.security import Reader, Uow, container
from leadstage.domain.errors import ValidationError
from leadstage.services import leads as lead_service

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, tags=["leads"])


def _cursor(at: datetime, activity_id: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{activity_id}".encode()).decode().rstrip("=")


def _position(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, activity_id = text.rsplit("|", 1)
        return datetime.fromisoformat(at), int(activity_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationError(
            "cursor: not a next_cursor of this endpoint (pass it back unchanged)", field="cursor"
        ) from None


@router.get("/leads/{ref}/activities")
def lead_activities(
    ref: Ref,
    uow: Uow,
    who: Reader,
    cursor: Annotated[
        str | None, Query(max_length=200, description="The next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The lead's activities, latest first, in pages: pass ``next_cursor`` back as ``cursor``."""
    lead_id, items = lead_service.lead_activities(
        uow, ref, limit=limit, before=_position(cursor) if cursor else None
    )
    last = items[-1] if len(items) == limit else None
    return {
        "lead_id": lead_id,
        "items": [lead_service.activity_json(a) for a in items],
        "next_cursor": _cursor(last.occurred_at, last.id) if last is not None and last.id else None,
    }


@router.get("/leads/{ref}/duplicates")
def lead_duplicates(request: Request, ref: Ref, uow: Uow, who: Reader) -> dict[str, Any]:
    """Leads that look like the same person by name and company (suggestions, never merged silently)."""
    lead = lead_service.resolve_lead(uow, ref)
    items = lead_service.possible_duplicates(uow, lead, container(request).identity)
    return {"lead_id": lead.id, "total": len(items), "items": items}
