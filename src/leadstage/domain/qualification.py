"""Qualification frameworks and the policy that gates ``qualify_sql`` (DOMAIN.md R8, R9).

BANT is the default framework: Budget, Authority, Need, Timely. The default policy needs all four
criteria confirmed; a policy can instead ask for some criteria plus N of the others.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from leadstage.domain.errors import ValidationError
from leadstage.domain.stages import QualificationCheck

BANT: tuple[str, ...] = ("budget", "authority", "need", "timeline")


@dataclass(frozen=True)
class Policy:
    """``required`` criteria must all be confirmed, and at least ``at_least`` of ``optional``."""

    required: tuple[str, ...] = BANT
    optional: tuple[str, ...] = ()
    at_least: int = 0

    def describe(self) -> str:
        text = " and ".join(self.required) or "nothing required"
        if self.optional:
            text += f", plus {self.at_least} of {', '.join(self.optional)}"
        return text


DEFAULT_POLICY = Policy()


def evaluate(confirmed: Mapping[str, bool], policy: Policy = DEFAULT_POLICY) -> QualificationCheck:
    """Whether a lead's confirmed criteria satisfy the policy, and what is missing if not."""
    missing = [c for c in policy.required if not confirmed.get(c, False)]
    optional_ok = [c for c in policy.optional if confirmed.get(c, False)]
    short = max(0, policy.at_least - len(optional_ok))
    if short:
        missing.append(f"{short} more of {', '.join(c for c in policy.optional if c not in optional_ok)}")
    passed = not missing
    summary = (
        f"{', '.join(c for c in _ordered(confirmed, policy) if confirmed.get(c))} confirmed" if passed else ""
    )
    return QualificationCheck(passed=passed, missing=tuple(missing), summary=summary)


def _ordered(confirmed: Mapping[str, bool], policy: Policy) -> Sequence[str]:
    seen = [*policy.required, *policy.optional]
    return [*seen, *(c for c in confirmed if c not in seen)]


# ---- frameworks as data ---------------------------------------------------------------------------------

FIELD_KINDS = ("choice", "number", "currency", "text", "date", "window")
_WINDOW = re.compile(r"(?i)^(q[1-4]\s+\d{4}|h[12]\s+\d{4}|\d{4}|\d{1,3}\s*(days?|weeks?|months?))$")


@dataclass(frozen=True)
class FieldSpec:
    """One value a criterion records: a choice among words, a number, a currency code, text, a date, or a
    time window (``Q2 2027``, ``H1 2027``, ``2027``, ``3 months``)."""

    name: str
    kind: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Criterion:
    """A criterion of a framework: its fields, which one a bare word sets, and when it counts as confirmed:
    ``confirmed_when`` maps a field to the values that confirm (an empty tuple: any value given)."""

    name: str
    fields: tuple[FieldSpec, ...]
    primary: str
    confirmed_when: tuple[str, tuple[str, ...]]
    label: str = ""

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class Framework:
    name: str
    criteria: tuple[Criterion, ...]
    policy: Policy

    def criterion(self, name: str) -> Criterion:
        for c in self.criteria:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.criteria)
        raise ValidationError(f"{self.name} has no criterion {name!r}; its criteria: {known}", field=name)


@dataclass(frozen=True)
class Answer:
    confirmed: bool
    value: dict[str, Any]
    evidence: str | None


#: The default framework, written as data like any other (``parse_framework`` reads it).
BANT_DEFINITION: dict[str, Any] = {
    "name": "bant",
    "criteria": {
        "budget": {
            "fields": {
                "status": ["confirmed", "planned", "none", "unknown"],
                "amount": "number",
                "currency": "currency",
            },
            "primary": "status",
            "confirmed_when": {"status": ["confirmed"]},
        },
        "authority": {
            "fields": {"level": ["decision_maker", "influencer", "none"], "role": "text"},
            "primary": "level",
            "confirmed_when": {"level": ["decision_maker"]},
        },
        "need": {
            "fields": {"status": ["confirmed", "unclear", "none"], "pain": "text"},
            "primary": "status",
            "confirmed_when": {"status": ["confirmed"]},
        },
        "timeline": {
            "fields": {"target": "window", "by": "date"},
            "primary": "target",
            "confirmed_when": {"target": []},
        },
    },
    "policy": {"required": ["budget", "authority", "need", "timeline"]},
}


def parse_framework(doc: Any, *, where: str = "framework") -> Framework:
    """A framework from its data; errors name the place (``where.criteria.budget.fields.status``)."""
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: expected a mapping with name, criteria and policy", field=where)
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        raise ValidationError(f"{where}.name: a lower-case name such as 'meddic', got {name!r}", field="name")
    raw = doc.get("criteria")
    if not isinstance(raw, dict) or not raw:
        raise ValidationError(f"{where}.criteria: at least one criterion is needed", field="criteria")
    criteria = tuple(_criterion(cname, body, f"{where}.criteria.{cname}") for cname, body in raw.items())
    names = [c.name for c in criteria]
    policy_doc = doc.get("policy") or {"required": names}
    if not isinstance(policy_doc, dict):
        raise ValidationError(f"{where}.policy: expected required / optional / at_least", field="policy")
    required = _names(policy_doc.get("required", []), names, f"{where}.policy.required")
    optional = _names(policy_doc.get("optional", []), names, f"{where}.policy.optional")
    at_least = policy_doc.get("at_least", len(optional))
    if not isinstance(at_least, int) or isinstance(at_least, bool) or not 0 <= at_least <= len(optional):
        raise ValidationError(
            f"{where}.policy.at_least: a whole number from 0 to {len(optional)}, got {at_least!r}",
            field="at_least",
        )
    if set(required) & set(optional):
        raise ValidationError(f"{where}.policy: a criterion is both required and optional", field="policy")
    return Framework(name, criteria, Policy(tuple(required), tuple(optional), at_least))


def _names(value: Any, known: list[str], where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{where}: a list of criterion names", field=where)
    for v in value:
        if v not in known:
            raise ValidationError(f"{where}: unknown criterion {v!r}; known: {', '.join(known)}", field=where)
    return list(value)


def _criterion(name: Any, body: Any, where: str) -> Criterion:
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        raise ValidationError(
            f"{where}: criterion names are lower-case words, got {name!r}", field="criteria"
        )
    if not isinstance(body, dict) or not isinstance(body.get("fields"), dict) or not body["fields"]:
        raise ValidationError(
            f"{where}.fields: a mapping of field name to kind or list of choices", field=name
        )
    fields = []
    for fname, kind in body["fields"].items():
        if isinstance(kind, list) and kind and all(isinstance(k, str) for k in kind):
            fields.append(FieldSpec(str(fname), "choice", tuple(kind)))
        elif kind in FIELD_KINDS and kind != "choice":
            fields.append(FieldSpec(str(fname), str(kind)))
        else:
            raise ValidationError(
                f"{where}.fields.{fname}: one of {', '.join(FIELD_KINDS[1:])} or a list of choices, got {kind!r}",
                field=name,
            )
    field_names = [f.name for f in fields]
    primary = body.get("primary", field_names[0])
    if primary not in field_names:
        raise ValidationError(f"{where}.primary: one of its fields ({', '.join(field_names)})", field=name)
    when = body.get("confirmed_when") or {primary: []}
    if not isinstance(when, dict) or len(when) != 1:
        raise ValidationError(f"{where}.confirmed_when: one field and the values that confirm", field=name)
    ((wfield, wvalues),) = when.items()
    spec = next((f for f in fields if f.name == wfield), None)
    if spec is None or not isinstance(wvalues, list):
        raise ValidationError(f"{where}.confirmed_when: {wfield!r} is not one of its fields", field=name)
    bad = [v for v in wvalues if spec.kind == "choice" and v not in spec.choices]
    if bad:
        raise ValidationError(f"{where}.confirmed_when: {bad[0]!r} is not a choice of {wfield}", field=name)
    return Criterion(
        name, tuple(fields), primary, (wfield, tuple(str(v) for v in wvalues)), str(body.get("label", ""))
    )


BANT_FRAMEWORK = parse_framework(BANT_DEFINITION)


def parse_answer(framework: Framework, criterion_name: str, text: str) -> Answer:
    """``"confirmed amount=50000 currency=EUR evidence='CFO on the call'"``: a bare word sets the criterion's
    primary field, ``field=value`` the others, ``evidence=`` the note; values are checked by kind."""
    criterion = framework.criterion(criterion_name)
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise ValidationError(f"--{criterion_name}: {exc}", field=criterion_name) from None
    if not tokens:
        raise ValidationError(f"--{criterion_name}: empty", field=criterion_name)
    value: dict[str, Any] = {}
    evidence: str | None = None
    bare: list[str] = []
    for token in tokens:
        key, eq, raw = token.partition("=")
        if not eq:
            bare.append(token)
            continue
        key = key.strip().lower()
        if key == "evidence":
            evidence = raw.strip() or None
            continue
        spec = criterion.field(key)
        if spec is None:
            known = ", ".join([*(f.name for f in criterion.fields), "evidence"])
            raise ValidationError(
                f"--{criterion_name}: unknown field {key!r}; known: {known}", field=criterion_name
            )
        value[spec.name] = _typed(spec, raw, criterion_name)
    if bare:
        spec = criterion.field(criterion.primary)
        assert spec is not None
        value[spec.name] = _typed(spec, " ".join(bare), criterion_name)
    wfield, wvalues = criterion.confirmed_when
    given = value.get(wfield)
    confirmed = given is not None and (not wvalues or str(given) in wvalues)
    if confirmed and not wvalues and str(given).lower() in ("none", "unknown"):
        confirmed = False
    return Answer(confirmed, value, evidence)


def format_answer(values: Mapping[str, str], evidence: str | None = None) -> str:
    """The text form :func:`parse_answer` reads, from field values typed into a form (empty ones left out):
    ``{"status": "confirmed", "amount": "50000"}`` gives ``status=confirmed amount=50000``."""
    tokens = [
        shlex.quote(f"{name}={value.strip()}") for name, value in values.items() if value and value.strip()
    ]
    if evidence and evidence.strip():
        tokens.append(shlex.quote(f"evidence={evidence.strip()}"))
    return " ".join(tokens)


def _typed(spec: FieldSpec, raw: str, criterion: str) -> Any:
    text = raw.strip()
    where = f"--{criterion} {spec.name}"
    if spec.kind == "choice":
        word = text.lower().replace(" ", "_").replace("-", "_")
        if word not in spec.choices:
            raise ValidationError(f"{where}: one of {', '.join(spec.choices)}, got {raw!r}", field=criterion)
        return word
    if spec.kind == "number":
        try:
            number = Decimal(text.replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise ValidationError(f"{where}: a number, got {raw!r}", field=criterion) from None
        if not number.is_finite() or number < 0:
            raise ValidationError(f"{where}: a non-negative number, got {raw!r}", field=criterion)
        return str(number)
    if spec.kind == "currency":
        code = text.upper()
        if len(code) != 3 or not code.isalpha():
            raise ValidationError(f"{where}: a three-letter ISO 4217 code, got {raw!r}", field=criterion)
        return code
    if spec.kind == "date":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise ValidationError(f"{where}: a date YYYY-MM-DD, got {raw!r}", field=criterion) from None
    if spec.kind == "window":
        if text.lower() in ("none", "unknown"):
            return text.lower()
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            pass
        if not _WINDOW.match(text):
            raise ValidationError(
                f"{where}: a date YYYY-MM-DD or a window such as 'Q2 2027', 'H1 2027' or '3 months', got {raw!r}",
                field=criterion,
            )
        return " ".join(text.upper().split()) if text[0] in "qQhH" else " ".join(text.lower().split())
    if not text:
        raise ValidationError(f"{where}: empty", field=criterion)
    return text


@dataclass(frozen=True)
class QualificationSetup:
    """The frameworks in use: by name, the default one, and which team uses which."""

    frameworks: Mapping[str, Framework]
    default: str = "bant"
    teams: Mapping[str, str] = dataclass_field(default_factory=dict)

    def for_team(self, team: str | None) -> Framework:
        name = self.teams.get(team or "", self.default)
        return self.frameworks[name]


DEFAULT_SETUP = QualificationSetup({"bant": BANT_FRAMEWORK})


def parse_setup(doc: Any, *, where: str) -> QualificationSetup:
    """``frameworks: [...]`` (a framework named ``bant`` replaces the default one, e.g. with another policy),
    ``default: NAME``, ``teams: {TEAM: NAME}``."""
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: expected a mapping with frameworks, default and teams", field="file")
    unknown = set(doc) - {"frameworks", "default", "teams"}
    if unknown:
        raise ValidationError(f"{where}: unknown key {sorted(unknown)[0]!r}", field="file")
    frameworks = {"bant": BANT_FRAMEWORK}
    raw = doc.get("frameworks") or []
    if not isinstance(raw, list):
        raise ValidationError(f"{where}.frameworks: a list of frameworks", field="frameworks")
    seen: set[str] = set()
    for i, item in enumerate(raw):
        framework = parse_framework(item, where=f"{where}.frameworks[{i}]")
        if framework.name in seen:
            raise ValidationError(
                f"{where}.frameworks[{i}]: {framework.name!r} is defined twice", field="name"
            )
        seen.add(framework.name)
        frameworks[framework.name] = framework
    default = doc.get("default", "bant")
    if default not in frameworks:
        raise ValidationError(f"{where}.default: unknown framework {default!r}", field="default")
    teams = doc.get("teams") or {}
    if not isinstance(teams, dict):
        raise ValidationError(f"{where}.teams: a mapping of team name to framework", field="teams")
    for team, name in teams.items():
        if name not in frameworks:
            raise ValidationError(f"{where}.teams.{team}: unknown framework {name!r}", field="teams")
    return QualificationSetup(frameworks, str(default), {str(k): str(v) for k, v in teams.items()})
