"""Accounts over HTTP: create, read (with an ETag), update (with If-Match), list in cursor pages."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field, StrictFloat, StrictInt

from leadstage.api.routes import PROBLEM_RESPONSES, PropertyValue, Strict
from leadstage.api.security import Reader, Uow, Writer, container
from leadstage.domain.leads import MAX_ID
from leadstage.services import accounts as account_service

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES, tags=["accounts"])
AccountId = Annotated[int, Path(ge=1, le=MAX_ID)]


class AccountIn(Strict):
    name: str | None = Field(default=None, max_length=300, description="Required unless a domain is given")
    domain: str | None = Field(default=None, max_length=255, description="acme.com; URLs are reduced to it")
    industry: str | None = Field(default=None, max_length=200)
    employees: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    annual_revenue: StrictFloat | None = Field(default=None, ge=0, le=1e15)
    country: str | None = Field(default=None, max_length=120)
    owner: str | None = Field(
        default=None, max_length=120, description="A user name: the account's leads are routed to them"
    )
    properties: dict[str, PropertyValue] = Field(default_factory=dict, max_length=200)


class AccountPatch(AccountIn):
    """Only the fields given change; null clears a field, a property or the owner."""


class AccountOut(BaseModel):
    id: int
    name: str
    domain: str | None
    industry: str | None
    employees: int | None
    annual_revenue: float | None
    country: str | None
    owner: str | None
    properties: dict[str, PropertyValue]
    leads: int = Field(description="How many leads belong to the account")
    created_at: str
    updated_at: str


class AccountPage(BaseModel):
    total: int
    items: list[AccountOut]
    next_cursor: int | None


@router.get("/accounts")
def list_accounts(
    uow: Uow,
    who: Reader,
    q: Annotated[str | None, Query(max_length=200, description="Part of the name or domain")] = None,
    order: Literal["id", "-id"] = "id",
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="The next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AccountPage:
    """Accounts in pages: pass ``next_cursor`` back as ``cursor`` for the next page."""
    total, rows = account_service.list_accounts(
        uow, after_id=cursor, limit=limit, search=q, descending=order == "-id"
    )
    items = [AccountOut(**account_service.account_json(r)) for r in rows]
    return AccountPage(total=total, items=items, next_cursor=items[-1].id if len(items) == limit else None)


@router.post("/accounts", status_code=201)
def create_account(
    request: Request, body: AccountIn, uow: Uow, who: Writer, response: Response
) -> AccountOut:
    """A new account (administrators, marketing, sales managers; an owner: administrators and sales
    managers). One per domain, or per name without a domain: 409 names the account that has it."""
    fields = body.model_dump(exclude={"properties", "owner"}, exclude_unset=True)
    row = account_service.create_account(
        uow,
        fields,
        properties=body.properties,
        owner=body.owner,
        actor=who.actor,
        at=container(request).clock.now(),
    )
    uow.commit()
    response.headers["ETag"] = account_service.etag(row)
    response.headers["Location"] = f"/api/v1/accounts/{row.account.id}"
    return AccountOut(**account_service.account_json(row))


@router.get("/accounts/{account_id}")
def get_account(account_id: AccountId, uow: Uow, who: Reader, response: Response) -> AccountOut:
    """One account with its owner and how many leads it has; ``ETag`` for a later If-Match."""
    row = account_service.get_account(uow, account_id)
    response.headers["ETag"] = account_service.etag(row)
    return AccountOut(**account_service.account_json(row))


@router.patch("/accounts/{account_id}")
def update_account(
    request: Request,
    account_id: AccountId,
    body: AccountPatch,
    uow: Uow,
    who: Writer,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=60)] = None,
) -> AccountOut:
    """Change the fields given; with If-Match (the ETag of a GET), only from that state (else 412)."""
    changes = body.model_dump(exclude={"properties"}, exclude_unset=True)
    row = account_service.update_account(
        uow,
        account_id,
        changes,
        properties=body.properties,
        actor=who.actor,
        at=container(request).clock.now(),
        expected_etag=if_match.strip().removeprefix("W/") if if_match is not None else None,
    )
    uow.commit()
    response.headers["ETag"] = account_service.etag(row)
    return AccountOut(**account_service.account_json(row))
