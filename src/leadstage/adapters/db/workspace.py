"""Reads for the web workspace's lists and boards, in SQL: a page of leads in one query with the columns a
list shows, keyset pages (never ``OFFSET``: the thousandth page costs what the first does), capped counts,
and the values people pick filters from.

Keyset order by priority is ``(priority, id)`` over the leads that have a priority, then ``id`` over
those that have none (unscored leads come last), read as two index-ordered queries rather than one sort
with ``NULLS LAST`` that neither database can take from the ``priority`` index.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Float, and_, func, or_, select, true

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.segments import compile_filter
from leadstage.domain.segments import Filter
from leadstage.services.ports import ListCursor, ListedLead

Bool = ColumnElement[bool]
_L = t.leads.c
_COLUMNS = (
    _L.id,
    _L.email,
    _L.first_name,
    _L.last_name,
    _L.job_title,
    _L.company,
    _L.stage,
    _L.status,
    _L.cycle,
    _L.owner_id,
    t.users.c.username.label("owner"),
    _L.priority,
    _L.fit_grade,
    _L.fit_score,
    _L.engagement_level,
    _L.engagement_score,
    _L.predictive_score,
    _L.predictive_decile,
    _L.first_source,
    _L.created_at,
    _L.last_touch_at,
    _L.version,
)
_FROM = t.leads.outerjoin(t.users, t.users.c.id == _L.owner_id)


def _listed(r: Any) -> ListedLead:
    return ListedLead(**{c.key: getattr(r, c.key) for c in _COLUMNS})


class SqlWorkspaceQueries:
    """Never writes and never commits."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def _where(self, flt: Filter | None, as_of: datetime) -> Bool:
        return true() if flt is None else compile_filter(flt, dialect=self.dialect, as_of=as_of)

    def lead_page(
        self,
        flt: Filter | None,
        *,
        as_of: datetime,
        sort: str,
        after: ListCursor | None,
        limit: int,
        scan: bool = False,
    ) -> list[ListedLead]:
        """Up to ``limit`` leads passing ``flt`` after ``after``, in ``sort`` order (priority, newest, oldest).

        ``scan``: the filter matches few leads and no index finds them (a text search): read the matches,
        then order them, rather than walk the whole priority index looking for them."""
        where = self._where(flt, as_of)
        base = select(*_COLUMNS).select_from(_FROM).where(where)
        if scan and sort == "priority":  # one pass over the matches: unscored last under a key after D4
            key = func.coalesce(_L.priority, "~")
            q = base
            if after is not None:
                last = after.priority or "~"
                q = q.where(or_(key > last, and_(key == last, _L.id > after.id)))
            return [_listed(r) for r in self.conn.execute(q.order_by(key, _L.id).limit(limit))]
        priority: ColumnElement[Any] = _L.priority
        if sort in ("newest", "oldest"):
            q = base
            if after is not None:
                q = q.where(_L.id < after.id if sort == "newest" else _L.id > after.id)
            q = q.order_by(_L.id.desc() if sort == "newest" else _L.id).limit(limit)
            return [_listed(r) for r in self.conn.execute(q)]
        rows: list[ListedLead] = []
        if after is None or after.priority is not None:
            q = base.where(priority.is_not(None))
            if after is not None:
                q = q.where(
                    or_(priority > after.priority, and_(priority == after.priority, _L.id > after.id))
                )
            rows = [_listed(r) for r in self.conn.execute(q.order_by(priority, _L.id).limit(limit))]
        if len(rows) < limit:
            q = base.where(priority.is_(None))
            if after is not None and after.priority is None:
                q = q.where(_L.id > after.id)
            rows += [_listed(r) for r in self.conn.execute(q.order_by(_L.id).limit(limit - len(rows)))]
        return rows

    def count(self, flt: Filter | None, *, as_of: datetime, cap: int) -> int:
        """How many leads pass ``flt``, counted up to ``cap + 1`` (more than ``cap``: ``cap + 1``)."""
        inner = select(_L.id).where(self._where(flt, as_of)).limit(cap + 1).subquery()
        return int(self.conn.execute(select(func.count()).select_from(inner)).scalar_one())

    def leads_by_id(self, ids: Sequence[int]) -> list[ListedLead]:
        if not ids:
            return []
        q = select(*_COLUMNS).select_from(_FROM).where(_L.id.in_(list(ids)))
        return [_listed(r) for r in self.conn.execute(q)]

    def sources(self, limit: int = 200) -> list[str]:
        """The leads' first sources, most common first."""
        q = (
            select(_L.first_source)
            .where(_L.first_source.is_not(None))
            .group_by(_L.first_source)
            .order_by(func.count().desc())
            .limit(limit)
        )
        return [str(r[0]) for r in self.conn.execute(q)]

    def activity_values(self, column: str, limit: int = 300) -> list[str]:
        """The campaigns or content assets activities name (``column``: campaign or content), A to Z."""
        col = t.activities.c[column]
        q = select(col).where(col.is_not(None)).group_by(col).order_by(col).limit(limit)
        return [str(r[0]) for r in self.conn.execute(q)]

    def stage_counts(self, flt: Filter | None, *, as_of: datetime) -> dict[str, int]:
        """How many leads passing ``flt`` are at each stage."""
        q = select(_L.stage, func.count()).where(self._where(flt, as_of)).group_by(_L.stage)
        return {str(stage): int(n) for stage, n in self.conn.execute(q)}

    def stage_values(self, flt: Filter | None, *, as_of: datetime) -> dict[str, dict[str, float]]:
        """What the leads passing ``flt`` are worth, per stage and currency: the amount of the opportunity
        opened in their current cycle, and for customers and evangelists the amount they were won for."""
        h = t.lead_history
        amount = func.coalesce(h.c.data["closed_amount"].as_string(), h.c.data["amount"].as_string())
        currency = func.coalesce(h.c.data["currency"].as_string(), "")
        wanted = or_(
            and_(_L.stage == "opportunity", h.c.action == "open_opportunity"),
            and_(_L.stage.in_(("customer", "evangelist")), h.c.action == "win"),
        )
        q = (
            select(_L.stage, currency, func.sum(func.cast(amount, Float)))
            .select_from(t.leads.join(h, and_(h.c.lead_id == _L.id, h.c.cycle == _L.cycle)))
            .where(
                _L.stage.in_(("opportunity", "customer", "evangelist")),  # the few leads that have a value
                self._where(flt, as_of),
                wanted,
            )
            .group_by(_L.stage, currency)
        )
        out: dict[str, dict[str, float]] = {}
        for stage, code, total in self.conn.execute(q):
            if total is not None:
                out.setdefault(str(stage), {})[str(code or "")] = float(total)
        return out
