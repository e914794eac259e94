"""``leadstage secrets rotate``: a new session signing key without logging everyone out (ADR 15)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from leadstage.adapters.keyring import KeyringStore
from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_json, err
from leadstage.services import leads as lead_service
from leadstage.services import session_keys

secrets_app = typer.Typer(help="The session signing key, kept outside the database.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("rotate")
def secrets_rotate(
    grace_hours: Annotated[
        float | None,
        typer.Option(
            help="How long the previous key still verifies (default: LEADSTAGE_SESSION_HOURS, so no "
            "session ends early); 0 refuses it at once (a leaked key: everyone logs in again)."
        ),
    ] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a new signing key; running servers pick it up without a restart."""
    c = STATE.get()
    path = c.keyring_path()
    hours = c.settings.session_hours if grace_hours is None else grace_hours
    now = c.clock.now()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        keyring = session_keys.rotate(
            uow, KeyringStore(path), actor=actor, at=now, grace=timedelta(hours=hours)
        )
        uow.commit()
    result = {"file": str(path), "current": keyring.current.id, "keys": keyring.describe(now)}
    if as_json:
        emit_json(result)
        return
    previous = [k for k in keyring.keys[1:] if k.accept_until]
    err.print(f"new session signing key {keyring.current.id} in {path}")
    for k in previous:
        assert k.accept_until is not None
        err.print(f"  {k.id} still accepted until {k.accept_until.isoformat(timespec='minutes')}")
