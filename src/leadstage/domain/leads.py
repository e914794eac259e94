"""Leads, accounts and typed custom properties (DOMAIN.md R1, R3)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from leadstage.domain.stages import LeadState, Stage, Status

PropertyValue = str | int | float | bool | None


class PropertyType(StrEnum):
    """The type of a custom property; types only widen (integer -> number -> string)."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    STRING = "string"

    def widen(self, other: PropertyType) -> PropertyType:
        if self is other:
            return self
        numeric = {PropertyType.INTEGER, PropertyType.NUMBER}
        if self in numeric and other in numeric:
            return PropertyType.NUMBER
        return PropertyType.STRING


_INT = re.compile(r"[+-]?\d{1,18}")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_BOOLS = {"true": True, "false": False}


def infer_value(text: str) -> tuple[PropertyValue, PropertyType]:
    """Read a cell as the narrowest type that keeps it exactly.

    Integers with leading zeros (postcodes, ids) stay strings so nothing the user typed is lost; only
    ``true``/``false`` become booleans (``Yes``/``No`` stay as written).
    """
    s = text.strip()
    unsigned = s.lstrip("+-")
    leading_zero = len(unsigned) > 1 and unsigned[0] == "0" and unsigned[1].isdigit()
    if _INT.fullmatch(s) and not leading_zero:
        return int(s), PropertyType.INTEGER
    if _FLOAT.fullmatch(s) and not leading_zero:
        value = float(s)
        digits = s.lstrip("+-").split("e")[0].split("E")[0].replace(".", "").lstrip("0")
        # only when a double keeps every digit typed (a 19-digit id must stay text)
        if math.isfinite(value) and len(digits) <= 15:
            return value, PropertyType.NUMBER
    lowered = s.lower()
    if lowered in _BOOLS:
        return _BOOLS[lowered], PropertyType.BOOLEAN
    return text, PropertyType.STRING


def type_of(value: PropertyValue) -> PropertyType | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return PropertyType.BOOLEAN
    if isinstance(value, int):
        return PropertyType.INTEGER
    if isinstance(value, float):
        return PropertyType.NUMBER
    return PropertyType.STRING


@dataclass(frozen=True)
class Identity:
    """Who a lead is. Raw values are kept as given; normalised ones are what matching uses."""

    email: str | None = None
    email_normalized: str | None = None
    email_valid: bool | None = None
    phone: str | None = None
    phone_e164: str | None = None
    phone_valid: bool | None = None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    company: str | None = None

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    def filled_from(self, other: Identity) -> Identity:
        """This identity with its gaps filled from another (never overwriting what is known)."""
        values = {
            name: getattr(self, name) if getattr(self, name) not in (None, "") else getattr(other, name)
            for name in self.__dataclass_fields__
        }
        return Identity(**values)


#: The largest id a database stores (a signed 64-bit integer).
MAX_ID = 2**63 - 1


def as_id(text: str | None) -> int | None:
    """The internal id a text names (ASCII digits, 1 to :data:`MAX_ID`), else None: ``"²"`` and 30-digit
    numbers are not ids."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


@dataclass(frozen=True)
class ExternalId:
    system: str
    value: str


@dataclass
class Lead:
    """A person who might buy some day (R1). One identity, one lead (R2)."""

    id: int | None
    identity: Identity
    state: LeadState
    created_at: datetime
    updated_at: datetime
    external_ids: list[ExternalId] = field(default_factory=list)
    properties: dict[str, PropertyValue] = field(default_factory=dict)
    account_id: int | None = None
    owner_id: int | None = None
    first_source: str | None = None
    latest_source: str | None = None
    first_touch_at: datetime | None = None
    last_touch_at: datetime | None = None
    version: int = 1
    fingerprint: str | None = None

    @property
    def stage(self) -> Stage:
        return self.state.stage

    @property
    def status(self) -> Status:
        return self.state.status

    @property
    def cycle(self) -> int:
        return self.state.cycle

    def with_state(self, state: LeadState, *, at: datetime) -> Lead:
        return replace(self, state=state, updated_at=at)


@dataclass
class Account:
    """A company that leads may belong to; one account per normalised domain."""

    id: int | None
    name: str
    domain: str | None = None
    industry: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    country: str | None = None
    properties: dict[str, PropertyValue] = field(default_factory=dict)


def merge_properties(
    current: Mapping[str, PropertyValue], incoming: Mapping[str, PropertyValue]
) -> dict[str, PropertyValue]:
    """Incoming values win where they say something; a missing incoming value never erases a known one."""
    merged = dict(current)
    for key, value in incoming.items():
        if value is not None or key not in merged:
            merged[key] = value
    return merged


def lead_summary(lead: Lead) -> dict[str, Any]:
    """A flat, JSON-ready view of a lead (used by exports and listings)."""
    ident = lead.identity
    return {
        "id": lead.id,
        "email": ident.email,
        "first_name": ident.first_name,
        "last_name": ident.last_name,
        "job_title": ident.job_title,
        "company": ident.company,
        "phone": ident.phone,
        "stage": lead.state.stage.value,
        "status": lead.state.status.value,
        "cycle": lead.state.cycle,
        "furthest_stage": lead.state.furthest_stage.value,
        "owner_id": lead.owner_id,
        "account_id": lead.account_id,
        "first_source": lead.first_source,
        "latest_source": lead.latest_source,
        "created_at": lead.created_at.isoformat(),
        "updated_at": lead.updated_at.isoformat(),
    }
