"""Commands that start long-running work: ``demo`` and ``serve``."""

from __future__ import annotations

from typing import Annotated

import typer

from leadstage.cli.app import STATE, JsonOpt, app, emit_json, err


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve the web workspace and the REST API on one port."""
    import uvicorn

    from leadstage.api.app import create_app

    c = STATE.get()
    settings = c.settings
    host = host or settings.host
    port = port or settings.port
    err.print(f"leadstage on http://{host}:{port}/  (API health: http://{host}:{port}/api/v1/health)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


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
        if as_json:
            emit_json({"skipped": True, "existing_leads": existing})
        return
    with progress_bar("demo company", leads) as bar:
        report = demo_service.generate_demo(
            uow_factory=c.uow, normalizer=c.identity, leads=leads, seed=seed, now=c.clock.now(), progress=bar
        )
    # The demo's story already made its promotions; scoring it now must not add a burst of new ones.
    from leadstage.cli.scoring import yaml_loader
    from leadstage.services.scoring import score_all

    with progress_bar("scoring", leads) as bar:
        scored = score_all(c.uow, load=yaml_loader, at=c.clock.now(), progress=bar, promote=False)
    report["scored"] = scored.leads
    if as_json:
        emit_json(report)
    else:
        err.print("demo company: " + ", ".join(f"{v} {k}" for k, v in report.items() if isinstance(v, int)))


from leadstage.cli import reports as _reports  # noqa: E402,F401  (registers `leadstage report ...`)
from leadstage.cli import scoring as _scoring  # noqa: E402,F401  (registers `leadstage score ...`)
from leadstage.cli import tasks as _tasks  # noqa: E402,F401  (registers `leadstage tasks ...`)
