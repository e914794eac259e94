"""Segments (DOMAIN.md R4): a named, saved filter over leads; membership is computed when asked.

This module is the filter language: a tokenizer and a recursive-descent parser that turn the text of a
filter into a small immutable tree (:class:`Compare`, :class:`All`, :class:`AnyOf`, :class:`Not`,
:class:`ActivityCount`). It validates field names, operators and values, and refuses anything else with
a :class:`~leadstage.domain.errors.ValidationError` whose message starts with ``position N:`` (the
1-based character in the filter where the problem is). Turning the tree into SQL is the storage
adapter's job (``adapters/db/segments.py``); nothing here reads a clock: relative times are resolved
against the ``as_of`` the caller passes.

The language
============

A filter is conditions combined with ``and``, ``or``, ``not`` and parentheses (``not`` binds tightest,
then ``and``, then ``or``). Keywords and field names are case-insensitive; values are not, except the
fixed vocabularies (stages, statuses, grades, priorities)::

    stage = mql and fit_grade >= B
    furthest_stage >= sql or (status = nurture and last_touch_at < 90d ago)
    account.annual_revenue > 10000000 and job_title contains "cfo"
        and activity(webinar_attended, within 30d)
    count(page_view, page contains "/pricing") >= 3
    properties."Lead Source" in (paid_search, "Google Ads") and properties.Employees >= 250
    owner is null and not email_domain in (gmail.com, yahoo.com)

Comparisons
    ``field = value``, ``!=``, ``<``, ``<=``, ``>``, ``>=``; ``field in (v1, v2, ...)``,
    ``field not in (...)``; ``field contains "text"`` and ``field starts_with "text"`` (text only,
    ignoring case); ``field is null``, ``field is not null`` (the field has no value).
    ``=`` is exact. ``!=``, ``not in`` and ``not`` are the plain opposite of the positive condition, so
    they also match leads where the field is empty: ``company != "Acme"`` includes leads with no company.

Values
    numbers (``250``, ``-1.5``); bare words (``mql``, ``A``, ``paid_search``, ``acme-logistics.com``);
    double-quoted text for anything else (``"Webinar: Forecasting"``, with ``\\"`` and ``\\\\`` as the
    only escapes); ISO dates (``2026-01-31``); relative times ``N ago`` where N is a number of hours,
    days or weeks (``12h ago``, ``30d ago``, ``2w ago``).

Fields
    ============================================  ================================================
    ``stage``, ``furthest_stage``                 lead, mql, sql, opportunity, customer, evangelist;
                                                  ``<``/``>`` follow the funnel: ``stage >= sql``
                                                  is sql, opportunity, customer or evangelist
    ``status``                                    open, working, nurture, disqualified
    ``id``, ``cycle``                             whole numbers (``id in (12, 15)``: a hand-picked list)
    ``owner``                                     a user name; ``owner is null``: unassigned
    ``email``, ``first_name``, ``last_name``,     text
    ``job_title``, ``company``, ``first_source``,
    ``latest_source``
    ``email_domain``                              text: the part after ``@`` of the canonical email
    ``created_at``, ``first_touch_at``,           a date or a relative time
    ``last_touch_at``
    ``fit_score``, ``engagement_score``           numbers (the stored scores of the active model)
    ``fit_grade``                                 A (best) .. D
    ``engagement_level``                          1 (most engaged) .. 4
    ``priority``                                  grade and level, ``A1`` (best) .. ``D4``
    ``predictive_score``                          the active predictive model's probability, 0..1
    ``predictive_decile``                         1 (the top tenth of leads) .. 10; a plain number
    ``account.industry``, ``account.country``,    text, of the lead's account (no account: null)
    ``account.domain``
    ``account.employees``,                        numbers, of the lead's account
    ``account.annual_revenue``
    ``nurture``                                   the reason code a disqualified lead is nurtured
                                                  for (its strategy says nurture); ``nurture is not
                                                  null``: every lead marketing nurtures after a
                                                  disqualification
    ``properties.NAME``,                          a custom property by its name (quote names that
    ``properties."Lead Source"``                  are not one word)
    ============================================  ================================================

Grades read as "at least as good as"
    For ``fit_grade`` and ``engagement_level``, ``>=`` means *at least as good as*: ``fit_grade >= B``
    is A or B, and ``engagement_level >= 2`` is level 1 or 2 (1 is the most engaged). ``>`` is strictly
    better, ``<=`` at most as good, ``<`` worse: ``engagement_level < 3`` is level 4. ``=`` and ``in``
    work as usual. A lead without a score has no grade or level and matches none of these.

Dates
    A date is a UTC day: ``created_at = 2026-01-31`` is any time that day, ``created_at < 2026-01-31``
    is before it and ``created_at <= 2026-01-31`` up to its end. A relative time is an instant before
    the ``as_of`` time of the query: ``created_at >= 30d ago`` means created in the last 30 days,
    ``last_touch_at < 90d ago`` means no touch for 90 days.

Custom properties
    Properties keep the type they were imported with (ADR 3). A number compares numerically and only
    matches numeric values (``properties.Employees >= 250``); a word or quoted text compares as text and
    only matches text values; ``true``/``false`` match boolean values. ``<``, ``<=``, ``>``, ``>=`` need
    a number.

Activity conditions
    ``activity(TYPE [, CONDITION ...] [, within N])`` is true when the lead has at least one activity of
    that type meeting the conditions, in the last N hours/days/weeks (up to ``as_of``) when ``within``
    is given: ``activity(webinar_attended, content = "Webinar: Forecasting Freight Costs", within 30d)``.
    ``count(TYPE [, CONDITION ...] [, within N]) OP NUMBER`` compares how many there are:
    ``count(page_view, page contains "/pricing") >= 3`` (at least three pricing-page visits);
    ``count(email_open, within 90d) = 0``. Inside, conditions use ``source``, ``campaign``, ``content``,
    ``occurred_at`` and the activity's own properties by bare name (``page``) or as
    ``properties."Page URL"``, combined with ``and``, ``or``, ``not`` and parentheses; several
    conditions separated by commas must all hold. TYPE is a known activity type (R3), or ``any`` for
    activities of every type: ``activity(any, campaign = "Spring webinars")``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from leadstage.domain.activities import BUILTIN_ACTIVITY_TYPES
from leadstage.domain.errors import ValidationError
from leadstage.domain.stages import STAGE_ORDER, Status

MAX_FILTER_LENGTH = 10_000
MAX_NAME_LENGTH = 200
MAX_DEPTH = 40

FIT_GRADES: tuple[str, ...] = ("A", "B", "C", "D")  # best first
ENGAGEMENT_LEVELS: tuple[int, ...] = (1, 2, 3, 4)  # most engaged first
STAGES: tuple[str, ...] = tuple(s.value for s in STAGE_ORDER)  # funnel order
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
_PRIORITY = re.compile(r"[A-D][1-4]")
#: The activity "type" of ``activity(any, ...)`` and ``count(any, ...)``: activities of every type.
ANY_ACTIVITY = "any"


class FilterSyntaxError(ValidationError):
    """A filter that cannot be parsed or names something unknown; ``position`` is 1-based."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"position {position}: {message}", field="filter")
        self.position = position


class Kind(StrEnum):
    """What a field holds; it decides which operators and values it accepts."""

    TEXT = "text"
    NUMBER = "number"
    INTEGER = "whole number"
    DATE = "date"
    STAGE = "stage"
    STATUS = "status"
    GRADE = "fit grade"
    LEVEL = "engagement level"
    PRIORITY = "priority"
    OWNER = "user name"
    PROPERTY = "custom property"


class Op(StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    IS_NULL = "is null"
    IS_NOT_NULL = "is not null"


ORDERING = frozenset({Op.LT, Op.LE, Op.GT, Op.GE})
#: The negative operators and the positive ones they are the opposite of.
NEGATIONS: dict[Op, Op] = {Op.NE: Op.EQ, Op.NOT_IN: Op.IN, Op.IS_NOT_NULL: Op.IS_NULL}

_EQUALITY = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.IS_NULL, Op.IS_NOT_NULL})
_OPERATORS: dict[Kind, frozenset[Op]] = {
    Kind.TEXT: _EQUALITY | {Op.CONTAINS, Op.STARTS_WITH},
    Kind.NUMBER: _EQUALITY | ORDERING,
    Kind.INTEGER: _EQUALITY | ORDERING,
    Kind.DATE: _EQUALITY | ORDERING,
    Kind.STAGE: _EQUALITY | ORDERING,
    Kind.STATUS: _EQUALITY,
    Kind.GRADE: _EQUALITY | ORDERING,
    Kind.LEVEL: _EQUALITY | ORDERING,
    Kind.PRIORITY: _EQUALITY,
    Kind.OWNER: _EQUALITY,
    Kind.PROPERTY: _EQUALITY | ORDERING | {Op.CONTAINS, Op.STARTS_WITH},
}

#: Lead fields by name (custom properties are ``properties.NAME``).
LEAD_FIELDS: dict[str, Kind] = {
    "stage": Kind.STAGE,
    "status": Kind.STATUS,
    "cycle": Kind.INTEGER,
    "id": Kind.INTEGER,
    "furthest_stage": Kind.STAGE,
    "owner": Kind.OWNER,
    "email": Kind.TEXT,
    "email_domain": Kind.TEXT,
    "first_name": Kind.TEXT,
    "last_name": Kind.TEXT,
    "job_title": Kind.TEXT,
    "company": Kind.TEXT,
    "first_source": Kind.TEXT,
    "latest_source": Kind.TEXT,
    "created_at": Kind.DATE,
    "first_touch_at": Kind.DATE,
    "last_touch_at": Kind.DATE,
    "fit_score": Kind.NUMBER,
    "fit_grade": Kind.GRADE,
    "engagement_score": Kind.NUMBER,
    "engagement_level": Kind.LEVEL,
    "priority": Kind.PRIORITY,
    "predictive_score": Kind.NUMBER,
    "predictive_decile": Kind.INTEGER,
    "account.industry": Kind.TEXT,
    "account.employees": Kind.INTEGER,
    "account.annual_revenue": Kind.NUMBER,
    "account.country": Kind.TEXT,
    "account.domain": Kind.TEXT,
    "nurture": Kind.TEXT,
}

#: Activity columns usable inside ``activity(...)`` and ``count(...)``; other names are properties.
ACTIVITY_FIELDS: dict[str, Kind] = {
    "source": Kind.TEXT,
    "campaign": Kind.TEXT,
    "content": Kind.TEXT,
    "occurred_at": Kind.DATE,
}

_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Ago:
    """A relative time: ``amount`` hours, days or weeks before the query's ``as_of``."""

    amount: int
    unit: str  # "h", "d" or "w"

    @property
    def delta(self) -> timedelta:
        return timedelta(**{_UNITS[self.unit]: self.amount})

    def before(self, as_of: datetime) -> datetime:
        return as_of - self.delta

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


Value = str | int | float | bool | date | Ago


@dataclass(frozen=True)
class Field:
    """A field of the lead (``scope="lead"``) or of an activity (``scope="activity"``).

    ``name`` is the canonical name (``fit_grade``, ``account.industry``); for custom properties
    ``kind`` is ``PROPERTY``, ``name`` is ``properties`` and ``key`` the property's name.
    """

    name: str
    kind: Kind
    scope: str = "lead"
    key: str | None = None

    @property
    def label(self) -> str:
        if self.kind is Kind.PROPERTY:
            return f'properties."{self.key}"'
        return self.name


@dataclass(frozen=True)
class Compare:
    """``field op values``: one value for comparisons, several for ``in``, none for ``is null``."""

    field: Field
    op: Op
    values: tuple[Value, ...]
    position: int
    value_positions: tuple[int, ...] = ()


@dataclass(frozen=True)
class All:
    """Every item holds (``and``)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one item holds (``or``)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class ActivityCount:
    """The number of the lead's activities of ``type`` meeting ``where`` (within ``within``) ``op count``.

    ``activity(...)`` is ``count(...) >= 1``.
    """

    type: str
    where: Node | None
    within: Ago | None
    op: Op
    count: int
    position: int

    def holds_for(self, n: int) -> bool:
        """Whether a lead with ``n`` such activities meets the condition."""
        return compare_numbers(n, self.op, self.count)


Node = Compare | All | AnyOf | Not | ActivityCount
Filter = Node


def compare_numbers(left: float, op: Op, right: float) -> bool:
    if op is Op.EQ:
        return left == right
    if op is Op.NE:
        return left != right
    if op is Op.LT:
        return left < right
    if op is Op.LE:
        return left <= right
    if op is Op.GT:
        return left > right
    if op is Op.GE:
        return left >= right
    raise ValueError(f"not a numeric comparison: {op}")


def ordered_choices(kind: Kind, op: Op, value: Value) -> tuple[str | int, ...]:
    """The values of an ordered vocabulary that ``field op value`` accepts.

    Stages follow the funnel (``stage >= sql``: sql and later stages). Grades and levels read as "at
    least as good as": ``fit_grade >= B`` is A or B; ``engagement_level >= 2`` is 1 or 2.
    """
    order: tuple[str | int, ...]
    if kind is Kind.STAGE:
        order = STAGES  # worst first: ">" is further down the funnel
    elif kind is Kind.GRADE:
        order = tuple(reversed(FIT_GRADES))  # worst first
    elif kind is Kind.LEVEL:
        order = tuple(reversed(ENGAGEMENT_LEVELS))  # least engaged first
    else:
        raise ValueError(f"{kind} has no order")
    i = order.index(value)
    if op is Op.LT:
        return order[:i]
    if op is Op.LE:
        return order[: i + 1]
    if op is Op.GT:
        return order[i + 1 :]
    if op is Op.GE:
        return order[i:]
    raise ValueError(f"not an ordering: {op}")


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, depth first (including the conditions inside activity conditions)."""
    yield node
    if isinstance(node, All | AnyOf):
        for item in node.items:
            yield from walk(item)
    elif isinstance(node, Not):
        yield from walk(node.item)
    elif isinstance(node, ActivityCount) and node.where is not None:
        yield from walk(node.where)


def owner_names(node: Node) -> list[tuple[str, int]]:
    """The user names the filter mentions as owners, with their positions."""
    out: list[tuple[str, int]] = []
    for item in walk(node):
        if isinstance(item, Compare) and item.field.kind is Kind.OWNER:
            out.extend((str(v), p) for v, p in zip(item.values, item.value_positions, strict=True))
    return out


def validate_segment_name(name: str) -> str:
    """A segment's name, trimmed: 1 to 200 characters, no control characters."""
    cleaned = name.strip()
    if not cleaned:
        raise ValidationError("a segment needs a name", field="name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"a segment name has at most {MAX_NAME_LENGTH} characters ({len(cleaned)} given)", field="name"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise ValidationError("a segment name cannot contain control characters", field="name")
    return cleaned


@dataclass(frozen=True)
class Segment:
    """A saved filter; ``filter`` is the text as the user wrote it (parsed again when used)."""

    id: int | None
    name: str
    filter: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None


# ---- tokenizer ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # NAME STRING NUMBER DATE SPAN OP ( ) , . END
    text: str  # as written (for messages)
    value: str  # strings unescaped
    position: int  # 1-based

    def shown(self) -> str:
        return "the end of the filter" if self.kind == "END" else repr(self.text)


_NAME = re.compile(r"[^\W\d][\w\-]*(?:\.[\w\-]+)*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SPAN = re.compile(r"(\d+)([hdw])")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_OPERATORS_RE = re.compile(r"!=|<=|>=|=|<|>")
_WORD_CHAR = re.compile(r"[\w\-.]")


def tokenize(text: str) -> list[Token]:
    """Split a filter into tokens; an unreadable character or string raises ``FilterSyntaxError``."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        pos = i + 1
        if ch == '"':
            value, i = _read_string(text, i)
            tokens.append(Token("STRING", text[pos - 1 : i], value, pos))
            continue
        if ch in "(),.":
            tokens.append(Token(ch, ch, ch, pos))
            i += 1
            continue
        if m := _OPERATORS_RE.match(text, i):
            tokens.append(Token("OP", m.group(), m.group(), pos))
            i = m.end()
            continue
        if ch in "0123456789-":
            kind, m = _number_like(text, i)
        else:
            kind, m = "NAME", _NAME.match(text, i)
        if m is None:
            raise FilterSyntaxError(pos, f"unexpected character {ch!r}")
        tokens.append(Token(kind, m.group(), m.group(), pos))
        i = m.end()
    tokens.append(Token("END", "", "", n + 1))
    return tokens


def _number_like(text: str, i: int) -> tuple[str, re.Match[str]]:
    """A date, a time span or a number starting at ``i``, not run together with a following word."""
    n = len(text)
    for kind, pattern in (("DATE", _DATE), ("SPAN", _SPAN), ("NUMBER", _NUMBER)):
        m = pattern.match(text, i)
        if m and not (m.end() < n and _WORD_CHAR.match(text, m.end())):
            return kind, m
    end = i + 1
    while end < n and _WORD_CHAR.match(text, end):
        end += 1
    word = text[i:end]
    if re.fullmatch(r"-\d+[hdw]", word):
        raise FilterSyntaxError(i + 1, f"write a relative time as {word[1:]} ago, not {word}")
    raise FilterSyntaxError(
        i + 1,
        f"cannot read {word!r}: expected a number, a date like 2026-01-31 or a time span like 30d "
        '(quote other values: "...")',
    )


def _read_string(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in ('"', "\\"):
                raise FilterSyntaxError(
                    i + 1, f"unknown escape '\\{nxt}' in a string (only \\\" and \\\\ are escapes)"
                )
            out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    raise FilterSyntaxError(start + 1, "unterminated string: a closing '\"' is missing")


# ---- parser ------------------------------------------------------------------------------------------

_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "contains", "starts_with", "within", "ago"})
_COMPARISONS = {o.value: o for o in (Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE)}
_OPERATOR_HELP = "=, !=, <, <=, >, >=, in, not in, contains, starts_with, is null, is not null"


def parse_filter(text: str, *, activity_types: Collection[str] = BUILTIN_ACTIVITY_TYPES) -> Filter:
    """Parse and validate a segment filter; raises ``FilterSyntaxError`` (a ``ValidationError``)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(MAX_FILTER_LENGTH + 1, f"a filter has at most {MAX_FILTER_LENGTH} characters")
    return _Parser(text, frozenset(activity_types)).parse()


class _Parser:
    def __init__(self, text: str, activity_types: frozenset[str]) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.activity_types = activity_types

    # -- token helpers

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def prev(self) -> Token:
        return self.tokens[self.i - 1] if self.i > 0 else Token("END", "", "", 1)

    def is_keyword(self, word: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok.kind == "NAME" and tok.value.lower() == word

    def expect(self, kind: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind != kind:
            raise FilterSyntaxError(
                tok.position, f"expected {what} after {self.prev().text!r}, got {tok.shown()}"
            )
        return self.next()

    # -- grammar

    def parse(self) -> Filter:
        if self.peek().kind == "END":
            raise FilterSyntaxError(1, "the filter is empty: write a condition such as stage = mql")
        node = self.or_expr("lead")
        tok = self.peek()
        if tok.kind == ")":
            raise FilterSyntaxError(tok.position, "')' without a matching '('")
        if tok.kind != "END":
            raise FilterSyntaxError(
                tok.position, f"expected 'and', 'or' or the end of the filter, got {tok.shown()}"
            )
        return node

    def or_expr(self, scope: str) -> Node:
        items = [self.and_expr(scope)]
        while self.is_keyword("or"):
            self.next()
            items.append(self.and_expr(scope))
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def and_expr(self, scope: str) -> Node:
        items = [self.unary(scope)]
        while self.is_keyword("and"):
            self.next()
            items.append(self.unary(scope))
        return items[0] if len(items) == 1 else All(tuple(items))

    def unary(self, scope: str) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterSyntaxError(self.peek().position, f"nested more than {MAX_DEPTH} levels deep")
        try:
            if self.is_keyword("not"):
                self.next()
                return Not(self.unary(scope))
            return self.primary(scope)
        finally:
            self.depth -= 1

    def primary(self, scope: str) -> Node:
        tok = self.peek()
        if tok.kind == "(":
            self.next()
            node = self.or_expr(scope)
            close = self.peek()
            if close.kind != ")":
                raise FilterSyntaxError(
                    close.position,
                    f"expected ')' to close the '(' at position {tok.position}, got {close.shown()}",
                )
            self.next()
            return node
        if tok.kind == "NAME" and tok.value.lower() in ("activity", "count") and self.peek(1).kind == "(":
            if scope != "lead":
                raise FilterSyntaxError(tok.position, f"{tok.value}(...) cannot be used inside another one")
            return self.activity()
        if tok.kind == "NAME" and tok.value.lower() not in _KEYWORDS:
            return self.comparison(scope)
        after = self.prev().text
        where = f" after {after!r}" if self.i > 0 else ""
        raise FilterSyntaxError(
            tok.position,
            f"expected a condition{where} (a field, activity(...), count(...), 'not' or '('), "
            f"got {tok.shown()}",
        )

    # -- fields and comparisons

    def field(self, scope: str) -> Field:
        tok = self.next()
        raw = tok.value
        lowered = raw.lower()
        if lowered == "properties" or lowered.startswith("properties."):
            key = raw[len("properties.") :] if "." in raw else None
            if key is None:
                if self.peek().kind != ".":
                    raise FilterSyntaxError(
                        self.peek().position,
                        "expected '.' and a property name after 'properties', e.g. properties.\"Lead Source\"",
                    )
                self.next()
                name_tok = self.peek()
                if name_tok.kind not in ("STRING", "NAME"):
                    raise FilterSyntaxError(
                        name_tok.position,
                        f"expected a property name after 'properties.', got {name_tok.shown()}",
                    )
                key = self.next().value
            return self._property(key, scope, tok.position)
        if scope == "activity":
            if lowered in ACTIVITY_FIELDS:
                return Field(lowered, ACTIVITY_FIELDS[lowered], "activity")
            if "." in raw or lowered in LEAD_FIELDS:
                raise FilterSyntaxError(
                    tok.position,
                    f"{raw!r} is a lead field; inside activity(...) and count(...) conditions use "
                    f"{', '.join(ACTIVITY_FIELDS)} and the activity's properties",
                )
            return self._property(raw, scope, tok.position)
        if lowered in LEAD_FIELDS:
            return Field(lowered, LEAD_FIELDS[lowered])
        known = [*LEAD_FIELDS, 'properties."NAME"']
        hint = difflib.get_close_matches(lowered, list(LEAD_FIELDS), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        raise FilterSyntaxError(
            tok.position, f"unknown field {raw!r}; known fields: {', '.join(known)}{suggestion}"
        )

    @staticmethod
    def _property(key: str, scope: str, position: int) -> Field:
        if not key or '"' in key or len(key) > 300:
            raise FilterSyntaxError(position, "a property name has 1 to 300 characters and no '\"'")
        return Field("properties", Kind.PROPERTY, scope, key)

    def comparison(self, scope: str) -> Compare:
        start = self.peek().position
        field = self.field(scope)
        op_tok = self.peek()
        op = self.operator(field)
        allowed = _OPERATORS[field.kind]
        if op not in allowed:
            ops = ", ".join(o.value for o in Op if o in allowed)
            raise FilterSyntaxError(
                op_tok.position,
                f"{op.value!r} does not apply to {field.label} ({field.kind.value}); use {ops}",
            )
        if op in (Op.IS_NULL, Op.IS_NOT_NULL):
            return Compare(field, op, (), start)
        if op in (Op.IN, Op.NOT_IN):
            self.expect("(", "'(' and a list of values")
            values: list[Value] = []
            positions: list[int] = []
            while True:
                value_tok = self.peek()
                values.append(self.value(field, op, op.value if not values else ","))
                positions.append(value_tok.position)
                sep = self.peek()
                if sep.kind == ",":
                    self.next()
                    continue
                if sep.kind == ")":
                    self.next()
                    break
                raise FilterSyntaxError(
                    sep.position, f"expected ',' or ')' in the list of values, got {sep.shown()}"
                )
            return Compare(field, op, tuple(values), start, tuple(positions))
        value_tok = self.peek()
        value = self.value(field, op, op.value)
        return Compare(field, op, (value,), start, (value_tok.position,))

    def operator(self, field: Field) -> Op:
        tok = self.peek()
        if tok.kind == "OP":
            self.next()
            return _COMPARISONS[tok.value]
        word = tok.value.lower() if tok.kind == "NAME" else ""
        if word in ("in", "contains", "starts_with"):
            self.next()
            return Op(word)
        if word == "not":
            self.next()
            if not self.is_keyword("in"):
                raise FilterSyntaxError(
                    self.peek().position,
                    f"expected 'in' after 'not' (for other negations write not ({field.label} ...))",
                )
            self.next()
            return Op.NOT_IN
        if word == "is":
            self.next()
            negated = self.is_keyword("not")
            if negated:
                self.next()
            if not self.is_keyword("null"):
                after = "is not" if negated else "is"
                raise FilterSyntaxError(self.peek().position, f"expected 'null' after {after!r}")
            self.next()
            return Op.IS_NOT_NULL if negated else Op.IS_NULL
        raise FilterSyntaxError(
            tok.position,
            f"expected an operator after {field.label} ({_OPERATOR_HELP}), got {tok.shown()}",
        )

    def value(self, field: Field, op: Op, after: str) -> Value:
        tok = self.peek()
        if tok.kind not in ("NAME", "STRING", "NUMBER", "DATE", "SPAN") or (
            tok.kind == "NAME" and tok.value.lower() in _KEYWORDS
        ):
            if tok.kind == "NAME" and tok.value.lower() == "null":
                raise FilterSyntaxError(
                    tok.position, f"compare with null using 'is null' or 'is not null', not {op.value!r}"
                )
            raise FilterSyntaxError(tok.position, f"expected a value after {after!r}, got {tok.shown()}")
        self.next()
        if tok.kind == "SPAN":
            if not self.is_keyword("ago"):
                raise FilterSyntaxError(
                    self.peek().position,
                    f"expected 'ago' after {tok.text!r} (a relative time: {tok.text} ago)",
                )
            self.next()
        return _check_value(field, op, tok)

    # -- activity conditions

    def activity(self) -> ActivityCount:
        head = self.next()
        form = head.value.lower()
        self.next()  # "("
        type_tok = self.peek()
        if type_tok.kind not in ("NAME", "STRING"):
            raise FilterSyntaxError(
                type_tok.position, f"expected an activity type after '{form}(', got {type_tok.shown()}"
            )
        self.next()
        type_ = type_tok.value.strip().lower()
        if type_ != ANY_ACTIVITY and type_ not in self.activity_types:
            hint = difflib.get_close_matches(type_, sorted(self.activity_types), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise FilterSyntaxError(
                type_tok.position,
                f"unknown activity type {type_tok.value!r}; known types: "
                f"{', '.join(sorted(self.activity_types))}{suggestion}",
            )
        conditions: list[Node] = []
        within: Ago | None = None
        while True:
            sep = self.peek()
            if sep.kind == ")":
                self.next()
                break
            if sep.kind != ",":
                raise FilterSyntaxError(
                    sep.position, f"expected ',' or ')' in {form}({type_}, ...), got {sep.shown()}"
                )
            self.next()
            if self.is_keyword("within"):
                within_tok = self.next()
                if within is not None:
                    raise FilterSyntaxError(within_tok.position, f"'within' is given twice in {form}(...)")
                span = self.peek()
                if span.kind != "SPAN":
                    raise FilterSyntaxError(
                        span.position,
                        f"expected a time span such as 30d, 12h or 2w after 'within', got {span.shown()}",
                    )
                self.next()
                m = _SPAN.fullmatch(span.value)
                assert m is not None
                within = Ago(int(m.group(1)), m.group(2))
                continue
            conditions.append(self.or_expr("activity"))
        where: Node | None = None
        if len(conditions) == 1:
            where = conditions[0]
        elif conditions:
            where = All(tuple(conditions))
        if form == "activity":
            return ActivityCount(type_, where, within, Op.GE, 1, head.position)
        op_tok = self.peek()
        if op_tok.kind != "OP":
            raise FilterSyntaxError(
                op_tok.position,
                f"expected a comparison after count(...), e.g. count({type_}) >= 3, got {op_tok.shown()}",
            )
        self.next()
        n_tok = self.peek()
        if n_tok.kind != "NUMBER" or not n_tok.value.isdigit():
            raise FilterSyntaxError(
                n_tok.position, f"expected a whole number after {op_tok.value!r}, got {n_tok.shown()}"
            )
        self.next()
        return ActivityCount(
            type_, where, within, _COMPARISONS[op_tok.value], int(n_tok.value), head.position
        )


def _check_value(field: Field, op: Op, tok: Token) -> Value:
    """The token as a value of the field's kind, or a ``FilterSyntaxError`` at the token."""
    kind = field.kind
    pos = tok.position
    word = tok.kind in ("NAME", "STRING")
    shown = tok.text if tok.kind != "SPAN" else f"{tok.text} ago"
    if tok.kind == "SPAN":
        m = _SPAN.fullmatch(tok.value)
        assert m is not None
        ago = Ago(int(m.group(1)), m.group(2))
        if kind is not Kind.DATE:
            raise FilterSyntaxError(pos, f"{field.label} is a {kind.value}, not a time: got {shown}")
        if op not in ORDERING:
            raise FilterSyntaxError(pos, f"a relative time ({shown}) needs <, <=, > or >=, not {op.value!r}")
        return ago
    if kind is Kind.TEXT or kind is Kind.OWNER:
        if not word:
            raise FilterSyntaxError(
                pos,
                f"{field.label} is {'a user name' if kind is Kind.OWNER else 'text'}: "
                f'put the value in double quotes, e.g. "{tok.text}"',
            )
        return tok.value
    if kind in (Kind.NUMBER, Kind.INTEGER):
        if tok.kind != "NUMBER":
            raise FilterSyntaxError(pos, f"{field.label} is a {kind.value}: expected a number, got {shown}")
        number = _number(tok.value)
        if kind is Kind.INTEGER and not isinstance(number, int):
            raise FilterSyntaxError(pos, f"{field.label} is a whole number, got {shown}")
        return number
    if kind is Kind.DATE:
        if tok.kind != "DATE":
            raise FilterSyntaxError(
                pos,
                f"{field.label} is a date: expected an ISO date like 2026-01-31 or a time like 30d ago, "
                f"got {shown}",
            )
        try:
            return date.fromisoformat(tok.value)
        except ValueError:
            raise FilterSyntaxError(pos, f"{tok.value} is not a valid date") from None
    if kind in (Kind.STAGE, Kind.STATUS):
        options = STAGES if kind is Kind.STAGE else STATUSES
        if not word or tok.value.lower() not in options:
            raise FilterSyntaxError(
                pos, f"unknown {kind.value} {tok.value!r} for {field.label}; one of {', '.join(options)}"
            )
        return tok.value.lower()
    if kind is Kind.GRADE:
        if not word or tok.value.upper() not in FIT_GRADES:
            raise FilterSyntaxError(pos, f"{field.label} is a grade A (best), B, C or D; got {shown}")
        return tok.value.upper()
    if kind is Kind.LEVEL:
        if tok.kind != "NUMBER" or not tok.value.isdigit() or int(tok.value) not in ENGAGEMENT_LEVELS:
            raise FilterSyntaxError(pos, f"{field.label} is a level 1 (most engaged), 2, 3 or 4; got {shown}")
        return int(tok.value)
    if kind is Kind.PRIORITY:
        if not word or not _PRIORITY.fullmatch(tok.value.upper()):
            raise FilterSyntaxError(
                pos,
                f"{field.label} is a fit grade A-D followed by an engagement level 1-4, e.g. A1; got {shown}",
            )
        return tok.value.upper()
    # custom property: a number, true/false, or text
    if op in (Op.CONTAINS, Op.STARTS_WITH) and not word:
        raise FilterSyntaxError(
            pos, f'{op.value!r} needs text: put the value in double quotes, e.g. "{tok.text}"'
        )
    if tok.kind == "NUMBER":
        return _number(tok.value)
    if op in ORDERING:
        raise FilterSyntaxError(
            pos,
            f"{op.value!r} on a custom property compares numbers; got {shown} (text compares with = or in)",
        )
    if (
        tok.kind == "NAME"
        and tok.value.lower() in ("true", "false")
        and op not in (Op.CONTAINS, Op.STARTS_WITH)
    ):
        return tok.value.lower() == "true"
    return tok.value


def _number(text: str) -> int | float:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return float(text)
