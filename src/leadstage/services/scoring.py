"""Scoring use cases: activate a model, score in batch or incrementally, explain, promote MQLs.

Batch (``score_all``) and incremental (``score_new_activities``) both fold activities into the same
per-rule states with the same pure functions (``domain.scoring.fold``), so they agree; engagement decay is
evaluated as of the time a score is read, so ``explain`` is always current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from leadstage.domain.activities import decoded_properties
from leadstage.domain.errors import NotFound, PermissionDenied
from leadstage.domain.scoring import (
    ActivityFacts,
    EngagementResult,
    FitEvaluator,
    FitResult,
    GroupFolder,
    Predictive,
    RuleState,
    ScoringModel,
    StateTuple,
    engagement_summary,
    evaluate_engagement,
    evaluate_fit,
    fold_all,
    merge_states,
    mql_reasons,
    parse_model,
    priority,
    states_json,
)
from leadstage.domain.stages import (
    Actor,
    LeadState,
    Role,
    Stage,
    Status,
    TransitionOutcome,
    TransitionRequest,
    plan_transition,
)
from leadstage.services.leads import resolve_lead
from leadstage.services.ports import (
    EngagementRow,
    EngagementWrite,
    LeadScoreRow,
    NullProgress,
    Progress,
    ScoreWrite,
    StoredModel,
    UnitOfWork,
    UnitOfWorkFactory,
)

SYSTEM = Actor.system()
Loader = Callable[[str, str], tuple[Any, Callable[[tuple[Any, ...]], int | None]]]


@dataclass
class ScoreRunReport:
    leads: int = 0
    changed: int = 0
    promoted: int = 0
    activities: int = 0
    seconds: float = 0.0
    model_version: int = 0
    warnings: list[str] = field(default_factory=list)


def compile_model(
    source: str,
    *,
    name: str,
    load: Loader,
    known_properties: Mapping[str, str] | None = None,
    activity_types: Iterable[str] | None = None,
) -> ScoringModel:
    """Parse and validate YAML text into a model (errors name the line and key)."""
    data, locate = load(source, name)
    if activity_types is None:
        return parse_model(data, locate=locate, known_properties=known_properties)
    return parse_model(data, locate=locate, known_properties=known_properties, activity_types=activity_types)


def summary(model: ScoringModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "icp": {"name": model.icp_name, "version": model.icp_version},
        "fit_rules": [r.name for r in model.fit_rules],
        "exclusions": [e.name for e in model.exclusions],
        "engagement_rules": [r.name for r in model.engagement_rules],
        "mql": [c.name for c in model.mql_criteria] + [f"qualifying: {q}" for q in model.qualifying_rules],
    }


_COMPILED: dict[str, ScoringModel] = {}


def load_active(uow: UnitOfWork, load: Loader) -> tuple[StoredModel, ScoringModel] | None:
    """The active model, compiled once per process and source text."""
    stored = uow.scoring.active_model()
    if stored is None:
        return None
    key = stored.source
    model = _COMPILED.get(key)
    if model is None:
        _COMPILED.clear()
        model = _COMPILED[key] = compile_model(
            stored.source, name=f"scoring model v{stored.version}", load=load
        )
    return stored, model


def activate_model(
    uow: UnitOfWork, source: str, *, name: str, load: Loader, actor: Actor, at: datetime
) -> tuple[StoredModel, ScoringModel]:
    """Validate and store a new version and make it the active one. An invalid model changes nothing."""
    if actor.role not in (Role.ADMIN, Role.MARKETING):
        raise PermissionDenied(f"role {actor.role.value} may not activate scoring models")
    known = {k: v.value for k, v in uow.properties.definitions("lead").items()}
    types = uow.activities.known_types()
    model = compile_model(source, name=name, load=load, known_properties=known, activity_types=types)
    stored = uow.scoring.add_model(
        name=model.name, source=source, summary=summary(model), created_by=actor.name, at=at, activate=True
    )
    return stored, model


def _states(raw: Mapping[str, Sequence[Any]] | None) -> dict[str, RuleState]:
    return {name: RuleState.from_json(v) for name, v in (raw or {}).items()}


def activity_facts(
    rows: Iterable[tuple[int, str, float, str | None, str | None, str | None, Any]],
    property_types: set[str] | None = None,
) -> dict[int, list[ActivityFacts]]:
    """Activities grouped by lead; properties are decoded only for types whose rules look at them."""
    out: dict[int, list[ActivityFacts]] = {}
    for lead_id, type_, ts, source, campaign, content, props in rows:
        if props is None or (property_types is not None and type_ not in property_types):
            properties: Mapping[str, Any] = {}
        else:
            properties = decoded_properties(props)
        facts = ActivityFacts(type_, float(ts), source, campaign, content, properties)
        found = out.get(lead_id)
        if found is None:
            out[lead_id] = [facts]
        else:
            found.append(facts)
    return out


def property_filtered_types(model: ScoringModel) -> set[str]:
    """Activity types whose rules filter on activity properties (only those need the properties read)."""
    return {
        r.activity_type
        for r in model.engagement_rules
        if any(key not in ("source", "campaign", "content") for key, _c in r.where)
    }


def _needs_properties(model: ScoringModel) -> bool:
    return bool(property_filtered_types(model))


class _Scored(NamedTuple):
    row: LeadScoreRow
    fit: FitResult
    engagement: EngagementResult
    states: dict[str, RuleState]


def _write(uow: UnitOfWork, scored: Sequence[_Scored], *, model_id: int, at: datetime) -> int:
    writes = []
    changed = 0
    for row, fit, engagement, states in scored:
        grade, level = fit.grade, engagement.level
        code = priority(grade, level)
        same = grade == row.fit_grade and level == row.engagement_level
        is_change = not same or row.score_model_id != model_id
        changed += is_change
        writes.append(
            ScoreWrite(
                row.lead_id,
                fit.score,
                grade,
                engagement.score,
                level,
                code,
                fit.excluded_by,
                states_json(states),
                is_change,
                row.stamp,
                same and code == row.priority,
            )
        )
    uow.scoring.write_scores(writes, model_id=model_id, at=at)
    return changed


def _promote(uow: UnitOfWork, model: ScoringModel, scored: Sequence[_Scored], *, at: datetime) -> int:
    """Promote every lead that meets the MQL criteria, once per cycle, through the transition table.

    Set-based: one query for what the rules need (version, furthest stage, earlier promotions, when the
    lead entered nurture), the pure table decides each promotion, one statement writes them all.
    """
    plans = _promotion_plans(uow, model, scored, at=at)
    if plans:
        uow.scoring.apply_transitions(plans, at=at)
    return len(plans)


def _promotion_plans(
    uow: UnitOfWork, model: ScoringModel, scored: Sequence[_Scored], *, at: datetime
) -> list[tuple[int, int, TransitionOutcome]]:
    """The promotions the model's MQL criteria call for now: (lead id, version, planned transition)."""
    candidates = []
    for s in scored:
        row = s.row
        if row.stage != "lead" or row.status not in ("open", "nurture"):
            continue
        reasons = mql_reasons(model, s.fit, s.engagement, row.predictive)
        if reasons:
            candidates.append((s, reasons))
    if not candidates:
        return []
    facts = uow.scoring.promotion_facts([s.row.lead_id for s, _r in candidates])
    plans = []
    for s, reasons in candidates:
        row, known = s.row, facts.get(s.row.lead_id)
        if known is None or known.stage != "lead" or known.status not in ("open", "nurture"):
            continue
        if known.status == "open" and known.promoted_this_cycle:
            continue
        if known.status == "nurture" and known.nurture_since is not None:
            # back from nurture only on new engagement since the lead was handed back
            positive = {r.name for r in model.engagement_rules if r.points > 0}
            latest = max((st.last for name, st in s.states.items() if name in positive), default=0.0)
            if latest <= known.nurture_since.timestamp():
                continue
        state = LeadState(
            stage=Stage(known.stage),
            status=Status(known.status),
            cycle=known.cycle,
            furthest_stage=Stage(known.furthest_stage),
            owner_id=known.owner_id,
        )
        outcome = plan_transition(
            state, TransitionRequest("promote_mql", criteria=reasons), actor=SYSTEM, at=at
        )
        plans.append((row.lead_id, known.version, outcome))
    return plans


def count_promotions(uow: UnitOfWork, model: ScoringModel, *, at: datetime, chunk: int = 5_000) -> int:
    """How many leads ``model`` would promote to MQL if it were activated now; reads, writes nothing."""
    fit_of = FitEvaluator(model)
    count = 0
    for id_range in list(uow.scoring.lead_id_ranges(chunk)):
        rows = uow.scoring.lead_rows(id_range=id_range, facts=model.fit_subjects, with_state=False)
        states_of, _activities = _range_states(uow, model, id_range, at.timestamp())
        scored = [
            _Scored(row, fit_of(row.facts), engagement_summary(model, states, at.timestamp()), states)
            for row in rows
            for states in (states_of.get(row.lead_id, _NO_STATES),)
        ]
        count += len(_promotion_plans(uow, model, scored, at=at))
    return count


RangeRunner = Callable[[Sequence[tuple[int, int]]], Iterable[ScoreRunReport]]
"""Runs :func:`score_range` over id ranges (in this process, or in several) and yields each one's report."""


def score_range(
    uow_factory: UnitOfWorkFactory,
    id_range: tuple[int, int],
    *,
    load: Loader,
    at: datetime,
    promote: bool = True,
) -> ScoreRunReport:
    """Score the leads whose ids fall in a range, from their facts and all their activities; commits."""
    report = ScoreRunReport()
    with uow_factory() as uow:
        active = load_active(uow, load)
        if active is None:
            raise NotFound("no active scoring model: run `leadstage init` or `leadstage score activate FILE`")
        stored, model = active
        report.model_version = stored.version
        rows = uow.scoring.lead_rows(id_range=id_range, facts=model.fit_subjects, with_state=False)
        states_of, report.activities = _range_states(uow, model, id_range, at.timestamp())
        fit_of = _fit_evaluator(stored.id, model)
        scored = [
            _Scored(row, fit_of(row.facts), engagement_summary(model, states, at.timestamp()), states)
            for row in rows
            for states in (states_of.get(row.lead_id, _NO_STATES),)
        ]
        # Computing only read; writing starts a fresh transaction, so parallel workers queue for the
        # write lock instead of failing on a stale read snapshot.
        uow.commit()
        report.changed += _write(uow, scored, model_id=stored.id, at=at)
        if promote:
            report.promoted += _promote(uow, model, scored, at=at)
        uow.commit()
        report.leads += len(rows)
    return report


_NO_STATES: dict[str, RuleState] = {}


def _range_states(
    uow: UnitOfWork, model: ScoringModel, id_range: tuple[int, int], ref: float
) -> tuple[dict[int, dict[str, RuleState]], int]:
    """Every lead's per-rule states in a range, and how many activities made them.

    Where the database can, activities are read as aggregates per lead, type and filtered value
    (``GroupPlan``): the database sums the decay, Python only adds a few groups per lead. Types with
    window rules, and leads with times too far from ``ref`` for the sums, are folded one by one.
    """
    types = sorted({r.activity_type for r in model.engagement_rules})
    with_properties = _needs_properties(model)
    property_types = property_filtered_types(model)
    if not uow.scoring.groups_supported():
        acts = activity_facts(
            uow.scoring.activities_of(id_range=id_range, types=types, with_properties=with_properties),
            property_types,
        )
        return {k: fold_all(model, v) for k, v in acts.items()}, sum(len(v) for v in acts.values())
    plan = model.group_plan
    groups = uow.scoring.activity_groups(id_range=id_range, plan=plan, ref=ref)
    count = sum(g.hits for lead_groups in groups.values() for g in lead_groups)
    folder = _group_folder(model)
    out: dict[int, dict[str, RuleState]] = {}
    far: list[int] = []
    for lead_id, lead_groups in groups.items():
        states = folder.states(lead_groups, ref)
        if states is None:
            far.append(lead_id)
        else:
            out[lead_id] = states
    if far:
        acts = activity_facts(
            uow.scoring.activities_of(ids=far, types=plan.types, with_properties=with_properties),
            property_types,
        )
        out.update((k, fold_all(model, v)) for k, v in acts.items())
    if plan.raw_types:
        raw = activity_facts(
            uow.scoring.activities_of(
                id_range=id_range, types=plan.raw_types, with_properties=with_properties
            ),
            property_types,
        )
        for lead_id, acts_of_lead in raw.items():
            count += len(acts_of_lead)
            found_states = out.get(lead_id)
            out[lead_id] = fold_all(model, acts_of_lead, found_states)
    return out, count


_GROUP_FOLDERS: dict[int, GroupFolder] = {}


def _group_folder(model: ScoringModel) -> GroupFolder:
    """One remembering group folder per model and process."""
    folder = _GROUP_FOLDERS.get(id(model))
    if folder is None or folder.model is not model:
        _GROUP_FOLDERS.clear()
        folder = _GROUP_FOLDERS[id(model)] = GroupFolder(model, model.group_plan)
    return folder


_FIT_EVALUATORS: dict[int, FitEvaluator] = {}


def _fit_evaluator(model_id: int, model: ScoringModel) -> FitEvaluator:
    """One remembering fit evaluator per stored model and process, so chunks share what they learnt."""
    evaluator = _FIT_EVALUATORS.get(model_id)
    if evaluator is None:
        _FIT_EVALUATORS.clear()
        evaluator = _FIT_EVALUATORS[model_id] = FitEvaluator(model)
    return evaluator


def score_all(
    uow_factory: UnitOfWorkFactory,
    *,
    load: Loader,
    at: datetime,
    chunk: int = 5_000,
    progress: Progress | None = None,
    promote: bool = True,
    runner: RangeRunner | None = None,
) -> ScoreRunReport:
    """Recompute every lead's scores, range by range (``runner`` may spread the ranges over processes)."""
    import time

    started = time.perf_counter()
    progress = progress or NullProgress()
    with uow_factory() as uow:
        if uow.scoring.active_model() is None:
            raise NotFound("no active scoring model: run `leadstage init` or `leadstage score activate FILE`")
        ranges = list(uow.scoring.lead_id_ranges(chunk))

    def in_process(todo: Sequence[tuple[int, int]]) -> Iterable[ScoreRunReport]:
        for id_range in todo:
            yield score_range(uow_factory, id_range, load=load, at=at, promote=promote)

    report = ScoreRunReport()
    for part in (runner or in_process)(ranges):
        report.leads += part.leads
        report.activities += part.activities
        report.changed += part.changed
        report.promoted += part.promoted
        report.model_version = part.model_version
        progress.advance(rows=part.leads, bytes_read=report.leads)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def score_leads(
    uow: UnitOfWork,
    lead_ids: Sequence[int],
    *,
    load: Loader,
    at: datetime,
    new_activities: Mapping[int, Sequence[ActivityFacts]] | None = None,
    promote: bool = True,
    model: tuple[StoredModel, ScoringModel] | None = None,
) -> tuple[int, int]:
    """Incremental: fold only the new activities into the stored states (a full fold when the model changed).

    Returns (leads whose grade or level changed, leads promoted). The caller commits.
    """
    active = model or load_active(uow, load)
    if active is None or not lead_ids:
        return 0, 0
    stored, scoring_model = active
    rows = uow.scoring.lead_rows(ids=lead_ids)
    stale = [r.lead_id for r in rows if r.score_model_id != stored.id]
    full: dict[int, list[ActivityFacts]] = {}
    if stale:
        types = sorted({r.activity_type for r in scoring_model.engagement_rules})
        full = activity_facts(
            uow.scoring.activities_of(
                ids=stale, types=types, with_properties=_needs_properties(scoring_model)
            )
        )
    scored = []
    for row in rows:
        if row.score_model_id != stored.id:
            states = fold_all(scoring_model, full.get(row.lead_id, []))
        else:
            states = fold_all(
                scoring_model, (new_activities or {}).get(row.lead_id, []), _states(row.engagement_state)
            )
        scored.append(
            _Scored(
                row,
                evaluate_fit(scoring_model, row.facts),
                engagement_summary(scoring_model, states, at.timestamp()),
                states,
            )
        )
    changed = _write(uow, scored, model_id=stored.id, at=at)
    promoted = _promote(uow, scoring_model, scored, at=at) if promote else 0
    return changed, promoted


def explain(uow: UnitOfWork, ref: str | int, *, load: Loader, as_of: datetime) -> dict[str, Any]:
    """Where a lead's scores come from, as of a time: every rule line, adding up exactly to the scores."""
    lead = resolve_lead(uow, ref)
    assert lead.id is not None
    active = load_active(uow, load)
    if active is None:
        raise NotFound("no active scoring model: run `leadstage init` or `leadstage score activate FILE`")
    stored, model = active
    row = uow.scoring.lead_rows(ids=[lead.id])[0]
    if row.score_model_id == stored.id and row.engagement_state is not None:
        states = _states(row.engagement_state)
    else:
        types = sorted({r.activity_type for r in model.engagement_rules})
        acts = activity_facts(
            uow.scoring.activities_of(ids=[lead.id], types=types, with_properties=_needs_properties(model))
        )
        states = fold_all(model, acts.get(lead.id, []))
    fit = evaluate_fit(model, row.facts)
    engagement = evaluate_engagement(model, states, as_of)
    return {
        "lead_id": lead.id,
        "as_of": as_of.isoformat(),
        "model": {"id": stored.id, "version": stored.version, "name": model.name},
        "fit": {
            "score": fit.score,
            "grade": fit.grade,
            "excluded_by": fit.excluded_by,
            "exclusion_reason": fit.exclusion_reason,
            "contributions": [{"rule": c.rule, "points": c.points} for c in fit.contributions],
        },
        "engagement": {
            "score": engagement.score,
            "level": engagement.level,
            "contributions": [
                {"rule": c.rule, "points": c.points, "decayed_points": c.decayed_points}
                for c in engagement.contributions
            ],
        },
        "priority": priority(fit.grade, engagement.level),
        "mql_criteria_met": mql_reasons(model, fit, engagement, row.predictive),
        "history": uow.scoring.score_history(lead.id),
    }


def score_new_activities(
    uow: UnitOfWork,
    new_activities: Mapping[int, Sequence[ActivityFacts]],
    *,
    load: Loader,
    at: datetime,
    model: tuple[StoredModel, ScoringModel] | None = None,
    promote: bool = True,
) -> tuple[int, int]:
    """Incremental scoring of arriving activities: fold only them into each lead's stored states.

    Fit does not change when an activity arrives, so only engagement, level and priority are rewritten.
    Leads never scored by the active model get a full score instead. Returns (changed, promoted).
    """
    active = model or load_active(uow, load)
    if active is None or not new_activities:
        return 0, 0
    rules = active[1]
    return _score_increments(
        uow,
        new_activities,
        lambda lead_id, stored: fold_all(rules, new_activities[lead_id], stored),
        load=load,
        at=at,
        active=active,
        promote=promote,
    )


def score_folded_activities(
    uow: UnitOfWork,
    folded: Mapping[int, Mapping[str, StateTuple]],
    *,
    load: Loader,
    at: datetime,
    model: tuple[StoredModel, ScoringModel],
) -> tuple[int, int]:
    """:func:`score_new_activities` for activities already folded per lead from nothing (``fold_all``
    with ``model``'s rules, in an import's read-ahead process): merged into the stored states
    (``merge_states``). The activities are stored: leads the model has not scored get a full score."""
    rules = model[1]
    return _score_increments(
        uow,
        folded,
        lambda lead_id, stored: merge_states(rules, stored, folded[lead_id]),
        load=load,
        at=at,
        active=model,
        promote=True,
    )


def _score_increments(
    uow: UnitOfWork,
    leads: Mapping[int, Any],
    states_after: Callable[[int, dict[str, RuleState]], dict[str, RuleState]],
    *,
    load: Loader,
    at: datetime,
    active: tuple[StoredModel, ScoringModel],
    promote: bool,
) -> tuple[int, int]:
    """Rewrite the engagement of ``leads`` from ``states_after(lead id, stored states)``; promote."""
    stored, scoring_model = active
    rows = uow.scoring.engagement_rows(sorted(leads))
    stale = [r.lead_id for r in rows if r.score_model_id != stored.id or r.fit_grade is None]
    changed = promoted = 0
    if stale:
        changed, promoted = score_leads(uow, stale, load=load, at=at, promote=promote, model=active)
    fresh = [r for r in rows if r.score_model_id == stored.id and r.fit_grade is not None]
    writes: list[EngagementWrite] = []
    scored: list[_Scored] = []
    when = at.timestamp()
    for row in fresh:
        states = states_after(row.lead_id, _states(row.engagement_state))
        engagement = engagement_summary(scoring_model, states, when)
        grade = row.fit_grade or "D"
        level_changed = engagement.level != row.engagement_level
        writes.append(
            EngagementWrite(
                row.lead_id,
                engagement.score,
                engagement.level,
                priority(grade, engagement.level),
                states_json(states),
                level_changed,
                row.fit_score,
                grade,
            )
        )
        changed += level_changed
        if promote and row.stage == "lead" and row.status in ("open", "nurture"):
            fit = FitResult(row.fit_score or 0.0, grade, (), row.excluded_by)
            if mql_reasons(scoring_model, fit, engagement, row.predictive):  # (the others are no candidates)
                scored.append(_Scored(_as_score_row(row), fit, engagement, states))
    uow.scoring.write_engagement(writes, model_id=stored.id, at=at)
    if scored:
        promoted += _promote(uow, scoring_model, scored, at=at)
    return changed, promoted


def _as_score_row(row: EngagementRow) -> LeadScoreRow:
    return LeadScoreRow(
        lead_id=row.lead_id,
        facts={},
        stage=row.stage,
        status=row.status,
        cycle=row.cycle,
        fit_grade=row.fit_grade,
        engagement_level=row.engagement_level,
        priority=None,
        engagement_state=row.engagement_state,
        score_model_id=row.score_model_id,
        predictive=row.predictive,
    )


def promote_on_predictive(uow_factory: UnitOfWorkFactory, *, load: Loader, at: datetime) -> int:
    """Promote the leads that now meet an MQL criterion reading the predictive score (after predictive
    scoring); nothing to do when the active model has no such criterion. Leads are judged on their stored
    fit and their engagement as of ``at``; leads the active model has not scored yet wait for it."""
    with uow_factory() as uow:
        active = load_active(uow, load)
        if active is None or not active[1].predictive_criteria:
            return 0
        stored, model = active
        deciles = [c.max_decile for c in model.predictive_criteria if c.max_decile is not None]
        scores = [c.min_probability for c in model.predictive_criteria if c.min_probability is not None]
        ids = uow.scoring.predictive_candidates(
            max_decile=max(deciles, default=None), min_score=min(scores, default=None)
        )
    promoted = 0
    fit_of = _fit_evaluator(stored.id, model)
    when = at.timestamp()
    for start in range(0, len(ids), 5_000):
        with uow_factory() as uow:
            scored = []
            for row in uow.scoring.lead_rows(ids=ids[start : start + 5_000]):
                if row.score_model_id != stored.id:
                    continue
                states = _states(row.engagement_state)
                scored.append(
                    _Scored(row, fit_of(row.facts), engagement_summary(model, states, when), states)
                )
            promoted += _promote(uow, model, scored, at=at)
            uow.commit()
    return promoted


PredictionsOf = Callable[[Sequence[int]], Mapping[int, Predictive]]
"""The predictive scores a candidate model would give some leads (by id); computed, not stored."""


def count_predictive_promotions(
    uow: UnitOfWork, *, load: Loader, predictions: PredictionsOf, at: datetime, chunk: int = 5_000
) -> int:
    """How many leads the active scoring model's MQL criteria would promote now if their predictive
    scores were ``predictions`` (a predictive model's, before it is activated); reads, writes nothing.
    Leads are judged as :func:`promote_on_predictive` judges them after an activation: stored fit,
    engagement as of ``at``, only leads the active scoring model has scored."""
    active = load_active(uow, load)
    if active is None or not active[1].predictive_criteria:
        return 0
    stored, model = active
    fit_of = _fit_evaluator(stored.id, model)
    when = at.timestamp()
    count = 0
    for id_range in list(uow.scoring.lead_id_ranges(chunk)):
        rows = [
            row
            for row in uow.scoring.lead_rows(id_range=id_range, facts=model.fit_subjects)
            if row.stage == "lead" and row.status in ("open", "nurture") and row.score_model_id == stored.id
        ]
        if not rows:
            continue
        scores = predictions([row.lead_id for row in rows])
        scored = []
        for row in rows:
            states = _states(row.engagement_state)
            scored.append(
                _Scored(
                    row._replace(predictive=scores.get(row.lead_id)),
                    fit_of(row.facts),
                    engagement_summary(model, states, when),
                    states,
                )
            )
        count += len(_promotion_plans(uow, model, scored, at=at))
    return count
