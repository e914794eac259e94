"""The activity backlog's follow-ups that need no scoring model (ADR 21).

Activities received in API batches are stored at once and listed in the backlog; what follows from them
(each lead's first and last touch, attribution credits, incremental scoring) runs later for many batches
together (``ingest.run_backlog``). Folds of all of a lead's activities (``score run``, a merged or
re-modelled lead) leave pending activities out (``adapters/db/scoring.py: NOT_PENDING``): the backlog folds
them into whatever state is stored when it runs, so none is counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from leadstage.domain.activities import earliest_by_lead
from leadstage.services.ports import ActivityRow, UnitOfWork


def merge_touches(touches: dict[int, list[Any]], more: Iterable[tuple[int, Sequence[Any]]]) -> None:
    """Each lead's [first_at, first_source, last_at, last_source] in ``touches`` widened by more of them,
    (lead id, [first_at, first_source, last_at, last_source]) pairs; of equal times the earlier one stays."""
    for lead_id, (first_at, first_source, last_at, last_source) in more:
        touch = touches.get(lead_id)
        if touch is None:
            touches[lead_id] = [first_at, first_source, last_at, last_source]
        else:
            if first_at < touch[0]:
                touch[0], touch[1] = first_at, first_source
            if last_at > touch[2]:
                touch[2], touch[3] = last_at, last_source


def widen_touches(touches: dict[int, list[Any]], rows: Iterable[ActivityRow]) -> None:
    """Each lead's first and last touch in ``touches`` widened by these activities."""
    merge_touches(touches, ((row[0], (row[2], row[4], row[2], row[4])) for row in rows))


def touch_and_credit(uow: UnitOfWork, rows: Sequence[ActivityRow]) -> None:
    """The follow-ups of stored activities besides scoring: their leads' first and last touch, and the
    attribution credits of leads whose new touches count for an outcome."""
    uow.bulk.refresh_credits(earliest_by_lead(rows))
    touches: dict[int, list[Any]] = {}
    widen_touches(touches, rows)
    uow.bulk.touch_leads({k: (v[0], v[1], v[2], v[3]) for k, v in touches.items()})
