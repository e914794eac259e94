"""Lead use cases: capture-or-match, look up, list, transition, merge, and show a lead's whole story."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from leadstage.domain import identity as ident_rules
from leadstage.domain.activities import Activity
from leadstage.domain.errors import ConcurrencyConflict, NotFound, PermissionDenied, ValidationError
from leadstage.domain.leads import (
    Account,
    ExternalId,
    Identity,
    Lead,
    PropertyValue,
    as_id,
    lead_summary,
    merge_properties,
)
from leadstage.domain.qualification import (
    DEFAULT_SETUP,
    Framework,
    QualificationSetup,
    evaluate,
    parse_answer,
)
from leadstage.domain.stages import (
    TRANSITIONS,
    Action,
    Actor,
    HistoryEntry,
    HistoryKind,
    QualificationCheck,
    Role,
    TransitionRequest,
    allowed_actions,
    creation_entry,
    entry_fields,
    initial_state,
    parse_action,
    plan_transition,
    role_may,
)
from leadstage.services import audit, disqualification
from leadstage.services.ports import IdentityNormalizer, LeadFilter, UnitOfWork

BUILTIN_ADMIN = Actor(name="admin", role=Role.ADMIN)
DUPLICATE_SIMILARITY = 88.0


@dataclass
class LeadInput:
    """A lead as it arrives from a file, a form or the API, before matching."""

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    company: str | None = None
    website: str | None = None
    external_ids: list[ExternalId] = field(default_factory=list)
    account_id: int | None = None
    source: str | None = None
    created_at: datetime | None = None
    properties: dict[str, PropertyValue] = field(default_factory=dict)
    fingerprint: str | None = None


Outcome = Literal["created", "updated", "unchanged"]


def identity_of(incoming: LeadInput, normalizer: IdentityNormalizer) -> tuple[Identity, list[str]]:
    warnings: list[str] = []
    email_norm = email_valid = None
    if incoming.email:
        checked = normalizer.email(incoming.email)
        email_norm, email_valid = checked.canonical, checked.valid
        if not checked.valid:
            warnings.append(
                f"email {incoming.email!r} is not valid ({checked.problem}); kept, not used to match"
            )
    phone_e164 = phone_valid = None
    if incoming.phone:
        phone = normalizer.phone(incoming.phone)
        phone_e164, phone_valid = phone.e164, phone.valid
        if not phone.valid:
            warnings.append(
                f"phone {incoming.phone!r} is not valid ({phone.problem}); kept, not used to match"
            )
    identity = Identity(
        email=incoming.email.strip() if incoming.email else None,
        email_normalized=email_norm,
        email_valid=email_valid,
        phone=incoming.phone.strip() if incoming.phone else None,
        phone_e164=phone_e164,
        phone_valid=phone_valid,
        first_name=incoming.first_name,
        last_name=incoming.last_name,
        job_title=incoming.job_title,
        company=incoming.company,
    )
    return identity, warnings


class LeadLookup(Protocol):
    """Where matching looks leads up: storage directly, or a batch's prefetched :class:`LeadIndex`."""

    def by_email(self, canonical: str) -> Lead | None: ...

    def by_external_id(self, ext: ExternalId) -> Lead | None: ...

    def by_phone(self, e164: str) -> Lead | None: ...

    def by_fingerprint(self, fingerprint: str) -> Lead | None: ...

    def account_by_domain(self, domain: str) -> int | None: ...

    def remember(self, lead: Lead) -> None: ...

    def remember_account(self, domain: str, account_id: int) -> None: ...


class StorageLookup:
    """Looks every identifier up in storage (one lead at a time: capture, API, CLI)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def by_email(self, canonical: str) -> Lead | None:
        return self.uow.leads.find_by_email(canonical)

    def by_external_id(self, ext: ExternalId) -> Lead | None:
        found = self.uow.leads.find_by_external_id(ext.value, ext.system)
        return found[0] if found else None

    def by_phone(self, e164: str) -> Lead | None:
        return self.uow.leads.find_by_phone(e164)

    def by_fingerprint(self, fingerprint: str) -> Lead | None:
        return self.uow.leads.find_by_fingerprint(fingerprint)

    def account_by_domain(self, domain: str) -> int | None:
        account = self.uow.accounts.find_by_domain(domain)
        return None if account is None else account.id

    def remember(self, lead: Lead) -> None:
        return None

    def remember_account(self, domain: str, account_id: int) -> None:
        return None


class LeadIndex:
    """The leads one import batch may match, fetched in a few set-based queries, plus those it creates.

    A miss here is authoritative: everything in storage with one of the batch's identifiers was fetched.
    """

    def __init__(self) -> None:
        self.email: dict[str, Lead] = {}
        self.external: dict[tuple[str, str], Lead] = {}
        self.phone: dict[str, Lead] = {}
        self.fingerprint: dict[str, Lead] = {}
        self.domains: dict[str, int] = {}

    @classmethod
    def prefetch(
        cls,
        uow: UnitOfWork,
        *,
        emails: set[str],
        external_ids: set[tuple[str, str]],
        phones: set[str],
        fingerprints: set[str],
        domains: set[str],
    ) -> LeadIndex:
        index = cls()
        for lead in uow.leads.find_many(
            emails=emails, external_ids=external_ids, phones=phones, fingerprints=fingerprints
        ):
            index.remember(lead)
        index.domains = uow.accounts.ids_by_domain(domains)
        return index

    def by_email(self, canonical: str) -> Lead | None:
        return self.email.get(canonical)

    def by_external_id(self, ext: ExternalId) -> Lead | None:
        return self.external.get((ext.system, ext.value))

    def by_phone(self, e164: str) -> Lead | None:
        return self.phone.get(e164)

    def by_fingerprint(self, fingerprint: str) -> Lead | None:
        return self.fingerprint.get(fingerprint)

    def account_by_domain(self, domain: str) -> int | None:
        return self.domains.get(domain)

    def remember(self, lead: Lead) -> None:
        ident = lead.identity
        if ident.email_normalized:
            self.email[ident.email_normalized] = lead
        for ext in lead.external_ids:
            self.external[(ext.system, ext.value)] = lead
        if ident.phone_e164:  # like storage: a shared phone finds the oldest lead
            current = self.phone.get(ident.phone_e164)
            if current is None or current.id == lead.id or (lead.id or 0) < (current.id or 0):
                self.phone[ident.phone_e164] = lead
        if lead.fingerprint:
            self.fingerprint[lead.fingerprint] = lead

    def remember_account(self, domain: str, account_id: int) -> None:
        self.domains[domain] = account_id


def find_match(
    lookup: LeadLookup,
    identity: Identity,
    external_ids: list[ExternalId],
    fingerprint: str | None,
    forgotten: Sequence[ExternalId] = (),
) -> Lead | None:
    """The existing lead this identity belongs to: by email, then external id, then phone (R2); then the
    anonymous lead of a person who asked to be forgotten, by the hashes of the same identifiers."""
    if identity.email_normalized:
        found = lookup.by_email(identity.email_normalized) or lookup.by_external_id(
            ExternalId(ident_rules.MERGED_EMAIL, identity.email_normalized)
        )
        if found is not None:
            return found
    for ext in external_ids:
        found = lookup.by_external_id(ext)
        if found is not None:
            return found
    if identity.phone_e164:
        found = lookup.by_phone(identity.phone_e164)
        # A phone is weak evidence (a switchboard is shared): it never joins two different valid emails.
        if found is not None and not (identity.email_normalized and found.identity.email_normalized):
            return found
    for key in forgotten:
        found = lookup.by_external_id(key)
        if found is not None:
            return found
    has_identity = bool(identity.email_normalized or external_ids or identity.phone_e164)
    if fingerprint and not has_identity:
        return lookup.by_fingerprint(fingerprint)
    return None


def _link_account(
    uow: UnitOfWork,
    lookup: LeadLookup,
    incoming: LeadInput,
    identity: Identity,
    *,
    at: datetime,
    auto_create: bool,
) -> int | None:
    if incoming.account_id is not None:
        if uow.accounts.get(incoming.account_id) is None:
            raise ValidationError(f"account {incoming.account_id} does not exist", field="account_id")
        return incoming.account_id
    domain = account_domain(incoming, identity)
    if domain is None:
        return None
    account_id = lookup.account_by_domain(domain)
    if account_id is not None or not auto_create:
        return account_id
    account_id = uow.accounts.add(Account(id=None, name=incoming.company or domain, domain=domain), at=at)
    lookup.remember_account(domain, account_id)
    return account_id


def account_domain(incoming: LeadInput, identity: Identity) -> str | None:
    """The company domain a lead belongs to: its website, else its company email's domain."""
    domain = ident_rules.normalize_domain(incoming.website) if incoming.website else None
    if domain is None and identity.email_valid:
        domain = ident_rules.company_domain(identity.email_normalized)
    return domain


def upsert_lead(
    uow: UnitOfWork,
    incoming: LeadInput,
    *,
    normalizer: IdentityNormalizer,
    at: datetime,
    actor: str = "import",
    auto_create_accounts: bool = True,
    lookup: LeadLookup | None = None,
    identity: tuple[Identity, list[str]] | None = None,
    forgotten: Sequence[ExternalId] = (),
) -> tuple[Lead, Outcome, list[str]]:
    """Create the lead, or recognise it and fill in what is new. Never a silent merge of two people.

    ``forgotten``: the hashed identifiers of this person (``privacy.forgotten_keys``), when anyone was
    ever forgotten: a returning forgotten person finds their anonymous lead.
    """
    lookup = lookup or StorageLookup(uow)
    ident, warnings = identity or identity_of(incoming, normalizer)
    existing = find_match(lookup, ident, incoming.external_ids, incoming.fingerprint, forgotten)
    if existing is None:
        created = incoming.created_at or at
        lead = Lead(
            id=None,
            identity=ident,
            state=initial_state(),
            created_at=created,
            updated_at=at,
            external_ids=list(incoming.external_ids),
            properties=dict(incoming.properties),
            first_source=incoming.source,
            latest_source=incoming.source,
            first_touch_at=incoming.created_at,
            last_touch_at=incoming.created_at,
            fingerprint=None if _has_identity(ident, incoming) else incoming.fingerprint,
        )
        lead.account_id = _link_account(uow, lookup, incoming, ident, at=at, auto_create=auto_create_accounts)
        lead_id = uow.leads.add(lead)
        uow.leads.add_history(lead_id, creation_entry(actor=actor, at=created, source=incoming.source))
        lookup.remember(lead)
        return lead, "created", warnings
    merged_identity = existing.identity.filled_from(ident)
    # a new job title or employer is news about the person (their fit may have changed): it wins
    newer = {name: value for name in ("job_title", "company") if (value := getattr(ident, name))}
    if newer:
        merged_identity = replace(merged_identity, **newer)
    known_ext = {(e.system, e.value) for e in existing.external_ids}
    new_ext = [e for e in incoming.external_ids if (e.system, e.value) not in known_ext]
    # An external id already used by another lead stays with that lead (no silent merge).
    new_ext = [e for e in new_ext if lookup.by_external_id(e) is None]
    properties = merge_properties(existing.properties, incoming.properties)
    account_id = existing.account_id
    if account_id is None:
        account_id = _link_account(
            uow, lookup, incoming, merged_identity, at=at, auto_create=auto_create_accounts
        )
    changed = (
        merged_identity != existing.identity
        or new_ext
        or properties != existing.properties
        or account_id != existing.account_id
        or (existing.first_source is None and incoming.source)
        or (incoming.source is not None and incoming.source != existing.latest_source)
    )
    if not changed:
        return existing, "unchanged", warnings
    updated = replace(
        existing,
        identity=merged_identity,
        external_ids=[*existing.external_ids, *new_ext],
        properties=properties,
        account_id=account_id,
        updated_at=at,
        first_source=existing.first_source or incoming.source,
        latest_source=incoming.source or existing.latest_source,
    )
    stored = uow.leads.update(updated)
    lookup.remember(stored)
    return stored, "updated", warnings


def _has_identity(identity: Identity, incoming: LeadInput) -> bool:
    return bool(identity.email_normalized or incoming.external_ids or identity.phone_e164)


def resolve_lead(uow: UnitOfWork, ref: str | int) -> Lead:
    """Find a lead by internal id, then external id, then email (merged ids lead to the survivor)."""
    text = str(ref).strip()
    if not text:
        raise ValidationError("a lead reference is required", field="id")
    if (as_number := as_id(text)) is not None:
        lead = uow.leads.get(as_number)
        if lead is not None:
            return lead
        survivor = uow.leads.merged_into(as_number)
        if survivor is not None and (lead := uow.leads.get(survivor)) is not None:
            return lead
    by_ext = uow.leads.find_by_external_id(text)
    if len(by_ext) == 1:
        return by_ext[0]
    if len(by_ext) > 1:
        ids = ", ".join(str(lead.id) for lead in by_ext)
        raise ValidationError(
            f"external id {text!r} names several leads ({ids}); use the internal id", field="id"
        )
    if "@" in text:
        for canonical in ident_rules.lookup_forms(text):
            lead = uow.leads.find_by_email(canonical)
            if lead is not None:
                return lead
            merged = uow.leads.find_by_external_id(canonical, ident_rules.MERGED_EMAIL)
            if merged:
                return merged[0]
    raise NotFound(f"no lead with id, external id or email {text!r}")


def resolve_actor(uow: UnitOfWork, username: str | None) -> Actor:
    """The built-in administrator without a name; else that user, with their role and team."""
    if username is None:
        return BUILTIN_ADMIN
    user = uow.users.get_by_username(username)
    if user is None:
        raise NotFound(f"no user {username!r} (see `leadstage users list`)")
    if not user.active:
        raise ValidationError(f"user {username!r} is deactivated", field="as")
    return Actor(name=user.username, role=Role(user.role), user_id=user.id, team=user.team)


def transition_lead(
    uow: UnitOfWork,
    ref: str | int,
    request: TransitionRequest,
    *,
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
    setup: QualificationSetup = DEFAULT_SETUP,
) -> tuple[Lead, HistoryEntry]:
    """Take one action of the transition table on a lead and record it; the caller commits."""
    action = parse_action(request.action)  # input is validated before anything is looked up
    lead = resolve_lead(uow, ref)
    if expected_version is not None and lead.version != expected_version:
        raise ConcurrencyConflict(f"lead {lead.id} is at version {lead.version}, not {expected_version}")
    qualification = None
    if action is Action.QUALIFY_SQL:
        assert lead.id is not None
        framework = setup.for_team(lead.state.owner_team)
        confirmed = uow.qualifications.confirmed(lead.id, cycle=lead.cycle, framework=framework.name)
        qualification = evaluate(confirmed, framework.policy)
    outcome = plan_transition(lead.state, request, actor=actor, at=at, qualification=qualification)
    changed = lead.with_state(outcome.state, at=at)
    if action is Action.ACCEPT and changed.owner_id is None and actor.user_id is not None:
        changed.owner_id = actor.user_id  # accepting an MQL from the unassigned queue takes it on
    updated = uow.leads.update(changed)
    assert updated.id is not None
    uow.leads.add_history(updated.id, outcome.entry)
    disqualification.on_transition(uow, updated, outcome.entry, at=at)
    return updated, outcome.entry


EDITABLE_FIELDS = ("first_name", "last_name", "job_title", "company")


def update_lead(
    uow: UnitOfWork,
    ref: str | int,
    *,
    fields: Mapping[str, str | None],
    properties: Mapping[str, Any],
    actor: Actor,
    at: datetime,
    expected_version: int | None = None,
) -> Lead:
    """Change a lead's name, title, company or custom properties (``None`` removes a property); the caller
    commits. Identifiers (email, phone, external ids) change only by merge or forget."""
    unknown = [name for name in fields if name not in EDITABLE_FIELDS]
    if unknown:
        raise ValidationError(
            f"{unknown[0]} cannot be changed here; editable: {', '.join(EDITABLE_FIELDS)} and properties",
            field=unknown[0],
        )
    if actor.role in (Role.VIEWER, Role.SYSTEM):
        raise PermissionDenied(f"role {actor.role.value} may not edit leads")
    lead = resolve_lead(uow, ref)
    if actor.role is Role.SALES_REP and lead.owner_id not in (None, actor.user_id):
        raise PermissionDenied(f"{actor.name} may edit only their own and unassigned leads")
    if expected_version is not None and lead.version != expected_version:
        raise ConcurrencyConflict(f"lead {lead.id} is at version {lead.version}, not {expected_version}")
    changes: dict[str, Any] = {
        k: (v.strip() or None) if isinstance(v, str) else None for k, v in fields.items()
    }
    identity = replace(lead.identity, **changes)
    props = dict(lead.properties)
    for key, value in properties.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    return uow.leads.update(replace(lead, identity=identity, properties=props, updated_at=at))


def record_qualification(
    uow: UnitOfWork,
    ref: str | int,
    answers: Mapping[str, str],
    *,
    actor: Actor,
    at: datetime,
    setup: QualificationSetup = DEFAULT_SETUP,
    framework: str | None = None,
) -> tuple[Lead, Framework, QualificationCheck]:
    """Record criteria of a qualification framework on the lead's current cycle (each answer as its
    text form, e.g. ``budget="confirmed amount=50000 currency=EUR evidence='CFO'"``), and where the policy
    stands now. Only sales roles qualify; input is checked before the lead is looked up."""
    if actor.role not in (Role.ADMIN, Role.SALES_REP, Role.SALES_MANAGER):
        raise PermissionDenied(f"role {actor.role.value} may not record qualification; only sales can")
    if framework is not None and framework not in setup.frameworks:
        raise ValidationError(
            f"unknown framework {framework!r}; known: {', '.join(setup.frameworks)}", field="framework"
        )
    if not answers:
        raise ValidationError("nothing to record: give at least one criterion", field="criteria")
    lead = resolve_lead(uow, ref)
    assert lead.id is not None
    chosen = setup.frameworks[framework] if framework else setup.for_team(lead.state.owner_team)
    parsed = {name: parse_answer(chosen, name, text) for name, text in answers.items()}
    if not role_may(TRANSITIONS[Action.QUALIFY_SQL], actor, lead.state):
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) may not qualify this lead: it is not theirs"
        )
    for criterion, answer in parsed.items():
        uow.qualifications.record(
            lead.id,
            cycle=lead.cycle,
            framework=chosen.name,
            criterion=criterion,
            confirmed=answer.confirmed,
            value=answer.value,
            evidence=answer.evidence,
            recorded_by=actor.name,
            at=at,
        )
    check = evaluate(
        uow.qualifications.confirmed(lead.id, cycle=lead.cycle, framework=chosen.name), chosen.policy
    )
    return lead, chosen, check


def merge_leads(
    uow: UnitOfWork, keep_ref: str | int, other_ref: str | int, *, actor: Actor, at: datetime
) -> Lead:
    """Merge OTHER into KEEP: every activity (but an event KEEP already holds under the same key), history
    row and identifier moves; the merge is recorded."""
    if actor.role not in (Role.ADMIN, Role.MARKETING, Role.SALES_MANAGER):
        raise PermissionDenied(f"role {actor.role.value} may not merge leads")
    keep = resolve_lead(uow, keep_ref)
    other = resolve_lead(uow, other_ref)
    if keep.id == other.id:
        raise ValidationError(f"cannot merge lead {keep.id} with itself", field="other_id")
    assert keep.id is not None
    assert other.id is not None
    # The survivor keeps its own identity and takes what it lacks from the other; its email stays unique.
    identity = keep.identity.filled_from(
        replace(other.identity, email=None, email_normalized=None, email_valid=None)
        if keep.identity.email_normalized
        else other.identity
    )
    uow.leads.absorb(keep.id, other, actor=actor.name, at=at)
    furthest = max(keep.state.furthest_stage, other.state.furthest_stage, key=lambda s: s.rank)
    survivor = replace(
        keep,
        identity=identity,
        properties=merge_properties(other.properties, keep.properties),
        state=replace(keep.state, furthest_stage=furthest),
        account_id=keep.account_id or other.account_id,
        external_ids=keep.external_ids
        + [e for e in other.external_ids if e not in keep.external_ids]
        + _merged_email_alias(keep, other),
        first_source=_earlier_source(keep, other),
        updated_at=at,
        first_touch_at=_min_time(keep.first_touch_at, other.first_touch_at),
        last_touch_at=_max_time(keep.last_touch_at, other.last_touch_at),
    )
    updated = uow.leads.update(survivor)
    uow.leads.add_history(
        keep.id,
        HistoryEntry(
            action=HistoryKind.MERGE.value,
            from_stage=keep.state.stage,
            from_status=keep.state.status,
            to_stage=keep.state.stage,
            to_status=keep.state.status,
            actor=actor.name,
            at=at,
            cycle=keep.state.cycle,
            note=f"merged lead {other.id} ({other.identity.email or other.identity.full_name or 'no email'}) into "
            f"this lead",
            data={"merged_id": other.id},
        ),
    )
    audit.record(uow, actor, "lead.merge", at=at, target=str(keep.id), merged_id=other.id)
    return updated


def _merged_email_alias(keep: Lead, other: Lead) -> list[ExternalId]:
    """The merged lead's address, kept so that it still finds the survivor."""
    email = other.identity.email_normalized
    if not email or email == keep.identity.email_normalized:
        return []
    alias = ExternalId(ident_rules.MERGED_EMAIL, email)
    return [] if alias in keep.external_ids else [alias]


def _earlier_source(a: Lead, b: Lead) -> str | None:
    if a.first_touch_at and b.first_touch_at and b.first_touch_at < a.first_touch_at:
        return b.first_source or a.first_source
    return a.first_source or b.first_source


def _min_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((x for x in (a, b) if x is not None), default=None)


def _max_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def possible_duplicates(uow: UnitOfWork, lead: Lead, normalizer: IdentityNormalizer) -> list[dict[str, Any]]:
    """Leads that look like the same person by name and company: suggestions only, never merged silently."""
    me = _fuzzy_key(lead)
    if not me.strip():
        return []
    out = []
    for other in uow.leads.similar_candidates(lead):
        score = normalizer.name_similarity(me, _fuzzy_key(other))
        if score >= DUPLICATE_SIMILARITY:
            out.append(
                {
                    "id": other.id,
                    "email": other.identity.email,
                    "name": other.identity.full_name,
                    "company": other.identity.company,
                    "similarity": round(score, 1),
                }
            )
    return sorted(out, key=lambda d: -float(d["similarity"] or 0))[:10]


def _fuzzy_key(lead: Lead) -> str:
    return f"{lead.identity.full_name} {lead.identity.company or ''}".strip()


def list_leads(uow: UnitOfWork, flt: LeadFilter) -> tuple[int, list[dict[str, Any]]]:
    total, leads = uow.leads.search(flt)
    return total, [lead_summary(lead) for lead in leads]


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    fields = entry_fields(entry)
    return {**fields, "at": entry.at.isoformat()}


#: Parts of a lead's document that cost more than the lead itself: its activities (the long timeline)
#: and the leads that may be the same person (fuzzy matching over similar names).
LEAD_PARTS = frozenset({"activities", "duplicates"})


def activity_json(a: Activity) -> dict[str, Any]:
    return {
        "type": a.type,
        "occurred_at": a.occurred_at.isoformat(),
        "source": a.source,
        "campaign": a.campaign,
        "content": a.content,
        "properties": dict(a.properties),
    }


def lead_activities(
    uow: UnitOfWork, ref: str | int, *, limit: int, before: tuple[datetime, int] | None = None
) -> tuple[int, list[Activity]]:
    """A lead's activities, latest first, ``limit`` at a time after the ``before`` (time, id) cursor."""
    lead = resolve_lead(uow, ref)
    assert lead.id is not None
    return lead.id, uow.activities.for_lead(lead.id, limit=limit, before=before)


def lead_details(
    uow: UnitOfWork,
    ref: str | int,
    *,
    normalizer: IdentityNormalizer,
    actor: Actor = BUILTIN_ADMIN,
    activity_limit: int = 50,
    include: Collection[str] = LEAD_PARTS,
) -> dict[str, Any]:
    """Everything about one lead: identity, state, properties, history, scores, routing, and (``include``)
    its recent activities and possible duplicates."""
    # an internal id (what integrations hold) is read with everything else in one statement
    page = uow.leads.page(number) if (number := as_id(str(ref).strip())) is not None else None
    if page is None:
        resolved = resolve_lead(uow, ref)
        assert resolved.id is not None
        page = uow.leads.page(resolved.id)
        assert page is not None
    lead, facts = page
    assert lead.id is not None
    details = lead_summary(lead)
    ident = lead.identity
    account = facts.account
    details.update(
        email_valid=ident.email_valid,
        phone_e164=ident.phone_e164,
        phone_valid=ident.phone_valid,
        external_ids=[{"system": e.system, "value": e.value} for e in lead.external_ids],
        owner=facts.owner,
        account=None
        if account is None
        else {
            "id": account.id,
            "name": account.name,
            "domain": account.domain,
            "industry": account.industry,
            "employees": account.employees,
            "annual_revenue": account.annual_revenue,
            "country": account.country,
        },
        version=lead.version,
        first_touch_at=_iso(lead.first_touch_at),
        last_touch_at=_iso(lead.last_touch_at),
        properties=dict(lead.properties),
        history=[history_json(h) for h in uow.leads.history(lead.id)],
        activity_count=facts.activity_count,
        allowed_actions=allowed_actions(lead.state, actor),
    )
    if "activities" in include:
        details["activities"] = [
            activity_json(a) for a in uow.activities.for_lead(lead.id, limit=activity_limit)
        ]
    if "duplicates" in include:
        details["possible_duplicates"] = possible_duplicates(uow, lead, normalizer)
    details["disqualification"] = disqualification.disqualification_facts(
        uow.disqualifications.latest(lead.id) if facts.has_disqualification else None
    )
    current = uow.routing.current(lead.id) if facts.has_assignment else None
    details["assignment"] = (
        None
        if current is None
        else {
            "team": current.team,
            "user": current.username,
            "rule": current.rule,
            "at": current.at.isoformat(),
            "sla_due_at": _iso(current.sla_due_at),
            "sla_state": current.sla_state,
            "responded_at": _iso(current.responded_at),
        }
    )
    details["scores"] = {
        "fit_grade": facts.fit_grade,
        "engagement_level": facts.engagement_level,
        "priority": facts.priority,
    }
    return details


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
