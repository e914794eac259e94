"""Predictive models with scikit-learn and LightGBM, stored as JSON (never pickled).

Training (:class:`SklearnLightGbmTrainer`) encodes columns inside each fold (rare levels grouped, counts,
medians, bins and monotone directions learned from the training part only), compares a regularised
logistic regression with LightGBM by stratified K-fold cross-validation or a time-based holdout, keeps the
better one, calibrates it (Platt scaling on its out-of-sample scores, which keeps the ranking), and refits
it on all the data. The artefact is one JSON document: the encoder, LightGBM's own text model format or
the linear coefficients, the calibration and the decile cut points. Its SHA-256 is recorded when it is
stored; :func:`load_predictor` refuses a document whose hash does not match (:class:`TamperedModel`).

Explanations are additive log-odds contributions per input column: LightGBM's native SHAP values
(``pred_contrib=True``) or, for the linear model, coefficient x (value - mean), summed over the one-hot
columns of each input column and scaled by the calibration slope.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from leadstage.domain.predictive import ColumnKind, TamperedModel
from leadstage.services.ports import FeatureFrame, TrainedModel, TrainingOptions

FORMAT = "leadstage-predictive/1"
Array = NDArray[np.float64]

_LGB_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "feature_fraction": 0.7,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 1,  # several threads on a small shared machine spin far more than they gain
    "deterministic": True,
    "force_col_wise": True,
}
_LGB_ROUNDS = 400
_LR_C = 0.05
_MIN_LEVEL = 10
_ZERO = 1e-35  # LightGBM's own: smaller values are zeros


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- encoding ------------------------------------------------------------------------------------------


@dataclass
class Encoder:
    """Turns a frame into matrices; everything it knows was learned from the rows it was fitted on."""

    numeric: list[str]
    categorical: list[str]
    levels: dict[str, list[str]]
    counts: dict[str, dict[str, int]]
    medians: dict[str, float]
    bins: dict[str, list[float]]
    monotone: dict[str, int]
    spikes: dict[str, float]
    linear_mean: list[float] | None = None
    linear_std: list[float] | None = None

    @classmethod
    def fit(cls, frame: FeatureFrame, rows: NDArray[np.int64], labels: Array | None) -> Encoder:
        numeric = [n for n in frame.names if frame.kinds[n] is ColumnKind.NUMERIC]
        categorical = [n for n in frame.names if frame.kinds[n] is ColumnKind.CATEGORICAL]
        levels: dict[str, list[str]] = {}
        counts: dict[str, dict[str, int]] = {}
        for name in categorical:
            col = frame.columns[name]
            c = Counter(col[i] for i in rows)
            kept = sorted(k for k, n in c.items() if k is not None and n >= _MIN_LEVEL)
            levels[name] = kept
            counts[name] = {k: c[k] for k in kept}
            counts[name]["\0other"] = sum(n for k, n in c.items() if k is not None and n < _MIN_LEVEL)
        medians: dict[str, float] = {}
        bins: dict[str, list[float]] = {}
        monotone: dict[str, int] = {}
        spikes: dict[str, float] = {}
        for name in numeric:
            x = _floats(frame.columns[name], rows)
            ok = x[~np.isnan(x)]
            if ok.size:
                values, freq = np.unique(ok, return_counts=True)
                if freq.max() >= 0.05 * ok.size and values.size > 2:
                    spikes[name] = float(values[freq.argmax()])  # a value of its own (0 = "never did")
            medians[name] = float(np.median(ok)) if ok.size else 0.0
            qs = np.unique(np.quantile(ok, np.linspace(0, 1, 21)[1:-1])) if ok.size else np.array([])
            bins[name] = [float(q) for q in qs]
            if labels is not None and ok.size:
                ys = labels
                if name in spikes:
                    keep = x != spikes[name]
                    x, ys = x[keep], labels[keep]
                monotone[name] = _monotone_direction(x, ys, qs)
        return cls(numeric, categorical, levels, counts, medians, bins, monotone, spikes)

    # one "group" per input column: the matrix columns it becomes
    def tree_matrix(
        self, frame: FeatureFrame, rows: NDArray[np.int64] | None = None
    ) -> tuple[Array, list[str]]:
        parts: list[Array] = []
        groups: list[str] = []
        n = _n(frame, rows)
        missing = np.zeros(n)
        for name in self.categorical:
            codes = self._codes(frame, name, rows)
            k = len(self.levels[name])
            onehot = np.zeros((n, k + 2))
            onehot[np.arange(n), codes] = 1.0
            parts.append(onehot[:, : k + 1])
            groups += [name] * (k + 1)
            missing += codes == k + 1
            if len(self.levels[name]) >= 5:  # how common the lead's answer is
                freq = np.array(
                    [
                        *(self.counts[name][lv] for lv in self.levels[name]),
                        self.counts[name]["\0other"],
                        np.nan,
                    ]
                )
                parts.append(freq[codes])
                groups.append(name)
        for name in self.numeric:
            x = _floats(frame.columns[name], rows)
            parts.append(x)
            groups.append(name)
            if name in self.spikes:
                parts.append((x == self.spikes[name]).astype(np.float64))
                groups.append(name)
        if self.categorical:
            parts.append(missing)
            groups.append("(unanswered fields)")
        return _stack(parts, n), groups

    def tree_sparse(self, frame: FeatureFrame) -> sparse.csr_matrix:
        """``tree_matrix(frame)[0]`` as a sparse matrix (the same columns; zeros left out, as LightGBM leaves
        them out of a dense row too): one-hot blocks are mostly zeros, and LightGBM predicts from a sparse
        matrix without reading them. Tests hold the two equal."""
        n = frame.n_rows
        every = np.arange(n)
        rows: list[NDArray[np.int64]] = []
        cols: list[NDArray[np.int64]] = []
        values: list[Array] = []
        at = 0

        def column(x: Array) -> None:
            nonlocal at
            kept = (np.abs(x) > _ZERO) | np.isnan(x)
            rows.append(every[kept])
            cols.append(np.full(int(kept.sum()), at, dtype=np.int64))
            values.append(x[kept])
            at += 1

        missing = np.zeros(n)
        for name in self.categorical:
            codes = self._codes(frame, name, None)
            k = len(self.levels[name])
            hot = codes <= k  # the last code (missing) has no column of its own
            rows.append(every[hot])
            cols.append(at + codes[hot])
            values.append(np.ones(int(hot.sum())))
            at += k + 1
            missing += codes == k + 1
            if len(self.levels[name]) >= 5:
                freq = np.array(
                    [
                        *(self.counts[name][lv] for lv in self.levels[name]),
                        self.counts[name]["\0other"],
                        np.nan,
                    ]
                )
                column(freq[codes])
        for name in self.numeric:
            x = _floats(frame.columns[name], None)
            column(x)
            if name in self.spikes:
                column((x == self.spikes[name]).astype(np.float64))
        if self.categorical:
            column(missing)
        matrix = sparse.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, at)
        )
        matrix.sort_indices()
        return matrix

    def tree_monotone(self, groups: Sequence[str]) -> list[int]:
        out: list[int] = []
        seen: set[str] = set()
        for g in groups:
            out.append(self.monotone.get(g, 0) if g in self.numeric and g not in seen else 0)
            seen.add(g)
        return out

    def linear_matrix(
        self, frame: FeatureFrame, rows: NDArray[np.int64] | None = None
    ) -> tuple[Array, list[str]]:
        parts: list[Array] = []
        groups: list[str] = []
        n = _n(frame, rows)
        missing = np.zeros(n)
        for name in self.categorical:
            codes = self._codes(frame, name, rows)
            k = len(self.levels[name])
            for j in range(k + 2):
                parts.append((codes == j).astype(np.float64))
                groups.append(name)
            missing += codes == k + 1
        for name in self.numeric:
            x = _floats(frame.columns[name], rows)
            gone = np.isnan(x)
            filled = np.where(gone, self.medians[name], x)
            parts.append(np.sign(filled) * np.log1p(np.abs(filled)))
            parts.append(gone.astype(np.float64))
            groups += [name, name]
            edges = np.array(self.bins[name])
            b = np.digitize(filled, edges)
            for j in range(len(edges) + 1):
                parts.append((b == j).astype(np.float64))
                groups.append(name)
        if self.categorical:
            parts.append(missing)
            groups.append("(unanswered fields)")
        x = np.column_stack(parts) if parts else np.zeros((n, 0))
        if self.linear_mean is None or self.linear_std is None:
            self.linear_mean = [float(v) for v in x.mean(axis=0)]
            self.linear_std = [float(v) if v > 1e-12 else 1.0 for v in x.std(axis=0)]
        return (x - np.array(self.linear_mean)) / np.array(self.linear_std), groups

    def _codes(self, frame: FeatureFrame, name: str, rows: NDArray[np.int64] | None) -> NDArray[np.int64]:
        index: dict[Any, int] = {lv: j for j, lv in enumerate(self.levels[name])}
        other = len(index)
        index[None] = other + 1
        col = frame.columns[name]
        get = index.get
        codes = [get(v, other) for v in col] if rows is None else [get(col[i], other) for i in rows]
        return np.array(codes, dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "levels": self.levels,
            "counts": self.counts,
            "medians": self.medians,
            "bins": self.bins,
            "monotone": self.monotone,
            "spikes": self.spikes,
            "linear_mean": self.linear_mean,
            "linear_std": self.linear_std,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Encoder:
        return cls(
            list(doc["numeric"]),
            list(doc["categorical"]),
            {k: list(v) for k, v in doc["levels"].items()},
            {k: dict(v) for k, v in doc["counts"].items()},
            dict(doc["medians"]),
            {k: list(v) for k, v in doc["bins"].items()},
            dict(doc["monotone"]),
            dict(doc["spikes"]),
            doc.get("linear_mean"),
            doc.get("linear_std"),
        )


def _stack(parts: Sequence[Array], n: int) -> Array:
    """Columns (1-d) and blocks (2-d) side by side, written once into one matrix."""
    width = sum(1 if p.ndim == 1 else p.shape[1] for p in parts)
    out = np.empty((n, width))
    at = 0
    for p in parts:
        if p.ndim == 1:
            out[:, at] = p
            at += 1
        else:
            out[:, at : at + p.shape[1]] = p
            at += p.shape[1]
    return out


def _n(frame: FeatureFrame, rows: NDArray[np.int64] | None) -> int:
    return frame.n_rows if rows is None else len(rows)


def _floats(col: Sequence[Any], rows: NDArray[np.int64] | None) -> Array:
    try:  # numbers and None (NaN) convert in one go
        whole = np.asarray(col, dtype=np.float64)
    except (TypeError, ValueError):
        it = col if rows is None else (col[i] for i in rows)
        return np.fromiter((np.nan if v is None else float(v) for v in it), dtype=np.float64)
    if whole.ndim != 1:
        raise TypeError(f"a numeric column holds {whole.ndim}-dimensional values")
    return whole if rows is None else whole[rows]


def _monotone_direction(x: Array, y: Array, edges: Array) -> int:
    """+1/-1 when the conversion rate rises/falls steadily across the value's bins, else 0."""
    ok = ~np.isnan(x)
    if edges.size < 4:
        return 0
    b = np.digitize(x[ok], edges)
    rates = [float(y[ok][b == j].mean()) for j in range(edges.size + 1) if (b == j).sum() >= 30]
    if len(rates) < 4:
        return 0
    ranks = np.argsort(np.argsort(rates))
    rho = float(np.corrcoef(np.arange(len(rates)), ranks)[0, 1])
    return 1 if rho >= 0.8 else (-1 if rho <= -0.8 else 0)


# ---- models --------------------------------------------------------------------------------------------


def _seeds(n_rows: int) -> int:
    return 3 if n_rows <= 30_000 else 1


def _fit_trees(x: Array, y: Array, monotone: list[int], n_rows: int) -> list[lgb.Booster]:
    params = dict(_LGB_PARAMS)
    if any(monotone):
        params["monotone_constraints"] = monotone
        params["monotone_constraints_method"] = "advanced"
    rounds = _LGB_ROUNDS
    if n_rows > 30_000:  # plenty of data: half the rounds at twice the rate, one seed (ADR 11)
        params["learning_rate"] = 2 * params["learning_rate"]
        rounds //= 2
    boosters = []
    for seed in range(_seeds(n_rows)):
        data = lgb.Dataset(x, label=y, free_raw_data=True)
        boosters.append(lgb.train({**params, "seed": seed}, data, num_boost_round=rounds))
    return boosters


def _trees_margin(boosters: Sequence[lgb.Booster], x: Array | sparse.csr_matrix) -> Array:
    # one thread, like training: scoring runs in processes where it needs more (and OpenMP must not
    # start a pool of threads in a forked worker)
    margins = [b.predict(x, raw_score=True, num_threads=1) for b in boosters]
    return np.mean(margins, axis=0)  # type: ignore[no-any-return]


def _fit_linear(x: Array, y: Array) -> LogisticRegression:
    return LogisticRegression(C=_LR_C, max_iter=3000).fit(x, y)


@dataclass
class _Evaluated:
    margins: dict[str, Array]  # out-of-sample raw margins per model kind
    y: Array
    rows: NDArray[np.int64]  # which rows the margins are for
    validation: str


def _cross_validate(frame: FeatureFrame, y: Array, k: int) -> _Evaluated:
    n = frame.n_rows
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
    margins = {"logistic_regression": np.zeros(n), "lightgbm": np.zeros(n)}
    for tr, te in folds.split(np.zeros(n), y):
        tr64, te64 = tr.astype(np.int64), te.astype(np.int64)
        _fit_and_score(frame, y, tr64, te64, margins, n)
    return _Evaluated(margins, y, np.arange(n, dtype=np.int64), f"{k}-fold stratified cross-validation")


def _time_holdout(frame: FeatureFrame, y: Array, order: Sequence[int], share: float) -> _Evaluated:
    n = frame.n_rows
    cut = round(n * (1 - share))
    ordered = np.array(order, dtype=np.int64)
    tr, te = ordered[:cut], ordered[cut:]
    margins = {"logistic_regression": np.zeros(n), "lightgbm": np.zeros(n)}
    _fit_and_score(frame, y, tr, te, margins, n)
    return _Evaluated(
        {k: v[te] for k, v in margins.items()},
        y[te],
        te,
        f"time-based holdout: trained on the oldest {cut} leads, tested on the newest {n - cut}",
    )


def _fit_and_score(
    frame: FeatureFrame,
    y: Array,
    tr: NDArray[np.int64],
    te: NDArray[np.int64],
    margins: dict[str, Array],
    n_rows: int,
) -> None:
    enc = Encoder.fit(frame, tr, y[tr])
    xl, _ = enc.linear_matrix(frame, tr)
    lin = _fit_linear(xl, y[tr])
    xlt, _ = enc.linear_matrix(frame, te)
    margins["logistic_regression"][te] = lin.decision_function(xlt)
    xt, groups = enc.tree_matrix(frame, tr)
    boosters = _fit_trees(xt, y[tr], enc.tree_monotone(groups), n_rows)
    xtt, _ = enc.tree_matrix(frame, te)
    margins["lightgbm"][te] = _trees_margin(boosters, xtt)


def _platt(margin: Array, y: Array) -> tuple[float, float]:
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def _sigmoid(z: Array) -> Array:
    out: Array = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
    return out


def quality(p: Array, y: Array) -> dict[str, Any]:
    """ROC AUC, PR AUC, top-decile lift, calibration bins and the curves the model card draws."""
    from sklearn.metrics import roc_curve

    order = np.argsort(-p, kind="stable")
    top = order[: max(1, math.ceil(len(p) / 10))]
    base = float(y.mean())
    fpr, tpr, _ = roc_curve(y, p)
    step = max(1, len(fpr) // 200)
    cum = np.cumsum(y[order]) / max(1.0, float(y.sum()))
    grid = np.linspace(0, 1, 21)
    gains = [0.0] + [float(cum[max(0, math.ceil(g * len(p)) - 1)]) for g in grid[1:]]
    bins = []
    edges = np.linspace(0, 1, 11)
    for lo, hi in itertools.pairwise(edges):
        m = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if m.sum():
            bins.append(
                {
                    "from": round(float(lo), 2),
                    "to": round(float(hi), 2),
                    "leads": int(m.sum()),
                    "predicted": round(float(p[m].mean()), 4),
                    "observed": round(float(y[m].mean()), 4),
                }
            )
    return {
        "auc": round(float(roc_auc_score(y, p)), 4),
        "pr_auc": round(float(average_precision_score(y, p)), 4),
        "base_rate": round(base, 4),
        "lift_top_decile": round(float(y[top].mean()) / base, 3) if base > 0 else None,
        "brier": round(float(np.mean((p - y) ** 2)), 4),
        "calibration": bins,
        "curves": {
            "roc": [
                [round(float(a), 4), round(float(b), 4)]
                for a, b in zip(fpr[::step], tpr[::step], strict=True)
            ]
            + [[1.0, 1.0]],
            "gains": [[round(float(g), 3), round(v, 4)] for g, v in zip(grid, gains, strict=True)],
        },
    }


class SklearnLightGbmTrainer:
    """The :class:`~leadstage.services.ports.ModelTrainer` of the product."""

    def train(self, frame: FeatureFrame, labels: Sequence[int], options: TrainingOptions) -> TrainedModel:
        y = np.asarray(labels, dtype=np.float64)
        if options.cv is not None or options.time_order is None:
            ev = _cross_validate(frame, y, options.cv or 5)
        else:
            ev = _time_holdout(frame, y, options.time_order, options.holdout_share)
        compared = {kind: round(float(roc_auc_score(ev.y, m)), 4) for kind, m in ev.margins.items()}
        kind = max(compared, key=lambda k: (compared[k], k == "lightgbm"))
        a, b = _platt(ev.margins[kind], ev.y)
        p_eval = _sigmoid(a * ev.margins[kind] + b)
        metrics = quality(p_eval, ev.y)
        metrics["validation"] = ev.validation
        metrics["compared"] = compared
        metrics["evaluated_rows"] = len(ev.y)
        # refit the chosen model on every labelled lead
        all_rows = np.arange(frame.n_rows, dtype=np.int64)
        enc = Encoder.fit(frame, all_rows, y)
        doc: dict[str, Any] = {"format": FORMAT, "kind": kind, "platt": [a, b]}
        if kind == "lightgbm":
            x, groups = enc.tree_matrix(frame)
            boosters = _fit_trees(x, y, enc.tree_monotone(groups), frame.n_rows)
            doc["boosters"] = [bst.model_to_string() for bst in boosters]
            margin = _trees_margin(boosters, x)
        else:
            x, groups = enc.linear_matrix(frame)
            lin = _fit_linear(x, y)
            doc["coef"] = [float(v) for v in lin.coef_[0]]
            doc["intercept"] = float(lin.intercept_[0])
            margin = lin.decision_function(x)
        doc["encoder"] = enc.to_json()
        doc["groups"] = groups
        doc["kinds"] = {n: frame.kinds[n].value for n in frame.names}
        p_fit = _sigmoid(a * margin + b)
        doc["deciles"] = [float(q) for q in np.quantile(p_fit, np.linspace(0.9, 0.1, 9))]
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return TrainedModel(
            kind=kind,
            artifact=text,
            sha256=sha256_text(text),
            metrics=metrics,
            features=list(frame.names),
            evaluated=[int(i) for i in ev.rows],
        )

    def load(self, artifact: str, sha256: str) -> LoadedPredictor:
        return load_predictor(artifact, sha256)


class LoadedPredictor:
    """A stored model, verified, ready to score and explain."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.kind: str = doc["kind"]
        self.encoder = Encoder.from_json(doc["encoder"])
        self.groups: list[str] = list(doc["groups"])
        self.a, self.b = (float(v) for v in doc["platt"])
        self.cut_points: list[float] = list(doc["deciles"])
        self.features = [*self.encoder.categorical, *self.encoder.numeric]
        self.boosters = [lgb.Booster(model_str=s) for s in doc.get("boosters", [])]
        self.coef = np.array(doc.get("coef", []), dtype=np.float64)
        self.intercept = float(doc.get("intercept", 0.0))

    def _matrix(self, frame: FeatureFrame) -> Array:
        if self.kind == "lightgbm":
            return self.encoder.tree_matrix(frame)[0]
        return self.encoder.linear_matrix(frame)[0]

    def predict(self, frame: FeatureFrame) -> list[float]:
        if frame.n_rows == 0:
            return []
        if self.kind == "lightgbm":  # sparse: LightGBM then reads only the values that are not zero
            margin = _trees_margin(self.boosters, self.encoder.tree_sparse(frame))
        else:
            margin = self._matrix(frame) @ self.coef + self.intercept
        return [float(v) for v in _sigmoid(self.a * margin + self.b)]

    def decile(self, p: float) -> int:
        """1 = the top tenth of the leads the model was trained on, 10 = the bottom."""
        for i, cut in enumerate(self.cut_points):
            if p >= cut:
                return i + 1
        return 10

    def deciles(self, probabilities: Sequence[float]) -> list[int]:
        """``decile`` of each probability (the first cut point it reaches, else 10), at once."""
        p = np.asarray(probabilities, dtype=np.float64)
        out = np.full(p.shape, 10, dtype=np.int64)
        for i in reversed(range(len(self.cut_points))):  # the first cut reached wins: assigned last
            out[p >= self.cut_points[i]] = i + 1
        return [int(d) for d in out]

    def contributions(self, frame: FeatureFrame) -> list[dict[str, float]]:
        """Per row: log-odds contribution of each input column (calibrated scale)."""
        if frame.n_rows == 0:
            return []
        x = self._matrix(frame)
        if self.kind == "lightgbm":
            contrib = np.mean(
                [b.predict(x, pred_contrib=True, num_threads=1) for b in self.boosters], axis=0
            )[:, :-1]
        else:
            contrib = x * self.coef
        contrib = contrib * self.a
        names = sorted(set(self.groups), key=self.groups.index)
        index = {g: i for i, g in enumerate(names)}
        agg = np.zeros((x.shape[0], len(names)))
        for j, g in enumerate(self.groups):
            agg[:, index[g]] += contrib[:, j]
        return [{g: float(agg[r, i]) for g, i in index.items()} for r in range(x.shape[0])]


def load_predictor(artifact: str, sha256: str) -> LoadedPredictor:
    """Parse a stored model after checking its hash; never unpickles anything."""
    if sha256_text(artifact) != sha256:
        raise TamperedModel(
            "the stored model does not match the hash recorded when it was trained: it was changed "
            "after training and is refused; train a new one"
        )
    try:
        doc = json.loads(artifact)
        if doc.get("format") != FORMAT:
            raise TamperedModel(f"unknown model format {doc.get('format')!r}")
        return LoadedPredictor(doc)
    except (ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
        raise TamperedModel(f"the stored model cannot be read: {exc}") from exc
