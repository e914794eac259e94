"""Storage for predictive scoring: the features a model reads, stored models, and the predictive score.

Activity aggregates are computed per lead as of that lead's snapshot time: nothing that happened at or
after the snapshot is read into a feature. The database computes them (ADR 17): one pass grouped by lead
gives each lead's count, its types and sources (concatenated, counted in Python), the decayed engagement,
its last time and how many distinct contents it consumed. A one-by-one pass over the activities
(``_python_aggregates``) stays as the reference and for databases without the math functions.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select, update

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.repositories import chunks, in_chunks
from leadstage.adapters.db.scoring import SqlScoringRepository
from leadstage.adapters.db.tables import bulk_datetime
from leadstage.domain.scoring import SQL_PATH_NAME
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
#: Feature names of the activity aggregates (counts per type and per source take a name after the prefix).
BY_TYPE, BY_SOURCE = "activities: ", "activities from: "
DECAYED, RECENCY, CONTENT = "engagement (decayed)", "days since last activity", "content consumed"
#: Lead and account fields a model may read, by feature name (``email domain`` is derived from the email).
LEAD_FIELDS = {
    "first source": "l.first_source",
    "job title": "l.job_title",
    "email domain": "l.email_normalized",
    "account industry": "a.industry",
    "account employees": "a.employees",
    "account annual revenue": "a.annual_revenue",
    "account country": "a.country",
}
_SEP = "\x1f"  # between concatenated types or sources (a value holding it is detected and refolded)
_MISSING = object()


class ActivityAggregate(NamedTuple):
    """One lead's activities before its snapshot: what the activity features are made of (unrounded)."""

    by_type: Mapping[str, int]
    by_source: Mapping[str, int]  # sources that are not empty
    decayed: float  # sum of 0.5 ** (age in days / 30)
    last: datetime | None
    contents: int  # distinct non-empty contents


_NO_ACTIVITY = ActivityAggregate({}, {}, 0.0, None, 0)
_ALL_PARTS = frozenset({"types", "sources", "decayed", "last", "contents"})


def _as_parts(
    aggregates: Mapping[int, ActivityAggregate],
) -> Iterator[tuple[int, bool, Sequence[str], Sequence[str], float, datetime | None, int]]:
    """Aggregates in the shape of the database's rows (types and sources repeated by their counts)."""
    for lead_id, agg in aggregates.items():
        kinds = [kind for kind, n in agg.by_type.items() for _ in range(n)]
        origins = [source for source, n in agg.by_source.items() for _ in range(n)]
        yield lead_id, True, kinds, origins, agg.decayed, agg.last, agg.contents


def _email_domain(email: str | None) -> str | None:
    return email.rsplit("@", 1)[1] if email and "@" in email else None


def _aware(value: Any) -> datetime:
    """A MAX() over a time column: text on SQLite, a datetime on PostgreSQL; always aware UTC here."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _is_activity_feature(name: str) -> bool:
    return name.startswith((BY_TYPE, BY_SOURCE)) or name in (DECAYED, RECENCY, CONTENT)


def _object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    found = json.loads(value) if isinstance(value, str | bytes) else value
    return found if isinstance(found, dict) else {}


def _days_since(snapshot: datetime, last: datetime | None) -> float | None:
    return None if last is None else round((snapshot - last).total_seconds() / 86_400, 3)


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
        if activities and by_id:
            per_lead = self.activity_aggregates(
                snapshots=None if snapshot_days is None else snapshots,
                as_of=as_of,
                lead_ids=lead_ids,
            )
            types = sorted({k for agg in per_lead.values() for k in agg.by_type})
            sources = sorted({k for agg in per_lead.values() for k in agg.by_source})
            if not types:
                return rows
            for lead_id, row in by_id.items():
                found = per_lead.get(lead_id, _NO_ACTIVITY)
                by_type, by_source = found.by_type, found.by_source
                for kind in types:
                    row.fields[BY_TYPE + kind] = by_type.get(kind, 0)
                for source in sources:
                    row.fields[BY_SOURCE + source] = by_source.get(source, 0)
                row.fields[DECAYED] = round(found.decayed, 4)
                row.fields[RECENCY] = _days_since(snapshots[lead_id], found.last)
                row.fields[CONTENT] = found.contents
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

    # ---- activity aggregates -----------------------------------------------------------------------

    def activity_aggregates(
        self,
        *,
        as_of: datetime,
        snapshots: Mapping[int, datetime] | None = None,
        lead_ids: Sequence[int] | None = None,
        id_range: tuple[int, int] | None = None,
        in_sql: bool | None = None,
    ) -> dict[int, ActivityAggregate]:
        """Each lead's activities strictly before its snapshot (``snapshots``, else ``as_of`` for all),
        for the leads in ``lead_ids`` or ``id_range`` (else every lead), leads without any left out.

        Computed by the database where it can (``in_sql=None``); ``in_sql=False`` folds the activities one
        by one in Python (the reference: tests hold the two equal)."""
        if in_sql is None:
            in_sql = SqlScoringRepository(self.conn).groups_supported()
        if not in_sql:
            return self._python_aggregates(as_of, snapshots, lead_ids, id_range)
        out: dict[int, ActivityAggregate] = {}
        refold: list[int] = []
        for lead_id, ok, types, sources, decayed, last, contents in self._sql_aggregates(
            _ALL_PARTS, as_of, snapshots, lead_ids, id_range
        ):
            if not ok:
                refold.append(lead_id)
                continue
            by_source = Counter(sources)
            if "" in by_source:
                del by_source[""]
            out[lead_id] = ActivityAggregate(Counter(types), by_source, decayed, last, contents)
        if refold:  # a type or source holding the separator: these leads one by one
            out.update(self._python_aggregates(as_of, snapshots, refold, None))
        return out

    def _activity_columns(
        self, ids: Sequence[int], names: Sequence[str], as_of: datetime, *, dense: bool
    ) -> dict[str, list[Any]]:
        """The activity features among ``names`` as of ``as_of``, one value per lead of ``ids`` (in order),
        filled straight from the database's per-lead rows."""
        n = len(ids)
        index = {lead_id: i for i, lead_id in enumerate(ids)}
        by_type = {name[len(BY_TYPE) :]: [0] * n for name in names if name.startswith(BY_TYPE)}
        by_source = {name[len(BY_SOURCE) :]: [0] * n for name in names if name.startswith(BY_SOURCE)}
        decayed: list[float] = [0.0] * n
        last: list[datetime | None] = [None] * n
        contents = [0] * n
        parts = frozenset(
            part
            for part, used in (
                ("types", bool(by_type)),
                ("sources", bool(by_source)),
                ("decayed", DECAYED in names),
                ("last", RECENCY in names),
                ("contents", CONTENT in names),
            )
            if used
        )
        scope = {"id_range": (ids[0], ids[-1])} if dense else {"lead_ids": ids}
        in_sql = SqlScoringRepository(self.conn).groups_supported()
        rows: Iterator[tuple[Any, ...]]
        if in_sql:
            rows = self._sql_aggregates(parts, as_of, None, **scope)
        else:
            rows = _as_parts(self._python_aggregates(as_of, None, **scope))
        refold: list[int] = []
        for lead_id, ok, types, sources, value, at, count in rows:
            i = index.get(lead_id)
            if i is None:
                continue
            if not ok:
                refold.append(lead_id)
                continue
            for kind in types:
                column = by_type.get(kind)
                if column is not None:
                    column[i] += 1
            for source in sources:
                column = by_source.get(source)
                if column is not None:
                    column[i] += 1
            decayed[i], last[i], contents[i] = value, at, count
        if refold:
            for lead_id, agg in self._python_aggregates(as_of, None, refold, None).items():
                i = index[lead_id]
                for kind, count in agg.by_type.items():
                    if kind in by_type:
                        by_type[kind][i] = count
                for source, count in agg.by_source.items():
                    if source in by_source:
                        by_source[source][i] = count
                decayed[i], last[i], contents[i] = agg.decayed, agg.last, agg.contents
        out: dict[str, list[Any]] = {}
        for name in names:
            if name.startswith(BY_TYPE):
                out[name] = by_type[name[len(BY_TYPE) :]]
            elif name.startswith(BY_SOURCE):
                out[name] = by_source[name[len(BY_SOURCE) :]]
            elif name == DECAYED:
                out[name] = [round(v, 4) for v in decayed]
            elif name == RECENCY:
                out[name] = [_days_since(as_of, v) for v in last]
            elif name == CONTENT:
                out[name] = contents
        return out

    def _lead_scopes(
        self, lead_ids: Sequence[int] | None, id_range: tuple[int, int] | None
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """WHERE conditions on ``a.lead_id`` covering the wanted leads (a range, chunks of ids, or all)."""
        m = "?" if self.conn.dialect.name == "sqlite" else "%s"
        if id_range is not None:
            yield f"a.lead_id BETWEEN {m} AND {m}", tuple(id_range)
        elif lead_ids is None:
            yield "1 = 1", ()
        else:
            for chunk, marks in in_chunks(sorted(lead_ids), m, 900):
                yield f"a.lead_id IN ({marks})", chunk

    def _fill_snapshots(self, snapshots: Mapping[int, datetime]) -> None:
        """Per-lead snapshot times in a temporary table the aggregate query joins."""
        dialect = self.conn.dialect.name
        self.conn.exec_driver_sql("DROP TABLE IF EXISTS predictive_snapshots")
        if dialect == "sqlite":
            self.conn.exec_driver_sql(
                "CREATE TEMP TABLE predictive_snapshots (lead_id INTEGER PRIMARY KEY, at TEXT NOT NULL)"
            )
            insert = "INSERT INTO predictive_snapshots (lead_id, at) VALUES (?, ?)"
        else:
            self.conn.exec_driver_sql(
                "CREATE TEMP TABLE predictive_snapshots (lead_id bigint PRIMARY KEY, at timestamptz NOT NULL) "
                "ON COMMIT DROP"
            )
            insert = "INSERT INTO predictive_snapshots (lead_id, at) VALUES (%s, %s)"
        items = [(lead_id, bulk_datetime(at, dialect)) for lead_id, at in snapshots.items()]
        for chunk in chunks(items, 50_000):
            self.conn.exec_driver_sql(insert, chunk)
        if dialect != "sqlite":
            self.conn.exec_driver_sql("ANALYZE predictive_snapshots")

    def _sql_aggregates(
        self,
        parts: frozenset[str],
        as_of: datetime,
        snapshots: Mapping[int, datetime] | None,
        lead_ids: Sequence[int] | None = None,
        id_range: tuple[int, int] | None = None,
    ) -> Iterator[tuple[int, bool, Sequence[str], Sequence[str], float, datetime | None, int]]:
        """Per lead with activities before its snapshot: (lead id, ok, types, sources (None left out),
        decayed sum, last time, distinct contents), the ``parts`` asked for computed by the database (the
        others empty). ``ok`` is False for a lead whose concatenated types or sources cannot be split back
        (a value holds the separator): fold those one by one."""
        sqlite_ = self.conn.dialect.name == "sqlite"
        m = "?" if sqlite_ else "%s"
        per_lead = snapshots is not None
        snap = "s.at" if per_lead else m
        columns = ["count(*)"]
        if sqlite_:
            types, sources = "group_concat(a.type, char(31))", "group_concat(a.source, char(31))"
            decay = (
                f"power(0.5, (julianday({snap}) - julianday(a.occurred_at)) / {ENGAGEMENT_HALF_LIFE_DAYS!r})"
            )
        else:  # (PostgreSQL refuses to underflow: 1000 half-lives is zero to every feature's precision)
            types, sources = "array_agg(a.type)", "array_agg(a.source) FILTER (WHERE a.source IS NOT NULL)"
            decay = (
                f"power(0.5::float8, least(extract(epoch from ({snap} - a.occurred_at))::float8 / "
                f"{ENGAGEMENT_HALF_LIFE_DAYS * 86_400.0!r}::float8, 1000.0::float8))"
            )
        columns.append(types if "types" in parts else "NULL")
        columns += ["count(a.source)", sources] if "sources" in parts else ["0", "NULL"]
        columns.append(f"sum({decay})" if "decayed" in parts else "NULL")
        columns.append("max(a.occurred_at)" if "last" in parts else "NULL")
        columns.append("count(DISTINCT nullif(a.content, ''))" if "contents" in parts else "0")
        query = (
            f"SELECT a.lead_id, {', '.join(columns)} FROM activities a "
            + ("JOIN predictive_snapshots s ON s.lead_id = a.lead_id " if per_lead else "")
            + "WHERE {where} "
            + f"AND a.occurred_at < {snap} GROUP BY a.lead_id"
        )
        when = bulk_datetime(as_of, self.conn.dialect.name)
        if per_lead:
            assert snapshots is not None
            self._fill_snapshots(snapshots)
        want_types = "types" in parts
        cursor = self.conn.connection.cursor()
        try:
            for where, params in self._lead_scopes(lead_ids, id_range):
                args = (
                    params if per_lead else ((when, *params, when) if "decayed" in parts else (*params, when))
                )
                cursor.execute(query.format(where=where), args)
                while batch := cursor.fetchmany(20_000):
                    for lead_id, n, kinds, n_sources, origins, decayed, last, contents in batch:
                        if sqlite_:
                            kinds = kinds.split(_SEP) if want_types else ()
                            origins = origins.split(_SEP) if n_sources else ()
                        else:
                            kinds = kinds or ()
                            origins = origins or ()
                        if (want_types and len(kinds) != n) or len(origins) != n_sources:
                            yield lead_id, False, (), (), 0.0, None, 0
                            continue
                        yield (
                            lead_id,
                            True,
                            kinds,
                            origins,
                            0.0 if decayed is None else float(decayed),
                            None if last is None else _aware(last),
                            int(contents),
                        )
        finally:
            cursor.close()
            if per_lead:
                self.conn.exec_driver_sql("DROP TABLE IF EXISTS predictive_snapshots")

    def _python_aggregates(
        self,
        as_of: datetime,
        snapshots: Mapping[int, datetime] | None,
        lead_ids: Sequence[int] | None,
        id_range: tuple[int, int] | None,
    ) -> dict[int, ActivityAggregate]:
        """The reference: every activity read and folded in Python."""
        a = t.activities
        q = select(a.c.lead_id, a.c.type, a.c.occurred_at, a.c.source, a.c.content).order_by(a.c.lead_id)
        if id_range is not None:
            q = q.where(a.c.lead_id.between(*id_range))
        batches = [None] if lead_ids is None else list(chunks(list(lead_ids), 900))
        acc: dict[int, list[Any]] = {}
        for batch in batches:
            qq = q if batch is None else q.where(a.c.lead_id.in_(batch))
            for lead_id, kind, when, source, content in self.conn.execute(qq).yield_per(50_000):
                snap = as_of if snapshots is None else snapshots.get(lead_id)
                if snap is None or when is None or when >= snap:
                    continue  # never read anything at or after the snapshot
                found = acc.get(lead_id)
                if found is None:
                    found = acc[lead_id] = [Counter(), Counter(), 0.0, None, set()]
                found[0][kind] += 1
                if source:
                    found[1][source] += 1
                age = (snap - when).total_seconds() / 86_400
                found[2] += math.pow(0.5, age / ENGAGEMENT_HALF_LIFE_DAYS)
                if found[3] is None or when > found[3]:
                    found[3] = when
                if content:
                    found[4].add(content)
        return {k: ActivityAggregate(v[0], v[1], v[2], v[3], len(v[4])) for k, v in acc.items()}

    # ---- scoring: the features a stored model reads, column by column ------------------------------

    def feature_columns(
        self, *, lead_ids: Sequence[int], names: Sequence[str], as_of: datetime
    ) -> tuple[list[int], dict[str, list[Any]]]:
        """The raw values of the named features (as ``feature_rows`` names them, activity aggregates as of
        ``as_of``) for the given leads: their ids in order and one list of values per name.

        Only what the names need is read: the lead and account columns, each custom property out of the
        JSON where SQL can, and activity aggregates computed by the database. A custom property of a
        feature's name comes first and the lead field of that name stands in where a lead lacks it, as in
        ``feature_rows``."""
        wanted = sorted(set(lead_ids))
        if not wanted:
            return [], {name: [] for name in names}
        sqlite_ = self.conn.dialect.name == "sqlite"
        # a name is looked up among the custom properties unless it names a lead field or an activity
        # aggregate that no import ever defined as a property (which would come first)
        defined = set(self.property_names())
        props = [n for n in names if n in defined or not (n in LEAD_FIELDS or _is_activity_feature(n))]
        by_path = [n for n in props if SQL_PATH_NAME.fullmatch(n)]
        whole = len(by_path) < len(props)
        fields = sorted({LEAD_FIELDS[n] for n in names if n in LEAD_FIELDS})
        select_list = ["l.id", *fields]
        select_list += [
            f"l.properties -> '$.\"{n}\"'" if sqlite_ else f"(l.properties -> '{n}')::text" for n in by_path
        ]
        if whole:
            select_list.append("l.properties")
        span = wanted[-1] - wanted[0] + 1
        dense = span <= 2 * len(wanted)
        sql = (
            f"SELECT {', '.join(select_list)} FROM leads l LEFT JOIN accounts a ON a.id = l.account_id WHERE "
        )
        m = "?" if sqlite_ else "%s"
        rows: list[Any] = []
        cursor = self.conn.connection.cursor()
        try:
            if dense:
                cursor.execute(sql + f"l.id BETWEEN {m} AND {m} ORDER BY l.id", (wanted[0], wanted[-1]))
                rows = list(cursor.fetchall())
                if span != len(wanted):
                    keep = set(wanted)
                    rows = [r for r in rows if r[0] in keep]
            else:
                for chunk, marks in in_chunks(wanted, m, 900):
                    cursor.execute(sql + f"l.id IN ({marks}) ORDER BY l.id", chunk)
                    rows.extend(cursor.fetchall())
        finally:
            cursor.close()
        ids = [int(r[0]) for r in rows]
        position = {expr: i for i, expr in enumerate(fields, 1)}
        first_prop = 1 + len(fields)

        def field_values(name: str) -> list[Any]:
            i = position[LEAD_FIELDS[name]]
            if name == "email domain":
                return [_email_domain(r[i]) for r in rows]
            return [r[i] for r in rows]

        activity_names = [n for n in names if _is_activity_feature(n)]
        activity: dict[str, list[Any]] = {}
        if activity_names and ids:
            activity = self._activity_columns(ids, activity_names, as_of, dense=dense)

        decoded: dict[str, Any] = {}

        def decode(raw: str) -> Any:
            value = decoded.get(raw, _MISSING)
            if value is _MISSING:
                value = decoded[raw] = json.loads(raw)
            return value

        columns: dict[str, list[Any]] = {}
        for name in names:
            if name in LEAD_FIELDS:
                fallback: list[Any] | None = field_values(name)
            else:
                fallback = activity.get(name)
            if name not in props:
                columns[name] = fallback if fallback is not None else [None] * len(rows)
                continue
            if name in by_path:
                i = first_prop + by_path.index(name)
                raw = [r[i] for r in rows]
                present = [v is not None for v in raw]
                values = [None if v is None else decode(v) for v in raw]
            else:
                objects = [_object(r[-1]) for r in rows]
                present = [name in o for o in objects]
                values = [o.get(name) for o in objects]
            if fallback is not None:
                values = [v if p else f for v, p, f in zip(values, present, fallback, strict=True)]
            columns[name] = values
        return ids, columns

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

    def all_models(self) -> list[PredictiveModelRecord]:
        m = t.predictive_models
        return [self._record(r) for r in self.conn.execute(select(*self._columns()).order_by(m.c.version))]

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
        m = "?" if self.conn.dialect.name == "sqlite" else "%s"
        when = bulk_datetime(at, self.conn.dialect.name)
        self.conn.exec_driver_sql(
            f"UPDATE leads SET predictive_score = {m}, predictive_decile = {m}, predictive_model_id = {m}, "
            f"predictive_scored_at = {m} WHERE id = {m}",
            [(score, decile, model_id, when, lead_id) for lead_id, score, decile in rows],
        )
