"""Account use cases over the API: create, read, update, list (DOMAIN.md R1: a lead may belong to an account).

The identity rules are the import's (``import accounts``): one account per normalised domain
(``https://www.Acme.com/`` is ``acme.com``), or per case- and space-folded name when it has no domain.
Who may change accounts is the import's rule too (administrators, marketing and sales managers); giving
an account an owner decides where its leads are routed, so only administrators and sales managers may.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leadstage.domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from leadstage.domain.identity import normalize_company_name, normalize_domain
from leadstage.domain.leads import Account, PropertyValue
from leadstage.domain.stages import BULK_ROLES, Actor, Role
from leadstage.services import audit
from leadstage.services.ports import AccountRow, UnitOfWork

#: Who creates and edits accounts: the roles that import them.
ACCOUNT_EDITORS = BULK_ROLES
#: Who gives an account an owner (its leads are routed to that owner): the roles that route leads.
OWNER_SETTERS = frozenset({Role.ADMIN, Role.SALES_MANAGER})
#: Fields of an account besides its name, domain, owner and custom properties.
PLAIN_FIELDS = ("industry", "employees", "annual_revenue", "country")


def account_json(row: AccountRow) -> dict[str, Any]:
    a = row.account
    return {
        "id": a.id,
        "name": a.name,
        "domain": a.domain,
        "industry": a.industry,
        "employees": a.employees,
        "annual_revenue": a.annual_revenue,
        "country": a.country,
        "owner": row.owner,
        "properties": dict(a.properties),
        "leads": row.leads,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def etag(row: AccountRow) -> str:
    """A strong ETag over what the account says (changes whenever any of it changes)."""
    doc = account_json(row)
    content = {k: v for k, v in doc.items() if k not in ("leads", "created_at", "updated_at")}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    return f'"a{digest[:20]}"'


def _domain(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    domain = normalize_domain(raw)
    if domain is None:
        raise ValidationError(f"domain: {raw!r} is not a domain (such as acme.com)", field="domain")
    return domain


def _name(raw: str | None, domain: str | None) -> str:
    name = (raw or "").strip() or domain
    if not name:
        raise ValidationError("an account needs a name or a domain", field="name")
    return name


def _taken(uow: UnitOfWork, *, domain: str | None, name: str, other_than: int | None = None) -> None:
    """One account per domain, or per folded name among accounts without a domain: 409 naming the holder."""
    found = (
        uow.accounts.find_by_domain(domain)
        if domain
        else uow.accounts.find_by_name(normalize_company_name(name))
    )
    if found is not None and found.id != other_than and (domain or found.domain is None):
        what = f"domain {domain}" if domain else f"name {name!r}"
        raise AlreadyExists(
            f"account {found.id} already has the {what}", field="domain" if domain else "name"
        )


def _owner_id(uow: UnitOfWork, username: str | None, actor: Actor) -> int | None:
    if actor.role not in OWNER_SETTERS:
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) may not give accounts an owner; admins and sales managers may"
        )
    if username is None:
        return None
    user = uow.users.get_by_username(username)
    if user is None:
        raise ValidationError(f"owner: no user {username!r}", field="owner")
    if not user.active:
        raise ValidationError(f"owner: {username!r} is deactivated", field="owner")
    return user.id


def _may_edit(actor: Actor) -> None:
    if actor.role not in ACCOUNT_EDITORS:
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) may not change accounts; admins, marketing and sales managers may"
        )


def get_account(uow: UnitOfWork, account_id: int) -> AccountRow:
    row = uow.accounts.row(account_id)
    if row is None:
        raise NotFound(f"no account {account_id}")
    return row


def list_accounts(
    uow: UnitOfWork, *, after_id: int | None, limit: int, search: str | None = None, descending: bool = False
) -> tuple[int, list[AccountRow]]:
    return uow.accounts.page(after_id=after_id, limit=limit, search=search, descending=descending)


def create_account(
    uow: UnitOfWork,
    fields: Mapping[str, Any],
    *,
    properties: Mapping[str, PropertyValue],
    owner: str | None,
    actor: Actor,
    at: datetime,
) -> AccountRow:
    """A new account; the caller commits. A domain or (without one) a name that is taken is ``AlreadyExists``."""
    _may_edit(actor)
    domain = _domain(fields.get("domain"))
    name = _name(fields.get("name"), domain)
    owner_id = _owner_id(uow, owner, actor) if owner is not None else None
    _taken(uow, domain=domain, name=name)
    account = Account(
        id=None,
        name=name,
        domain=domain,
        properties={k: v for k, v in properties.items() if v is not None},
        **{k: fields.get(k) for k in PLAIN_FIELDS},
    )
    account_id = uow.accounts.add(account, at=at)
    if owner_id is not None:
        uow.accounts.set_owner(account_id, owner_id, at=at)
    audit.record(uow, actor, "account.create", at=at, target=str(account_id), name=name, domain=domain)
    return get_account(uow, account_id)


def update_account(
    uow: UnitOfWork,
    account_id: int,
    changes: Mapping[str, Any],
    *,
    properties: Mapping[str, PropertyValue],
    actor: Actor,
    at: datetime,
    expected_etag: str | None = None,
) -> AccountRow:
    """Change the fields given (``properties``: a null removes one; ``owner``: a user name or null); the
    caller commits. With ``expected_etag``, only from that state (else ``ConcurrencyConflict``)."""
    _may_edit(actor)
    row = uow.accounts.row(account_id, lock=True)
    if row is None:
        raise NotFound(f"no account {account_id}")
    if expected_etag is not None and etag(row) != expected_etag:
        raise ConcurrencyConflict(f"account {account_id} changed since that ETag; read it again")
    current = row.account
    domain = _domain(changes["domain"]) if "domain" in changes else current.domain
    name = _name(changes.get("name"), domain) if "name" in changes else current.name
    if domain != current.domain or normalize_company_name(name) != normalize_company_name(current.name):
        _taken(uow, domain=domain, name=name, other_than=account_id)
    props = dict(current.properties)
    for key, value in properties.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    updated = Account(
        id=account_id,
        name=name,
        domain=domain,
        properties=props,
        **{k: changes[k] if k in changes else getattr(current, k) for k in PLAIN_FIELDS},
    )
    changed = sorted(
        k for k in (*PLAIN_FIELDS, "name", "domain") if getattr(updated, k) != getattr(current, k)
    )
    if props != current.properties:
        changed.append("properties")
    if updated != current:
        uow.accounts.update(updated, at=at)
    if "owner" in changes and changes["owner"] != row.owner:
        uow.accounts.set_owner(account_id, _owner_id(uow, changes["owner"], actor), at=at)
        changed.append("owner")
    if changed:
        audit.record(uow, actor, "account.update", at=at, target=str(account_id), changed=changed)
    return get_account(uow, account_id)
