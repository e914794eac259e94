"""Storage for predictive scoring: the features a model reads, stored models, and the predictive score.

Activity aggregates are computed per lead as of that lead's snapshot time, from one ordered pass over the
activities: nothing that happened at or after the snapshot is read into a feature.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.repositories import chunks
from leadstage.services.ports import LeadFeatureRow, PredictiveModelRecord

#: Half-life of the decayed engagement feature.
ENGAGEMENT_HALF_LIFE_DAYS = 30.0
_STAGES_AFTER = {
    "mql": ("mql", "sql", "opportunity", "customer", "evangelist"),
    "sql": ("sql", "opportunity", "customer", "evangelist"),
    "opportunity": ("opportunity", "customer", "evangelist"),
    "customer": ("customer", "evangelist"),
    "evangelist": ("evangelist",),
}


@dataclass
class _Aggregate:
    by_type: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    decayed: float = 0.0
    last: datetime | None = None
    contents: set[str] = field(default_factory=set)


class SqlPredictiveRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # ---- features --------------------------------------------------------------------------------

    def property_names(self) -> list[str]:
        rows = self.conn.execute(
            select(t.property_definitions.c.name).where(t.property_definitions.c.entity == "lead")
        )
        return [r[0] for r in rows]

    def all_lead_ids(self) -> list[int]:
        return [int(r[0]) for r in self.conn.execute(select(t.leads.c.id).order_by(t.leads.c.id))]

    def lead_ids_needing_scores(self, model_id: int, limit: int | None = None) -> list[int]:
        """Leads never scored by this model, changed since, or with activities it has not seen."""
        lt, m, a = t.leads, t.predictive_models, t.activities
        mark = self.conn.execute(select(m.c.activity_watermark).where(m.c.id == model_id)).scalar()
        stale = (
            (lt.c.predictive_model_id.is_(None))
            | (lt.c.predictive_model_id != model_id)
            | (lt.c.predictive_scored_at.is_(None))
            | (lt.c.updated_at > lt.c.predictive_scored_at)
        )
        if mark is not None:
            stale = stale | lt.c.id.in_(select(a.c.lead_id).where(a.c.id > mark))
        q = select(lt.c.id).where(stale).order_by(lt.c.id)
        if limit is not None:
            q = q.limit(limit)
        return [int(r[0]) for r in self.conn.execute(q)]

    def lead_score(self, lead_id: int) -> dict[str, Any] | None:
        """The lead's predictive score, decile, model and time, or None when it has none."""
        lt = t.leads
        r = self.conn.execute(
            select(
                lt.c.predictive_score,
                lt.c.predictive_decile,
                lt.c.predictive_model_id,
                lt.c.predictive_scored_at,
            ).where(lt.c.id == lead_id)
        ).first()
        if r is None or r.predictive_score is None:
            return None
        return {
            "score": r.predictive_score,
            "decile": r.predictive_decile,
            "model_id": r.predictive_model_id,
            "scored_at": r.predictive_scored_at.isoformat() if r.predictive_scored_at else None,
        }

    def activity_watermark(self) -> int:
        return int(self.conn.execute(select(func.coalesce(func.max(t.activities.c.id), 0))).scalar_one())

    def set_activity_watermark(self, model_id: int, mark: int) -> None:
        m = t.predictive_models
        self.conn.execute(update(m).where(m.c.id == model_id).values(activity_watermark=mark))

    def feature_rows(
        self,
        *,
        label_stage: str | None,
        snapshot_days: int | None,
        as_of: datetime,
        lead_ids: Sequence[int] | None = None,
        activities: bool = True,
    ) -> list[LeadFeatureRow]:
        lt, at = t.leads, t.accounts
        q = (
            select(
                lt.c.id,
                lt.c.created_at,
                lt.c.furthest_stage,
                lt.c.first_source,
                lt.c.job_title,
                lt.c.email_normalized,
                lt.c.properties,
                lt.c.priority,
                at.c.industry,
                at.c.employees,
                at.c.annual_revenue,
                at.c.country,
            )
            .select_from(lt.outerjoin(at, lt.c.account_id == at.c.id))
            .order_by(lt.c.id)
        )
        rows: list[LeadFeatureRow] = []
        batches = [None] if lead_ids is None else list(chunks(list(lead_ids), 900))
        for batch in batches:
            qq = q if batch is None else q.where(lt.c.id.in_(batch))
            for r in self.conn.execute(qq):
                email = r.email_normalized or ""
                fields: dict[str, Any] = {
                    "first source": r.first_source,
                    "job title": r.job_title,
                    "email domain": email.rsplit("@", 1)[1] if "@" in email else None,
                    "account industry": r.industry,
                    "account employees": r.employees,
                    "account annual revenue": r.annual_revenue,
                    "account country": r.country,
                }
                rows.append(
                    LeadFeatureRow(
                        lead_id=int(r.id),
                        created_at=r.created_at,
                        fields=fields,
                        properties=dict(r.properties or {}),
                        furthest_stage=r.furthest_stage,
                        rule_priority=r.priority,
                    )
                )
        by_id = {row.lead_id: row for row in rows}
        if label_stage is not None and by_id:
            self._stage_times(by_id, label_stage)
        snapshots: dict[int, datetime] = {}
        for row in rows:
            if snapshot_days is None:
                snapshots[row.lead_id] = as_of
            else:
                snap = min(row.created_at + timedelta(days=snapshot_days), as_of)
                if row.first_move_at is not None:
                    snap = min(snap, row.first_move_at)
                snapshots[row.lead_id] = snap
        if activities:
            self._activity_aggregates(by_id, snapshots, lead_ids)
        return rows

    def _stage_times(self, by_id: dict[int, LeadFeatureRow], label_stage: str) -> None:
        h = t.lead_history
        reached = _STAGES_AFTER.get(label_stage, (label_stage,))
        q = select(h.c.lead_id, func.min(h.c.at)).where(h.c.to_stage.in_(reached)).group_by(h.c.lead_id)
        for lead_id, when in self.conn.execute(q):
            if lead_id in by_id:
                by_id[lead_id].reached_at = t.UTCDateTime().process_result_value(when, self.conn.dialect)
        q2 = (
            select(h.c.lead_id, func.min(h.c.at))
            .where((h.c.from_stage.is_not(None)) & ((h.c.to_stage != "lead") | (h.c.from_stage != "lead")))
            .group_by(h.c.lead_id)
        )
        for lead_id, when in self.conn.execute(q2):
            if lead_id in by_id:
                by_id[lead_id].first_move_at = t.UTCDateTime().process_result_value(when, self.conn.dialect)

    def _activity_aggregates(
        self, by_id: dict[int, LeadFeatureRow], snapshots: dict[int, datetime], lead_ids: Sequence[int] | None
    ) -> None:
        a = t.activities
        q = select(a.c.lead_id, a.c.type, a.c.occurred_at, a.c.source, a.c.content).order_by(a.c.lead_id)
        types: set[str] = set()
        sources: set[str] = set()
        per_lead: dict[int, _Aggregate] = {}
        batches = [None] if lead_ids is None else list(chunks(list(lead_ids), 900))
        for batch in batches:
            qq = q if batch is None else q.where(a.c.lead_id.in_(batch))
            for lead_id, kind, when, source, content in self.conn.execute(qq).yield_per(50_000):
                snap = snapshots.get(lead_id)
                moment = when  # already an aware UTC datetime (UTCDateTime)
                if snap is None or moment is None or moment >= snap:
                    continue  # never read anything at or after the snapshot
                agg = per_lead.get(lead_id)
                if agg is None:
                    agg = per_lead[lead_id] = _Aggregate()
                agg.by_type[kind] += 1
                types.add(kind)
                if source:
                    agg.by_source[source] += 1
                    sources.add(source)
                age = (snap - moment).total_seconds() / 86_400
                agg.decayed += math.pow(0.5, age / ENGAGEMENT_HALF_LIFE_DAYS)
                if agg.last is None or moment > agg.last:
                    agg.last = moment
                if content:
                    agg.contents.add(content)
        if not types:
            return
        empty = _Aggregate()
        for lead_id, row in by_id.items():
            found = per_lead.get(lead_id, empty)
            by_type, by_source, decayed, last = found.by_type, found.by_source, found.decayed, found.last
            n_content = len(found.contents)
            for kind in sorted(types):
                row.fields[f"activities: {kind}"] = by_type.get(kind, 0)
            for source in sorted(sources):
                row.fields[f"activities from: {source}"] = by_source.get(source, 0)
            row.fields["engagement (decayed)"] = round(decayed, 4)
            row.fields["days since last activity"] = (
                None if last is None else round((snapshots[lead_id] - last).total_seconds() / 86_400, 3)
            )
            row.fields["content consumed"] = n_content

    # ---- models ----------------------------------------------------------------------------------

    @staticmethod
    def _record(r: Any) -> PredictiveModelRecord:
        return PredictiveModelRecord(
            id=int(r.id),
            version=int(r.version),
            kind=r.kind,
            label=dict(r.label),
            card=dict(r.card),
            sha256=r.sha256,
            data_sha256=r.data_sha256,
            active=bool(r.active),
            created_by=r.created_by,
            created_at=r.created_at,
            activated_at=r.activated_at,
        )

    def _columns(self) -> list[Any]:
        m = t.predictive_models
        return [c for c in m.c if c.name != "artifact"]

    def add_model(
        self,
        *,
        kind: str,
        label: dict[str, Any],
        card: dict[str, Any],
        artifact: str,
        sha256: str,
        data_sha256: str,
        created_by: str,
        at: datetime,
    ) -> PredictiveModelRecord:
        m = t.predictive_models
        version = int(self.conn.execute(select(func.coalesce(func.max(m.c.version), 0))).scalar_one()) + 1
        new_id = self.conn.execute(
            m.insert()
            .values(
                version=version,
                kind=kind,
                label=label,
                card=card,
                artifact=artifact,
                sha256=sha256,
                data_sha256=data_sha256,
                active=False,
                created_by=created_by,
                created_at=at,
            )
            .returning(m.c.id)
        ).scalar_one()
        record = self.get_model(int(new_id))
        assert record is not None
        return record

    def get_model(self, model_id: int) -> PredictiveModelRecord | None:
        m = t.predictive_models
        r = self.conn.execute(select(*self._columns()).where(m.c.id == model_id)).first()
        return None if r is None else self._record(r)

    def latest_model(self) -> PredictiveModelRecord | None:
        m = t.predictive_models
        r = self.conn.execute(select(*self._columns()).order_by(m.c.version.desc()).limit(1)).first()
        return None if r is None else self._record(r)

    def active_model(self) -> PredictiveModelRecord | None:
        m = t.predictive_models
        r = self.conn.execute(select(*self._columns()).where(m.c.active.is_(True))).first()
        return None if r is None else self._record(r)

    def artifact(self, model_id: int) -> str:
        m = t.predictive_models
        return str(self.conn.execute(select(m.c.artifact).where(m.c.id == model_id)).scalar_one())

    def activate(self, model_id: int, *, at: datetime) -> None:
        m = t.predictive_models
        self.conn.execute(update(m).where(m.c.active.is_(True)).values(active=False))
        self.conn.execute(update(m).where(m.c.id == model_id).values(active=True, activated_at=at))

    def write_scores(self, rows: Sequence[tuple[int, float, int]], *, model_id: int, at: datetime) -> None:
        if not rows:
            return
        lt = t.leads
        stmt = (
            update(lt)
            .where(lt.c.id == bindparam("b_id"))
            .values(
                predictive_score=bindparam("b_score"),
                predictive_decile=bindparam("b_decile"),
                predictive_model_id=model_id,
                predictive_scored_at=at,
            )
        )
        for chunk in chunks(list(rows), 5_000):
            self.conn.execute(
                stmt,
                [{"b_id": lead_id, "b_score": score, "b_decile": decile} for lead_id, score, decile in chunk],
            )
