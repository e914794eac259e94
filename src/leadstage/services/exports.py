"""Exports of leads, activities and history, page by page (constant memory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from leadstage.domain.errors import ValidationError
from leadstage.services.ports import UnitOfWorkFactory

EXPORT_KINDS = ("leads", "activities", "history")

LEAD_COLUMNS = [
    "id",
    "external_id",
    "email",
    "email_valid",
    "phone",
    "phone_e164",
    "phone_valid",
    "first_name",
    "last_name",
    "job_title",
    "company",
    "account_id",
    "account_domain",
    "owner",
    "stage",
    "status",
    "cycle",
    "furthest_stage",
    "first_source",
    "latest_source",
    "first_touch_at",
    "last_touch_at",
    "created_at",
    "updated_at",
]
ACTIVITY_COLUMNS = [
    "id",
    "lead_id",
    "email",
    "type",
    "occurred_at",
    "source",
    "campaign",
    "content",
    "idempotency_key",
    "properties",
]
HISTORY_COLUMNS = [
    "id",
    "lead_id",
    "email",
    "cycle",
    "action",
    "from_stage",
    "from_status",
    "to_stage",
    "to_status",
    "actor",
    "reason",
    "note",
    "at",
    "data",
]


class RowSink(Protocol):
    def write(self, rows: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


def export_records(
    kind: str, *, uow_factory: UnitOfWorkFactory, open_sink: Callable[[list[str]], RowSink]
) -> int:
    """Write every row of ``kind``; lead custom properties become columns under their own names."""
    if kind not in EXPORT_KINDS:
        raise ValidationError(f"unknown export {kind!r}; one of {', '.join(EXPORT_KINDS)}", field="kind")
    count = 0
    with uow_factory() as uow:
        if kind == "leads":
            names = uow.exports.lead_property_names()
            header = {name: (name if name not in LEAD_COLUMNS else f"property:{name}") for name in names}
            columns = [*LEAD_COLUMNS, *header.values()]
        else:
            header = {}
            columns = ACTIVITY_COLUMNS if kind == "activities" else HISTORY_COLUMNS
        sink = open_sink(columns)
        try:
            for page in uow.exports.pages(kind):
                if header:
                    for row in page:
                        for name, column in header.items():
                            row[column] = row.pop(f"property:{name}", None)
                sink.write(page)
                count += len(page)
        finally:
            sink.close()
    return count
