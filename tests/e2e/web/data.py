"""Leads and activities for page tests, through the same import pipeline as files and the API."""

from __future__ import annotations

from typing import Any

from leadstage.bootstrap import Container
from leadstage.cli.app import install_default_model
from leadstage.services import capture


def seed(container: Container, leads: list[dict[str, Any]], activities: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
    """Import leads (and activities), scored as they land by the default model."""
    install_default_model(container)
    ctx = container.import_context(actor="import")
    _report, rejects = capture.import_records("leads", leads, ctx=ctx)
    assert rejects == [], rejects
    if activities:
        _report, rejects = capture.import_records("activities", list(activities), ctx=ctx)
        assert rejects == [], rejects


def lead_id(container: Container, email: str) -> int:
    from leadstage.services.leads import resolve_lead

    with container.uow() as uow:
        found = resolve_lead(uow, email).id
    assert found is not None
    return found
