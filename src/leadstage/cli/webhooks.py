"""``leadstage webhooks`` (outbound subscriptions and their delivery log) and ``leadstage hooks`` (signed
inbound hooks for email, ad and chat tools)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_json, emit_listing, err
from leadstage.domain.errors import NotFound, PermissionDenied
from leadstage.domain.stages import Role
from leadstage.domain.webhooks import EVENT_TYPES
from leadstage.services import leads as lead_service
from leadstage.services import webhooks

webhooks_app = typer.Typer(help="Outbound webhooks: subscriptions and deliveries.", no_args_is_help=True)
hooks_app = typer.Typer(help="Inbound hooks: signed event feeds from other tools.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(hooks_app, name="hooks")


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(metavar="URL")],
    events: Annotated[list[str], typer.Option("--event", help=f"Repeatable: {', '.join(EVENT_TYPES)}")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscribe URL to event types; prints the signing secret once."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        sub, secret = webhooks.add_subscription(uow, url, events, actor=actor, at=c.clock.now())
        uow.commit()
    if as_json:
        emit_json({"id": sub.id, "url": sub.url, "events": sub.events, "secret": secret})
    else:
        err.print(f"webhook {sub.id} -> {sub.url} for {', '.join(sub.events)}; signing secret (shown once):")
        print(secret)


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOpt = False) -> None:
    """Subscriptions (without their secrets)."""
    c = STATE.get()
    with c.uow() as uow:
        docs: list[dict[str, Any]] = [
            {"id": s.id, "url": s.url, "events": s.events, "active": s.active, "created_by": s.created_by}
            for s in uow.webhooks.subscriptions(active_only=False)
        ]
    if as_json:
        emit_json({"total": len(docs), "items": docs})
        return
    table = Table(title=f"{len(docs)} webhooks")
    for col in ("id", "url", "events", "active"):
        table.add_column(col)
    for d in docs:
        table.add_row(str(d["id"]), str(d["url"]), ", ".join(d["events"]), "yes" if d["active"] else "no")
    Console().print(table)


@webhooks_app.command("log")
def webhooks_log(
    subscription_id: Annotated[int, typer.Argument(metavar="ID")],
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The latest deliveries of a subscription: status, attempts, last answer."""
    c = STATE.get()
    with c.uow() as uow:
        if not any(s.id == subscription_id for s in uow.webhooks.subscriptions(active_only=False)):
            raise NotFound(f"no webhook {subscription_id}")
        docs = [webhooks.outbox_json(i) for i in uow.webhooks.log(subscription_id, limit)]
    columns = ("id", "type", "event", "status", "attempts", "last_status", "last_error")
    emit_listing(docs, columns, f"deliveries of webhook {subscription_id}", as_json=as_json)


@webhooks_app.command("retry")
def webhooks_retry(
    subscription_id: Annotated[int, typer.Argument(metavar="ID")], as_user: AsOpt = None
) -> None:
    """Make a subscription's waiting and given-up deliveries due now (after an outage is fixed)."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        if actor.role is not Role.ADMIN:
            raise PermissionDenied("only an administrator manages webhooks")
        if not any(s.id == subscription_id for s in uow.webhooks.subscriptions(active_only=False)):
            raise NotFound(f"no webhook {subscription_id}")
        count = uow.webhooks.retry_now(subscription_id, c.clock.now())
        uow.commit()
    err.print(f"{count} deliveries of webhook {subscription_id} are due now; the next tick sends them")


@webhooks_app.command("remove")
def webhooks_remove(
    subscription_id: Annotated[int, typer.Argument(metavar="ID")], as_user: AsOpt = None
) -> None:
    """Stop a subscription (its delivery log stays)."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        webhooks.remove_subscription(uow, subscription_id, actor=actor, at=c.clock.now())
        uow.commit()
    err.print(f"webhook {subscription_id} stopped")


@hooks_app.command("add")
def hooks_add(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    source: Annotated[str, typer.Option(help="Source recorded on its activities (e.g. mailchimp).")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An inbound hook at /api/v1/hooks/NAME; prints its signing secret once."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        secret = webhooks.add_inbound(uow, name, source=source, actor=actor, at=c.clock.now())
        uow.commit()
    if as_json:
        emit_json({"name": name, "url": f"/api/v1/hooks/{name}", "secret": secret})
    else:
        err.print(f"inbound hook {name}: POST /api/v1/hooks/{name}, signed; secret (shown once):")
        print(secret)
