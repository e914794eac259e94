"""SQL side of scoring: models and their versions, set-based reads of facts and activities, score writes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.repositories import history_values, history_written, in_chunks
from leadstage.adapters.db.tables import bulk_datetime
from leadstage.domain.errors import ConcurrencyConflict
from leadstage.domain.identity import email_domain
from leadstage.domain.scoring import ACTIVITY_FIELDS, SQL_PATH_NAME, ActivityGroup, GroupPlan, Predictive
from leadstage.domain.stages import TransitionOutcome
from leadstage.services.ports import (
    EngagementRow,
    EngagementWrite,
    LeadScoreRow,
    PromotionFacts,
    ScoreWrite,
    StoredModel,
)

_FACT_COLUMNS = (
    "l.id, l.email_normalized, l.first_name, l.last_name, l.job_title, l.company, l.phone, l.first_source, "
    "l.latest_source, l.properties, l.stage, l.status, l.cycle, l.fit_grade, l.engagement_level, l.priority, "
    "l.engagement_state, l.score_model_id, a.name, a.domain, a.industry, a.country, a.employees, a.annual_revenue, "
    "l.scored_at, l.predictive_score, l.predictive_decile"
)


_GROUPS_SUPPORTED: dict[str, bool] = {}
_MISSING = object()


#: Where each fact a fit rule may look at is in a row of ``_FACT_COLUMNS`` (``email_domain`` is derived).
_FACT_INDEX = {
    "email": 1,
    "first_name": 2,
    "last_name": 3,
    "job_title": 4,
    "company": 5,
    "phone": 6,
    "first_source": 7,
    "latest_source": 8,
    "properties": 9,
    "account.name": 18,
    "account.domain": 19,
    "account.industry": 20,
    "account.country": 21,
    "account.employees": 22,
    "account.annual_revenue": 23,
}


def _as_datetime(value: Any) -> datetime | None:
    """A MAX() over a time column: text on SQLite, a datetime on PostgreSQL; always aware UTC here."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    return json.loads(value)


#: Activities whose follow-ups wait in the activity backlog (ADR 21) are left out of every fold from all of
#: a lead's activities: the backlog folds them into whatever state is stored when it runs. Should it run
#: between such a fold's read and its write, the write is skipped (the scored_at stamp moved) and the
#: lead keeps the backlog's fold, so no activity is counted twice or lost.
NOT_PENDING = "AND NOT EXISTS (SELECT 1 FROM activity_backlog b WHERE b.activity_id = activities.id) "


class SqlScoringRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.mark = "?" if self.dialect == "sqlite" else "%s"

    @staticmethod
    def _model(r: Any) -> StoredModel:
        return StoredModel(
            id=r.id,
            version=r.version,
            name=r.name,
            source=r.source,
            active=r.active,
            created_by=r.created_by,
            created_at=r.created_at,
            activated_at=r.activated_at,
        )

    def active_model(self) -> StoredModel | None:
        r = self.conn.execute(select(t.scoring_models).where(t.scoring_models.c.active.is_(True))).first()
        return None if r is None else self._model(r)

    def models(self) -> list[StoredModel]:
        rows = self.conn.execute(select(t.scoring_models).order_by(t.scoring_models.c.version))
        return [self._model(r) for r in rows]

    def add_model(
        self,
        *,
        name: str,
        source: str,
        summary: Mapping[str, Any],
        created_by: str,
        at: datetime,
        activate: bool,
    ) -> StoredModel:
        version = int(
            self.conn.execute(select(func.coalesce(func.max(t.scoring_models.c.version), 0))).scalar_one()
        )
        if activate:
            self.conn.execute(
                update(t.scoring_models).where(t.scoring_models.c.active.is_(True)).values(active=False)
            )
        new_id = self.conn.execute(
            insert(t.scoring_models)
            .values(
                name=name,
                version=version + 1,
                source=source,
                definition=dict(summary),
                active=activate,
                created_by=created_by,
                created_at=at,
                activated_at=at if activate else None,
            )
            .returning(t.scoring_models.c.id)
        ).scalar_one()
        r = self.conn.execute(select(t.scoring_models).where(t.scoring_models.c.id == new_id)).one()
        return self._model(r)

    def lead_id_ranges(self, chunk: int) -> Iterator[tuple[int, int]]:
        last = 0
        while True:
            ids = [
                r[0]
                for r in self.conn.execute(
                    select(t.leads.c.id).where(t.leads.c.id > last).order_by(t.leads.c.id).limit(chunk)
                )
            ]
            if not ids:
                return
            yield ids[0], ids[-1]
            last = ids[-1]

    def lead_rows(
        self,
        *,
        ids: Sequence[int] | None = None,
        id_range: tuple[int, int] | None = None,
        facts: Collection[str] | None = None,
        with_state: bool = True,
    ) -> list[LeadScoreRow]:
        m = self.mark
        names = [s[9:] for s in facts or () if s.startswith("property:")]
        # the properties fit looks at, read one by one out of the JSON where SQL can (not the whole object)
        pick = (
            facts is not None
            and bool(names)
            and all(SQL_PATH_NAME.fullmatch(n) for n in names)
            and self.groups_supported()
        )
        picked = "".join(
            f", l.properties -> '$.\"{n}\"'"
            if self.dialect == "sqlite"
            else f", (l.properties -> '{n}')::text"
            for n in (names if pick else ())
        )
        sql = (
            f"SELECT {_FACT_COLUMNS}{picked} FROM leads l LEFT JOIN accounts a ON a.id = l.account_id WHERE "
        )
        rows: list[Any] = []
        if id_range is not None:
            rows = self._raw_rows(sql + f"l.id BETWEEN {m} AND {m} ORDER BY l.id", id_range)
        elif ids:
            for chunk, marks in in_chunks(ids, m):
                rows.extend(self._raw_rows(sql + f"l.id IN ({marks}) ORDER BY l.id", chunk))
        wanted = _FACT_INDEX if facts is None else {k: v for k, v in _FACT_INDEX.items() if k in facts}
        columns = [(name, i) for name, i in wanted.items() if name != "properties"]
        whole_properties = facts is None or (bool(names) and not pick)
        with_domain = facts is None or "email_domain" in facts
        decoded: dict[str, Any] = {}
        first = _FACT_COLUMNS.count(",") + 1  # the picked properties follow _FACT_COLUMNS
        out = []
        for r in rows:
            values = {name: r[i] for name, i in columns}
            if whole_properties:
                values["properties"] = _json(r[9]) or {}
            elif pick:
                properties = {}
                for j, name in enumerate(names, first):
                    raw = r[j]
                    if raw is not None:
                        value = decoded.get(raw, _MISSING)
                        if value is _MISSING:
                            value = decoded[raw] = json.loads(raw)
                        properties[name] = value
                values["properties"] = properties
            if with_domain:
                values["email_domain"] = email_domain(r[1])
            out.append(
                LeadScoreRow(
                    int(r[0]),
                    values,
                    r[10],
                    r[11],
                    int(r[12]),
                    r[13],
                    r[14],
                    r[15],
                    _json(r[16]) if with_state else None,
                    r[17],
                    r[24],
                    None if r[25] is None or r[26] is None else Predictive(float(r[25]), int(r[26])),
                )
            )
        return out

    def activities_of(
        self,
        *,
        id_range: tuple[int, int] | None = None,
        ids: Sequence[int] | None = None,
        types: Sequence[str],
        with_properties: bool,
        until: datetime | None = None,
        pending: bool = False,
    ) -> Iterator[tuple[int, str, float, str | None, str | None, str | None, str | None]]:
        if not types:
            return
        m = self.mark
        epoch = (
            "(julianday(occurred_at) - 2440587.5) * 86400.0"
            if self.dialect == "sqlite"
            else "extract(epoch from occurred_at)::float8"
        )
        props = "properties" if with_properties else "NULL"
        type_marks = ", ".join([m] * len(types))
        base = (
            f"SELECT lead_id, type, {epoch}, source, campaign, content, {props} FROM activities "
            f"WHERE type IN ({type_marks}) " + ("" if pending else self._not_pending())
        )
        params: list[Any] = list(types)
        if until is not None:
            base += f"AND occurred_at <= {m} "
            params.append(bulk_datetime(until, self.dialect))
        if id_range is not None:
            query = base + f"AND lead_id BETWEEN {m} AND {m} ORDER BY lead_id, occurred_at"
            yield from self.conn.exec_driver_sql(query, (*params, *id_range)).all()
            return
        for chunk, marks in in_chunks(ids or (), m, 500):
            query = base + f"AND lead_id IN ({marks}) ORDER BY lead_id, occurred_at"
            yield from self.conn.exec_driver_sql(query, (*params, *chunk)).all()

    def _not_pending(self) -> str:
        """:data:`NOT_PENDING`, or nothing when SQLite's backlog is empty: a SQLite transaction reads one
        snapshot, so it stays empty for this transaction's reads (saves a lookup per activity in batch
        scoring). PostgreSQL reads each statement's own snapshot: always the condition."""
        if self.dialect == "sqlite":
            found = self.conn.exec_driver_sql("SELECT EXISTS (SELECT 1 FROM activity_backlog)").scalar()
            if not found:
                return ""
        return NOT_PENDING

    def groups_supported(self) -> bool:
        """Whether :meth:`activity_groups` works here: PostgreSQL, or SQLite 3.38+ built with math functions."""
        if self.dialect != "sqlite":
            return True
        key = sqlite3.sqlite_version
        found = _GROUPS_SUPPORTED.get(key)
        if found is None:
            try:
                self.conn.exec_driver_sql("SELECT power(2.0, 0.5), json('{\"a\": 1}') -> '$.\"a\"'").all()
                found = True
            except DBAPIError:
                found = False
            _GROUPS_SUPPORTED[key] = found
        return found

    def activity_groups(
        self, *, id_range: tuple[int, int], plan: GroupPlan, ref: float
    ) -> dict[int, list[ActivityGroup]]:
        """A range of leads' activities as the plan's groups (:class:`GroupPlan`), aggregated in SQL."""
        if not plan.types:
            return {}
        m, sqlite_ = self.mark, self.dialect == "sqlite"

        def literal(text: str) -> str:
            return "'" + text.replace("'", "''") + "'"

        def number(value: float) -> str:
            return repr(float(value)) if sqlite_ else f"{float(value)!r}::float8"

        def key_sql(name: str) -> str:
            if name in ACTIVITY_FIELDS:
                return name
            return (
                f"(properties -> '$.\"{name}\"')" if sqlite_ else f"((properties -> {literal(name)})::text)"
            )

        # PostgreSQL refuses to underflow or overflow: clamp (times that far off are folded one by one anyway)
        clamp = "{x}" if sqlite_ else "greatest({low}, least({high}, {x}))"
        keys, sums = [], []
        for j in range(plan.key_count):
            whens = " ".join(
                f"WHEN {literal(tp)} THEN {key_sql(plan.keys[tp][j])}"
                for tp in plan.types
                if len(plan.keys[tp]) > j
            )
            keys.append(f"CASE type {whens} END AS k{j}")
        for j in range(plan.slot_count):
            whens = " ".join(
                f"WHEN {literal(tp)} THEN power({number(2.0)}, "
                + clamp.format(
                    low=number(-1000), high=number(1000), x=f"d / {number(plan.half_lives[tp][j])}"
                )
                + ")"
                for tp in plan.types
                if len(plan.half_lives[tp]) > j
            )
            sums.append(f"CASE type {whens} END AS s{j}")
        used = {name for tp in plan.types for name in plan.keys[tp]}
        columns = [c for c in ACTIVITY_FIELDS if c in used] + (
            ["properties"] if used - set(ACTIVITY_FIELDS) else []
        )
        key_names = [f"k{j}" for j in range(plan.key_count)]
        timed = [tp for tp in plan.types if tp in plan.timed]
        if timed:  # window rules keep hit times: one group per time
            keys.append(f"CASE type {' '.join(f'WHEN {literal(tp)} THEN t' for tp in timed)} END AS kt")
        sum_names = [f"s{j}" for j in range(plan.slot_count)]
        epoch = self._epoch("occurred_at")
        type_marks = ", ".join([m] * len(plan.types))
        query = (
            f"SELECT lead_id, type, {', '.join([*key_names, ''])}count(*), max(t)"
            f"{''.join(f', sum({s})' for s in sum_names)} FROM ("
            f"SELECT lead_id, type, t{''.join(', ' + c for c in keys + sums)} FROM ("
            f"SELECT lead_id, type, {''.join(c + ', ' for c in columns)}{epoch} AS t, {epoch} - {m} AS d "
            "FROM activities "
            f"WHERE type IN ({type_marks}) AND lead_id BETWEEN {m} AND {m} {self._not_pending()}) AS a) AS b "
            f"GROUP BY lead_id, type{''.join(', ' + k for k in key_names)}{', kt' if timed else ''}"
        )
        rows = self._raw_rows(query, (float(ref), *plan.types, *id_range))
        flags = {
            tp: tuple(name in ACTIVITY_FIELDS for name in plan.keys[tp]) if plan.keys[tp] else None
            for tp in plan.types
        }
        decoded: dict[str, Any] = {}

        def decode(raw: str) -> Any:
            value = decoded.get(raw, _MISSING)
            if value is _MISSING:
                value = decoded[raw] = json.loads(raw)
            return value

        i = 2 + plan.key_count
        out: dict[int, list[ActivityGroup]] = {}
        get = out.get
        for r in rows:
            type_ = r[1]
            fields = flags[type_]
            values: tuple[Any, ...] = ()
            if fields is not None:
                if len(fields) == 1:
                    raw = r[2]
                    values = (raw if fields[0] or raw is None else decode(raw),)
                else:
                    values = tuple(
                        raw if is_field or raw is None else decode(raw)
                        for is_field, raw in zip(fields, r[2:i], strict=False)
                    )
            group = ActivityGroup(type_, values, r[i], r[i + 1], r[i + 2 :])
            found = get(r[0])
            if found is None:
                out[r[0]] = [group]
            else:
                found.append(group)
        return out

    def _raw_rows(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows as plain tuples straight from the driver's cursor, in this unit of work's transaction."""
        cursor = self.conn.connection.cursor()
        try:
            cursor.execute(query, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def write_scores(self, rows: Sequence[ScoreWrite], *, model_id: int, at: datetime) -> None:
        if not rows:
            return
        m = self.mark
        when = bulk_datetime(at, self.dialect)
        state_cast = "" if self.dialect == "sqlite" else "::json"
        rest = (
            f"excluded_by = {m}, engagement_state = {m}{state_cast}, scored_at = {m}, score_model_id = {m} "
            f"WHERE id = {m} AND {self._same_stamp}"
        )
        changed = [w for w in rows if not w.grades_same]
        if changed:
            self.conn.exec_driver_sql(
                f"UPDATE leads SET fit_score = {m}, fit_grade = {m}, engagement_score = {m}, "
                f"engagement_level = {m}, priority = {m}, {rest}",
                [
                    (
                        w.fit_score,
                        w.fit_grade,
                        w.engagement_score,
                        w.engagement_level,
                        w.priority,
                        w.excluded_by,
                        w.engagement_state,
                        when,
                        model_id,
                        w.lead_id,
                        w.stamp,
                    )
                    for w in changed
                ],
            )
        if len(changed) < len(rows):  # grade, level and priority as stored: their indexes are left alone
            self.conn.exec_driver_sql(
                f"UPDATE leads SET fit_score = {m}, engagement_score = {m}, {rest}",
                [
                    (
                        w.fit_score,
                        w.engagement_score,
                        w.excluded_by,
                        w.engagement_state,
                        when,
                        model_id,
                        w.lead_id,
                        w.stamp,
                    )
                    for w in rows
                    if w.grades_same
                ],
            )
        self._record_history([w for w in rows if w.changed], model_id=model_id, when=when)

    @property
    def _same_stamp(self) -> str:
        """Write a score only over the one it was computed from (a concurrent incremental score wins)."""
        return "scored_at IS ?" if self.dialect == "sqlite" else "scored_at IS NOT DISTINCT FROM %s"

    def engagement_rows(self, ids: Sequence[int]) -> list[EngagementRow]:
        m = self.mark
        out: list[EngagementRow] = []
        for chunk, marks in in_chunks(ids, m, 900):
            rows = self.conn.exec_driver_sql(
                "SELECT id, stage, status, cycle, fit_score, fit_grade, excluded_by, engagement_level, "
                f"engagement_state, score_model_id, predictive_score, predictive_decile FROM leads "
                f"WHERE id IN ({marks})",
                chunk,
            ).all()
            out.extend(
                EngagementRow(
                    int(r[0]),
                    r[1],
                    r[2],
                    int(r[3]),
                    r[4],
                    r[5],
                    r[6],
                    r[7],
                    _json(r[8]),
                    r[9],
                    None if r[10] is None or r[11] is None else Predictive(float(r[10]), int(r[11])),
                )
                for r in rows
            )
        return out

    def write_engagement(self, rows: Sequence[EngagementWrite], *, model_id: int, at: datetime) -> None:
        if not rows:
            return
        m = self.mark
        when = bulk_datetime(at, self.dialect)
        state_cast = "" if self.dialect == "sqlite" else "::json"
        changed = [w for w in rows if w.changed]
        if changed:
            self.conn.exec_driver_sql(
                f"UPDATE leads SET engagement_score = {m}, engagement_level = {m}, priority = {m}, "
                f"engagement_state = {m}{state_cast}, scored_at = {m} WHERE id = {m}",
                [
                    (w.engagement_score, w.engagement_level, w.priority, w.engagement_state, when, w.lead_id)
                    for w in changed
                ],
            )
        if len(changed) < len(rows):  # level (so priority) as stored: their indexes are left alone
            self.conn.exec_driver_sql(
                f"UPDATE leads SET engagement_score = {m}, engagement_state = {m}{state_cast}, scored_at = {m} "
                f"WHERE id = {m}",
                [(w.engagement_score, w.engagement_state, when, w.lead_id) for w in rows if not w.changed],
            )
        self._record_history(changed, model_id=model_id, when=when)

    def score_history(self, lead_id: int) -> list[dict[str, Any]]:
        q = (
            select(t.score_history)
            .where(t.score_history.c.lead_id == lead_id)
            .order_by(t.score_history.c.at, t.score_history.c.id)
        )
        return [
            {
                "at": r.at.isoformat(),
                "model_id": r.model_id,
                "fit_score": r.fit_score,
                "fit_grade": r.fit_grade,
                "engagement_score": r.engagement_score,
                "engagement_level": r.engagement_level,
                "priority": r.priority,
            }
            for r in self.conn.execute(q)
        ]

    def entered_nurture_at(self, lead_id: int, cycle: int) -> datetime | None:
        q = select(func.max(t.lead_history.c.at)).where(
            t.lead_history.c.lead_id == lead_id, t.lead_history.c.to_status == "nurture"
        )
        value = self.conn.execute(q).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    def promoted_in_cycle(self, lead_id: int, cycle: int) -> bool:
        q = (
            select(func.count())
            .select_from(t.lead_history)
            .where(
                t.lead_history.c.lead_id == lead_id,
                t.lead_history.c.cycle == cycle,
                t.lead_history.c.action == "promote_mql",
            )
        )
        return bool(self.conn.execute(q).scalar_one())

    def predictive_candidates(self, *, max_decile: int | None, min_score: float | None) -> list[int]:
        """Leads that could be promoted (stage lead, open or in nurture) whose stored predictive score is in
        a decile at most ``max_decile`` or at least ``min_score``."""
        m = self.mark
        conditions: list[str] = []
        params: list[float] = []
        if max_decile is not None:
            conditions.append(f"predictive_decile <= {m}")
            params.append(max_decile)
        if min_score is not None:
            conditions.append(f"predictive_score >= {m}")
            params.append(min_score)
        if not conditions:
            return []
        rows = self.conn.exec_driver_sql(
            "SELECT id FROM leads WHERE stage = 'lead' AND status IN ('open', 'nurture') "
            f"AND ({' OR '.join(conditions)}) ORDER BY id",
            tuple(params),
        ).all()
        return [int(r[0]) for r in rows]

    def promotion_facts(self, lead_ids: Sequence[int]) -> dict[int, PromotionFacts]:
        m = self.mark
        out: dict[int, PromotionFacts] = {}
        for chunk, marks in in_chunks(lead_ids, m, 900):
            rows = self.conn.exec_driver_sql(
                "SELECT l.id, l.stage, l.status, l.cycle, l.furthest_stage, l.owner_id, l.version, "
                "EXISTS (SELECT 1 FROM lead_history h WHERE h.lead_id = l.id AND h.cycle = l.cycle "
                "AND h.action = 'promote_mql'), "
                "(SELECT MAX(h.at) FROM lead_history h WHERE h.lead_id = l.id AND h.to_status = 'nurture') "
                f"FROM leads l WHERE l.id IN ({marks})",
                chunk,
            ).all()
            for r in rows:
                out[int(r[0])] = PromotionFacts(
                    r[1], r[2], int(r[3]), r[4], r[5], int(r[6]), bool(r[7]), _as_datetime(r[8])
                )
        return out

    def apply_transitions(self, plans: Sequence[tuple[int, int, TransitionOutcome]], *, at: datetime) -> None:
        if not plans:
            return
        m = self.mark
        when = bulk_datetime(at, self.dialect)
        result = self.conn.exec_driver_sql(
            f"UPDATE leads SET stage = {m}, status = {m}, cycle = {m}, furthest_stage = {m}, updated_at = {m}, "
            f"version = version + 1 WHERE id = {m} AND version = {m}",
            [
                (
                    o.state.stage.value,
                    o.state.status.value,
                    o.state.cycle,
                    o.state.furthest_stage.value,
                    when,
                    lead_id,
                    version,
                )
                for lead_id, version, o in plans
            ],
        )
        if result.rowcount != len(plans):
            raise ConcurrencyConflict(
                "a lead changed while it was being promoted; nothing was written, try again"
            )
        self.conn.execute(
            insert(t.lead_history), [history_values(lead_id, o.entry) for lead_id, _v, o in plans]
        )
        history_written(self.conn, [(lead_id, o.entry) for lead_id, _v, o in plans])

    # ---- backtests: set-based reads of what replaying history needs --------------------------------------

    def _epoch(self, column: str) -> str:
        if self.dialect == "sqlite":
            return f"(julianday({column}) - 2440587.5) * 86400.0"
        return f"extract(epoch from {column})::float8"

    def history_span(self) -> tuple[datetime, datetime] | None:
        """The first and last lead creation or activity time, or ``None`` when there is neither."""
        bounds: list[datetime] = []
        for table, column in ((t.leads, t.leads.c.created_at), (t.activities, t.activities.c.occurred_at)):
            low, high = self.conn.execute(select(func.min(column), func.max(column)).select_from(table)).one()
            bounds.extend(v for v in (low, high) if isinstance(v, datetime))
        return (min(bounds), max(bounds)) if bounds else None

    def created_times(self, *, id_range: tuple[int, int]) -> dict[int, float]:
        """Each lead's creation time in Unix seconds (UTC), like ``activities_of`` gives activity times."""
        m = self.mark
        rows = self.conn.exec_driver_sql(
            f"SELECT id, {self._epoch('created_at')} FROM leads WHERE id BETWEEN {m} AND {m}", id_range
        ).all()
        return {int(r[0]): float(r[1]) for r in rows}

    def stage_entries(
        self, *, id_range: tuple[int, int], stages: Sequence[str]
    ) -> list[tuple[int, str, float]]:
        """(lead_id, to_stage, Unix seconds) of every history transition into one of ``stages``."""
        if not stages:
            return []
        m = self.mark
        marks = ", ".join([m] * len(stages))
        return [
            (int(r[0]), str(r[1]), float(r[2]))
            for r in self.conn.exec_driver_sql(
                f"SELECT lead_id, to_stage, {self._epoch('at')} FROM lead_history "
                f"WHERE lead_id BETWEEN {m} AND {m} AND to_stage IN ({marks})",
                (*id_range, *stages),
            ).all()
        ]

    def _record_history(
        self, rows: Sequence[ScoreWrite | EngagementWrite], *, model_id: int, when: Any
    ) -> None:
        """One score history row per lead whose grade or level changed."""
        if not rows:
            return
        m = self.mark
        self.conn.exec_driver_sql(
            "INSERT INTO score_history (lead_id, at, model_id, fit_score, fit_grade, engagement_score, "
            f"engagement_level, priority) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m})",
            [
                (
                    w.lead_id,
                    when,
                    model_id,
                    w.fit_score,
                    w.fit_grade,
                    w.engagement_score,
                    w.engagement_level,
                    w.priority,
                )
                for w in rows
            ],
        )
