"""Reports in SQL: every figure is an aggregate computed by the database (ADR 10).

Nothing here loads leads into Python: each method runs one or two statements whose results are small
(a row per group and stage, or the handful of ranked values a percentile needs). The statements are
written once for both databases; where SQLite and PostgreSQL differ (day arithmetic, JSON text) a
helper writes each its own way.

* **Groups** (``--by``): lead columns directly (``first_source``, grades, the owner's name); campaign
  and content by the lead's first activity that carries one (``ROW_NUMBER`` over the lead's activities);
  segments by their compiled filters (``adapters/db/segments.py``) written into a temporary table of
  ``(lead_id, grp)`` rows, one per membership, so a lead counts in every segment it belongs to.
* **Scope**: cohort mode filters ``leads.created_at``; period mode the time of the event itself.
* **Percentiles**: ``ROW_NUMBER`` and ``COUNT`` over each group, keeping only the rows at the ranks
  that linear interpolation needs (``domain/analytics.py``: positions in exact integer arithmetic).
* **Attribution**: two passes over the touches of converted leads (activities carrying the dimension,
  of a touch type, at or before the latest outcome counted), no window: per lead, the counts before
  each outcome, the time-decay normalisers and which touches are first, last, MQL and opportunity
  touch; then every model's credit of each touch is arithmetic on its lead's figures, summed per value.
* **Indexes** (migration 0007): ``leads (created_at, furthest_stage)`` and ``lead_history (action,
  lead_id, at)`` answer the cohort funnel and first entries into stages from the index alone; filters
  that keep many history rows without a time bound tell SQLite to scan (:meth:`action`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    literal,
    select,
    text,
)

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.segments import compile_filter
from leadstage.domain.analytics import (
    DEFAULT_HALF_LIFE_DAYS,
    FORWARD_ACTIONS,
    HOT_PRIORITIES,
    MEDIAN,
    NO_VALUE,
    P80,
    AttributionModel,
    Dimension,
    Mode,
    Report,
    ReportRequest,
    quantile_positions,
)
from leadstage.domain.stages import Action, HistoryKind, Stage
from leadstage.services.ports import Grouping

FORWARD = ", ".join(f"'{a.value}'" for a in FORWARD_ACTIONS.values())
LEAD_TO_CUSTOMER = "lead_to_customer"


def grp_all(grp: str) -> str:
    """The group of an ungrouped statement (its constant)."""
    return grp.strip("'")


_ACTIVITY_COLUMN = {Dimension.SOURCE: "source", Dimension.CAMPAIGN: "campaign", Dimension.CONTENT: "content"}
_LEAD_TEXT_COLUMN = {
    Dimension.SOURCE: "first_source",
    Dimension.FIT_GRADE: "fit_grade",
    Dimension.PRIORITY: "priority",
}
_members_metadata = MetaData()
SEGMENT_MEMBERS = Table(
    "report_segment_members",
    _members_metadata,
    Column("lead_id", Integer, nullable=False),
    Column("grp", String(200), nullable=False),
    prefixes=["TEMPORARY"],
)


class SqlReportQueries:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self._tuned = False

    # ---- dialect helpers ---------------------------------------------------------------------------

    def days(self, later: str, earlier: str) -> str:
        if self.dialect == "sqlite":
            return f"(julianday({later}) - julianday({earlier}))"
        return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"

    def least(self, a: str, b: str) -> str:
        return f"min({a}, {b})" if self.dialect == "sqlite" else f"LEAST({a}, {b})"

    def json_text(self, column: str, key: str) -> str:
        if self.dialect == "sqlite":
            return f"json_extract({column}, '$.{key}')"
        return f"({column} ->> '{key}')"

    def bind_time(self, value: datetime) -> Any:
        return t.bulk_datetime(value, self.dialect)

    def scope(self, column: str, request: ReportRequest, params: dict[str, Any]) -> str:
        """``column`` within the request's range (always true without one)."""
        parts = []
        if request.start is not None:
            params["start"] = self.bind_time(request.start)
            parts.append(f"{column} >= :start")
        if request.end is not None:
            params["end"] = self.bind_time(request.end)
            parts.append(f"{column} < :end")
        return " AND ".join(parts) or "1 = 1"

    def groups(self, grouping: Grouping) -> tuple[str, str]:
        """(joins after ``leads l``, group expression) for a lead grouping."""
        dim = grouping.dimension
        none = f"'{NO_VALUE}'"
        if dim is None:
            return "", "'all'"
        if dim in _LEAD_TEXT_COLUMN:
            return "", f"COALESCE(l.{_LEAD_TEXT_COLUMN[dim]}, {none})"
        if dim is Dimension.ENGAGEMENT_LEVEL:
            return "", f"COALESCE(CAST(l.engagement_level AS VARCHAR(8)), {none})"
        if dim is Dimension.OWNER:
            return "LEFT JOIN users gu ON gu.id = l.owner_id", f"COALESCE(gu.username, {none})"
        if dim in (Dimension.CAMPAIGN, Dimension.CONTENT):
            col = _ACTIVITY_COLUMN[dim]
            join = (
                f"LEFT JOIN (SELECT lead_id, grp FROM (SELECT lead_id, {col} AS grp, ROW_NUMBER() OVER "
                f"(PARTITION BY lead_id ORDER BY occurred_at, id) AS rn FROM activities WHERE {col} IS NOT NULL) "
                "ft0 WHERE rn = 1) ft ON ft.lead_id = l.id"
            )
            return join, f"COALESCE(ft.grp, {none})"
        if dim is Dimension.SEGMENT:
            self._segment_members(grouping)
            return "JOIN report_segment_members sg ON sg.lead_id = l.id", "sg.grp"
        raise ValueError(f"{dim.value} does not group leads")

    @staticmethod
    def group_key(grouping: Grouping, grp: str) -> str:
        """What to GROUP BY for :meth:`groups`' expression: a lead column itself where the group is one,
        so that an index leading with it hands SQLite the rows already grouped (no sort)."""
        dim = grouping.dimension
        if dim in _LEAD_TEXT_COLUMN:
            return f"l.{_LEAD_TEXT_COLUMN[dim]}"
        if dim is Dimension.ENGAGEMENT_LEVEL:
            return "l.engagement_level"
        return grp

    def _segment_members(self, grouping: Grouping) -> None:
        assert grouping.as_of is not None
        SEGMENT_MEMBERS.drop(self.conn, checkfirst=True)
        SEGMENT_MEMBERS.create(self.conn)
        for name, flt in grouping.segments:
            where = compile_filter(flt, dialect=self.dialect, as_of=grouping.as_of)
            self.conn.execute(
                insert(SEGMENT_MEMBERS).from_select(
                    ["lead_id", "grp"], select(t.leads.c.id, literal(name, String(200))).where(where)
                )
            )

    def tune(self) -> None:
        """On PostgreSQL, for the rest of this transaction: aggregates over hundreds of thousands of groups
        hash in memory instead of sorting on disk, and no JIT (compiling these one-off statements took
        about 5 s of a 19 s attribution, EXPLAIN ANALYZE on 1,000,000 leads)."""
        if self.dialect == "postgresql" and not self._tuned:
            self.conn.execute(text("SET LOCAL work_mem = '256MB'"))
            self.conn.execute(text("SET LOCAL jit = off"))
            self._tuned = True

    def _rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        self.tune()
        return list(self.conn.execute(text(sql), params))

    def _ranked_rows(
        self, grp: str, key: str, value: str, source: str, params: dict[str, Any], *, grouped: bool
    ) -> list[tuple[str, str, int, int, float]]:
        """Per (grp, key): the number of values and the values at the ranks the median and the 80th
        percentile need (``domain/analytics.py: quantile_positions``), as ``(grp, key, n, rank, value)``.
        ``source``: the FROM and WHERE clauses the expressions read.

        Without a grouping the windows read the table directly, partitioned by the key alone: an index on
        (key, value) holds the rows in that order, so nothing is sorted; the counts come first, from the
        same index, and the ranks wanted are constants. With a grouping both windows share one sort.
        """
        if grouped:
            ranks = []
            for a, b in (MEDIAN, P80):
                ranks += [f"({a} * (n - 1)) / {b} + 1", f"({a} * (n - 1)) / {b} + 2"]
            # PostgreSQL sorts the partitions' texts byte by byte rather than by the database's collation
            part = f"{grp}, {key}" if self.dialect == "sqlite" else f'{grp} COLLATE "C", {key} COLLATE "C"'
            sql = (
                f"SELECT grp, key, n, rn, v FROM (SELECT {grp} AS grp, {key} AS key, {value} AS v, "
                "ROW_NUMBER() OVER w AS rn, COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED "
                f"FOLLOWING) AS n {source} WINDOW w AS (PARTITION BY {part} ORDER BY {value})) r0 "
                f"WHERE rn IN ({', '.join(ranks)})"
            )
            return [(r[0], r[1], int(r[2]), int(r[3]), float(r[4])) for r in self._rows(sql, params)]
        counts = {r[0]: int(r[1]) for r in self._rows(f"SELECT {key}, count(*) {source} GROUP BY 1", params)}
        if not counts:
            return []
        wanted = []
        for k, (name, n) in enumerate(sorted(counts.items())):
            params[f"rank_key{k}"] = name
            positions = sorted({rank for p in (MEDIAN, P80) for rank in quantile_positions(n, p)})
            wanted.append(f"(key = :rank_key{k} AND rn IN ({', '.join(map(str, positions))}))")
        sql = (
            f"SELECT key, rn, v FROM (SELECT {key} AS key, {value} AS v, "
            f"ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {value}) AS rn {source}) r0 WHERE {' OR '.join(wanted)}"
        )
        return [(grp_all(grp), r[0], counts[r[0]], int(r[1]), float(r[2])) for r in self._rows(sql, params)]

    # ---- funnel ------------------------------------------------------------------------------------

    def funnel_furthest(self, request: ReportRequest, grouping: Grouping) -> list[tuple[str, str, int]]:
        """Cohort: leads created in the range per group and furthest stage reached."""
        params: dict[str, Any] = {}
        joins, grp = self.groups(grouping)
        # one sum per stage rather than GROUP BY the stage: SQLite groups by sorting every row
        sums = ", ".join(f"sum(CASE WHEN l.furthest_stage = '{s.value}' THEN 1 ELSE 0 END)" for s in Stage)
        sql = (
            f"SELECT {grp} AS grp, {sums} FROM leads l {joins} "
            f"WHERE {self.scope('l.created_at', request, params)}"
            + (f" GROUP BY {self.group_key(grouping, grp)}" if grouping.dimension else "")
        )
        return [
            (r[0], stage.value, int(r[k + 1] or 0))
            for r in self._rows(sql, params)
            for k, stage in enumerate(Stage)
            if r[k + 1]
        ]

    def funnel_cycles(self, request: ReportRequest, grouping: Grouping) -> list[tuple[str, str, int]]:
        """Cohort per cycle, for leads created in the range per group: attempts (``lead``: every cycle a
        lead started, its cycle counter) and the forward transitions into each later stage (an attempt
        reaches a stage at most once: the transition table only moves forward one stage per attempt),
        counted in ``stage_entries``."""
        params: dict[str, Any] = {}
        joins, grp = self.groups(grouping)
        cohort = self.scope("l.created_at", request, params)
        by = "GROUP BY 1 " if grouping.dimension else ""
        entries = "stage_entries e" + (
            f" JOIN leads l ON l.id = e.lead_id {joins}" if grouping.dimension else ""
        )
        sql = (
            f"SELECT {grp} AS grp, '{Stage.LEAD.value}', sum(l.cycle) FROM leads l {joins} WHERE {cohort} {by}"
            f"UNION ALL SELECT {grp} AS grp, e.stage, sum(e.transitions) FROM {entries} "
            f"WHERE {self.scope('e.created_at', request, params)} GROUP BY 1, 2"
        )
        return [(r[0], r[1], int(r[2])) for r in self._rows(sql, params) if r[2]]

    def funnel_period(self, request: ReportRequest, grouping: Grouping) -> list[tuple[str, str, int]]:
        """Period: transitions into each stage in the range (creations for ``lead``) per group."""
        params: dict[str, Any] = {}
        joins, grp = self.groups(grouping)
        lead = f"JOIN leads l ON l.id = h.lead_id {joins} " if grouping.dimension else ""
        # the stage each action brings a lead into (a creation: lead), from the (action, ...) indexes alone
        stage_of = f"CASE h.action WHEN '{HistoryKind.CREATE.value}' THEN '{Stage.LEAD.value}' " + " ".join(
            f"WHEN '{a.value}' THEN '{st.value}'" for st, a in FORWARD_ACTIONS.items()
        )
        sql = (
            f"SELECT {grp} AS grp, {stage_of} END AS stage, count(*) FROM lead_history h {lead}"
            f"WHERE h.action IN ('{HistoryKind.CREATE.value}', {FORWARD}) AND {self.scope('h.at', request, params)} "
            "GROUP BY 1, h.action"
        )
        return [(r[0], r[1], int(r[2])) for r in self._rows(sql, params)]

    def days_to_stages(
        self, request: ReportRequest, grouping: Grouping
    ) -> list[tuple[str, str, int, int, float]]:
        """Cohort: days from the start (the lead's creation, or the cycle's first event per cycle) to
        the first entry into each later stage; ranked values for percentiles per group and stage.
        Read from ``stage_entries`` (its indexes hold them in order: no sort without a grouping)."""
        params: dict[str, Any] = {}
        joins, grp = self.groups(grouping)
        cohort = self.scope("e.created_at", request, params)
        grouped = grouping.dimension is not None
        lead = f"JOIN leads l ON l.id = e.lead_id {joins} " if grouped else ""
        if request.per_cycle:
            # a cycle starts at the lead's creation (cycle 1), else at the promotion or reopening that began it
            value, where = "e.days_in_cycle", cohort
        else:
            value, where = "e.days_since_created", f"e.first_entry = TRUE AND {cohort}"
        source = f"FROM stage_entries e {lead}WHERE {where}"
        return self._ranked_rows(grp, "e.stage", value, source, params, grouped=grouped)

    # ---- velocity ----------------------------------------------------------------------------------

    def stage_durations(
        self, request: ReportRequest, grouping: Grouping
    ) -> list[tuple[str, str, int, int, float]]:
        """Completed stage visits (entered, then left for another stage) in days, ranked per group and
        stage (``stage_visits``); plus ``lead_to_customer``: days from creation to the first win."""
        params: dict[str, Any] = {}
        joins, grp = self.groups(grouping)
        grouped = grouping.dimension is not None
        if request.mode is Mode.COHORT:
            visit_scope = self.scope("v.created_at", request, params)
            won_scope = self.scope("e.created_at", request, params)
        else:
            visit_scope = self.scope("v.ended_at", request, params)
            won_scope = self.scope("e.entered_at", request, params)
        visits = (
            "FROM stage_visits v "
            + (f"JOIN leads l ON l.id = v.lead_id {joins} " if grouped else "")
            + f"WHERE {visit_scope}"
        )
        won = (
            "FROM stage_entries e "
            + (f"JOIN leads l ON l.id = e.lead_id {joins} " if grouped else "")
            + f"WHERE e.first_entry = TRUE AND e.stage = '{Stage.CUSTOMER.value}' AND {won_scope}"
        )
        won_rows = self._ranked_rows(grp, "e.stage", "e.days_since_created", won, params, grouped=grouped)
        return self._ranked_rows(grp, "v.stage", "v.days", visits, params, grouped=grouped) + [
            (g, LEAD_TO_CUSTOMER, n, rank, value) for g, _customer, n, rank, value in won_rows
        ]

    # ---- feedback ----------------------------------------------------------------------------------

    def decisions(
        self, request: ReportRequest, grouping: Grouping
    ) -> list[tuple[str, str, str | None, str | None, str | None, int]]:
        """Promotions, sales decisions and reasons: (grp, action, from_stage, from_status, reason, count)."""
        params: dict[str, Any] = {}
        joins, grp = self.groups(grouping)
        column = "l.created_at" if request.mode is Mode.COHORT else "h.at"
        actions = ", ".join(
            f"'{a.value}'"
            for a in (
                Action.PROMOTE_MQL,
                Action.ACCEPT,
                Action.REJECT,
                Action.DISQUALIFY,
                Action.RECYCLE,
                Action.LOSE,
            )
        )
        scope = self.scope(column, request, params)
        lead = f"JOIN leads l ON l.id = h.lead_id {joins} " if grouping.dimension or "l." in scope else ""
        sql = (
            f"SELECT {grp} AS grp, h.action, h.from_stage, h.from_status, h.reason, count(*) "
            f"FROM lead_history h {lead}"
            f"WHERE h.action IN ({actions}) "
            f"AND {scope} GROUP BY 1, 2, 3, 4, 5"
        )
        return [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in self._rows(sql, params)]

    def hot_rejections(self, request: ReportRequest) -> tuple[int, list[dict[str, Any]]]:
        """Sales rejections (reject, or disqualify of an unaccepted MQL) of leads whose priority at the time
        (the latest score before it, else the lead's current one) was hot; the most recent first."""
        params: dict[str, Any] = {"limit": request.limit}
        column = "l.created_at" if request.mode is Mode.COHORT else "h.at"
        hot = ", ".join(f"'{p}'" for p in HOT_PRIORITIES)
        sql = (
            "SELECT lead_id, email, at, action, actor, reason, note, source, priority_then, priority_now, "
            "COUNT(*) OVER () AS total FROM (SELECT h.lead_id, l.email, h.at, h.action, h.actor, h.reason, "
            "h.note, l.first_source AS source, l.priority AS priority_now, COALESCE((SELECT s.priority "
            "FROM score_history s WHERE s.lead_id = h.lead_id AND s.at <= h.at ORDER BY s.at DESC, s.id DESC "
            "LIMIT 1), l.priority) AS priority_then FROM lead_history h JOIN leads l ON l.id = h.lead_id "
            f"WHERE (h.action = '{Action.REJECT.value}' OR (h.action = '{Action.DISQUALIFY.value}' "
            "AND h.from_stage = 'mql' AND h.from_status = 'open')) "
            f"AND {self.scope(column, request, params)}) x WHERE priority_then IN ({hot}) "
            "ORDER BY at DESC, lead_id LIMIT :limit"
        )
        rows = self._rows(sql, params)
        total = int(rows[0].total) if rows else 0
        out = []
        for r in rows:
            at = r.at if isinstance(r.at, datetime) else datetime.fromisoformat(str(r.at))
            out.append(
                {
                    "lead_id": int(r.lead_id),
                    "email": r.email,
                    "at": t.UTCDateTime().process_result_value(at, self.conn.dialect),
                    "action": r.action,
                    "actor": r.actor,
                    "reason": r.reason,
                    "note": r.note,
                    "source": r.source,
                    "priority_then": r.priority_then,
                    "priority_now": r.priority_now,
                }
            )
        return total, out

    # ---- calibration -------------------------------------------------------------------------------

    def has_predictive_score(self) -> bool:
        """Whether any lead carries a predictive score (an active predictive model has scored)."""
        found = self.conn.execute(
            select(t.leads.c.id).where(t.leads.c.predictive_score.is_not(None)).limit(1)
        )
        return found.first() is not None

    def calibration(self, request: ReportRequest, band: Dimension) -> list[tuple[str, int, int, int]]:
        """Leads created in the range per score band: (band, leads, reached SQL, reached customer)."""
        params: dict[str, Any] = {}
        cohort = self.scope("l.created_at", request, params)
        sql_stages = ", ".join(f"'{s.value}'" for s in Stage if s.rank >= Stage.SQL.rank)
        won_stages = ", ".join(f"'{s.value}'" for s in Stage if s.rank >= Stage.CUSTOMER.rank)
        if band is Dimension.PREDICTIVE_DECILE:
            joins = (
                "LEFT JOIN (SELECT id, NTILE(10) OVER (ORDER BY predictive_score DESC, id) AS decile "
                f"FROM leads l WHERE predictive_score IS NOT NULL AND {cohort}) pd ON pd.id = l.id"
            )
            grp = f"COALESCE(CAST(pd.decile AS VARCHAR(8)), '{NO_VALUE}')"
        else:
            joins, grp = self.groups(Grouping(band))
        sql = (
            f"SELECT {grp} AS grp, count(*), "
            f"sum(CASE WHEN l.furthest_stage IN ({sql_stages}) THEN 1 ELSE 0 END), "
            f"sum(CASE WHEN l.furthest_stage IN ({won_stages}) THEN 1 ELSE 0 END) "
            f"FROM leads l {joins} WHERE {cohort} GROUP BY "
            + (grp if band is Dimension.PREDICTIVE_DECILE else self.group_key(Grouping(band), grp))
        )
        return [(r[0], int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in self._rows(sql, params)]

    # ---- attribution -------------------------------------------------------------------------------

    def _outcomes(
        self,
        request: ReportRequest,
        params: dict[str, Any],
        leads: str | None = None,
        *,
        numbers: bool = True,
    ) -> str:
        """CTEs ``conv`` (each lead's first MQL, SQL, opportunity and win, its revenue and its creation,
        from ``stage_entries``) and ``sc`` (the outcomes that count in the request's scope: m1 MQL, m2 SQL,
        m3 win). ``leads``: an ``IN (...)`` condition on the lead ids (report facts of some leads)."""
        firsts = ", ".join(
            f"min(CASE WHEN stage = '{stage.value}' THEN entered_at END) AS {name}"
            for stage, name in (
                (Stage.MQL, "mql_at"),
                (Stage.SQL, "sql_at"),
                (Stage.OPPORTUNITY, "opp_at"),
                (Stage.CUSTOMER, "won_at"),
            )
        )
        where = f"WHERE lead_id {leads} " if leads else ""
        conv = (
            f"conv AS (SELECT lead_id, min(created_at) AS created_at, {firsts}, sum(revenue) AS revenue, "
            f"max(currency) AS currency FROM stage_entries {where}GROUP BY lead_id)"
        )
        if request.mode is Mode.COHORT:
            cohort = self.scope("c.created_at", request, params)
            sc = (
                "sc0 AS (SELECT c.lead_id, c.mql_at AS m1, c.sql_at AS m2, c.won_at AS m3, c.mql_at, c.opp_at, "
                f"c.revenue, c.currency, c.created_at FROM conv c WHERE {cohort} AND c.mql_at IS NOT NULL)"
            )
        else:
            picks = [
                f"CASE WHEN {self.scope(f'c.{col}', request, params)} THEN c.{col} END AS {name}"
                for col, name in (("mql_at", "m1"), ("sql_at", "m2"), ("won_at", "m3"))
            ]
            sc = (
                f"sc0 AS (SELECT c.lead_id, {', '.join(picks)}, c.mql_at, c.opp_at, c.revenue, c.currency, "
                "c.created_at FROM conv c WHERE c.mql_at IS NOT NULL)"
            )
        days = "".join(f", {self.epoch_days(f'm{o}')} AS mj{o}" for o in "123") if numbers else ""
        sc += (
            f", sc AS MATERIALIZED (SELECT sc0.*{days}, CASE WHEN m3 IS NOT NULL THEN revenue ELSE 0 END AS "
            "rev_counted, CASE WHEN m3 IS NOT NULL THEN currency END AS cur FROM sc0 "
            "WHERE m1 IS NOT NULL OR m2 IS NOT NULL OR m3 IS NOT NULL)"
        )
        return f"WITH {conv}, {sc}"

    def attribution_totals(self, request: ReportRequest) -> list[tuple[str | None, int, int, int, float]]:
        """Outcomes counted, per win currency: (currency, MQLs, SQLs, customers, revenue)."""
        params: dict[str, Any] = {}
        sql = (
            f"{self._outcomes(request, params, numbers=False)} SELECT CASE WHEN m3 IS NOT NULL THEN currency END AS cur, "
            "count(m1), count(m2), count(m3), sum(CASE WHEN m3 IS NOT NULL THEN revenue END) FROM sc GROUP BY 1"
        )
        return [(r[0], int(r[1]), int(r[2]), int(r[3]), float(r[4] or 0)) for r in self._rows(sql, params)]

    def touch_key(self, at: str, ident: str) -> str:
        """A text that sorts like (time, id) and ends with the id (after 26 characters): the max of it
        over a lead's touches names its last touch, in one GROUP BY pass on both databases."""
        if self.dialect == "sqlite":
            return f"({at} || printf('%012d', {ident}))"  # times are stored as fixed-width text
        return f"(to_char({at} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || lpad(CAST({ident} AS TEXT), 12, '0'))"

    def key_id(self, key: str) -> str:
        return f"CAST(substr({key}, 27) AS BIGINT)"

    def epoch_days(self, column: str) -> str:
        if self.dialect == "sqlite":
            return f"julianday({column})"
        return f"(EXTRACT(EPOCH FROM {column}) / 86400.0)"

    def _touch_source(self, col: str) -> str:
        """The scoped leads joined with their touches up to the latest outcome, read from the touches'
        partial index alone (``ix_activities_touches``: its condition is written here word for word).
        PostgreSQL is asked for one index range per lead (LATERAL) rather than a merge join over every
        activity."""
        where = f"{t.touch_filter('a')} AND a.{col} IS NOT NULL AND a.occurred_at <= COALESCE(sc.m3, sc.m2, sc.m1)"
        if self.dialect == "sqlite":
            return f"sc JOIN activities a ON a.lead_id = sc.lead_id WHERE {where}"
        return (
            "sc CROSS JOIN LATERAL (SELECT a.id, a.occurred_at, a.type, a.source, a.campaign, a.content "
            # OFFSET 0 keeps the planner from flattening the lateral subquery back into a merge join
            f"FROM activities a WHERE a.lead_id = sc.lead_id AND {where} OFFSET 0) a"
        )

    def _credits(
        self, request: ReportRequest, params: dict[str, Any], leads: str | None = None
    ) -> tuple[str, str]:
        """(the CTEs, a subquery with every touch's credit under every model): one row per touch of a
        scoped outcome with ``lead_id``, ``grp`` (the touch's value), the lead's ``cur``, ``revenue``,
        ``created_at``, ``m1``..``m3``, ``currency_raw``, ``revenue_raw``, and per outcome ``o`` in 1..3
        ``i<o>`` (1 when the touch counts for it) and ``c_<model>_<o>``.

        Two passes over the touches, no window: per lead, the number of touches before each outcome,
        the time-decay normalisers and which touches are the first, the last before each outcome, the
        MQL touch and the opportunity touch (the max of :meth:`touch_key`); then every touch's credit
        under each model is arithmetic on its lead's figures (ADR 10).
        """
        assert request.by is not None
        col = _ACTIVITY_COLUMN[request.by]
        params["ln2_per_half_life"] = 0.6931471805599453 / request.half_life_days
        marks = {"1": "m1", "2": "m2", "3": "m3", "m": "mql_at", "o": "opp_at"}

        def decay(o: str, lead: str = "") -> str:
            # exp() of a very negative number underflows (an error on PostgreSQL): the exponent stops at 700
            return f"exp(-{self.least(f':ln2_per_half_life * ({lead}mj{o} - tj)', '700.0')})"

        key = self.touch_key("a.occurred_at", "a.id")
        t_cte = (
            "t AS MATERIALIZED (SELECT sc.lead_id, a.id, a.occurred_at AS at, "
            f"{self.epoch_days('a.occurred_at')} AS tj, {key} AS k, a.{col} AS v, sc.m1, sc.m2, sc.m3, "
            "sc.mql_at, sc.opp_at, sc.mj1, sc.mj2, sc.mj3, sc.rev_counted AS revenue, sc.cur"
            + (", sc.created_at, sc.revenue AS revenue_raw, sc.currency AS currency_raw" if leads else "")
            + f" FROM {self._touch_source(col)})"
        )
        ls_cols = (
            [f"sum(CASE WHEN at <= {m} THEN 1 ELSE 0 END) AS n{o}" for o, m in marks.items()]
            + [f"sum(CASE WHEN at <= m{o} THEN {decay(o)} ELSE 0 END) AS dd{o}" for o in "123"]
            + [f"{self.key_id('min(k)')} AS fid"]
            + [f"{self.key_id(f'max(CASE WHEN at <= {m} THEN k END)')} AS lid{o}" for o, m in marks.items()]
            # the lead's own figures ride along, so the second pass reads only narrow touch rows
            + [
                f"min({c}) AS {c}"
                for c in ("m1", "m2", "m3", "opp_at", "mj1", "mj2", "mj3", "revenue", "cur")
                + (("created_at", "revenue_raw", "currency_raw") if leads else ())
            ]
        )
        ls_cte = f"ls AS (SELECT lead_id, {', '.join(ls_cols)} FROM t GROUP BY lead_id)"

        def flag(cond: str) -> str:
            return f"(CASE WHEN {cond} THEN 1 ELSE 0 END)"

        m_exists = "ls.nm >= 1"
        columns: list[str] = []
        for o in "123":
            n, inside = f"ls.n{o}", f"t.at <= ls.m{o}"
            is_f, is_l = "t.id = ls.fid", f"t.id = ls.lid{o}"
            o_exists = "(ls.opp_at IS NOT NULL AND ls.no >= 1)" if o == "3" else "1 = 0"
            is_m, is_o = f"({m_exists} AND t.id = ls.lidm)", f"({o_exists} AND t.id = ls.lido)"
            distinct = (
                f"(1 + {flag(f'{m_exists} AND ls.lidm <> ls.fid')} + "
                f"{flag(f'{o_exists} AND ls.lido <> ls.fid AND (NOT ({m_exists}) OR ls.lido <> ls.lidm)')})"
            )
            k = f"({n} - {distinct})"
            w_raw = (
                f"(0.3 * {flag(is_f)} + 0.3 * {flag(is_m)} + 0.3 * {flag(is_o)} + CASE WHEN NOT ({is_f}) "
                f"AND NOT {is_m} AND NOT {is_o} AND {k} > 0 THEN 0.1 / {k} ELSE 0 END)"
            )
            w_total = (
                f"(0.3 * (1 + {flag(m_exists)} + {flag(o_exists)}) + CASE WHEN {k} > 0 THEN 0.1 ELSE 0 END)"
            )
            credit = {
                "first_touch": f"CASE WHEN {is_f} THEN 1.0 ELSE 0 END",
                "last_touch": f"CASE WHEN {is_l} THEN 1.0 ELSE 0 END",
                "linear": f"1.0 / {n}",
                "u_shaped": (
                    f"CASE WHEN {n} <= 2 THEN 1.0 / {n} WHEN {is_f} OR {is_l} THEN 0.4 ELSE 0.2 / ({n} - 2) END"
                ),
                "w_shaped": f"{w_raw} / {w_total}",
                "time_decay": f"{decay(o, 'ls.')} / ls.dd{o}",
            }
            columns.append(f"CASE WHEN {inside} THEN 1 ELSE 0 END AS i{o}")
            for model, expr in credit.items():
                columns.append(f"CASE WHEN {inside} THEN {expr} ELSE 0 END AS c_{model}_{o}")
        if leads:
            columns += [f"ls.{c}" for c in ("created_at", "m1", "m2", "m3", "revenue_raw", "currency_raw")]
        # every touch's credits are computed once, then summed; on PostgreSQL the fence (OFFSET 0) keeps
        # the planner from copying each expression into every aggregate that reads it (SQLite measured
        # no faster with one)
        fence = "" if self.dialect == "sqlite" else " OFFSET 0"
        credits = (
            f"SELECT t.lead_id, t.v AS grp, ls.cur AS cur, ls.revenue AS revenue, {', '.join(columns)} "
            # CROSS JOIN keeps SQLite from scanning ls once per touch (it indexes t instead)
            f"FROM ls CROSS JOIN t WHERE t.lead_id = ls.lead_id{fence}"
        )
        return f"{self._outcomes(request, params, leads)}, {t_cte}, {ls_cte}", credits

    def attribution(self, request: ReportRequest) -> list[dict[str, Any]]:
        """Credited outcomes per value of the touch dimension and win currency, for every model.

        Each row: ``grp``, ``cur`` and, per outcome ``o`` in 1..3 (MQL, SQL, customer), ``touched_o``
        (leads with a touch of this value before the outcome), ``touches_o``, and per model
        ``<model>_o`` credits and ``<model>_rev`` credited revenue.

        At the default half-life the credits are sums of ``attribution_credits`` (each converted lead's
        credits, kept up to date by ``report_facts``); at another half-life they are computed from the
        touches (:meth:`_credits`).
        """
        if request.half_life_days == DEFAULT_HALF_LIFE_DAYS:
            counted, revenue = self._attribution_from_credits(request)
            return counted + revenue
        return self._attribution_at_half_life(request)

    def _attribution_at_half_life(self, request: ReportRequest) -> list[dict[str, Any]]:
        """At another half-life only the time-decay credits change: every other model is read from
        ``attribution_credits`` and time decay is computed from the touches (:meth:`_time_decay_at`)."""
        counted, revenue = self._attribution_from_credits(request)
        params: dict[str, Any] = {}
        decayed: dict[Any, list[float]] = {}
        decayed_rev: dict[tuple[Any, Any], float] = {}
        for r in self._rows(self._time_decay_at(request, params), params):
            sums = decayed.setdefault(r.grp, [0.0, 0.0, 0.0])
            for k, o in enumerate("123"):
                sums[k] += float(getattr(r, f"time_decay_{o}") or 0.0)
            if r.cur is not None or r.time_decay_rev:
                key = (r.grp, r.cur)
                decayed_rev[key] = decayed_rev.get(key, 0.0) + float(r.time_decay_rev or 0.0)
        for row in counted:
            for k, o in enumerate("123"):
                row[f"time_decay_{o}"] = decayed.get(row["grp"], [0.0, 0.0, 0.0])[k]
        for row in revenue:
            row["time_decay_rev"] = decayed_rev.get((row["grp"], row["cur"]), 0.0)
        return counted + revenue

    def _time_decay_at(self, request: ReportRequest, params: dict[str, Any]) -> str:
        """Time-decay credits at the request's half-life, per touch value and win currency: ``grp``,
        ``cur``, ``time_decay_1``..``time_decay_3`` and ``time_decay_rev``. The one model whose credits
        depend on the half-life, computed from the touches as :meth:`_credits` does, without the other
        models' columns (those come from ``attribution_credits``)."""
        assert request.by is not None
        col = _ACTIVITY_COLUMN[request.by]
        params["ln2_per_half_life"] = 0.6931471805599453 / request.half_life_days

        def decay(o: str, lead: str = "") -> str:
            return f"exp(-{self.least(f':ln2_per_half_life * ({lead}mj{o} - tj)', '700.0')})"

        t_cte = (
            "t AS MATERIALIZED (SELECT sc.lead_id, a.occurred_at AS at, "
            f"{self.epoch_days('a.occurred_at')} AS tj, a.{col} AS v, sc.m1, sc.m2, sc.m3, sc.mj1, sc.mj2, "
            f"sc.mj3, sc.rev_counted AS revenue, sc.cur FROM {self._touch_source(col)})"
        )
        ls_cols = [f"sum(CASE WHEN at <= m{o} THEN {decay(o)} ELSE 0 END) AS dd{o}" for o in "123"]
        ls_cols += [f"min({c}) AS {c}" for c in ("m1", "m2", "m3", "mj1", "mj2", "mj3", "revenue", "cur")]
        ls_cte = f"ls AS (SELECT lead_id, {', '.join(ls_cols)} FROM t GROUP BY lead_id)"
        per_touch = [
            f"CASE WHEN t.at <= ls.m{o} THEN {decay(o, 'ls.')} / ls.dd{o} ELSE 0 END AS c{o}" for o in "123"
        ]
        fence = "" if self.dialect == "sqlite" else " OFFSET 0"
        credits = (
            f"SELECT t.v AS grp, ls.cur AS cur, ls.revenue AS revenue, {', '.join(per_touch)} "
            f"FROM ls CROSS JOIN t WHERE t.lead_id = ls.lead_id{fence}"
        )
        sums = ", ".join(f"sum(c{o}) AS time_decay_{o}" for o in "123")
        head = f"{self._outcomes(request, params)}, {t_cte}, {ls_cte}"
        return (
            f"{head} SELECT grp, cur, {sums}, sum(c3 * revenue) AS time_decay_rev "
            f"FROM ({credits}) cr GROUP BY grp, cur"
        )

    def _attribution_from_credits(
        self, request: ReportRequest
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """:meth:`attribution` from ``attribution_credits``: one row per (converted lead, value), summed
        per value (in the table's key order: no sort on SQLite), and the customers' rows per currency."""
        assert request.by is not None
        params: dict[str, Any] = {"dimension": request.by.value}
        outcomes = tuple(zip("123", t.ATTRIBUTION_OUTCOMES, ("mql_at", "sql_at", "won_at"), strict=True))
        if request.mode is Mode.COHORT:
            where = self.scope("created_at", request, params)
            counted = {o: f"{col} IS NOT NULL" for o, _name, col in outcomes}
        else:
            where = "1 = 1"
            counted = {
                o: f"{col} IS NOT NULL AND {self.scope(col, request, params)}" for o, _name, col in outcomes
            }
        # a value is listed when a counted outcome has a touch of it (as when computed from the touches)
        touched_any = " OR ".join(f"({counted[o]} AND touches_{name} > 0)" for o, name, _c in outcomes)
        sums = []
        for o, name, _col in outcomes:
            c = counted[o]
            sums.append(f"sum(CASE WHEN {c} AND touches_{name} > 0 THEN 1 ELSE 0 END) AS touched_{o}")
            sums.append(f"sum(CASE WHEN {c} THEN touches_{name} ELSE 0 END) AS touches_{o}")
            sums += [
                f"sum(CASE WHEN {c} THEN {m.value}_{name} ELSE 0 END) AS {m.value}_{o}"
                for m in AttributionModel
            ]
        base = f"FROM attribution_credits WHERE dimension = :dimension AND {where} AND ({touched_any})"
        rows = [
            {**dict(r._mapping), "cur": None, **{f"{m.value}_rev": 0.0 for m in AttributionModel}}
            for r in self._rows(f"SELECT value AS grp, {', '.join(sums)} {base} GROUP BY value", params)
        ]
        revenue = ", ".join(f"sum({m.value}_customer * revenue) AS {m.value}_rev" for m in AttributionModel)
        zero = {
            f"{k}_{o}": 0 for o in "123" for k in ("touched", "touches", *(m.value for m in AttributionModel))
        }
        revenue_rows = [
            {**zero, **dict(r._mapping)}
            for r in self._rows(
                f"SELECT value AS grp, currency AS cur, {revenue} {base} AND {counted['3']} GROUP BY value, currency",
                params,
            )
        ]
        return rows, revenue_rows

    # ---- report facts (adapters/db/report_facts.py) ------------------------------------------------

    def credit_rows(self, dimension: Dimension, leads: str) -> str:
        """The statement that writes ``attribution_credits`` of the leads ``leads`` (an ``IN (...)``)
        for one dimension: every converted lead's credits, summed per value, at the default half-life."""
        request = ReportRequest(
            report=Report.ATTRIBUTION, by=dimension, mode=Mode.COHORT, start=None, end=None
        )
        params: dict[str, Any] = {}
        head, credits = self._credits(request, params, leads)
        names = ["created_at", "mql_at", "sql_at", "won_at", "revenue", "currency"]
        names += [f"touches_{name}" for name in t.ATTRIBUTION_OUTCOMES]
        names += [f"{m}_{name}" for name in t.ATTRIBUTION_OUTCOMES for m in t.ATTRIBUTION_MODELS]
        values = ["min(created_at)", "min(m1)", "min(m2)", "min(m3)", "min(revenue_raw)", "min(currency_raw)"]
        values += [f"sum(i{o})" for o in "123"]
        values += [f"sum(c_{m}_{o})" for o in "123" for m in t.ATTRIBUTION_MODELS]
        ln2 = repr(params.pop("ln2_per_half_life"))
        assert not params
        return (
            f"{head} INSERT INTO attribution_credits (dimension, value, lead_id, {', '.join(names)}) "
            f"SELECT '{dimension.value}', grp, lead_id, {', '.join(values)} FROM ({credits}) cr GROUP BY lead_id, grp"
        ).replace(":ln2_per_half_life", f"CAST({ln2} AS DOUBLE PRECISION)")
