"""Commands that start long-running work: ``demo`` and ``serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadstage.bootstrap import Container
from leadstage.cli.app import STATE, JsonOpt, app, emit_json, err
from leadstage.services import leads as lead_service


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Worker processes (default 1); one of all servers runs the background loop."
        ),
    ] = None,
) -> None:
    """Serve the web workspace and the REST API on one port."""
    import inspect
    import os

    import uvicorn

    from leadstage.api.app import create_app
    from leadstage.api.observability import configure_logging

    c = STATE.get()
    settings = c.settings
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if c.ensure_keyring():
        err.print(f"session signing keys created in {c.keyring_path()}")
    c.session_keys()  # a missing, unreadable or world-readable key file: exit 2 naming it
    err.print(
        f"leadstage on http://{host}:{port}/  (API health: http://{host}:{port}/api/v1/health)"
        + (f", {workers} workers" if workers > 1 else "")
    )
    configure_logging(settings.log_format)
    # requests are logged by the app (with their request id), not by uvicorn's access log
    if workers == 1:
        uvicorn.run(
            create_app(settings), host=host, port=port, log_level="info", log_config=None, access_log=False
        )
        return
    # worker processes build the app from the environment: hand them the database this command was given
    os.environ["LEADSTAGE_DATABASE_URL"] = settings.database_url
    # a worker is killed when it is not serving within this many seconds (uvicorn's default, 5, is less
    # than a worker's start on a busy machine: importing the app and opening the database)
    patience = (
        {"timeout_worker_healthcheck": 120}
        if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters
        else {}
    )
    uvicorn.run(
        "leadstage.api.app:create_app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        log_config=None,
        access_log=False,
        **patience,  # type: ignore[arg-type]
    )


@app.command()
def demo(
    leads: Annotated[
        int, typer.Option("--leads", min=1, max=2_000_000, help="How many leads to generate.")
    ] = 5000,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed gives the same company.")
    ] = 42,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when the database already has leads.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fill the database with a realistic synthetic company (campaigns, webinars, eBooks, history)."""
    from leadstage.cli.app import progress_bar
    from leadstage.services import demo as demo_service
    from leadstage.services.ports import LeadFilter

    c = STATE.get()
    with c.uow() as uow:
        existing, _ = uow.leads.search(LeadFilter(limit=1))
    if existing and if_empty:
        err.print(f"the database already has {existing} leads; demo data not added")
        logins = _demo_logins(c)
        if as_json:
            emit_json({"skipped": True, "existing_leads": existing, "logins": logins})
        return
    with progress_bar("demo company", leads) as bar:
        report = demo_service.generate_demo(
            uow_factory=c.writer,
            normalizer=c.identity,
            leads=leads,
            seed=seed,
            now=c.clock.now(),
            progress=bar,
        )
    # The demo's story already made its promotions; scoring it now must not add a burst of new ones.
    from leadstage.cli.scoring import yaml_loader
    from leadstage.services.scoring import score_all

    with progress_bar("scoring", leads) as bar:
        scored = score_all(c.writer, load=yaml_loader, at=c.clock.now(), progress=bar, promote=False)
    report["scored"] = scored.leads
    # the demo company's sales team routes its MQLs: owners, queues and first-response deadlines
    from leadstage.adapters.demo_files import demo_routing_source
    from leadstage.cli.routing import route_now, yaml_loader
    from leadstage.services import routing as routing_service

    with c.uow(write=True) as uow:
        if uow.routing.active() is None:
            routing_service.set_routing(
                uow,
                demo_routing_source(),
                source="demo routing",
                load=yaml_loader,
                actor=lead_service.BUILTIN_ADMIN,
                at=c.clock.now(),
            )
            uow.commit()
    routed = route_now(c, quiet=True)
    report["routed"] = routed.routed
    report["queued"] = routed.queued + routed.unassigned
    if not as_json:
        err.print("demo company: " + ", ".join(f"{v} {k}" for k, v in report.items() if isinstance(v, int)))
    report["logins"] = _demo_logins(c)
    if as_json:
        emit_json(report)


def _demo_logins(c: Container) -> list[dict[str, str]]:
    """The demo team's web logins (each role of the demo company and an administrator), printed."""
    from leadstage.adapters.security import hash_password, verify_password
    from leadstage.services.demo_logins import ensure_demo_logins

    with c.uow(write=True) as uow:
        logins = ensure_demo_logins(
            uow, hash_password=hash_password, verify=verify_password, at=c.clock.now()
        )
        uow.commit()
    if logins:
        s = c.settings
        err.print(f"web workspace: http://{s.host}:{s.port}/  log in as (user / password):")
        for login in logins:
            team = f", team {login['team']}" if login["team"] else ""
            err.print(f"  {login['role']:<14} {login['user']:<26} / {login['password']}{team}")
    return logins


from leadstage.cli import access as _access  # noqa: E402,F401  (registers `leadstage tokens/forms ...`)
from leadstage.cli import model as _model  # noqa: E402,F401  (registers `leadstage model ...`)
from leadstage.cli import reports as _reports  # noqa: E402,F401  (registers `leadstage report ...`)
from leadstage.cli import routing as _routing  # noqa: E402,F401  (registers `leadstage routing ...`, `tick`)
from leadstage.cli import scoring as _scoring  # noqa: E402,F401  (registers `leadstage score ...`)
from leadstage.cli import tasks as _tasks  # noqa: E402,F401  (registers `leadstage tasks ...`)
from leadstage.cli import webhooks as _webhooks  # noqa: E402,F401  (registers `leadstage webhooks/hooks ...`)


@app.command()
def backup(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A new file for the backup.")],
    as_json: JsonOpt = False,
) -> None:
    """A consistent backup while the server runs (SQLite backup API; pg_dump for PostgreSQL), with a
    row count and checksum per table to verify it on restore."""
    from leadstage.adapters.db.backup import backup as take_backup

    c = STATE.get()
    try:  # activities a server answered and holds in its inbox (ADR 24) go into the backup
        c.follow_up()
    except Exception as exc:  # (the backup is worth more than waiting for them)
        err.print(
            f"[yellow]activities waiting in the inbox were not stored first ({exc}); the backup "
            "holds what the database holds[/yellow]"
        )
    doc = take_backup(c.engine, c.settings.database_url, file, at=c.clock.now())
    rows = sum(t["rows"] for t in doc["tables"].values())
    if as_json:
        emit_json({"file": str(file), **doc})
    else:
        err.print(f"backup written to {file}: {len(doc['tables'])} tables, {rows} rows, checksums recorded")


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A backup written by `leadstage backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds leads.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Restore a backup into the database (stop the server first) and verify every table against it."""
    from leadstage.adapters.db.backup import restore as do_restore

    c = STATE.get(require_schema=False)
    doc = do_restore(c.engine, c.settings.database_url, file, force=force)
    if as_json:
        emit_json({"file": str(file), "verified": True, **doc})
    else:
        err.print(f"restored {file} (taken {doc['taken_at']}): every table verified")


from leadstage.cli import audit as _audit  # noqa: E402,F401  (registers `leadstage audit ...`)
from leadstage.cli import secrets as _secrets  # noqa: E402,F401  (registers `leadstage secrets ...`)
