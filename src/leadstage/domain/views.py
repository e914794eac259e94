"""A view of the lead list: the filters people pick in the workspace, written in the segment language.

A view is plain data (stage, status, owner, source, campaign, content, fit grade, engagement level,
predictive score, created dates, a text search) that :meth:`LeadView.filter_text` turns into one filter
expression of ``domain/segments.py``. The list runs that expression, so what a view shows is exactly what
the same filter gives everywhere else (``leads list --filter``, the API's ``filter=``), and saving a view
as a segment stores that expression. Values are quoted, so nothing typed into a field can change the
meaning of the filter around it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date

from leadstage.domain.errors import ValidationError
from leadstage.domain.segments import ENGAGEMENT_LEVELS, FIT_GRADES, STAGES, STATUSES

SORTS = ("priority", "newest", "oldest")
_DECIMAL = re.compile(r"\d*\.?\d+")


def quote(value: str) -> str:
    """A value as double-quoted text of the filter language (``\\`` and ``"`` escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class LeadView:
    """The lead list's filters; empty fields filter nothing. ``owner`` is a user name or ``none``."""

    stage: str = ""
    status: str = ""
    owner: str = ""
    source: str = ""
    campaign: str = ""
    content: str = ""
    segment: str = ""
    fit: str = ""  # at least this fit grade (A best)
    engagement: str = ""  # at least this engagement level (1 most engaged)
    predictive: str = ""  # at least this predictive probability, 0..1
    created_from: str = ""  # YYYY-MM-DD, included
    created_to: str = ""  # YYYY-MM-DD, included
    q: str = ""  # name, email or company contains
    sort: str = "priority"

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> LeadView:
        """A view from query parameters, checked: a bad value is a ``ValidationError`` naming the field."""
        known = {f.name for f in fields(cls)}
        view = cls(**{k: str(v).strip() for k, v in params.items() if k in known and v is not None})
        view.check()
        return view

    def check(self) -> None:
        if self.stage and self.stage not in STAGES:
            raise ValidationError(
                f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}", field="stage"
            )
        if self.status and self.status not in STATUSES:
            raise ValidationError(
                f"status must be one of {', '.join(STATUSES)}, got {self.status!r}", field="status"
            )
        if self.fit and self.fit not in FIT_GRADES:
            raise ValidationError(f"fit grade must be A, B, C or D, got {self.fit!r}", field="fit")
        if self.engagement and self.engagement not in {str(level) for level in ENGAGEMENT_LEVELS}:
            raise ValidationError(
                f"engagement level must be 1, 2, 3 or 4, got {self.engagement!r}", field="engagement"
            )
        if self.predictive and not (_DECIMAL.fullmatch(self.predictive) and 0 <= float(self.predictive) <= 1):
            raise ValidationError(
                f"predictive score must be a probability from 0 to 1, got {self.predictive!r}",
                field="predictive",
            )
        for name in ("created_from", "created_to"):
            value = getattr(self, name)
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise ValidationError(
                        f"{name.replace('_', ' ')} must be a date YYYY-MM-DD, got {value!r}", field=name
                    ) from None
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValidationError("created from is after created to", field="created_from")
        if self.sort not in SORTS:
            raise ValidationError(f"sort must be one of {', '.join(SORTS)}, got {self.sort!r}", field="sort")

    def filter_text(self) -> str:
        """The view's conditions (not its segment) as one filter expression; '' when there are none."""
        parts: list[str] = []
        if self.stage:
            parts.append(f"stage = {self.stage}")
        if self.status:
            parts.append(f"status = {self.status}")
        if self.owner:
            parts.append("owner is null" if self.owner.lower() == "none" else f"owner = {quote(self.owner)}")
        if self.source:
            parts.append(f"first_source = {quote(self.source)}")
        if self.fit:
            parts.append(f"fit_grade >= {self.fit}")
        if self.engagement:
            parts.append(f"engagement_level >= {self.engagement}")
        if self.predictive:
            parts.append(f"predictive_score >= {self.predictive}")
        if self.created_from:
            parts.append(f"created_at >= {self.created_from}")
        if self.created_to:
            parts.append(f"created_at <= {self.created_to}")
        if self.q:
            text = quote(self.q)
            parts.append(
                f"(email contains {text} or last_name contains {text} or first_name contains {text} "
                f"or company contains {text})"
            )
        if self.campaign:
            parts.append(f"activity(any, campaign = {quote(self.campaign)})")
        if self.content:
            parts.append(f"activity(any, content = {quote(self.content)})")
        return " and ".join(parts)

    def as_params(self) -> dict[str, str]:
        """The non-empty fields, as query parameters (the sort only when not the default)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}
        if out.get("sort") == "priority":
            del out["sort"]
        return out

    def without_sort(self) -> LeadView:
        return replace(self, sort="priority")

    @property
    def empty(self) -> bool:
        return not self.filter_text() and not self.segment


def segment_filter(view_filter: str, segment_filter_text: str | None) -> str:
    """A view saved as a segment: its own filter and, when it lists a segment, that segment's filter."""
    parts = [f"({text})" for text in (segment_filter_text, view_filter) if text]
    if len(parts) == 1:
        return parts[0][1:-1]
    return " and ".join(parts)
