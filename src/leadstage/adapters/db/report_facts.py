"""Report facts: what the reports read instead of every history row and activity (ADR 18).

Three tables (``adapters/db/tables.py``), each a function of one lead's history and activities, computed
by the statements the reports used to run over the whole database, restricted to some leads:

* ``stage_entries``: per lead, cycle and stage after ``lead``, the first forward transition into it in
  that cycle, how many there were, the days from the cycle's start and (for the lead's first entry into
  the stage) from its creation, and the closed amounts of the cycle's wins. Funnel counts per cycle,
  days to each stage, lead-to-customer times and attribution's outcomes are read from it.
* ``stage_visits``: every completed stage visit of a promoted lead (velocity).
* ``attribution_credits``: per converted lead and value of ``source``, ``campaign`` and ``content``,
  what each attribution model credits the value with for the lead's first MQL, SQL and win, at the
  default half-life (the report sums these rows; another half-life is computed from the touches).

They are written in the transaction of the change they follow, set-based per chunk of leads:
:func:`history_changed` after history rows other than a creation are written, moved (merge) or edited
(forget), which also recomputes the lead's credits; :func:`touches_changed` after activities are added
(for the API's batches: when the activity backlog follows them up, ADR 21).
Both replace the leads' rows (delete, then insert what the history and activities say now), so running
them again changes nothing. :func:`rebuild` recomputes every lead's (migration 0014, bulk-loaded data).
A lead's deletion removes its facts (foreign keys, ``ON DELETE CASCADE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select, text

from leadstage.adapters.db import tables as t
from leadstage.domain.analytics import FORWARD_ACTIONS, Dimension
from leadstage.domain.stages import Action, Stage

if TYPE_CHECKING:
    from leadstage.adapters.db.reports import SqlReportQueries

CHUNK = 500  # leads per statement (their ids are written into it: integers only)
TOUCH_DIMENSIONS = (Dimension.SOURCE, Dimension.CAMPAIGN, Dimension.CONTENT)
EVERY_LEAD = "IS NOT NULL"
OUTCOME_STAGES = (Stage.MQL.value, Stage.SQL.value, Stage.CUSTOMER.value)  # attribution's outcomes


def _in_chunks(lead_ids: Iterable[int]) -> list[str]:
    """``IN (...)`` conditions over the distinct ids, :data:`CHUNK` at a time."""
    ids = sorted({int(i) for i in lead_ids})
    return [f"IN ({', '.join(map(str, ids[k : k + CHUNK]))})" for k in range(0, len(ids), CHUNK)]


def history_changed(conn: Connection, lead_ids: Iterable[int]) -> None:
    """Recompute every fact of these leads: their history changed (and with it their outcomes)."""
    for leads in _in_chunks(lead_ids):
        _refresh(conn, leads, history=True)


def touches_changed(conn: Connection, earliest: Mapping[int, datetime]) -> None:
    """Recompute the attribution credits of leads with new activities (lead id: the earliest new
    activity's time). Only converted leads have credits, and only touches up to a lead's latest outcome
    count: a lead whose new activities all came after it keeps its credits (the common case: what
    leads do after converting)."""
    latest = t.stage_entries.c.entered_at
    for leads in _in_chunks(earliest):
        stale = [
            int(r[0])
            for r in conn.execute(
                select(t.stage_entries.c.lead_id, func.max(latest))
                .where(
                    text(f"lead_id {leads}"),
                    t.stage_entries.c.first_entry.is_(True),
                    t.stage_entries.c.stage.in_(OUTCOME_STAGES),
                )
                .group_by(t.stage_entries.c.lead_id)
            )
            if r[1] is not None and earliest[int(r[0])] <= r[1]
        ]
        if stale:
            _refresh(conn, f"IN ({', '.join(map(str, stale))})", history=False)


def rebuild(conn: Connection) -> None:
    """Recompute the facts of every lead (after a bulk load that bypassed the repositories)."""
    _refresh(conn, EVERY_LEAD, history=True)


def _queries(conn: Connection) -> SqlReportQueries:
    # imported here: the reports read segments, whose module reads leads through the repositories,
    # which call this module
    from leadstage.adapters.db.reports import SqlReportQueries

    return SqlReportQueries(conn)


def _refresh(conn: Connection, leads: str, *, history: bool) -> None:
    q = _queries(conn)
    if leads == EVERY_LEAD:
        q.tune()
    if history:
        for table in ("stage_entries", "stage_visits"):
            conn.execute(text(f"DELETE FROM {table} WHERE lead_id {leads}"))
        conn.execute(text(_entries(q, leads)))
        conn.execute(text(_visits(q, leads)))
    conn.execute(text(f"DELETE FROM attribution_credits WHERE lead_id {leads}"))
    for dimension in TOUCH_DIMENSIONS:
        conn.execute(text(q.credit_rows(dimension, leads)))


def _entries(q: SqlReportQueries, leads: str) -> str:
    """``stage_entries`` of the leads: forward transitions per (lead, cycle, stage); a cycle starts at the
    lead's creation (cycle 1), else at the promotion or reopening that began it."""
    stage_of = (
        "CASE action "
        + " ".join(f"WHEN '{a.value}' THEN '{st.value}'" for st, a in FORWARD_ACTIONS.items())
        + " END"
    )
    win = Action.WIN.value
    forward = ", ".join(f"'{a.value}'" for a in FORWARD_ACTIONS.values())
    amount = f"CAST({q.json_text('data', 'closed_amount')} AS DOUBLE PRECISION)"
    starts = f"'{Action.PROMOTE_MQL.value}', '{Action.REOPEN.value}'"
    return (
        "INSERT INTO stage_entries (lead_id, cycle, stage, entered_at, transitions, days_in_cycle, first_entry, "
        "days_since_created, created_at, revenue, currency) "
        "SELECT f.lead_id, f.cycle, f.stage, f.entered_at, f.transitions, "
        f"{q.days('f.entered_at', 'COALESCE(s.at, l.created_at)')}, "
        "CASE WHEN ROW_NUMBER() OVER (PARTITION BY f.lead_id, f.stage ORDER BY f.entered_at, f.cycle) = 1 "
        f"THEN TRUE ELSE FALSE END, {q.days('f.entered_at', 'l.created_at')}, l.created_at, f.revenue, f.currency "
        f"FROM (SELECT lead_id, cycle, {stage_of} AS stage, min(at) AS entered_at, count(*) AS transitions, "
        f"sum(CASE WHEN action = '{win}' THEN {amount} END) AS revenue, "
        f"max(CASE WHEN action = '{win}' THEN {q.json_text('data', 'currency')} END) AS currency "
        f"FROM lead_history WHERE action IN ({forward}) AND lead_id {leads} GROUP BY lead_id, cycle, action) f "
        "JOIN leads l ON l.id = f.lead_id "
        "LEFT JOIN (SELECT lead_id, cycle, min(at) AS at FROM lead_history WHERE cycle > 1 "
        f"AND action IN ({starts}) AND lead_id {leads} GROUP BY lead_id, cycle) s "
        "ON s.lead_id = f.lead_id AND s.cycle = f.cycle"
    )


def _visits(q: SqlReportQueries, leads: str) -> str:
    """``stage_visits`` of the leads: a visit starts when the history brings the lead into a stage and
    ends at the next row that takes it to another stage; a lead leaves ``lead`` only by promote_mql, so
    only promoted leads complete a visit, and visits still open are left out."""
    return (
        "INSERT INTO stage_visits (lead_id, history_id, stage, started_at, ended_at, days, created_at) "
        f"SELECT v.lead_id, v.id, v.stage, v.started, v.ended, {q.days('v.ended', 'v.started')}, l.created_at "
        "FROM (SELECT lead_id, id, to_stage AS stage, at AS started, "
        "LEAD(at) OVER (PARTITION BY lead_id ORDER BY at, id) AS ended FROM (SELECT lead_id, at, id, to_stage, "
        "LAG(to_stage) OVER (PARTITION BY lead_id ORDER BY at, id) AS prev FROM lead_history "
        f"WHERE lead_id IN (SELECT lead_id FROM lead_history WHERE action = '{Action.PROMOTE_MQL.value}' "
        f"AND lead_id {leads})) h WHERE prev IS NULL OR prev <> to_stage) v "
        "JOIN leads l ON l.id = v.lead_id WHERE v.ended IS NOT NULL"
    )
