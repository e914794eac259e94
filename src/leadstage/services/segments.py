"""Segment use cases (DOMAIN.md R4): create, list with member counts, show, delete, and list members.

A filter is parsed and validated before anything is stored; stored filters are parsed again when used,
so membership is always computed from the current data. ``as_of`` is the "now" that relative times
(``30d ago``, ``within 30d``) are measured from; callers pass their clock's time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadstage.domain.activities import BUILTIN_ACTIVITY_TYPES
from leadstage.domain.errors import AlreadyExists, NotFound, PermissionDenied, ValidationError
from leadstage.domain.leads import Lead, lead_summary
from leadstage.domain.segments import (
    All,
    Filter,
    FilterSyntaxError,
    Segment,
    owner_names,
    parse_filter,
    validate_segment_name,
)
from leadstage.domain.stages import SEGMENT_EDITORS, Actor
from leadstage.services.ports import LeadFilter, UnitOfWork


def parse(uow: UnitOfWork, filter_text: str) -> Filter:
    """Parse a filter against this database's activity types; the owners it names must exist."""
    types = set(BUILTIN_ACTIVITY_TYPES) | uow.activities.known_types()
    tree = parse_filter(filter_text, activity_types=types)
    for username, position in owner_names(tree):
        if uow.users.get_by_username(username) is None:
            raise FilterSyntaxError(position, f"no user {username!r} (see `leadstage users list`)")
    return tree


def _info(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.id,
        "name": segment.name,
        "filter": segment.filter,
        "description": segment.description,
        "created_by": segment.created_by,
        "created_at": segment.created_at.isoformat(),
    }


def require_editor(actor: Actor, verb: str = "create") -> None:
    """Only administrators, marketing and sales managers save or delete segments (checked before any state)."""
    if actor.role not in SEGMENT_EDITORS:
        raise PermissionDenied(f"role {actor.role.value} may not {verb} segments")


def create_segment(
    uow: UnitOfWork,
    name: str,
    filter_text: str,
    *,
    actor_name: str,
    at: datetime,
    description: str | None = None,
) -> dict[str, Any]:
    """Validate the name and the filter, then store the segment; the caller commits."""
    name = validate_segment_name(name)
    if not filter_text.strip():
        raise ValidationError("the filter is empty: write a condition such as stage = mql", field="filter")
    parse(uow, filter_text)
    if uow.segments.get(name) is not None:
        raise AlreadyExists(f"a segment named {name!r} already exists", field="name")
    stored = uow.segments.add(
        Segment(
            id=None,
            name=name,
            filter=filter_text.strip(),
            description=(description or "").strip() or None,
            created_by=actor_name,
            created_at=at,
            updated_at=at,
        )
    )
    return _info(stored)


#: Segments every workspace starts with: (name, filter, description).
BUILTIN_SEGMENTS = (
    (
        "disqualified-nurture",
        "status = disqualified and nurture is not null",
        "Disqualified leads whose strategy says marketing nurtures them (bad timing, no need, no budget, ...)",
    ),
)


def install_builtin_segments(uow: UnitOfWork, *, at: datetime) -> list[str]:
    """Create the built-in segments that do not exist yet (a deleted one comes back only here); the caller commits."""
    made = []
    for name, filter_text, description in BUILTIN_SEGMENTS:
        if uow.segments.get(name) is None:
            create_segment(uow, name, filter_text, actor_name="system", at=at, description=description)
            made.append(name)
    return made


def _get(uow: UnitOfWork, name: str) -> Segment:
    segment = uow.segments.get(name.strip())
    if segment is None:
        known = ", ".join(s.name for s in uow.segments.all()[:20]) or "none yet"
        raise NotFound(f"no segment {name!r} (segments: {known})")
    return segment


def segment_filter(uow: UnitOfWork, name: str) -> Filter:
    """The parsed filter of a saved segment (``NotFound`` when there is no such segment)."""
    segment = _get(uow, name)
    try:
        return parse(uow, segment.filter)
    except ValidationError as exc:
        raise ValidationError(f"segment {segment.name!r} has a filter that no longer reads: {exc}") from None


def list_segments(uow: UnitOfWork, *, as_of: datetime) -> list[dict[str, Any]]:
    """Every segment with its number of members as of ``as_of``."""
    out = []
    for segment in uow.segments.all():
        info = _info(segment)
        info["count"] = uow.segments.count(segment_filter(uow, segment.name), as_of=as_of)
        out.append(info)
    return out


def count_segment(uow: UnitOfWork, name: str, *, as_of: datetime) -> int:
    """How many leads the segment holds as of ``as_of``."""
    return uow.segments.count(segment_filter(uow, name), as_of=as_of)


def show_segment(uow: UnitOfWork, name: str, *, as_of: datetime, limit: int = 20) -> dict[str, Any]:
    """The segment, its number of members and the first ``limit`` of them (by lead id)."""
    segment = _get(uow, name)
    tree = segment_filter(uow, segment.name)
    total, members = uow.segments.search(tree, LeadFilter(limit=limit), as_of=as_of)
    info = _info(segment)
    info.update(count=total, members=[lead_summary(lead) for lead in members])
    return info


def list_leads_in_segment(
    uow: UnitOfWork, name: str, flt: LeadFilter, *, as_of: datetime
) -> tuple[int, list[dict[str, Any]]]:
    """``leads list --segment NAME``: the members that also pass the listing's filter, and their total."""
    total, leads = uow.segments.search(segment_filter(uow, name), flt, as_of=as_of)
    return total, [lead_summary(lead) for lead in leads]


def search_leads(
    uow: UnitOfWork,
    flt: LeadFilter,
    *,
    as_of: datetime,
    filter_text: str | None = None,
    segment: str | None = None,
) -> tuple[int, list[Lead]]:
    """Leads passing the listing's filter and, when given, an ad-hoc filter expression and a segment."""
    conditions = []
    if filter_text:
        conditions.append(parse(uow, filter_text))
    if segment:
        conditions.append(segment_filter(uow, segment))
    if not conditions:
        return uow.leads.search(flt)
    node = conditions[0] if len(conditions) == 1 else All(tuple(conditions))
    return uow.segments.search(node, flt, as_of=as_of)


def delete_segment(uow: UnitOfWork, name: str) -> None:
    """Delete a saved segment (its leads are untouched); the caller commits."""
    segment = _get(uow, name)
    uow.segments.delete(segment.name)


def add_leads(
    uow: UnitOfWork, name: str, lead_ids: list[int], *, actor: Actor, at: datetime
) -> dict[str, Any]:
    """Add leads to a segment by id: its filter becomes ``(FILTER) or id in (...)``; a segment that does not
    exist yet is created as a list of these leads (``id in (...)``). The caller commits."""
    require_editor(actor)
    if not lead_ids:
        raise ValidationError("select at least one lead", field="ids")
    listed = f"id in ({', '.join(str(int(i)) for i in sorted(set(lead_ids)))})"
    segment = uow.segments.get(name.strip())
    if segment is None:
        return create_segment(
            uow, name, listed, actor_name=actor.name, at=at, description=f"leads picked by {actor.name}"
        )
    text = f"({segment.filter}) or {listed}"
    parse(uow, text)  # a filter that grew too long is refused, naming the position
    uow.segments.set_filter(segment.name, text, at=at)
    return show_segment(uow, segment.name, as_of=at, limit=0)
