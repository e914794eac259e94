"""Records that arrive over HTTP (API batches, form posts) go through the same import pipeline as files:
the same mapping, identity matching, idempotency keys, typed properties, scoring, resurfacing and
rejected-row reasons. :class:`MemorySource` is a list of records seen as one batch of a "file"."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leadstage.services import ingest
from leadstage.services.ports import ImportReport, RecordBatch, RejectedRecord

#: Records per API batch (leads or activities).
MAX_BATCH = 1_000


class MemorySource:
    """Records (JSON objects) as a record source of one batch; columns in order of first appearance."""

    def __init__(self, records: Sequence[Mapping[str, Any]], *, name: str) -> None:
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(record))
        self.path = name
        self.columns = list(columns)
        self.size_bytes = 0
        self._records = records

    def batches(self) -> Iterator[RecordBatch]:
        if not self._records:
            return
        cols: dict[str, list[Any]] = {}
        for c in self.columns:
            values = [r.get(c) for r in self._records]
            kinds = {v.__class__ for v in values}
            cols[c] = [_cell(v) for v in values] if dict in kinds or list in kinds else values
        yield RecordBatch(columns=cols, length=len(self._records), first_row_number=1, last=True)

    def drain_unreadable(self) -> list[RejectedRecord]:
        return []


def _cell(value: Any) -> Any:
    """JSON values as the readers give them: text, numbers and booleans as they are, nested values as text."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


@dataclass
class MemoryRejects:
    items: list[dict[str, Any]] = field(default_factory=list)

    def write(self, record: RejectedRecord) -> None:
        self.items.append({"reason": record.reason, "record": dict(record.values)})

    @property
    def count(self) -> int:
        return len(self.items)


def import_records(
    kind: str,
    records: Sequence[Mapping[str, Any]],
    *,
    ctx: ingest.ImportContext,
    id_column: str | None = None,
) -> tuple[ImportReport, list[dict[str, Any]]]:
    """Import up to :data:`MAX_BATCH` records of a kind (``leads`` or ``activities``); returns the report and
    the rejected records with their reasons (``row N`` is the record's 1-based place in the batch)."""
    source = MemorySource(records, name=f"api {kind} batch")
    rejects = MemoryRejects()
    ingest.build_mapping(kind, source.columns, None, id_column=id_column, spec_name="request")
    if kind == "leads":
        report = ingest.import_leads(source, None, ctx=ctx, rejects=rejects, id_column=id_column)
    else:
        report = ingest.import_activities(source, None, ctx=ctx, rejects=rejects, id_column=id_column)
    return report, rejects.items
