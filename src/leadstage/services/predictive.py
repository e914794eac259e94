"""Predictive scoring use cases: train, activate, score, explain, report (DOMAIN.md R21, R22).

The domain decides what a model may learn from (``domain/predictive.py``: labels, column kinds, the
leakage guard, wording); the trainer port (``adapters/ml.py``) does the numbers; the repository
(``adapters/db/predictive.py``) reads features as of each lead's snapshot and stores models and scores.
A trained model is a candidate: nothing is scored with it until ``activate_model``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadstage.domain.errors import NotFound, PermissionDenied, ValidationError
from leadstage.domain.predictive import (
    DEFAULT_SALES_ASSIGNED_FIELDS,
    MIN_LABELLED,
    MIN_POSITIVES,
    Column,
    ColumnKind,
    LabelSpec,
    auc,
    check_enough,
    check_names,
    classify_column,
    clean_for_model,
    fold_name,
    guard_columns,
    lifecycle_label,
    property_labels,
    top_factors,
)
from leadstage.domain.stages import Actor, Role
from leadstage.services import audit
from leadstage.services.ports import (
    FeatureFrame,
    LeadFeatureRow,
    ModelTrainer,
    PredictiveModelRecord,
    PredictiveUnitOfWork,
    Predictor,
    TrainingOptions,
)

UowFactory = Callable[[], PredictiveUnitOfWork]
SCORE_BATCH = 20_000
#: Who trains and activates predictive models (marketing ops, DOMAIN.md journey 6).
MODEL_ROLES = frozenset({Role.ADMIN, Role.MARKETING})


def check_model_role(actor: Actor, doing: str = "train") -> None:
    """Training (a candidate is stored) and activating models: administrators and marketing only."""
    if actor.role not in MODEL_ROLES:
        raise PermissionDenied(f"role {actor.role.value} may not {doing} predictive models")


@dataclass(frozen=True)
class TrainRequest:
    label: LabelSpec
    exclude: Sequence[str] = ()
    include: Sequence[str] = ()
    cv: int | None = None
    min_labelled: int = MIN_LABELLED
    min_positives: int = MIN_POSITIVES
    sales_fields: Sequence[str] = DEFAULT_SALES_ASSIGNED_FIELDS
    snapshot_days: int = 30  # lifecycle labels: features as of this many days after creation at most
    extra: dict[str, Any] = field(default_factory=dict)


def _raw_columns(rows: Sequence[LeadFeatureRow], skip: set[str]) -> dict[str, list[Any]]:
    props: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for name in row.properties:
            if name not in seen:
                seen.add(name)
                props.append(name)
    fields: list[str] = []
    for row in rows[:1]:
        fields = list(row.fields)
    columns: dict[str, list[Any]] = {}
    for name in props:
        if fold_name(name) in skip:
            continue
        columns[name] = [row.properties.get(name) for row in rows]
    prop_values = list(columns.values())
    for name in fields:
        if fold_name(name) in skip or name in columns:
            continue
        values = [row.fields.get(name) for row in rows]
        if all(v is None for v in values) or any(values == other for other in prop_values):
            continue  # an empty lead field, or one a custom property already holds
        columns[name] = values
    return columns


def _labels(
    rows: Sequence[LeadFeatureRow], spec: LabelSpec, at: datetime
) -> tuple[list[int | None], LabelSpec]:
    if spec.property is not None:
        names = {name for row in rows for name in row.properties}
        if spec.property not in names:
            folded = {fold_name(n): n for n in names}
            if fold_name(spec.property) not in folded:
                raise ValidationError(f"--label: no lead property is called {spec.property!r}", field="label")
            spec = LabelSpec(property=folded[fold_name(spec.property)], positive=spec.positive)
        assert spec.property is not None
        labels, positive = property_labels(
            spec.property, [r.properties.get(spec.property) for r in rows], spec.positive
        )
        return labels, LabelSpec(property=spec.property, positive=positive)
    labels = [lifecycle_label(r.created_at, r.reached_at, at, spec.window_days) for r in rows]
    present = {x for x in labels if x is not None}
    if len(present) < 2 and len([x for x in labels if x is not None]) >= MIN_LABELLED:
        raise ValidationError(
            f"--stage: the lifecycle label ({spec.describe()}) has one class only", field="stage"
        )
    return labels, spec


def _data_hash(rows: Sequence[LeadFeatureRow], labels: Sequence[int], frame: FeatureFrame) -> str:
    h = hashlib.sha256()
    for i, row in enumerate(rows):
        values = [frame.columns[n][i] for n in frame.names]
        h.update(json.dumps([row.lead_id, labels[i], values], default=str, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def train_model(
    uow_factory: UowFactory, trainer: ModelTrainer, request: TrainRequest, *, actor: str, at: datetime
) -> dict[str, Any]:
    """Learn a candidate model from history; returns its summary (the model is stored, not activated)."""
    spec = request.label
    if request.cv is not None and not 2 <= request.cv <= 20:
        raise ValidationError(f"--cv: between 2 and 20 folds; got {request.cv}", field="cv")
    lifecycle = spec.property is None
    with uow_factory() as uow:
        rows = uow.predictive.feature_rows(
            label_stage=spec.stage if lifecycle else None,
            snapshot_days=request.snapshot_days if lifecycle else None,
            as_of=at,
        )
    if not rows:
        check_enough([], min_labelled=request.min_labelled, min_positives=request.min_positives)
    labels_all, spec = _labels(rows, spec, at)
    keep = [i for i, y in enumerate(labels_all) if y is not None]
    rows = [rows[i] for i in keep]
    labels = [int(labels_all[i] or 0) for i in keep]
    skip = {fold_name(spec.property)} if spec.property else set()
    raw = _raw_columns(rows, skip)
    check_names(request.exclude, raw, "--exclude")
    check_names(request.include, raw, "--include")
    excluded_first = {fold_name(n) for n in request.exclude}
    columns: list[Column] = []
    for name, values in raw.items():
        if fold_name(name) in excluded_first:
            columns.append(Column(name, ColumnKind.CATEGORICAL, [None] * len(rows)))
            continue
        columns.append(classify_column(name, values))
    moved = [r.furthest_stage != "lead" for r in rows] if lifecycle else None
    guard = guard_columns(
        columns,
        labels,
        moved=moved,
        exclude=request.exclude,
        include=request.include,
        sales_fields=request.sales_fields,
    )
    if not guard.used:
        raise ValidationError(
            "--exclude: every feature is excluded; nothing is left to learn from "
            f"({len(guard.excluded)} columns excluded)",
            field="exclude",
        )
    check_enough(labels, min_labelled=request.min_labelled, min_positives=request.min_positives)
    by_name = {c.name: c for c in columns}
    frame = FeatureFrame(
        names=list(guard.used),
        kinds={n: by_name[n].kind for n in guard.used},
        columns={n: by_name[n].values for n in guard.used},
        n_rows=len(rows),
    )
    created = [r.created_at for r in rows]
    time_order: list[int] | None = None
    if request.cv is None and created and (max(created) - min(created)).total_seconds() > 86_400:
        time_order = sorted(range(len(rows)), key=lambda i: (created[i], rows[i].lead_id))
    trained = trainer.train(frame, labels, TrainingOptions(cv=request.cv, time_order=time_order))
    data_sha = _data_hash(rows, labels, frame)
    metrics = trained.metrics
    if time_order is not None and request.cv is None:
        held = trained.evaluated
        metrics["rule_priority_auc"] = round(
            auc([_priority_rank(rows[i].rule_priority) for i in held], [labels[i] for i in held]), 4
        )
    card: dict[str, Any] = {
        "label": {**spec.as_dict(), "definition": spec.describe()},
        "data_window": {
            "leads_created_from": min(created).isoformat() if created else None,
            "leads_created_to": max(created).isoformat() if created else None,
            "snapshot": (
                f"activity features as of {request.snapshot_days} days after creation or the first stage "
                "change, whichever came first"
                if lifecycle
                else f"activity features as of training time ({at.isoformat()})"
            ),
            "trained_at": at.isoformat(),
        },
        "n_rows": len(rows),
        "n_positive": sum(labels),
        "n_unlabelled": len(labels_all) - len(rows),
        "kind": trained.kind,
        "features_used": [{"name": n, "kind": frame.kinds[n].value} for n in frame.names],
        "features_excluded": [e.as_dict() for e in guard.excluded],
        "features_kept_by_include": [e.as_dict() for e in guard.included_despite],
        **{k: metrics[k] for k in ("validation", "auc", "pr_auc", "base_rate", "lift_top_decile", "brier")},
        "models_compared": metrics["compared"],
        "rule_priority_auc_same_rows": metrics.get("rule_priority_auc"),
        "evaluated_rows": metrics["evaluated_rows"],
        "calibration": metrics["calibration"],
        "curves": metrics["curves"],
        "data_sha256": data_sha,
    }
    with uow_factory() as uow:
        record = uow.predictive.add_model(
            kind=trained.kind,
            label=spec.as_dict(),
            card=card,
            artifact=trained.artifact,
            sha256=trained.sha256,
            data_sha256=data_sha,
            created_by=actor,
            at=at,
        )
        uow.commit()
    return summary(record)


def _priority_rank(priority: str | None) -> float:
    """A rule priority as a number for ranking: A1 (best) highest, no priority lowest."""
    if not priority or len(priority) < 2 or priority[0] not in "ABCD" or not priority[1:].isdigit():
        return 0.0
    return float((4 - "ABCD".index(priority[0])) * 10 + (5 - int(priority[1:])))


def summary(record: PredictiveModelRecord) -> dict[str, Any]:
    """What ``model train --json`` prints: the contract fields first, then the rest of the card."""
    card = record.card
    return {
        "model_id": record.id,
        "version": record.version,
        "active": record.active,
        "kind": record.kind,
        "label": card["label"]["definition"],
        "validation": card["validation"],
        "auc": card["auc"],
        "pr_auc": card["pr_auc"],
        "lift_top_decile": card["lift_top_decile"],
        "models_compared": card["models_compared"],
        "rule_priority_auc_same_rows": card.get("rule_priority_auc_same_rows"),
        "n_rows": card["n_rows"],
        "n_positive": card["n_positive"],
        "features_used": [f["name"] for f in card["features_used"]],
        "features_excluded": card["features_excluded"],
        "features_kept_by_include": card["features_kept_by_include"],
        "sha256": record.sha256,
        "data_sha256": record.data_sha256,
    }


def list_models(uow: PredictiveUnitOfWork) -> list[dict[str, Any]]:
    """Every trained model's summary (what ``model train --json`` printed), oldest first."""
    return [
        {**summary(r), "created_by": r.created_by, "created_at": r.created_at.isoformat()}
        for r in uow.predictive.all_models()
    ]


def model_card(uow: PredictiveUnitOfWork, model_id: int | None = None) -> dict[str, Any]:
    """The model card of a model (default: the active one, else the latest trained)."""
    record = _find(uow, model_id)
    return {
        "model_id": record.id,
        "version": record.version,
        "active": record.active,
        "created_by": record.created_by,
        "created_at": record.created_at.isoformat(),
        "activated_at": record.activated_at.isoformat() if record.activated_at else None,
        "sha256": record.sha256,
        **record.card,
    }


def _find(uow: PredictiveUnitOfWork, model_id: int | None) -> PredictiveModelRecord:
    if model_id is not None:
        record = uow.predictive.get_model(model_id)
        if record is None:
            raise NotFound(f"no predictive model with id {model_id}")
        return record
    record = uow.predictive.active_model() or uow.predictive.latest_model()
    if record is None:
        raise NotFound("no predictive model yet: train one with `leadstage model train`")
    return record


_PREDICTORS: dict[tuple[str, str], Predictor] = {}


def _predictor(uow: PredictiveUnitOfWork, trainer: ModelTrainer, record: PredictiveModelRecord) -> Predictor:
    """The stored model, verified and parsed once per process and stored text (a changed text is loaded,
    so verified, again)."""
    artifact = uow.predictive.artifact(record.id)
    key = (record.sha256, artifact)
    found = _PREDICTORS.get(key)
    if found is None:
        _PREDICTORS.clear()
        found = _PREDICTORS[key] = trainer.load(artifact, record.sha256)
    return found


def load_active(
    uow: PredictiveUnitOfWork, trainer: ModelTrainer
) -> tuple[PredictiveModelRecord, Predictor] | None:
    record = uow.predictive.active_model()
    if record is None:
        return None
    return record, _predictor(uow, trainer, record)


def _frame_of(
    features: Sequence[str], kinds: dict[str, str], raw: dict[str, list[Any]], n_rows: int
) -> FeatureFrame:
    kind_map = {name: ColumnKind(kinds[name]) for name in features}
    return FeatureFrame(
        names=list(features),
        kinds=kind_map,
        columns={name: clean_for_model(raw[name], kind_map[name]) for name in features},
        n_rows=n_rows,
    )


ScoreRunner = Callable[[Sequence[Sequence[int]], int, datetime], Iterable[int]]
"""Runs :func:`score_batch` over batches of lead ids for a model and a time (in this process, or in
several) and yields how many leads each batch scored."""


def activate_model(
    uow_factory: UowFactory,
    trainer: ModelTrainer,
    model_id: int,
    *,
    at: datetime,
    actor: Actor | None = None,
    runner: ScoreRunner | None = None,
) -> dict[str, Any]:
    """Make a trained model the active one (after verifying it loads) and score every lead with it.
    Administrators and marketing only; the activation is audited."""
    if actor is not None:
        check_model_role(actor, "activate")
    with uow_factory() as uow:
        record = uow.predictive.get_model(model_id)
        if record is None:
            raise NotFound(f"no predictive model with id {model_id}")
        trainer.load(uow.predictive.artifact(model_id), record.sha256)  # refuses a tampered model
        uow.predictive.activate(model_id, at=at)
        audit.record(
            uow,
            actor or "admin",
            "predictive_model.activate",
            at=at,
            target=str(model_id),
            version=record.version,
        )
        uow.commit()
    scored = score_leads(uow_factory, trainer, at=at, changed_only=False, runner=runner)
    return {"model_id": model_id, "version": record.version, "active": True, "scored": scored}


def score_leads(
    uow_factory: UowFactory,
    trainer: ModelTrainer,
    *,
    at: datetime,
    changed_only: bool = True,
    lead_ids: Sequence[int] | None = None,
    runner: ScoreRunner | None = None,
    batch_size: int = SCORE_BATCH,
) -> int:
    """Score leads with the active model (new and changed ones by default); 0 when no model is active."""
    with uow_factory() as uow:
        loaded = load_active(uow, trainer)  # verified before any lead is scored
        if loaded is None:
            return 0
        record = loaded[0]
        mark = uow.predictive.activity_watermark()
        if lead_ids is None:
            ids = (
                uow.predictive.lead_ids_needing_scores(record.id)
                if changed_only
                else uow.predictive.all_lead_ids()
            )
        else:
            ids = list(lead_ids)
    batches = [ids[start : start + batch_size] for start in range(0, len(ids), batch_size)]

    def in_process(todo: Sequence[Sequence[int]], model_id: int, when: datetime) -> Iterable[int]:
        for batch in todo:
            yield score_batch(uow_factory, trainer, batch, model_id=model_id, at=when)

    done = sum((runner or in_process)(batches, record.id, at))
    if lead_ids is None:
        with uow_factory() as uow:
            uow.predictive.set_activity_watermark(record.id, mark)
            uow.commit()
    return done


def score_batch(
    uow_factory: UowFactory, trainer: ModelTrainer, lead_ids: Sequence[int], *, model_id: int, at: datetime
) -> int:
    """Score one batch of leads with a stored model (features as of ``at``) and store the scores; commits."""
    with uow_factory() as uow:
        record = uow.predictive.get_model(model_id)
        if record is None:
            raise NotFound(f"no predictive model with id {model_id}")
        scores = predictions(uow, _predictor(uow, trainer, record), record, lead_ids, at=at)
        # Reading is done; writing starts a fresh transaction, so parallel batches queue for the write lock
        # instead of failing on a stale read snapshot.
        uow.commit()
        uow.predictive.write_scores(scores, model_id=model_id, at=at)
        uow.commit()
    return len(scores)


def predictions(
    uow: PredictiveUnitOfWork,
    predictor: Predictor,
    record: PredictiveModelRecord,
    lead_ids: Sequence[int],
    *,
    at: datetime,
) -> list[tuple[int, float, int]]:
    """(lead id, probability rounded as stored, decile) from a model for some leads, features as of ``at``."""
    features = [f["name"] for f in record.card["features_used"]]
    kinds = {f["name"]: f["kind"] for f in record.card["features_used"]}
    ids, raw = uow.predictive.feature_columns(lead_ids=lead_ids, names=features, as_of=at)
    frame = _frame_of(features, kinds, raw, len(ids))
    probs = predictor.predict(frame)
    deciles = predictor.deciles(probs)
    return [(lead_id, round(p, 6), d) for lead_id, p, d in zip(ids, probs, deciles, strict=True)]


def loaded_model(
    uow: PredictiveUnitOfWork, trainer: ModelTrainer, model_id: int
) -> tuple[PredictiveModelRecord, Predictor]:
    """A stored model and its predictor, verified (a tampered model is refused); NotFound if unknown."""
    record = uow.predictive.get_model(model_id)
    if record is None:
        raise NotFound(f"no predictive model with id {model_id}")
    return record, _predictor(uow, trainer, record)


def explain_lead(
    uow_factory: UowFactory, trainer: ModelTrainer, lead_id: int, *, at: datetime, top: int = 3
) -> dict[str, Any]:
    """The active model's probability for one lead with its strongest positive and negative factors."""
    with uow_factory() as uow:
        loaded = load_active(uow, trainer)
        if loaded is None:
            raise NotFound("no active predictive model: train one and `leadstage model activate ID`")
        record, predictor = loaded
        features = [f["name"] for f in record.card["features_used"]]
        kinds = {f["name"]: f["kind"] for f in record.card["features_used"]}
        ids, raw = uow.predictive.feature_columns(lead_ids=[lead_id], names=features, as_of=at)
    if not ids:
        raise NotFound(f"no lead {lead_id}")
    frame = _frame_of(features, kinds, raw, len(ids))
    p = predictor.predict(frame)[0]
    contributions = predictor.contributions(frame)[0]
    values: dict[str, Any] = {n: frame.columns[n][0] for n in features}
    values["(unanswered fields)"] = sum(
        1 for n in features if frame.kinds[n] is ColumnKind.CATEGORICAL and frame.columns[n][0] is None
    )
    return {
        "lead_id": lead_id,
        "model_id": record.id,
        "kind": record.kind,
        "probability": round(p, 4),
        "decile": predictor.decile(p),
        "units": "contributions in log-odds of conversion",
        **top_factors(contributions, values, top=top),
    }
