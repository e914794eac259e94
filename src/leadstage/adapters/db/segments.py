"""Segments in SQL: the filter tree (``domain/segments.py``) compiled to one boolean expression over
``leads``, and the repository of saved segments.

Membership is computed by the database, never by a loop over leads in Python. The compiled expression
is the same on SQLite and PostgreSQL in meaning; where the two databases differ (JSON, string
functions) the compiler takes the dialect name and writes each its own way:

* ``not`` is pushed down to the conditions (De Morgan), and each condition knows its exact opposite,
  including leads where the field is empty: ``company != "Acme"`` is ``company <> 'Acme' OR company IS
  NULL``. No ``NOT`` ever sits over a possibly-NULL expression, so SQL's three-valued logic never leaks.
* Custom properties are read with JSON functions, guarded by the JSON type of the value (a number
  literal only matches numbers, text only text, on both databases); a number is read inside a
  ``CASE`` so PostgreSQL never casts text to a number.
* Owner and account fields are ``IN`` subqueries on ``users`` and ``accounts``.
* Activity conditions are set-based: ``leads.id IN (SELECT lead_id FROM activities WHERE ...)``, with
  ``GROUP BY lead_id HAVING count(*) ...`` for counts. Measured on 1,000,000 leads and 2,000,000
  activities (docs/benchmarks.md, "segments"), one pass over ``activities`` is about 6x faster than a
  correlated ``EXISTS`` probing the ``(lead_id, occurred_at)`` index once per lead, and about 2.5x
  faster than a correlated ``count(*)``. A count whose condition holds for zero activities (``count(...) < 2``,
  ``= 0``) is the complement of the leads whose count fails it. On PostgreSQL the complement is a
  ``NOT EXISTS`` (an anti-join), never ``NOT IN`` over a subquery, which PostgreSQL cannot plan as a join.
  Within ``and``/``or`` activity conditions come after the conditions on the lead's own columns.
* Text search: ``contains`` / ``starts_with`` are ``LIKE`` on SQLite (case-insensitive for ASCII letters
  by default) and ``ILIKE`` on PostgreSQL (case-insensitive for all letters).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Table,
    and_,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from leadstage.adapters.db import tables as t
from leadstage.adapters.db.repositories import SqlLeadRepository, page
from leadstage.domain.errors import AlreadyExists
from leadstage.domain.leads import Lead
from leadstage.domain.segments import (
    ANY_ACTIVITY,
    NEGATIONS,
    ORDERING,
    ActivityCount,
    Ago,
    All,
    AnyOf,
    Field,
    Filter,
    Kind,
    Node,
    Not,
    Op,
    Segment,
    Value,
    ordered_choices,
)
from leadstage.services.ports import LeadFilter

Bool = ColumnElement[bool]

_LEAD_COLUMNS: dict[str, str] = {
    "id": "id",
    "stage": "stage",
    "status": "status",
    "cycle": "cycle",
    "furthest_stage": "furthest_stage",
    "email": "email",
    "first_name": "first_name",
    "last_name": "last_name",
    "job_title": "job_title",
    "company": "company",
    "first_source": "first_source",
    "latest_source": "latest_source",
    "created_at": "created_at",
    "first_touch_at": "first_touch_at",
    "last_touch_at": "last_touch_at",
    "fit_score": "fit_score",
    "fit_grade": "fit_grade",
    "engagement_score": "engagement_score",
    "engagement_level": "engagement_level",
    "priority": "priority",
    "predictive_score": "predictive_score",
    "predictive_decile": "predictive_decile",
}


@dataclass(frozen=True)
class _Pred:
    """A condition and its exact opposite (both two-valued where it matters)."""

    pos: Bool
    neg: Bool


def _on_column(operand: ColumnElement[Any], pos: Bool, nullable: bool) -> _Pred:
    """A condition on a value that is false when the value is NULL; the opposite includes NULL."""
    neg = not_(pos)
    return _Pred(pos, or_(neg, operand.is_(None)) if nullable else neg)


def _guarded(pos: Bool) -> _Pred:
    """A condition that may be NULL: its opposite is "not true"."""
    return _Pred(pos, not_(func.coalesce(pos, false())))


#: A count comparison and its opposite.
_OPPOSITE_COUNTS: dict[Op, Op] = {
    Op.EQ: Op.NE,
    Op.NE: Op.EQ,
    Op.LT: Op.GE,
    Op.GE: Op.LT,
    Op.LE: Op.GT,
    Op.GT: Op.LE,
}


#: Count conditions that every lead with at least one such activity meets: no counting needed.
_ANY_ACTIVITY = frozenset({(Op.GE, 1), (Op.GT, 0), (Op.NE, 0)})


def _is_activity(node: Node) -> bool:
    if isinstance(node, ActivityCount):
        return True
    if isinstance(node, All | AnyOf):
        return any(_is_activity(item) for item in node.items)
    if isinstance(node, Not):
        return _is_activity(node.item)
    return False


class FilterCompiler:
    """Compiles a filter tree to a SQLAlchemy boolean over ``leads`` for one dialect and ``as_of``."""

    def __init__(self, dialect: str, as_of: datetime) -> None:
        if as_of.tzinfo is None:
            raise ValueError("as_of must be an aware datetime")
        self.dialect = dialect
        self.as_of = as_of.astimezone(UTC)

    def compile(self, node: Filter) -> Bool:
        return self._node(node, negate=False, scope=t.leads)

    # -- boolean structure

    def _node(self, node: Node, *, negate: bool, scope: Table) -> Bool:
        if isinstance(node, Not):
            return self._node(node.item, negate=not negate, scope=scope)
        if isinstance(node, All | AnyOf):
            # activity subqueries last: the cheap conditions on the lead's row decide first
            items = sorted(node.items, key=_is_activity)
            parts = [self._node(item, negate=negate, scope=scope) for item in items]
            conjunction = isinstance(node, All) != negate
            return and_(*parts) if conjunction else or_(*parts)
        if isinstance(node, ActivityCount):
            return self._activity(node, negate=negate)
        op = NEGATIONS.get(node.op, node.op)
        pred = self._compare(node.field, op, node.values, scope)
        flipped = negate != (op is not node.op)
        return pred.neg if flipped else pred.pos

    # -- comparisons

    def _compare(self, field: Field, op: Op, values: tuple[Value, ...], scope: Table) -> _Pred:
        """The positive condition ``field op values`` (op is never a negative operator here)."""
        if field.kind is Kind.PROPERTY:
            return self._property(scope.c.properties, field.key or "", op, values)
        if scope is t.activities:
            return self._value(
                scope.c[field.name], field.kind, op, values, nullable=field.name != "occurred_at"
            )
        if field.kind is Kind.OWNER:
            return self._owner(op, values)
        if field.name.startswith("account."):
            return self._account(field, op, values)
        if field.name == "nurture":
            return self._nurture(op, values)
        if field.name == "email_domain":
            return self._value(self._email_domain(), Kind.TEXT, op, values, nullable=True)
        column = t.leads.c[_LEAD_COLUMNS[field.name]]
        return self._value(column, field.kind, op, values, nullable=bool(column.nullable))

    def _value(
        self, x: ColumnElement[Any], kind: Kind, op: Op, values: tuple[Value, ...], *, nullable: bool
    ) -> _Pred:
        if op is Op.IS_NULL:
            return _Pred(x.is_(None), x.is_not(None))
        if kind is Kind.DATE:
            return _on_column(x, self._date(x, op, values), nullable)
        if op in ORDERING and kind in (Kind.STAGE, Kind.GRADE, Kind.LEVEL):
            return _on_column(x, x.in_(ordered_choices(kind, op, values[0])), nullable)
        if op in (Op.CONTAINS, Op.STARTS_WITH):
            return _on_column(x, self._like(x, op, values), nullable)
        return _on_column(x, _plain(x, op, values), nullable)

    def _like(self, x: ColumnElement[Any], op: Op, values: tuple[Value, ...]) -> Bool:
        """Case-insensitive ``contains`` / ``starts_with``: LIKE on SQLite, ILIKE on PostgreSQL."""
        text = str(values[0])
        if self.dialect == "sqlite":  # SQLite's LIKE ignores the case of ASCII letters already
            if op is Op.CONTAINS:
                return x.contains(text, autoescape=True)
            return x.startswith(text, autoescape=True)
        if op is Op.CONTAINS:
            return x.icontains(text, autoescape=True)
        return x.istartswith(text, autoescape=True)

    def _date(self, x: ColumnElement[Any], op: Op, values: tuple[Value, ...]) -> Bool:
        if op is Op.IN:
            return or_(*(self._date(x, Op.EQ, (v,)) for v in values))
        value = values[0]
        if isinstance(value, Ago):
            instant = value.before(self.as_of)
            return _plain(x, op, (instant,))
        assert isinstance(value, date)
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        if op is Op.EQ:
            return and_(x >= start, x < end)
        if op is Op.LT:
            return x < start
        if op is Op.LE:
            return x < end
        if op is Op.GT:
            return x >= end
        return x >= start  # Op.GE

    def _email_domain(self) -> ColumnElement[Any]:
        email = t.leads.c.email_normalized
        at = func.instr(email, "@") if self.dialect == "sqlite" else func.strpos(email, "@")
        return func.substr(email, at + 1)

    def _owner(self, op: Op, values: tuple[Value, ...]) -> _Pred:
        owner = t.leads.c.owner_id
        if op is Op.IS_NULL:
            return _Pred(owner.is_(None), owner.is_not(None))
        names = select(t.users.c.id).where(t.users.c.username.in_([str(v) for v in values]))
        return _Pred(owner.in_(names), or_(owner.is_(None), owner.not_in(names)))

    def _account(self, field: Field, op: Op, values: tuple[Value, ...]) -> _Pred:
        """A condition on the lead's account; a lead without one has every account field null."""
        column = t.accounts.c[field.name.removeprefix("account.")]
        inner = self._value(column, field.kind, op, values, nullable=True).pos
        account = t.leads.c.account_id
        ids = select(t.accounts.c.id).where(inner)
        if op is Op.IS_NULL:
            return _Pred(
                or_(account.is_(None), account.in_(ids)), and_(account.is_not(None), account.not_in(ids))
            )
        return _Pred(account.in_(ids), or_(account.is_(None), account.not_in(ids)))

    def _nurture(self, op: Op, values: tuple[Value, ...]) -> _Pred:
        """Leads nurtured after a disqualification (an open record whose strategy nurtures), by reason."""
        d = t.disqualifications
        conds: list[Bool] = [d.c.nurture.is_(True), d.c.ended_at.is_(None)]
        if op is not Op.IS_NULL:
            conds.append(self._value(d.c.reason, Kind.TEXT, op, values, nullable=False).pos)
        members = select(d.c.lead_id).where(*conds)
        inside, outside = t.leads.c.id.in_(members), t.leads.c.id.not_in(members)
        return _Pred(outside, inside) if op is Op.IS_NULL else _Pred(inside, outside)

    # -- custom properties (JSON)

    def _property(self, column: Column[Any], key: str, op: Op, values: tuple[Value, ...]) -> _Pred:
        json = _Json(column, key, self.dialect)
        if op is Op.IS_NULL:
            return _Pred(json.raw().is_(None), json.raw().is_not(None))
        if op in (Op.EQ, Op.IN):
            # one test per type of value given: text, numbers, true/false
            texts = [v for v in values if isinstance(v, str)]
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            tests = [json.is_boolean(v) for v in values if isinstance(v, bool)]
            if texts:
                tests.append(json.text_in(texts))
            if numbers:
                tests.append(json.number().in_(numbers))
            return _guarded(or_(*tests))
        if op in ORDERING:
            return _guarded(_plain(json.number(), op, values))
        # contains / starts_with: text only
        return _guarded(and_(json.is_text(), self._like(json.raw(), op, values)))

    # -- activities

    def _activity(self, node: ActivityCount, *, negate: bool) -> Bool:
        """The leads whose number of matching activities satisfies the count, as a set-based subquery."""
        a = t.activities
        conditions: list[Bool] = [] if node.type == ANY_ACTIVITY else [a.c.type == node.type]
        if node.within is not None:
            conditions += [a.c.occurred_at >= node.within.before(self.as_of), a.c.occurred_at <= self.as_of]
        if node.where is not None:
            conditions.append(self._node(node.where, negate=False, scope=a))
        # Members are the leads in ``counted``, or, when a lead with no such activity is a member (count < 2,
        # count = 0), every lead except those whose count fails the condition.
        zero_is_member = node.holds_for(0)
        wanted = _OPPOSITE_COUNTS[node.op] if zero_is_member else node.op
        counted = select(a.c.lead_id).where(*conditions)
        if (wanted, node.count) not in _ANY_ACTIVITY:
            # "+ 0" keeps SQLite from walking the (lead_id, occurred_at) index to group, which reads one row
            # at random per activity: a sequential scan and an in-memory sort is twice as fast
            key = a.c.lead_id + 0 if self.dialect == "sqlite" else a.c.lead_id
            having = _plain(func.count(), wanted, (node.count,))
            counted = select(key.label("lead_id")).where(*conditions).group_by(key).having(having)
        inside: Bool = t.leads.c.id.in_(counted)
        outside: Bool
        if self.dialect == "sqlite":
            outside = t.leads.c.id.not_in(counted)
        else:
            members = counted.subquery()
            outside = not_(exists().where(members.c.lead_id == t.leads.c.id))
        return outside if zero_is_member != negate else inside


def _plain(x: ColumnElement[Any], op: Op, values: tuple[Any, ...]) -> Bool:
    value = values[0] if values else None
    if op is Op.EQ:
        return x == value
    if op is Op.IN:
        return x.in_(list(values))
    if op is Op.LT:
        return x < value
    if op is Op.LE:
        return x <= value
    if op is Op.GT:
        return x > value
    if op is Op.GE:
        return x >= value
    if op is Op.NE:
        return x != value
    raise ValueError(f"unexpected operator {op}")


class _Json:
    """One key of a JSON column, read the same way on SQLite and PostgreSQL."""

    def __init__(self, column: Column[Any], key: str, dialect: str) -> None:
        self.column, self.key, self.sqlite = column, key, dialect == "sqlite"
        self.path = f'$."{key}"'

    def raw(self) -> ColumnElement[Any]:
        """The value, NULL when the key is missing or holds JSON null."""
        if self.sqlite:
            return func.json_extract(self.column, self.path)
        value: ColumnElement[Any] = self.column[self.key].as_string()
        return value

    def _type(self) -> ColumnElement[Any]:
        if self.sqlite:
            return func.json_type(self.column, self.path)
        return func.json_typeof(self.column[self.key])

    def is_text(self) -> Bool:
        return self._type() == ("text" if self.sqlite else "string")

    def text_in(self, texts: list[str]) -> Bool:
        """The value is a JSON string among ``texts``.

        On SQLite ``json_extract`` returns TEXT only for JSON strings (numbers come back as numbers, true
        as 1), and SQLite never equates a number with text, so no type test is needed; PostgreSQL's
        ``->>`` turns every value into text and needs one.
        """
        if self.sqlite:
            return self.raw().in_(texts)
        return and_(self.is_text(), self.raw().in_(texts))

    def number(self) -> ColumnElement[Any]:
        """The value when it is a JSON number, else NULL (text is never cast)."""
        if self.sqlite:
            return case((self._type().in_(("integer", "real")), self.raw()), else_=None)
        number: ColumnElement[Any] = self.column[self.key].as_float()
        return case((self._type() == "number", number), else_=None)

    def is_boolean(self, value: bool) -> Bool:
        word = "true" if value else "false"
        if self.sqlite:
            return self._type() == word
        return and_(self._type() == "boolean", self.raw() == word)


def compile_filter(node: Filter, *, dialect: str, as_of: datetime) -> Bool:
    """The filter as a boolean SQL expression over ``leads`` (``as_of`` resolves relative times)."""
    return FilterCompiler(dialect, as_of).compile(node)


# ---- repository ----------------------------------------------------------------------------------------


class SqlSegmentRepository:
    """Saved segments, and lead membership computed in SQL; never commits."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    def where(self, flt: Filter, *, as_of: datetime) -> Bool:
        return compile_filter(flt, dialect=self.dialect, as_of=as_of)

    @staticmethod
    def _to_segment(r: Any) -> Segment:
        return Segment(
            id=r.id,
            name=r.name,
            filter=r.filter,
            description=r.description,
            created_by=r.created_by,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )

    def add(self, segment: Segment) -> Segment:
        values = {
            "name": segment.name,
            "filter": segment.filter,
            "description": segment.description,
            "created_by": segment.created_by,
            "created_at": segment.created_at,
            "updated_at": segment.updated_at,
        }
        try:
            with self.conn.begin_nested():
                new_id = self.conn.execute(insert(t.segments).values(values).returning(t.segments.c.id))
                segment_id = int(new_id.scalar_one())
        except IntegrityError:
            raise AlreadyExists(f"a segment named {segment.name!r} already exists", field="name") from None
        return replace(segment, id=segment_id)

    def get(self, name: str) -> Segment | None:
        row = self.conn.execute(select(t.segments).where(t.segments.c.name == name)).first()
        return None if row is None else self._to_segment(row)

    def all(self) -> list[Segment]:
        rows = self.conn.execute(select(t.segments).order_by(t.segments.c.name))
        return [self._to_segment(r) for r in rows]

    def delete(self, name: str) -> bool:
        return bool(self.conn.execute(delete(t.segments).where(t.segments.c.name == name)).rowcount)

    def set_filter(self, name: str, filter_text: str, *, at: datetime) -> None:
        self.conn.execute(
            update(t.segments).where(t.segments.c.name == name).values(filter=filter_text, updated_at=at)
        )

    def count(self, flt: Filter, *, as_of: datetime) -> int:
        q = select(func.count()).select_from(t.leads).where(self.where(flt, as_of=as_of))
        return int(self.conn.execute(q).scalar_one())

    def lead_ids(
        self, flt: Filter, *, as_of: datetime, limit: int | None = None, offset: int = 0
    ) -> list[int]:
        q = select(t.leads.c.id).where(self.where(flt, as_of=as_of)).order_by(t.leads.c.id).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        return [int(r[0]) for r in self.conn.execute(q)]

    def search(self, flt: Filter, leads: LeadFilter, *, as_of: datetime) -> tuple[int, list[Lead]]:
        """Members that also pass the listing's filter (stage, status, owner), a page of them, and the total."""
        conds: list[Bool] = [self.where(flt, as_of=as_of)]
        if leads.stage:
            conds.append(t.leads.c.stage == leads.stage)
        if leads.status:
            conds.append(t.leads.c.status == leads.status)
        if leads.owner_id is not None:
            conds.append(t.leads.c.owner_id == leads.owner_id)
        if leads.unassigned:
            conds.append(t.leads.c.owner_id.is_(None))
        where = and_(true(), *conds)
        total = int(self.conn.execute(select(func.count()).select_from(t.leads).where(where)).scalar_one())
        repo = SqlLeadRepository(self.conn)
        q = page(repo._select().where(where), leads)
        return total, repo._rows_to_leads(self.conn.execute(q).all())
