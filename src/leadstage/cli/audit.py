"""``leadstage audit list``: the append-only audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_listing
from leadstage.domain.errors import ValidationError
from leadstage.domain.times import TimestampError, parse_timestamp
from leadstage.services import audit
from leadstage.services import leads as lead_service

audit_app = typer.Typer(help="The audit log: who did what, when, from where.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("list")
def audit_list(
    actor: Annotated[str | None, typer.Option(help="Only this user's actions.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. login.failed, lead.forget.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this date or time on (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 200,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The latest audit entries first."""
    c = STATE.get()
    start: datetime | None = None
    if since is not None:
        try:
            start = parse_timestamp(since, default_tz=c.settings.tz)
        except (TimestampError, ValueError) as exc:
            raise ValidationError(f"--since: {exc}", field="since") from None
    with c.uow() as uow:
        who = lead_service.resolve_actor(uow, as_user)
        items = audit.entries(uow, actor=who, who=actor, action=action, since=start, limit=limit)
    columns = ("at", "actor", "action", "target", "client", "details")
    emit_listing(items, columns, f"{len(items)} audit entries", as_json=as_json)
