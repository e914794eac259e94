"""Predictive scoring rules that need no numbers library (DOMAIN.md R21, R22).

What a predictive model may learn from, and how it speaks:

* **Labels** (:class:`LabelSpec`): a lead property and its positive value (``Converted`` = ``1``), or an
  outcome in the lifecycle (the lead reached ``customer`` within N days of becoming a lead).
* **Column kinds** (:func:`classify_column`): numeric, categorical or boolean; placeholders such as
  ``Select`` or ``N/A`` are missing; a mostly numeric column with text in it is refused, naming the column.
* **The leakage guard** (:func:`guard_columns`): identifiers (unique per lead, strictly sequential), fields
  that sales fill in after the fact (a configurable list of names), columns one feature of which predicts
  the label almost perfectly, and columns filled in almost only after a stage change are excluded, each with
  its reason; ``--include`` overrides all but the label itself.
* **Explanations** (:func:`describe_factor`): "Lead Source = Reference: +0.21".

Everything here is deterministic and pure: no clock, no randomness, no I/O.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from leadstage.domain.errors import RuleViolation, ValidationError

#: Names of fields that sales fill in after talking to the lead: they leak the outcome. Matched after
#: folding case, spaces, underscores and dashes; a name matches when it equals an entry or contains it as
#: a whole word sequence (``Lead Quality`` and ``lead_quality_v2`` both match ``lead quality``).
DEFAULT_SALES_ASSIGNED_FIELDS: tuple[str, ...] = (
    "tags",
    "lead quality",
    "lead status",
    "lead stage",
    "lead profile",
    "lead grade",
    "rating",
    "lead rating",
    "lost reason",
    "loss reason",
    "reason lost",
    "disqualification reason",
    "disqualified reason",
    "sales status",
    "sales stage",
    "deal stage",
    "deal status",
    "opportunity stage",
    "opportunity status",
    "opportunity amount",
    "deal amount",
    "closed date",
    "close date",
    "won date",
    "converted date",
    "sales notes",
    "sales owner",
    "bant",
)

#: Cell values that mean "no answer" (compared after folding case and spaces).
DEFAULT_MISSING_VALUES: frozenset[str] = frozenset(
    {"", "select", "select specialization", "n/a", "na", "nan", "null", "none", "-", "--", "?", "unknown"}
)

#: Default refusal thresholds: fewer labelled leads or positives than this and no model is trained.
MIN_LABELLED = 200
MIN_POSITIVES = 30

#: A single column whose out-of-the-box AUC reaches this predicts the label "almost perfectly".
NEAR_PERFECT_AUC = 0.95

_TRUE_WORDS = frozenset({"1", "1.0", "true", "yes", "y", "t"})
_FALSE_WORDS = frozenset({"0", "0.0", "false", "no", "n", "f"})
_FOLD = re.compile(r"[\s_\-.:/]+")


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class InsufficientData(RuleViolation):
    """Too few labelled leads or positives to learn anything trustworthy."""


class TamperedModel(ValidationError):
    """A stored model whose bytes no longer match the hash recorded when it was trained."""


@dataclass(frozen=True)
class LabelSpec:
    """What counts as a conversion: a property's value, or reaching a stage within a window."""

    property: str | None = None
    positive: str | None = None
    stage: str = "customer"
    window_days: int = 180

    def describe(self) -> str:
        if self.property is not None:
            return f"{self.property} = {self.positive}"
        return f"reached {self.stage} within {self.window_days} days of becoming a lead"

    def as_dict(self) -> dict[str, Any]:
        if self.property is not None:
            return {"kind": "property", "property": self.property, "positive": self.positive}
        return {"kind": "lifecycle", "stage": self.stage, "window_days": self.window_days}


@dataclass(frozen=True)
class Exclusion:
    name: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


@dataclass
class GuardResult:
    used: list[str]
    excluded: list[Exclusion]
    included_despite: list[Exclusion] = field(default_factory=list)


def fold_name(name: str) -> str:
    """``Lead_Quality `` -> ``lead quality``: how column names are compared."""
    return _FOLD.sub(" ", name.strip().lower()).strip()


def is_sales_assigned(name: str, fields: Iterable[str] = DEFAULT_SALES_ASSIGNED_FIELDS) -> str | None:
    """The sales-assigned entry this column name matches, or None."""
    folded = f" {fold_name(name)} "
    for entry in fields:
        key = fold_name(entry)
        if key and f" {key} " in folded:
            return entry
    return None


def is_missing(value: Any, missing: frozenset[str] = DEFAULT_MISSING_VALUES) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str):
        return " ".join(value.split()).lower() in missing
    return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            out = float(value.strip().replace(",", ""))
        except ValueError:
            return None
        return out if math.isfinite(out) else None
    return None


@dataclass(frozen=True)
class Column:
    """A candidate feature column, cleaned: numbers as floats, categories as text, None when missing."""

    name: str
    kind: ColumnKind
    values: list[Any]

    @property
    def filled(self) -> int:
        return sum(v is not None for v in self.values)


def classify_column(
    name: str, raw: Sequence[Any], missing: frozenset[str] = DEFAULT_MISSING_VALUES
) -> Column:
    """Clean one column and decide its kind.

    A column is numeric when every present value reads as a number (booleans are categories). When at
    least 90 % do and the rest are text that is no placeholder, the column is garbage in a numeric field:
    a :class:`ValidationError` names it and shows an example, rather than silently turning it into text.
    """
    present = [v for v in raw if not is_missing(v, missing)]
    numbers = [_number(v) for v in present]
    good = sum(n is not None for n in numbers)
    if present and good == len(present):
        return Column(name, ColumnKind.NUMERIC, [None if is_missing(v, missing) else _number(v) for v in raw])
    if present and good >= 0.9 * len(present) and good >= 10:
        bad = next(v for v, n in zip(present, numbers, strict=True) if n is None)
        raise ValidationError(
            f"column {name!r}: {len(present) - good} of {len(present)} values are not numbers "
            f"(e.g. {bad!r}) in a numeric column; fix the data or leave it out with --exclude {name!r}",
            field=name,
        )
    values: list[Any] = []
    for v in raw:
        if is_missing(v, missing):
            values.append(None)
        elif isinstance(v, bool):
            values.append("true" if v else "false")
        elif isinstance(v, float) and v.is_integer():
            values.append(str(int(v)))
        else:
            values.append(" ".join(str(v).split()))
    return Column(name, ColumnKind.CATEGORICAL, values)


def label_matches(value: Any, positive: str) -> bool:
    """Whether a stored label value is the positive value (``1`` = ``1.0`` = ``"1"``; ``yes`` = ``true``)."""
    if value is None:
        return False
    text = ("true" if value else "false") if isinstance(value, bool) else str(value).strip()
    want = positive.strip()
    if text.lower() == want.lower():
        return True
    a, b = _number(text), _number(want)
    if a is not None and b is not None:
        return a == b
    return (text.lower() in _TRUE_WORDS and want.lower() in _TRUE_WORDS) or (
        text.lower() in _FALSE_WORDS and want.lower() in _FALSE_WORDS
    )


def property_labels(name: str, raw: Sequence[Any], positive: str | None) -> tuple[list[int | None], str]:
    """0/1 labels (None when the value is missing) from a label property, and the positive value used.

    Raises :class:`ValidationError` for a label with one class or an unknown positive value.
    """
    present = [v for v in raw if not is_missing(v)]
    if not present:
        raise ValidationError(f"--label: the property {name!r} has no values", field="label")
    shown = Counter(str(v).strip() for v in present)
    if positive is None:
        truthy = [v for v in shown if v.lower() in _TRUE_WORDS]
        if not truthy or any(v.lower() not in _TRUE_WORDS | _FALSE_WORDS for v in shown):
            raise ValidationError(
                f"--positive: say which value of {name!r} is a conversion; values: "
                + ", ".join(v for v, _ in shown.most_common(10)),
                field="positive",
            )
        positive = truthy[0]
    if not any(label_matches(v, positive) for v in shown):
        raise ValidationError(
            f"--positive: {positive!r} is not a value of {name!r}; values: "
            + ", ".join(v for v, _ in shown.most_common(10)),
            field="positive",
        )
    labels: list[int | None] = [None if is_missing(v) else int(label_matches(v, positive)) for v in raw]
    if len({x for x in labels if x is not None}) < 2:
        raise ValidationError(
            f"--label: {name!r} has one class only (every lead is {'positive' if labels[0] else 'negative'})",
            field="label",
        )
    return labels, positive


def check_enough(labels: Sequence[int], *, min_labelled: int, min_positives: int) -> None:
    """Refuse (exit 3) to learn from too little history."""
    n, pos = len(labels), sum(labels)
    if n < min_labelled or pos < min_positives:
        raise InsufficientData(
            f"too little history to learn from: {n} labelled leads with {pos} positives; at least "
            f"{min_labelled} labelled leads and {min_positives} positives are needed "
            "(rule-based scores keep working)"
        )


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """ROC AUC by ranks with ties averaged (0.5 when one class is absent)."""
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return 0.5
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        rank_sum += avg * sum(labels[order[k]] for k in range(i, j + 1))
        i = j + 1
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def single_column_auc(column: Column, labels: Sequence[int], *, min_level: int = 10) -> float:
    """How well this column alone separates the classes (max of AUC and 1 - AUC).

    Categories score by their conversion rate, rare ones (fewer than ``min_level`` leads) pooled so a
    column of near-unique text does not look perfect; missing values are a level of their own.
    """
    if column.kind is ColumnKind.NUMERIC:
        scores = [v if v is not None else -math.inf for v in column.values]
    else:
        counts = Counter(column.values)
        keys = [v if counts[v] >= min_level else "\0rare" for v in column.values]
        hits: Counter[Any] = Counter()
        for k, y in zip(keys, labels, strict=True):
            hits[k] += y
        sizes = Counter(keys)
        scores = [hits[k] / sizes[k] for k in keys]
    value = auc(scores, labels)
    return max(value, 1 - value)


def looks_like_identifier(column: Column, order: Sequence[int] | None = None) -> str | None:
    """Why this column identifies leads rather than describing them, or None.

    Unique per lead: every present value differs and most leads have one. Strictly sequential: integers
    that rise (or fall) strictly in the order leads were created.
    """
    present = [v for v in column.values if v is not None]
    if len(present) < 2:
        return None
    if len(set(present)) == len(present) and len(present) >= 0.5 * len(column.values):
        return "identifier: its values are unique per lead"
    if column.kind is ColumnKind.NUMERIC and all(float(v).is_integer() for v in present):
        seq = [column.values[i] for i in (order or range(len(column.values)))]
        seq = [v for v in seq if v is not None]
        if len(seq) >= 10 and (
            all(a < b for a, b in itertools.pairwise(seq)) or all(a > b for a, b in itertools.pairwise(seq))
        ):
            return "identifier: its values are strictly sequential"
    return None


def filled_after_stage_change(column: Column, moved: Sequence[bool]) -> str | None:
    """Why this column looks filled in only once a lead moved past its first stage, or None."""
    n_moved = sum(moved)
    n_still = len(moved) - n_moved
    if n_moved < 20 or n_still < 20:
        return None
    filled_moved = sum(1 for v, m in zip(column.values, moved, strict=True) if m and v is not None)
    filled_still = sum(1 for v, m in zip(column.values, moved, strict=True) if not m and v is not None)
    share_moved, share_still = filled_moved / n_moved, filled_still / n_still
    if share_moved >= 0.2 and share_still <= 0.02:
        return (
            f"values appear only after a stage change (filled for {share_moved:.0%} of leads that moved "
            f"past 'lead', {share_still:.0%} of those that did not)"
        )
    return None


def guard_columns(
    columns: Sequence[Column],
    labels: Sequence[int],
    *,
    moved: Sequence[bool] | None = None,
    order: Sequence[int] | None = None,
    exclude: Sequence[str] = (),
    include: Sequence[str] = (),
    sales_fields: Iterable[str] = DEFAULT_SALES_ASSIGNED_FIELDS,
    near_perfect_auc: float = NEAR_PERFECT_AUC,
) -> GuardResult:
    """Decide which columns a model may use; every exclusion carries its reason.

    Order of the checks: ``--exclude``; empty or constant; identifiers; sales-assigned names; a single
    column predicting the label almost perfectly; values that appear only after stage changes.
    ``--include`` keeps a column that any automatic check would drop (the exclusion is still reported,
    as overridden).
    """
    sales = tuple(sales_fields)
    wanted_out = {fold_name(n) for n in exclude}
    wanted_in = {fold_name(n) for n in include}
    used: list[str] = []
    excluded: list[Exclusion] = []
    overridden: list[Exclusion] = []
    for column in columns:
        key = fold_name(column.name)
        if key in wanted_out:
            excluded.append(Exclusion(column.name, "excluded by --exclude"))
            continue
        reason = _automatic_reason(column, labels, moved, order, sales, near_perfect_auc)
        if reason is None:
            used.append(column.name)
        elif key in wanted_in:
            used.append(column.name)
            overridden.append(Exclusion(column.name, f"kept by --include despite: {reason}"))
        else:
            excluded.append(Exclusion(column.name, reason))
    return GuardResult(used, excluded, overridden)


def _automatic_reason(
    column: Column,
    labels: Sequence[int],
    moved: Sequence[bool] | None,
    order: Sequence[int] | None,
    sales: Sequence[str],
    near_perfect_auc: float,
) -> str | None:
    present = {v for v in column.values if v is not None}
    if not present:
        return "empty: no lead has a value"
    if len(present) == 1 and column.filled == len(column.values):
        return "constant: every lead has the same value"
    ident = looks_like_identifier(column, order)
    if ident is not None:
        return ident
    entry = is_sales_assigned(column.name, sales)
    if entry is not None:
        return f"sales-assigned field (matches {entry!r} on the list of fields sales fill in after the fact)"
    single = single_column_auc(column, labels)
    if single >= near_perfect_auc:
        return f"leaks the label: this column alone predicts it almost perfectly (ROC AUC {single:.3f})"
    if moved is not None:
        return filled_after_stage_change(column, moved)
    return None


def check_names(names: Sequence[str], known: Iterable[str], option: str) -> None:
    """Every name given to ``--exclude``/``--include`` must be a column (exit 2 naming it otherwise)."""
    folded = {fold_name(k) for k in known}
    for name in names:
        if fold_name(name) not in folded:
            raise ValidationError(f"{option}: unknown column {name!r}", field=option.lstrip("-"))


def describe_factor(name: str, value: Any, contribution: float) -> str:
    """One factor in plain words: ``Lead Source = Reference: +0.21``."""
    if value is None:
        shown = "(missing)"
    elif isinstance(value, float):
        shown = f"{value:g}"
    else:
        shown = str(value)
    return f"{name} = {shown}: {contribution:+.2f}"


def top_factors(
    contributions: Mapping[str, float], values: Mapping[str, Any], *, top: int = 3
) -> dict[str, list[dict[str, Any]]]:
    """The strongest positive and negative factors of one lead, strongest first."""
    items = sorted(contributions.items(), key=lambda kv: kv[1])
    negative = [(k, v) for k, v in items if v < 0][:top]
    positive = [(k, v) for k, v in reversed(items) if v > 0][:top]

    def doc(k: str, v: float) -> dict[str, Any]:
        return {
            "feature": k,
            "value": values.get(k),
            "contribution": round(v, 4),
            "text": describe_factor(k, values.get(k), v),
        }

    return {"positive": [doc(k, v) for k, v in positive], "negative": [doc(k, v) for k, v in negative]}


_UNSEEN: Any = object()


def clean_for_model(raw: Sequence[Any], kind: ColumnKind) -> list[Any]:
    """Clean a column the way a stored model saw it in training (unreadable numbers become missing)."""
    if kind is ColumnKind.NUMERIC:
        return [
            float(v)
            if type(v) is int or (type(v) is float and v == v)
            else (None if is_missing(v) else _number(v))
            for v in raw
        ]
    out: list[Any] = []
    seen: dict[str, str | None] = {}  # text cleaned once per distinct value (columns repeat a few levels)
    for v in raw:
        if v.__class__ is str:
            found = seen.get(v, _UNSEEN)
            if found is _UNSEEN:
                found = seen[v] = None if is_missing(v) else " ".join(v.split())
            out.append(found)
        elif is_missing(v):
            out.append(None)
        elif isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))
        else:
            out.append(" ".join(str(v).split()))
    return out


def lifecycle_label(created_at: Any, reached_at: Any, as_of: Any, window_days: int) -> int | None:
    """1 when the lead reached the stage within the window, 0 when the window passed without it, None
    while the window is still open (the outcome is not known yet)."""
    window = (as_of - created_at).total_seconds() / 86_400
    if reached_at is not None and (reached_at - created_at).total_seconds() / 86_400 <= window_days:
        return 1
    if window >= window_days:
        return 0
    return None
