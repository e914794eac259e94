"""The scoring model (DOMAIN.md R5, R7, R15, R22): fit against the ICP, engagement with decay, grades.

A model is data (YAML, validated here, stored with its versions). Two explainable dimensions:

* **fit**: rules on lead fields, account fields and custom properties give points, capped per group;
  hard exclusions (a competitor, students, a country not served) force the lowest grade and flag the lead
  for disqualification. Bands turn the fit score into a grade ``A`` (best) .. ``D``.
* **engagement**: points per activity (type, optionally filtered by source, campaign, content or an
  activity property), once-only or repeatable, capped per group, each rule decaying either exponentially
  (a half-life, default 30 days) or by a window (only the last N days count). Bands turn the score into
  a level ``1`` (most engaged) .. ``4``.

The priority combines both, ``A1`` being the best. MQL criteria are pairs of minimum grade and level
("at least B and at least 2" means grade A or B and level 1 or 2), plus activity rules that qualify on
their own (a demo request).

Decay is evaluated *as of* a time. Each repeatable exponential rule keeps, per lead, its value at an
anchor time; a new activity folds in exactly (``v * 2**(-dt/h) + p``), and reading as of a later time
multiplies by ``2**(-dt/h)``. Window rules keep the hit times still inside their window. So a score shown
now is current without a nightly job, and folding activities one by one (incremental) or all at once
(batch) gives the same numbers.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Any, NamedTuple

from leadstage.domain.activities import BUILTIN_ACTIVITY_TYPES
from leadstage.domain.errors import ValidationError

FIT_GRADES = ("A", "B", "C", "D")
ENGAGEMENT_LEVELS = (1, 2, 3, 4)
MQL_KEYS = ("fit", "engagement", "predictive_decile", "predictive_score")
DEFAULT_HALF_LIFE_DAYS = 30.0
SECONDS_PER_DAY = 86_400.0

#: Lead fields a fit rule may name with ``field:`` (custom properties use ``property:``).
LEAD_FIELDS = {
    "email": "text",
    "email_domain": "text",
    "first_name": "text",
    "last_name": "text",
    "job_title": "text",
    "company": "text",
    "phone": "text",
    "first_source": "text",
    "latest_source": "text",
    "account.name": "text",
    "account.domain": "text",
    "account.industry": "text",
    "account.country": "text",
    "account.employees": "number",
    "account.annual_revenue": "number",
}
FIT_OPERATORS = ("equals", "in", "range", "regex", "exists", "missing")
WHERE_OPERATORS = ("equals", "in", "contains", "starts_with", "regex")
ACTIVITY_FIELDS = ("source", "campaign", "content")


# ---- the model ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A test on one value: ``op`` with ``value`` (``range`` uses ``minimum``/``maximum``, min inclusive)."""

    op: str
    value: Any = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None
    texts: frozenset[str] = frozenset()  # equals/in: the accepted values, folded (case and space)
    numbers: frozenset[float] = frozenset()  # equals/in: the accepted numeric values

    @staticmethod
    def of(op: str, value: Any = None, **kw: Any) -> Condition:
        """A condition with its accepted values folded once, so testing is a set lookup."""
        values = value if op == "in" else (value,) if op == "equals" else ()
        texts = frozenset(
            str(v).strip().lower() for v in values if not isinstance(v, int | float) or isinstance(v, bool)
        )
        numbers = frozenset(
            float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
        )
        return Condition(op, value, texts=texts, numbers=numbers, **kw)

    def test(self, actual: Any) -> bool:
        if actual is None or actual == "":
            return self.op == "missing"
        op = self.op
        if op == "exists":
            return True
        if op == "missing":
            return False
        if op in ("equals", "in"):
            if actual.__class__ is str:
                if actual.strip().lower() in self.texts:
                    return True
                return bool(self.numbers) and _number(actual) in self.numbers
            if isinstance(actual, bool):
                return str(actual).lower() in self.texts
            if isinstance(actual, int | float):
                return float(actual) in self.numbers or str(actual).lower() in self.texts
            return str(actual).strip().lower() in self.texts
        if self.op == "range":
            number = _number(actual)
            if number is None:
                return False
            return (self.minimum is None or number >= self.minimum) and (
                self.maximum is None or number < self.maximum
            )
        if self.op == "contains":
            return str(self.value).lower() in str(actual).lower()
        if self.op == "starts_with":
            return str(actual).lower().startswith(str(self.value).lower())
        if self.op == "regex":
            assert self.pattern is not None
            return self.pattern.search(str(actual)) is not None
        raise AssertionError(self.op)

    def describe(self) -> str:
        if self.op in ("exists", "missing"):
            return self.op
        if self.op == "range":
            low = "" if self.minimum is None else f"{self.minimum:g} <= "
            high = "" if self.maximum is None else f" < {self.maximum:g}"
            return f"{low}value{high}"
        return f"{self.op} {self.value!r}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        number = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class FitRule:
    name: str
    subject: str  # a lead field, or "property:NAME"
    condition: Condition
    points: float
    group: str | None = None


@dataclass(frozen=True)
class Exclusion:
    name: str
    subject: str
    condition: Condition
    reason: str  # the disqualification reason code it suggests


@dataclass(frozen=True)
class Decay:
    kind: str  # "half_life", "window" or "none"
    days: float = 0.0

    def factor(self, elapsed_seconds: float) -> float:
        if self.kind != "half_life":
            return 1.0
        return float(2.0 ** (-max(0.0, elapsed_seconds) / (self.days * SECONDS_PER_DAY)))

    def describe(self) -> str:
        if self.kind == "half_life":
            return f"half-life {self.days:g} days"
        if self.kind == "window":
            return f"last {self.days:g} days"
        return "no decay"


@dataclass(frozen=True)
class EngagementRule:
    name: str
    activity_type: str
    where: tuple[tuple[str, Condition], ...]
    points: float
    repeat: bool
    decay: Decay
    group: str | None = None

    def matches(self, activity: ActivityFacts) -> bool:
        if activity.type != self.activity_type:
            return False
        for key, condition in self.where:
            value = getattr(activity, key) if key in ACTIVITY_FIELDS else activity.properties.get(key)
            if not condition.test(value):
                return False
        return True


@dataclass(frozen=True)
class Band:
    label: str
    minimum: float | None  # inclusive
    maximum: float | None  # exclusive

    def holds(self, score: float) -> bool:
        return (self.minimum is None or score >= self.minimum) and (
            self.maximum is None or score < self.maximum
        )


class Predictive(NamedTuple):
    """A lead's stored predictive score: the calibrated probability and its decile (1 = the top tenth)."""

    score: float
    decile: int


@dataclass(frozen=True)
class MqlCriterion:
    """Conditions that all hold for an MQL: a fit grade, an engagement level, and the predictive model's
    decile or probability (each optional; at least one). A lead without a predictive score never meets a
    criterion with a predictive condition."""

    min_grade: str | None
    min_level: int | None
    max_decile: int | None = None
    min_probability: float | None = None

    @property
    def name(self) -> str:
        parts = []
        if self.min_grade is not None:
            parts.append(f"fit at least {self.min_grade}")
        if self.min_level is not None:
            parts.append(f"engagement at least {self.min_level}")
        if self.max_decile is not None:
            parts.append(f"predictive decile at most {self.max_decile}")
        if self.min_probability is not None:
            parts.append(f"predictive score at least {self.min_probability:g}")
        return " and ".join(parts)

    @property
    def predictive(self) -> bool:
        return self.max_decile is not None or self.min_probability is not None

    def met(self, grade: str, level: int, predictive: Predictive | None = None) -> bool:
        if self.min_grade is not None and FIT_GRADES.index(grade) > FIT_GRADES.index(self.min_grade):
            return False
        if self.min_level is not None and level > self.min_level:
            return False
        if self.predictive:
            if predictive is None:
                return False
            if self.max_decile is not None and predictive.decile > self.max_decile:
                return False
            if self.min_probability is not None and predictive.score < self.min_probability:
                return False
        return True


@dataclass(frozen=True)
class ScoringModel:
    name: str
    icp_name: str
    icp_version: str
    fit_rules: tuple[FitRule, ...]
    exclusions: tuple[Exclusion, ...]
    fit_caps: Mapping[str, float]
    engagement_rules: tuple[EngagementRule, ...]
    engagement_caps: Mapping[str, float]
    fit_bands: tuple[Band, ...]
    engagement_bands: tuple[Band, ...]
    mql_criteria: tuple[MqlCriterion, ...]
    qualifying_rules: tuple[str, ...]  # engagement rule names that qualify a lead on their own
    warnings: tuple[str, ...] = ()

    @cached_property
    def predictive_criteria(self) -> tuple[MqlCriterion, ...]:
        """The MQL criteria that read the predictive score."""
        return tuple(c for c in self.mql_criteria if c.predictive)

    @cached_property
    def fit_groups(self) -> dict[str, str | None]:
        return {r.name: r.group for r in self.fit_rules}

    @cached_property
    def engagement_groups(self) -> dict[str, str | None]:
        return {r.name: r.group for r in self.engagement_rules}

    @cached_property
    def fit_subjects(self) -> tuple[str, ...]:
        """Every fact a fit rule or exclusion looks at: equal subjects give equal fit results."""
        return tuple(
            dict.fromkeys([r.subject for r in self.fit_rules] + [e.subject for e in self.exclusions])
        )

    @cached_property
    def engagement_by_name(self) -> dict[str, EngagementRule]:
        return {r.name: r for r in self.engagement_rules}

    @cached_property
    def matcher(self) -> RuleMatcher:
        """Which rules an activity matches, remembered (see :class:`RuleMatcher`)."""
        return RuleMatcher(self)

    @cached_property
    def group_plan(self) -> GroupPlan:
        """How batch scoring reads this model's activities as aggregates."""
        return group_plan(self)

    @cached_property
    def score_terms(self) -> tuple[tuple[str, EngagementRule, bool, float], ...]:
        """(name, rule, exponential decay, half-life in seconds) per engagement rule, in model order."""
        return tuple(
            (r.name, r, r.decay.kind == "half_life", r.decay.days * SECONDS_PER_DAY)
            for r in self.engagement_rules
        )

    @cached_property
    def rules_by_type(self) -> dict[str, tuple[EngagementRule, ...]]:
        by_type: dict[str, list[EngagementRule]] = {}
        for rule in self.engagement_rules:
            by_type.setdefault(rule.activity_type, []).append(rule)
        return {k: tuple(v) for k, v in by_type.items()}

    def rules_for(self, activity_type: str) -> list[EngagementRule]:
        return [r for r in self.engagement_rules if r.activity_type == activity_type]

    @property
    def property_names(self) -> set[str]:
        subjects = [r.subject for r in self.fit_rules] + [e.subject for e in self.exclusions]
        return {s.split(":", 1)[1] for s in subjects if s.startswith("property:")}


# ---- validation ---------------------------------------------------------------------------------------

Locate = Callable[[tuple[str | int, ...]], int | None]


class _Checker:
    def __init__(self, locate: Locate, known_properties: Mapping[str, str] | None) -> None:
        self.locate = locate
        self.known_properties = known_properties
        self.warnings: list[str] = []

    def fail(self, path: tuple[str | int, ...], message: str) -> ValidationError:
        line = self.locate(path)
        where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
        prefix = f"line {line}: " if line else ""
        return ValidationError(f"{prefix}{where or 'model'}: {message}", field=where or None)

    def mapping(
        self, value: Any, path: tuple[str | int, ...], allowed: Iterable[Any], required: Iterable[str] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a mapping, got {type(value).__name__}")
        allowed_set = set(allowed)
        for key in value:
            if key not in allowed_set:
                raise self.fail(
                    (*path, str(key)), f"unknown key {key!r}; allowed: {', '.join(sorted(allowed_set))}"
                )
        for key in required:
            if key not in value:
                raise self.fail(path, f"missing required key {key!r}")
        return dict(value)

    def number(self, value: Any, path: tuple[str | int, ...], *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(path, f"expected a number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(path, f"must be greater than zero, got {value!r}")
        return float(value)

    def name(self, value: Any, path: tuple[str | int, ...]) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_ .:-]{0,119}", value):
            raise self.fail(path, f"a rule name is 1-120 letters, digits, spaces or _ . : -, got {value!r}")
        return value

    def condition(
        self, raw: Mapping[str, Any], path: tuple[str | int, ...], subject_type: str | None
    ) -> Condition:
        op = raw.get("op")
        if op not in FIT_OPERATORS:
            raise self.fail((*path, "op"), f"unknown operator {op!r}; known: {', '.join(FIT_OPERATORS)}")
        value = raw.get("value")
        if op in ("exists", "missing"):
            if "value" in raw:
                raise self.fail((*path, "value"), f"{op} takes no value")
            return Condition(op)
        if op == "range":
            if "value" in raw:
                raise self.fail((*path, "value"), "range takes min and/or max, not value")
            if "min" not in raw and "max" not in raw:
                raise self.fail(path, "range needs min and/or max")
            if subject_type == "text":
                raise self.fail((*path, "op"), "range compares numbers, but this field holds text")
            low = self.number(raw["min"], (*path, "min")) if "min" in raw else None
            high = self.number(raw["max"], (*path, "max")) if "max" in raw else None
            if low is not None and high is not None and low >= high:
                raise self.fail((*path, "max"), f"max ({high:g}) must be greater than min ({low:g})")
            return Condition(op, minimum=low, maximum=high)
        if "min" in raw or "max" in raw:
            raise self.fail(path, f"{op} takes value, not min/max")
        if value is None:
            raise self.fail(path, f"{op} needs a value")
        if op == "in":
            if not isinstance(value, list) or not value or any(isinstance(v, dict | list) for v in value):
                raise self.fail((*path, "value"), "in needs a non-empty list of values")
            if subject_type == "number" and any(_number(v) is None for v in value):
                raise self.fail((*path, "value"), "this field holds numbers, but the list has text")
            return Condition.of(op, value=tuple(value))
        if isinstance(value, dict | list):
            raise self.fail((*path, "value"), f"{op} needs a single value, got {type(value).__name__}")
        if op == "regex":
            if not isinstance(value, str):
                raise self.fail((*path, "value"), "regex needs a text pattern")
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise self.fail((*path, "value"), f"invalid regular expression: {exc}") from None
            return Condition(op, value=value, pattern=pattern)
        if subject_type == "number" and _number(value) is None:
            raise self.fail((*path, "value"), f"this field holds numbers, but the value is {value!r}")
        return Condition.of(op, value=value)

    def subject(self, raw: Mapping[str, Any], path: tuple[str | int, ...]) -> tuple[str, str | None]:
        if ("field" in raw) == ("property" in raw):
            raise self.fail(
                path, "name exactly one of field (a lead or account field) or property (a custom property)"
            )
        if "field" in raw:
            name = raw["field"]
            if name not in LEAD_FIELDS:
                raise self.fail((*path, "field"), f"unknown field {name!r}; known: {', '.join(LEAD_FIELDS)}")
            return str(name), LEAD_FIELDS[name]
        name = raw["property"]
        if not isinstance(name, str) or not name:
            raise self.fail((*path, "property"), "a property name is needed")
        kind = None
        if self.known_properties is not None:
            if name not in self.known_properties:
                self.warnings.append(f"property {name!r} ({'.'.join(map(str, path))}) is held by no lead yet")
            else:
                kind = (
                    "text"
                    if self.known_properties[name] == "string"
                    else "number"
                    if self.known_properties[name] in ("integer", "number")
                    else None
                )
        return f"property:{name}", kind

    def caps(self, raw: Any, path: tuple[str | int, ...]) -> dict[str, float]:
        if raw is None:
            return {}
        groups = self.mapping(raw, path, raw.keys() if isinstance(raw, Mapping) else ())
        caps: dict[str, float] = {}
        for name, spec in groups.items():
            spec_map = self.mapping(spec, (*path, name), ("cap",), ("cap",))
            caps[str(name)] = self.number(spec_map["cap"], (*path, name, "cap"), positive=True)
        return caps

    def bands(self, raw: Any, path: tuple[str | int, ...], labels: Sequence[str | int]) -> tuple[Band, ...]:
        table = self.mapping(raw, path, [str(x) for x in labels] + [x for x in labels if isinstance(x, int)])
        found = {str(k): v for k, v in table.items()}
        missing = [str(x) for x in labels if str(x) not in found]
        if missing:
            raise self.fail(
                path,
                f"missing band(s) {', '.join(missing)}: every one of {', '.join(map(str, labels))} "
                "needs a band",
            )
        bands = []
        for label in labels:
            key: str | int = label if label in table else str(label)
            spec = self.mapping(found[str(label)], (*path, key), ("min", "max"))
            low = self.number(spec["min"], (*path, key, "min")) if "min" in spec else None
            high = self.number(spec["max"], (*path, key, "max")) if "max" in spec else None
            if low is not None and high is not None and low >= high:
                raise self.fail((*path, key), f"band {label}: max must be greater than min")
            bands.append(Band(str(label), low, high))
        ordered = sorted(bands, key=lambda b: -math.inf if b.minimum is None else b.minimum)
        if ordered[0].minimum is not None:
            raise self.fail(
                path,
                f"band {ordered[0].label} must have no min (scores below "
                f"{ordered[0].minimum:g} would have no band)",
            )
        if ordered[-1].maximum is not None:
            raise self.fail(
                path,
                f"band {ordered[-1].label} must have no max (scores from "
                f"{ordered[-1].maximum:g} up would have no band)",
            )
        for below, above in itertools.pairwise(ordered):
            if below.maximum is None or above.minimum is None or below.maximum != above.minimum:
                problem = (
                    "overlap"
                    if (
                        below.maximum is None or (above.minimum is not None and below.maximum > above.minimum)
                    )
                    else "leave a gap"
                )
                raise self.fail(
                    path,
                    f"bands {below.label} and {above.label} {problem}: {below.label} ends at "
                    f"{_fmt(below.maximum)}, {above.label} starts at {_fmt(above.minimum)}",
                )
        return tuple(bands)


def _fmt(value: float | None) -> str:
    return "infinity" if value is None else f"{value:g}"


TOP_KEYS = ("name", "fit", "engagement", "grades", "mql")


def parse_model(
    data: Any,
    *,
    locate: Locate | None = None,
    known_properties: Mapping[str, str] | None = None,
    activity_types: Iterable[str] = BUILTIN_ACTIVITY_TYPES,
) -> ScoringModel:
    """Validate a parsed YAML document into a model; errors name the line and key path."""
    check = _Checker(locate or (lambda _path: None), known_properties)
    if data is None or (isinstance(data, Mapping) and not data):
        raise check.fail(
            (), "the model is empty: it needs fit and/or engagement rules, grades and mql criteria"
        )
    top = check.mapping(data, (), TOP_KEYS, ("grades", "mql"))
    names: dict[str, tuple[str | int, ...]] = {}

    def claim(name: str, path: tuple[str | int, ...]) -> str:
        if name in names:
            first = names[name]
            raise check.fail(path, f"duplicate rule name {name!r} (first used at line {check.locate(first)})")
        names[name] = path
        return name

    fit_raw = check.mapping(top.get("fit") or {}, ("fit",), ("icp", "groups", "rules", "exclusions"))
    icp = check.mapping(
        fit_raw.get("icp") or {"name": "ICP", "version": "1"},
        ("fit", "icp"),
        ("name", "version", "description"),
    )
    fit_caps = check.caps(fit_raw.get("groups"), ("fit", "groups"))
    fit_rules: list[FitRule] = []
    for i, raw in enumerate(_list(check, fit_raw.get("rules"), ("fit", "rules"))):
        path = ("fit", "rules", i)
        spec = check.mapping(
            raw,
            path,
            ("name", "field", "property", "op", "value", "min", "max", "points", "group"),
            ("name", "op", "points"),
        )
        name = claim(check.name(spec["name"], (*path, "name")), (*path, "name"))
        subject, kind = check.subject(spec, path)
        group = _group(check, spec.get("group"), fit_caps, (*path, "group"))
        fit_rules.append(
            FitRule(
                name,
                subject,
                check.condition(spec, path, kind),
                check.number(spec["points"], (*path, "points")),
                group,
            )
        )
    exclusions: list[Exclusion] = []
    for i, raw in enumerate(_list(check, fit_raw.get("exclusions"), ("fit", "exclusions"))):
        path = ("fit", "exclusions", i)
        spec = check.mapping(
            raw, path, ("name", "field", "property", "op", "value", "min", "max", "reason"), ("name", "op")
        )
        name = claim(check.name(spec["name"], (*path, "name")), (*path, "name"))
        subject, kind = check.subject(spec, path)
        reason = str(spec.get("reason") or "not_icp")
        exclusions.append(Exclusion(name, subject, check.condition(spec, path, kind), reason))

    eng_raw = check.mapping(top.get("engagement") or {}, ("engagement",), ("groups", "rules"))
    eng_caps = check.caps(eng_raw.get("groups"), ("engagement", "groups"))
    known_types = set(activity_types)
    engagement_rules: list[EngagementRule] = []
    qualifying: list[str] = []
    for i, raw in enumerate(_list(check, eng_raw.get("rules"), ("engagement", "rules"))):
        path = ("engagement", "rules", i)
        spec = check.mapping(
            raw,
            path,
            ("name", "activity", "where", "points", "repeat", "decay", "group", "qualifies"),
            ("name", "activity", "points"),
        )
        name = claim(check.name(spec["name"], (*path, "name")), (*path, "name"))
        activity = spec["activity"]
        if activity not in known_types:
            raise check.fail((*path, "activity"), f"unknown activity type {activity!r}")
        where: list[tuple[str, Condition]] = []
        if spec.get("where") is not None:
            where_map = check.mapping(
                spec["where"],
                (*path, "where"),
                spec["where"].keys() if isinstance(spec["where"], Mapping) else (),
            )
            for key, test in where_map.items():
                wpath = (*path, "where", str(key))
                if isinstance(test, Mapping):
                    tmap = check.mapping(test, wpath, WHERE_OPERATORS)
                    if len(tmap) != 1:
                        raise check.fail(
                            wpath, f"one operator per field, one of {', '.join(WHERE_OPERATORS)}"
                        )
                    op, value = next(iter(tmap.items()))
                    where.append((str(key), _where_condition(check, op, value, (*wpath, op))))
                else:
                    where.append((str(key), _where_condition(check, "equals", test, wpath)))
        repeat = spec.get("repeat", True)
        if not isinstance(repeat, bool):
            raise check.fail((*path, "repeat"), f"repeat is true or false, got {repeat!r}")
        decay = _decay(check, spec.get("decay"), (*path, "decay"))
        group = _group(check, spec.get("group"), eng_caps, (*path, "group"))
        qualifies = spec.get("qualifies", False)
        if not isinstance(qualifies, bool):
            raise check.fail((*path, "qualifies"), f"qualifies is true or false, got {qualifies!r}")
        if qualifies:
            qualifying.append(name)
        engagement_rules.append(
            EngagementRule(
                name,
                str(activity),
                tuple(where),
                check.number(spec["points"], (*path, "points")),
                repeat,
                decay,
                group,
            )
        )
    if not fit_rules and not engagement_rules:
        raise check.fail((), "the model has no fit rules and no engagement rules")

    grades = check.mapping(top["grades"], ("grades",), ("fit", "engagement"), ("fit", "engagement"))
    fit_bands = check.bands(grades["fit"], ("grades", "fit"), FIT_GRADES)
    engagement_bands = check.bands(grades["engagement"], ("grades", "engagement"), ENGAGEMENT_LEVELS)

    mql = check.mapping(top["mql"], ("mql",), ("when",), ("when",))
    criteria = []
    for i, raw in enumerate(_list(check, mql["when"], ("mql", "when"))):
        path = ("mql", "when", i)
        spec = check.mapping(raw, path, MQL_KEYS)
        if not spec:
            raise check.fail(path, f"a criterion needs at least one of {', '.join(MQL_KEYS)}")
        grade = level = decile = probability = None
        if "fit" in spec:
            grade = str(spec["fit"])
            if grade not in FIT_GRADES:
                raise check.fail(
                    (*path, "fit"), f"fit is a grade {', '.join(FIT_GRADES)}, got {spec['fit']!r}"
                )
        if "engagement" in spec:
            level = spec["engagement"]
            if isinstance(level, bool) or level not in ENGAGEMENT_LEVELS:
                raise check.fail((*path, "engagement"), f"engagement is a level 1-4, got {level!r}")
            level = int(level)
        if "predictive_decile" in spec:
            decile = spec["predictive_decile"]
            if isinstance(decile, bool) or decile not in range(1, 11):
                raise check.fail(
                    (*path, "predictive_decile"),
                    f"predictive_decile is a decile 1-10 (1 = the top tenth), got {decile!r}",
                )
        if "predictive_score" in spec:
            probability = check.number(spec["predictive_score"], (*path, "predictive_score"))
            if not 0.0 < probability <= 1.0:
                raise check.fail(
                    (*path, "predictive_score"),
                    f"predictive_score is a probability above 0 and at most 1, got {probability!r}",
                )
        criteria.append(MqlCriterion(grade, level, decile, probability))
    if not criteria and not qualifying:
        raise check.fail(
            ("mql", "when"), "name at least one criterion (or an engagement rule with qualifies: true)"
        )
    return ScoringModel(
        name=str(top.get("name") or "scoring model"),
        icp_name=str(icp.get("name") or "ICP"),
        icp_version=str(icp.get("version") or "1"),
        fit_rules=tuple(fit_rules),
        exclusions=tuple(exclusions),
        fit_caps=fit_caps,
        engagement_rules=tuple(engagement_rules),
        engagement_caps=eng_caps,
        fit_bands=fit_bands,
        engagement_bands=engagement_bands,
        mql_criteria=tuple(criteria),
        qualifying_rules=tuple(qualifying),
        warnings=tuple(check.warnings),
    )


def _list(check: _Checker, value: Any, path: tuple[str | int, ...]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise check.fail(path, f"expected a list, got {type(value).__name__}")
    return value


def _group(check: _Checker, value: Any, caps: Mapping[str, float], path: tuple[str | int, ...]) -> str | None:
    if value is None:
        return None
    if value not in caps:
        raise check.fail(
            path,
            f"unknown group {value!r}; define it under groups with a cap "
            f"(known: {', '.join(caps) or 'none'})",
        )
    return str(value)


def _where_condition(check: _Checker, op: str, value: Any, path: tuple[str | int, ...]) -> Condition:
    if op == "in":
        if not isinstance(value, list) or not value:
            raise check.fail(path, "in needs a non-empty list")
        return Condition.of("in", value=tuple(value))
    if isinstance(value, dict | list) or value is None:
        raise check.fail(path, f"{op} needs a single value")
    if op == "regex":
        try:
            return Condition("regex", value=value, pattern=re.compile(str(value)))
        except re.error as exc:
            raise check.fail(path, f"invalid regular expression: {exc}") from None
    return Condition.of(op, value=value)


def _decay(check: _Checker, raw: Any, path: tuple[str | int, ...]) -> Decay:
    if raw is None:
        return Decay("half_life", DEFAULT_HALF_LIFE_DAYS)
    if raw == "none":
        return Decay("none")
    spec = check.mapping(raw, path, ("half_life_days", "window_days"))
    if len(spec) != 1:
        raise check.fail(path, "decay is one of: half_life_days: N, window_days: N, or none")
    kind, value = next(iter(spec.items()))
    days = check.number(value, (*path, kind), positive=True)
    return Decay("half_life" if kind == "half_life_days" else "window", days)


# ---- evaluation ---------------------------------------------------------------------------------------


_NO_PROPERTIES: Mapping[str, Any] = MappingProxyType({})


class ActivityFacts(NamedTuple):
    """An activity as scoring sees it; ``ts`` is its time in seconds since the Unix epoch (UTC).

    A named tuple: millions are built on batch paths, and a tuple is several times cheaper than a class.
    """

    type: str
    ts: float
    source: str | None = None
    campaign: str | None = None
    content: str | None = None
    properties: Mapping[str, Any] = _NO_PROPERTIES


@dataclass(frozen=True)
class Contribution:
    rule: str
    points: float
    decayed_points: float | None = None


@dataclass(frozen=True)
class FitResult:
    score: float
    grade: str
    contributions: tuple[Contribution, ...]
    excluded_by: str | None = None
    exclusion_reason: str | None = None


def _subject_value(subject: str, facts: Mapping[str, Any]) -> Any:
    if subject.startswith("property:"):
        return facts.get("properties", {}).get(subject[9:])
    return facts.get(subject)


def _capped(
    contributions: list[Contribution],
    groups: Mapping[str, str | None],
    caps: Mapping[str, float],
    *,
    decayed: bool,
) -> list[Contribution]:
    """Append one negative line per group whose total exceeds its cap, so lines add up to the score."""
    totals: dict[str, float] = {}
    for c in contributions:
        group = groups.get(c.rule)
        if group is not None:
            totals[group] = totals.get(group, 0.0) + (
                c.decayed_points if decayed and c.decayed_points is not None else c.points
            )
    out = list(contributions)
    for group, total in totals.items():
        cap = caps[group]
        if total > cap:
            excess = cap - total
            out.append(Contribution(f"cap {group} ({cap:g})", excess, excess if decayed else None))
    return out


def evaluate_fit(model: ScoringModel, facts: Mapping[str, Any]) -> FitResult:
    """Fit score, grade and the rule lines that make it up (they add up exactly to the score)."""
    lines = [
        Contribution(r.name, r.points)
        for r in model.fit_rules
        if r.condition.test(_subject_value(r.subject, facts))
    ]
    lines = _capped(lines, model.fit_groups, model.fit_caps, decayed=False)
    score = sum(c.points for c in lines)
    for exclusion in model.exclusions:
        if exclusion.condition.test(_subject_value(exclusion.subject, facts)):
            return FitResult(score, FIT_GRADES[-1], tuple(lines), exclusion.name, exclusion.reason)
    return FitResult(score, band_of(model.fit_bands, score), tuple(lines))


class FitEvaluator:
    """``evaluate_fit`` with results remembered by what the rules say of a lead's values.

    Each fact a rule or exclusion looks at is tested once per distinct value (by type and ``repr``, so
    ``1``, ``1.0`` and ``True`` stay apart); the outcomes of all tests pick the remembered result. Leads
    share outcomes far more than values (an employee count is one of thousands of numbers, but only
    inside or outside a range).
    """

    def __init__(self, model: ScoringModel, max_entries: int = 200_000) -> None:
        self.model = model
        self.max_entries = max_entries
        conditions = [(r.subject, r.condition) for r in model.fit_rules] + [
            (e.subject, e.condition) for e in model.exclusions
        ]
        self._subjects: list[tuple[str, str | None, tuple[Condition, ...], dict[Any, tuple[bool, ...]]]] = [
            (
                subject,
                subject[9:] if subject.startswith("property:") else None,
                tuple(c for s, c in conditions if s == subject),
                {},
            )
            for subject in model.fit_subjects
        ]
        self._cache: dict[tuple[Any, ...], FitResult] = {}

    def __call__(self, facts: Mapping[str, Any]) -> FitResult:
        outcomes = []
        properties = facts.get("properties", _NO_PROPERTIES)
        for subject, prop, conditions, memo in self._subjects:
            value = properties.get(prop) if prop is not None else facts.get(subject)
            key = value if value.__class__ is str else (value.__class__, repr(value))
            found = memo.get(key)
            if found is None:
                if len(memo) >= self.max_entries:
                    memo.clear()
                found = memo[key] = tuple(c.test(value) for c in conditions)
            outcomes.append(found)
        signature = tuple(outcomes)
        result = self._cache.get(signature)
        if result is None:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            result = self._cache[signature] = evaluate_fit(self.model, facts)
        return result


def band_of(bands: Sequence[Band], score: float) -> str:
    for band in bands:
        if band.holds(score):
            return band.label
    raise AssertionError(f"bands do not cover {score}")


class RuleState(NamedTuple):
    """What a lead's engagement rule needs to be read as of any later time (times: Unix seconds, UTC).

    A named tuple: batch scoring builds millions of them.
    """

    value: float  # repeatable exponential rules: the decayed value at ``anchor``; no decay: points so far
    anchor: float
    hits: int
    last: float
    times: tuple[float, ...] = ()  # window rules: hit times still inside the window

    def to_json(self) -> list[Any]:
        return [self.value, self.anchor, self.hits, self.last, list(self.times)]

    @staticmethod
    def from_json(raw: Sequence[Any]) -> RuleState:
        return RuleState(float(raw[0]), float(raw[1]), int(raw[2]), float(raw[3]), tuple(raw[4]))


def fold(rule: EngagementRule, state: RuleState | None, ts: float) -> RuleState:
    """The rule's state after one more matching activity at ``ts`` (in any order of arrival)."""
    p = rule.points
    decay = rule.decay
    if state is None:
        first: tuple[float, ...] = (ts,) if decay.kind == "window" else ()
        return RuleState(p if rule.repeat else 0.0, ts, 1, ts, first)
    hits, last = state.hits + 1, max(state.last, ts)
    if decay.kind == "window":
        horizon = last - decay.days * SECONDS_PER_DAY
        times = tuple(sorted(t for t in (*state.times, ts) if t > horizon))
        return RuleState(0.0, last, hits, last, times)
    if not rule.repeat:
        return RuleState(0.0, last, hits, last)
    if decay.kind == "none":
        return RuleState(state.value + p, last, hits, last)
    if ts >= state.anchor:
        return RuleState(state.value * decay.factor(ts - state.anchor) + p, ts, hits, last)
    return RuleState(state.value + p * decay.factor(state.anchor - ts), state.anchor, hits, last)


def rule_value(rule: EngagementRule, state: RuleState, as_of: float) -> float:
    """The points a rule gives as of ``as_of`` (Unix seconds; decay applied). Never reads a clock."""
    decay = rule.decay
    if decay.kind == "window":
        horizon = as_of - decay.days * SECONDS_PER_DAY
        inside = sum(1 for t in state.times if horizon < t <= as_of)
        return rule.points * (inside if rule.repeat else min(1, inside))
    if not rule.repeat:
        return rule.points * decay.factor(as_of - state.last)
    if decay.kind == "none":
        return state.value
    return state.value * decay.factor(as_of - state.anchor)


@dataclass(frozen=True)
class EngagementResult:
    score: float
    level: int
    contributions: tuple[Contribution, ...]
    qualified_by: tuple[str, ...] = ()


def evaluate_engagement(
    model: ScoringModel, states: Mapping[str, RuleState], as_of: datetime | float
) -> EngagementResult:
    """Engagement score as of a time, from the per-rule states; lines add up exactly to the score."""
    at = as_of.timestamp() if isinstance(as_of, datetime) else as_of
    lines = []
    for rule in model.engagement_rules:
        if rule.name not in states:
            continue
        state = states[rule.name]
        undecayed = rule.points * (state.hits if rule.repeat else 1)
        if rule.decay.kind == "window":
            undecayed = rule.points * (len(state.times) if rule.repeat else 1)
        lines.append(Contribution(rule.name, undecayed, rule_value(rule, state, at)))
    lines = _capped(lines, model.engagement_groups, model.engagement_caps, decayed=True)
    score = sum(c.decayed_points or 0.0 for c in lines)
    qualified = qualifying_now(model, states, at)
    return EngagementResult(score, int(band_of(model.engagement_bands, score)), tuple(lines), qualified)


def qualifying_now(model: ScoringModel, states: Mapping[str, RuleState], at: float) -> tuple[str, ...]:
    """The qualifying rules that qualify a lead at ``at``: while they still give points (a window rule:
    while a hit is inside its window)."""
    by_name = model.engagement_by_name
    return tuple(
        name
        for name in model.qualifying_rules
        if name in states and rule_value(by_name[name], states[name], at) > 0
    )


def fold_all(
    model: ScoringModel, activities: Iterable[ActivityFacts], states: Mapping[str, RuleState] | None = None
) -> dict[str, RuleState]:
    """Fold activities into the per-rule states (batch: all of a lead's activities; incremental: new ones).

    The same as calling :func:`fold` for every matching rule of every activity in order, with the same
    arithmetic (so the same bits); states being folded are kept in lists and become ``RuleState`` once at
    the end, and which rules an activity matches is remembered by the values their filters read.
    """
    out = dict(states or {})
    matcher = model.matcher
    open_: dict[str, list[Any]] = {}
    for activity in activities:
        for rule, kind, repeat, p, h in matcher.matched(activity):
            name = rule.name
            ts = activity.ts
            acc = open_.get(name)
            if acc is None:
                state = out.get(name)
                if state is None:
                    open_[name] = [p if repeat else 0.0, ts, 1, ts, [ts] if kind == "window" else None]
                    continue
                acc = open_[name] = [state[0], state[1], state[2], state[3], list(state[4])]
            acc[2] += 1
            last = acc[3] = max(acc[3], ts)
            if kind == "window":
                horizon = last - h
                acc[4] = sorted(t for t in (*acc[4], ts) if t > horizon)
                acc[0], acc[1] = 0.0, last
            elif not repeat:
                acc[0], acc[1] = 0.0, last
            elif kind == "none":
                acc[0], acc[1] = acc[0] + p, last
            elif ts >= acc[1]:
                acc[0] = acc[0] * float(2.0 ** (-max(0.0, ts - acc[1]) / h)) + p
                acc[1] = ts
            else:
                acc[0] = acc[0] + p * float(2.0 ** (-max(0.0, acc[1] - ts) / h))
    for name, (value, anchor, hits, last, times) in open_.items():
        out[name] = RuleState(value, anchor, hits, last, tuple(times) if times else ())
    return out


StateTuple = tuple[float, float, int, float, tuple[float, ...]]
"""A :class:`RuleState`'s fields as a plain tuple (what crosses between processes cheaply)."""


def merge_states(
    model: ScoringModel, stored: Mapping[str, RuleState], folded: Mapping[str, StateTuple]
) -> dict[str, RuleState]:
    """The states :func:`fold_all` gives for ``stored`` and some new activities, from ``folded``, the
    states those activities give folded from nothing (so they can be folded elsewhere, before the stored
    states are read; a ``RuleState`` or its fields as a tuple). Hits, last hits and window times are the
    same as folding one by one; a repeatable rule's value is the same sum in another order (equal within
    rounding, exactly so for whole points).
    """
    out = dict(stored)
    rules = model.engagement_by_name
    for name, (value, anchor, new_hits, new_last, new_times) in folded.items():
        old = out.get(name)
        if old is None:
            out[name] = RuleState(value, anchor, new_hits, new_last, new_times)
            continue
        rule = rules[name]
        decay = rule.decay
        hits, last = old.hits + new_hits, max(old.last, new_last)
        if decay.kind == "window":
            horizon = last - decay.days * SECONDS_PER_DAY
            times = tuple(sorted(t for t in (*old.times, *new_times) if t > horizon))
            out[name] = RuleState(0.0, last, hits, last, times)
        elif not rule.repeat:
            out[name] = RuleState(0.0, last, hits, last)
        elif decay.kind == "none":
            out[name] = RuleState(old.value + value, last, hits, last)
        elif anchor >= old.anchor:  # the value at the later anchor: the earlier one decayed to it
            out[name] = RuleState(old.value * decay.factor(anchor - old.anchor) + value, anchor, hits, last)
        else:
            out[name] = RuleState(
                old.value + value * decay.factor(old.anchor - anchor), old.anchor, hits, last
            )
    return out


class RuleMatcher:
    """Which engagement rules an activity matches, remembered by its type and the values the rules'
    filters read (text as it is, other values by type and ``repr``: ``1``, ``1.0`` and ``True`` differ
    to a filter). Each match comes with what folding needs: (rule, decay kind, repeat, points, seconds
    (half-life or window))."""

    def __init__(self, model: ScoringModel, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._keys: dict[str, tuple[str, ...]] = {}
        self._rules: dict[str, tuple[EngagementRule, ...]] = {}
        for type_, rules in model.rules_by_type.items():
            self._rules[type_] = rules
            self._keys[type_] = tuple(dict.fromkeys(k for r in rules for k, _c in r.where))
        self._cache: dict[tuple[Any, ...], tuple[tuple[EngagementRule, str, bool, float, float], ...]] = {}

    def matched(self, activity: ActivityFacts) -> tuple[tuple[EngagementRule, str, bool, float, float], ...]:
        keys = self._keys.get(activity.type)
        if keys is None:
            return ()
        if keys:
            values = tuple(
                getattr(activity, k) if k in ACTIVITY_FIELDS else activity.properties.get(k) for k in keys
            )
            key: tuple[Any, ...] = (
                activity.type,
                *(v if v is None or v.__class__ is str else (v.__class__, repr(v)) for v in values),
            )
        else:
            key = (activity.type,)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            found = self._cache[key] = tuple(
                (r, r.decay.kind, r.repeat, r.points, r.decay.days * SECONDS_PER_DAY)
                for r in self._rules[activity.type]
                if r.matches(activity)
            )
        return found


# ---- batch: engagement from per-group aggregates --------------------------------------------------------

#: Property names SQL may read out of a JSON object (names every dialect's JSON path spells unescaped).
SQL_PATH_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ -]{0,119}")
#: Largest |(t - ref) / half-life| folded from sums of powers of two; beyond it a lead is folded one by one.
SAFE_EXPONENT = 900.0


@dataclass(frozen=True)
class GroupPlan:
    """How batch scoring reads a model's activities as aggregates instead of one by one.

    Activities of a type in ``types`` are grouped by lead, type and the values the type's rule filters
    look at (``keys``). Each group gives its count, its last time, and per half-life slot of the
    type (``half_lives``, seconds) the sum of ``2 ** ((t - ref) / h)`` over its activities for a reference
    time ``ref``. That is all a rule without a window needs: its hits and last hit add up, and a repeatable
    exponential rule's value at its last hit is ``p * sum * 2 ** ((ref - last) / h)``, the same number the
    one-by-one fold reaches (:class:`GroupFolder`). A window rule keeps its hit times, so the activities of
    a type with one (``timed``) are grouped by their time too. Types with a filter on a property name
    outside ``SQL_PATH_NAME`` are in ``raw_types``: folded one by one.
    """

    types: tuple[str, ...]
    keys: Mapping[str, tuple[str, ...]]
    half_lives: Mapping[str, tuple[float, ...]]
    raw_types: tuple[str, ...]
    timed: frozenset[str] = frozenset()

    @property
    def key_count(self) -> int:
        return max((len(k) for k in self.keys.values()), default=0)

    @property
    def slot_count(self) -> int:
        return max((len(h) for h in self.half_lives.values()), default=0)


class ActivityGroup(NamedTuple):
    """One group of a lead's activities (see :class:`GroupPlan`); ``keys`` in the plan's order for the type."""

    type: str
    keys: tuple[Any, ...]
    hits: int
    last: float
    sums: tuple[float | None, ...]


def group_plan(model: ScoringModel) -> GroupPlan:
    """The plan for reading ``model``'s activities as aggregates (see :class:`GroupPlan`)."""
    types: list[str] = []
    raw: list[str] = []
    keys: dict[str, tuple[str, ...]] = {}
    half_lives: dict[str, tuple[float, ...]] = {}
    timed: set[str] = set()
    for type_, rules in model.rules_by_type.items():
        names = tuple(dict.fromkeys(key for rule in rules for key, _c in rule.where))
        if any(k not in ACTIVITY_FIELDS and not SQL_PATH_NAME.fullmatch(k) for k in names):
            raw.append(type_)
            continue
        if any(r.decay.kind == "window" for r in rules):
            timed.add(type_)
        types.append(type_)
        keys[type_] = names
        half_lives[type_] = tuple(
            dict.fromkeys(
                r.decay.days * SECONDS_PER_DAY for r in rules if r.repeat and r.decay.kind == "half_life"
            )
        )
    return GroupPlan(tuple(types), keys, half_lives, tuple(raw), frozenset(timed))


class GroupFolder:
    """Per-rule states of a lead from its activity groups; which rules a group's key matches is remembered."""

    def __init__(self, model: ScoringModel, plan: GroupPlan, max_entries: int = 100_000) -> None:
        self.model = model
        self.plan = plan
        self.max_entries = max_entries
        self._rules = model.engagement_rules
        self._index = {r.name: i for i, r in enumerate(self._rules)}
        self._matches: dict[tuple[str, tuple[Any, ...]], tuple[tuple[int, int], ...]] = {}

    def _matched(self, type_: str, keys: tuple[Any, ...]) -> tuple[tuple[int, int], ...]:
        """(rule index, half-life slot, -1 or -2 for a window rule) of every rule of the type that the
        group's key matches."""
        # remembered by text values as they are and other values by type and repr, so that 1, 1.0, True,
        # 0.0 and -0.0 (equal as dict keys, not to a filter) stay apart and lists or objects can be keys
        if not keys or (len(keys) == 1 and (keys[0] is None or keys[0].__class__ is str)):
            key = (type_, keys)
        else:
            key = (
                type_,
                tuple(v if v is None or v.__class__ is str else (v.__class__, repr(v)) for v in keys),
            )
        found = self._matches.get(key)
        if found is None:
            if len(self._matches) >= self.max_entries:
                self._matches.clear()
            found = self._matches[key] = self._match(type_, keys)
        return found

    def _match(self, type_: str, keys: tuple[Any, ...]) -> tuple[tuple[int, int], ...]:
        fields: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        for name, value in zip(self.plan.keys[type_], keys, strict=True):
            if name in ACTIVITY_FIELDS:
                fields[name] = value
            elif value is not None:
                properties[name] = value
        facts = ActivityFacts(type_, 0.0, properties=properties, **fields)
        slots = self.plan.half_lives[type_]
        out = []
        for rule in self.model.rules_by_type[type_]:
            if rule.matches(facts):
                exponential = rule.repeat and rule.decay.kind == "half_life"
                slot = slots.index(rule.decay.days * SECONDS_PER_DAY) if exponential else -1
                out.append((self._index[rule.name], -2 if rule.decay.kind == "window" else slot))
        return tuple(out)

    def states(self, groups: Iterable[ActivityGroup], ref: float) -> dict[str, RuleState] | None:
        """The states :func:`fold_all` gives for the same activities (equal within rounding), or ``None``
        when a time is so far from ``ref`` that the sums would lose precision (fold those one by one)."""
        acc: dict[int, list[Any]] = {}
        for group in groups:
            for index, slot in self._matched(group.type, group.keys):
                total = group.sums[slot] if slot >= 0 else 0.0
                found = acc.get(index)
                if found is None:
                    acc[index] = [group.hits, group.last, total, [group] if slot == -2 else None]
                else:
                    found[0] += group.hits
                    if group.last > found[1]:
                        found[1] = group.last
                    found[2] += total
                    if slot == -2:  # a window rule: its groups give its hit times
                        found[3].append(group)
        out: dict[str, RuleState] = {}
        rules = self._rules
        for index in sorted(acc):
            rule = rules[index]
            hits, last, total, matched = acc[index]
            if rule.decay.kind == "window":  # (grouped by time: each group is `hits` hits at one time)
                horizon = last - rule.decay.days * SECONDS_PER_DAY
                times = sorted(t for g in matched if g.last > horizon for t in [g.last] * g.hits)
                value = rule.points if rule.repeat and hits == 1 else 0.0
                out[rule.name] = RuleState(value, last, hits, last, tuple(times))
            elif not rule.repeat:
                out[rule.name] = RuleState(0.0, last, hits, last)
            elif rule.decay.kind == "none":
                out[rule.name] = RuleState(rule.points * hits, last, hits, last)
            else:
                h = rule.decay.days * SECONDS_PER_DAY
                # every term of the sum is at most 2 ** ((last - ref) / h): with the last hit within the safe
                # range the sum is a normal number, and terms far older than it only round away
                if abs(last - ref) / h > SAFE_EXPONENT or total is None:
                    return None
                out[rule.name] = RuleState(rule.points * total * 2.0 ** ((ref - last) / h), last, hits, last)
        return out


def engagement_score(model: ScoringModel, states: Mapping[str, RuleState], at: float) -> float:
    """``evaluate_engagement(...).score`` without building the explanation lines (hot paths).

    The same arithmetic in the same order (rule lines in model order, then one excess line per capped
    group), so the score is bit-for-bit the same; a unit test holds the two equal.
    """
    score: float = 0
    groups: dict[str, float] = {}
    for name, rule, exponential, h in model.score_terms:
        state = states.get(name)
        if state is None:
            continue
        if exponential:  # rule_value and Decay.factor inlined: the same arithmetic
            if rule.repeat:
                value = state.value * float(2.0 ** (-max(0.0, at - state.anchor) / h))
            else:
                value = rule.points * float(2.0 ** (-max(0.0, at - state.last) / h))
        else:
            value = rule_value(rule, state, at)
        score += value or 0.0
        if rule.group is not None:
            groups[rule.group] = groups.get(rule.group, 0.0) + value
    for group, total in groups.items():
        cap = model.engagement_caps[group]
        if total > cap:
            score += cap - total
    return score


def engagement_summary(model: ScoringModel, states: Mapping[str, RuleState], at: float) -> EngagementResult:
    """``evaluate_engagement`` without the explanation lines: score, level and qualifying rules only."""
    score = engagement_score(model, states, at)
    qualified = qualifying_now(model, states, at) if model.qualifying_rules else ()
    return EngagementResult(score, int(band_of(model.engagement_bands, score)), (), qualified)


_JSON_KEYS: dict[str, str] = {}


def states_json(states: Mapping[str, RuleState]) -> str:
    """``json.dumps({name: state.to_json()}, separators=(",", ":"))``, written directly (a hot path)."""
    parts = []
    for name, (value, anchor, hits, last, times) in states.items():
        key = _JSON_KEYS.get(name)
        if key is None:
            if len(_JSON_KEYS) > 10_000:
                _JSON_KEYS.clear()
            key = _JSON_KEYS[name] = json.dumps(name)
        last_text = repr(last)
        anchor_text = last_text if anchor == last and last else repr(anchor)  # (mostly one time)
        part = f"{key}:[{value!r},{anchor_text},{hits!r},{last_text},[{','.join(map(repr, times))}]]"
        if hits.__class__ is not int or "n" in part[len(key) :]:  # inf, nan: JSON spells them otherwise
            return json.dumps({k: v.to_json() for k, v in states.items()}, separators=(",", ":"))
        parts.append(part)
    return "{" + ",".join(parts) + "}"


def priority(grade: str, level: int) -> str:
    return f"{grade}{level}"


def mql_reasons(
    model: ScoringModel, fit: FitResult, engagement: EngagementResult, predictive: Predictive | None = None
) -> list[str]:
    """The MQL criteria a lead meets (empty: not an MQL). Excluded leads never qualify."""
    if fit.excluded_by is not None:
        return []
    met = [c.name for c in model.mql_criteria if c.met(fit.grade, engagement.level, predictive)]
    met.extend(f"qualifying activity: {name}" for name in engagement.qualified_by)
    return met


def with_warnings(model: ScoringModel, warnings: Sequence[str]) -> ScoringModel:
    return replace(model, warnings=(*model.warnings, *warnings))
