"""``leadstage tokens`` and ``leadstage forms``: API tokens and public capture forms."""

from __future__ import annotations

from typing import Annotated

import typer

from leadstage.cli.app import STATE, AsOpt, JsonOpt, app, emit_json, emit_listing, err
from leadstage.services import access
from leadstage.services import leads as lead_service

tokens_app = typer.Typer(help="API tokens (sent as 'Authorization: Bearer TOKEN').", no_args_is_help=True)
forms_app = typer.Typer(help="Public capture forms (POST /api/v1/capture/KEY).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(forms_app, name="forms")


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Argument(metavar="USER")],
    scope: Annotated[str, typer.Option(help="read or write")] = "read",
    name: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token for USER; it is printed once and only its hash is kept."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        record, token = access.create_token(uow, user, scope=scope, actor=actor, at=c.clock.now(), name=name)
        uow.commit()
    if as_json:
        emit_json({"token": token, **access.token_document(record)})
    else:
        err.print(f"token {record.id} for {record.username} ({record.scope}); shown once, keep it safe:")
        print(token)


@tokens_app.command("list")
def tokens_list(as_json: JsonOpt = False) -> None:
    """List tokens (never the tokens themselves)."""
    c = STATE.get()
    with c.uow() as uow:
        docs = [access.token_document(r) for r in uow.access.tokens()]
    columns = ("id", "user", "prefix", "scope", "name", "created_at", "last_used_at", "revoked_at")
    emit_listing(docs, columns, f"{len(docs)} tokens", as_json=as_json)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(metavar="TOKEN_ID")],
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token: it stops working at once."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        record = access.revoke_token(uow, token_id, actor=actor, at=c.clock.now())
        uow.commit()
    if as_json:
        emit_json(access.token_document(record))
    else:
        err.print(f"token {record.id} revoked")


@forms_app.command("create")
def forms_create(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    source: Annotated[
        str | None, typer.Option(help="Lead source recorded for its leads (default: form).")
    ] = None,
    redirect: Annotated[str | None, typer.Option(help="Thank-you page to redirect browsers to.")] = None,
    as_user: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a public capture form and print its key."""
    c = STATE.get()
    with c.uow(write=True) as uow:
        actor = lead_service.resolve_actor(uow, as_user)
        form = access.create_form(
            uow, name, actor=actor, at=c.clock.now(), source=source, redirect_url=redirect
        )
        uow.commit()
    doc = {
        "key": form.key,
        "name": form.name,
        "source": form.source,
        "redirect_url": form.redirect_url,
        "action": f"/api/v1/capture/{form.key}",
    }
    if as_json:
        emit_json(doc)
    else:
        err.print(f'form {form.name!r}: <form method=post action="{doc["action"]}">')


@forms_app.command("list")
def forms_list(as_json: JsonOpt = False) -> None:
    """List capture forms."""
    c = STATE.get()
    with c.uow() as uow:
        docs = [
            {
                "key": f.key,
                "name": f.name,
                "source": f.source,
                "redirect_url": f.redirect_url,
                "active": f.active,
            }
            for f in uow.access.forms()
        ]
    emit_listing(docs, ("key", "name", "source", "redirect_url"), f"{len(docs)} forms", as_json=as_json)
