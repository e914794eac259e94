"""Charts as image files (matplotlib, Agg backend: no display is ever opened).

:func:`write_backtest_chart` draws the document of ``leadstage score backtest --json``: weekly MQL
volume of the candidate and the active model (and the capacity line and the thresholded candidate when
a capacity was given) above the weekly precision to SQL and to customer of both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

CANDIDATE, ACTIVE, CAPPED = "#1f77b4", "#ff7f0e", "#2ca02c"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _series(rows: Sequence[Mapping[str, Any] | None], key: str) -> list[float]:
    """One figure per week; weeks without MQLs have no precision (a gap, not a zero)."""
    out: list[float] = []
    for row in rows:
        value = None if row is None else row.get(key)
        out.append(float("nan") if value is None else float(value))
    return out


def write_backtest_chart(doc: Mapping[str, Any], path: Path) -> None:
    """Write the backtest as a PNG (two panels: weekly MQL volume, weekly precision)."""
    weeks = doc["weeks"]
    days = [date.fromisoformat(w["start"]) for w in weeks]
    mid = [d + timedelta(days=3.5) for d in days]  # plot each week at its middle
    cand_rows = [w["candidate"] for w in weeks]
    act_rows = [w["active"] for w in weeks]
    has_active = doc["totals"]["active"] is not None
    capacity = doc.get("capacity")
    models = doc.get("models") or {}
    cand_info = models.get("candidate") or {}
    cand_label = repr(cand_info.get("name", "candidate"))
    if cand_info.get("file"):
        cand_label += f" ({Path(cand_info['file']).name})"
    act_info = models.get("active")
    act_name = f"{act_info['name']!r} (v{act_info['version']})" if act_info else "active model"

    fig = Figure(figsize=(14, 8.5), dpi=110, layout="constrained")  # drawn by Agg: never a display
    volume, precision = fig.subplots(2, 1, sharex=True, height_ratios=(1.1, 1))
    title = f"Backtest of {cand_label}"
    title += f" vs the active model {act_name}" if has_active else " (no active model to compare)"
    fig.suptitle(f"{title}\nISO weeks {doc['from']} to {doc['to']} (UTC), {doc.get('leads', '?')} leads")

    width = timedelta(days=3.0) if has_active else timedelta(days=5.5)
    cand_totals = doc["totals"]["candidate"]
    offset = timedelta(days=1.6) if has_active else timedelta(0)
    volume.bar(
        [m - offset for m in mid],
        [r["mqls"] for r in cand_rows],
        width=width,
        color=CANDIDATE,
        label=f"candidate: {cand_totals['mean_weekly_mqls']:g} MQLs/week on average",
    )
    if has_active:
        act_totals = doc["totals"]["active"]
        volume.bar(
            [m + offset for m in mid],
            [r["mqls"] if r else 0 for r in act_rows],
            width=width,
            color=ACTIVE,
            label=f"active: {act_totals['mean_weekly_mqls']:g} MQLs/week on average",
        )
    if capacity is not None:
        volume.axhline(
            capacity["per_week"],
            color="#d62728",
            linestyle="--",
            linewidth=1.5,
            label=f"sales capacity: {capacity['per_week']} lead(s)/week",
        )
        if capacity["threshold"] is not None:
            volume.step(
                [*days, days[-1] + timedelta(days=7)],
                [*(w["mqls"] for w in capacity["weeks"]), capacity["weeks"][-1]["mqls"]],
                where="post",
                color=CAPPED,
                linewidth=2,
                label=(
                    f"candidate with engagement >= {capacity['threshold']:g}: "
                    f"{capacity['mean_weekly_mqls']:g} MQLs/week"
                ),
            )
    volume.set_ylabel("MQLs per week (leads)")
    volume.set_title("Weekly MQL volume: leads that would first have become MQL that week", loc="left")
    volume.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    volume.grid(axis="y", alpha=0.3)
    volume.set_ylim(bottom=0)

    precision.plot(
        mid,
        _series(cand_rows, "precision_sql"),
        color=CANDIDATE,
        linewidth=3.5,
        alpha=0.55,
        marker="o",
        markersize=5,
        label=f"candidate -> SQL ({_pct(cand_totals['precision_sql'])} overall)",
    )
    precision.plot(
        mid,
        _series(cand_rows, "precision_customer"),
        color=CANDIDATE,
        linewidth=3.5,
        alpha=0.55,
        linestyle="--",
        marker="s",
        markersize=5,
        label=f"candidate -> customer ({_pct(cand_totals['precision_customer'])} overall)",
    )
    if has_active:
        precision.plot(
            mid,
            _series(act_rows, "precision_sql"),
            color=ACTIVE,
            marker="o",
            markersize=3,
            label=f"active -> SQL ({_pct(act_totals['precision_sql'])} overall)",
        )
        precision.plot(
            mid,
            _series(act_rows, "precision_customer"),
            color=ACTIVE,
            linestyle="--",
            marker="s",
            markersize=3,
            label=f"active -> customer ({_pct(act_totals['precision_customer'])} overall)",
        )
    if capacity is not None and capacity["threshold"] is not None:
        precision.plot(
            mid,
            _series(capacity["weeks"], "precision_sql"),
            color=CAPPED,
            marker="^",
            markersize=3,
            label=f"candidate at capacity -> SQL ({_pct(capacity['precision_sql'])} overall)",
        )
    precision.set_ylabel("precision (% of the week's MQLs)")
    precision.set_xlabel("week (Monday start, UTC)")
    precision.set_title(
        "Weekly precision: share of the week's MQLs that later reached SQL / customer", loc="left"
    )
    precision.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    precision.set_ylim(-0.02, 1.02)
    precision.grid(alpha=0.3)
    precision.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    step = max(1, math.ceil(len(days) / 9))
    ticks = days[::step]
    precision.set_xticks(
        ticks, [f"{w['week']}\n{d:%d %b}" for w, d in zip(weeks[::step], ticks, strict=True)]
    )
    FigureCanvasAgg(fig)  # attaches the Agg canvas to the figure
    fig.savefig(path, format="png")


def write_model_card_chart(card: Mapping[str, Any], path: Path) -> None:
    """Write a predictive model card as a PNG: ROC curve, cumulative gains and calibration."""
    fig = Figure(figsize=(15, 5), dpi=110, layout="constrained")  # drawn by Agg: never a display
    roc_ax, gains_ax, cal_ax = fig.subplots(1, 3)
    fig.suptitle(
        f"Predictive model {card['model_id']} (v{card['version']}, {card['kind']}): {card['label']['definition']}\n"
        f"{card['validation']}; {card['n_rows']} leads, {card['n_positive']} positive"
    )
    roc = card["curves"]["roc"]
    roc_ax.plot([p[0] for p in roc], [p[1] for p in roc], color=CANDIDATE, label=f"ROC AUC {card['auc']:.3f}")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    roc_ax.set(title="ROC curve", xlabel="false positive rate", ylabel="true positive rate")
    roc_ax.legend(loc="lower right")
    gains = card["curves"]["gains"]
    gains_ax.plot(
        [p[0] for p in gains],
        [p[1] for p in gains],
        color=CANDIDATE,
        marker="o",
        markersize=3,
        label=f"model (top-decile lift {card['lift_top_decile']})",
    )
    gains_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    gains_ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    gains_ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    gains_ax.set(title="Cumulative gains", xlabel="leads contacted, best first", ylabel="conversions found")
    gains_ax.legend(loc="lower right")
    cal = card["calibration"]
    cal_ax.plot(
        [b["predicted"] for b in cal],
        [b["observed"] for b in cal],
        color=CANDIDATE,
        marker="o",
        label=f"model (Brier {card['brier']})",
    )
    cal_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    cal_ax.set(
        title="Calibration",
        xlabel="predicted probability",
        ylabel="observed conversion rate",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    cal_ax.legend(loc="upper left")
    fig.savefig(path, format="png")


# ---- reports (``leadstage report NAME --png``) -----------------------------------------------------------

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _scope_text(doc: Mapping[str, Any]) -> str:
    span = f"{doc.get('from') or 'start of history'} to {doc.get('to') or 'now'}"
    return f"{doc['mode']} mode, {span} (UTC)"


def _new_figure(rows: int = 1, height: float = 6.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(13, height * rows), dpi=100, layout="constrained")  # Agg: never a display
    return fig, fig.subplots(rows, 1, squeeze=False)[:, 0]


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png")


def _funnel_chart(doc: Mapping[str, Any], path: Path) -> None:
    groups = doc.get("groups") or []
    fig, axes = _new_figure(2 if groups else 1, 5.5)
    stages = [s["stage"] for s in doc["stages"]]
    counts = [s["count"] for s in doc["stages"]]
    ax = axes[0]
    bars = ax.bar(stages, counts, color=_PALETTE[0], label=f"{doc['unit']} per stage")
    for bar, row in zip(bars, doc["stages"], strict=True):
        note = f"{row['count']:,}"
        if row["conversion_to_next"] is not None:
            note += f"\n{_pct(row['conversion_to_next'])} to next"
        ax.annotate(
            note,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize="small",
        )
    ax.set_ylabel(f"{doc['unit']} (count)")
    ax.set_ylim(0, max(counts or [1]) * 1.15 + 1)
    ax.set_xlabel("lifecycle stage")
    ax.set_title(f"Funnel: {doc['unit']} reaching each stage ({_scope_text(doc)})", loc="left")
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    if groups:
        ax = axes[1]
        shown = groups[:12]
        width = 0.8 / max(1, len(shown))
        for i, g in enumerate(shown):
            rates = [
                row["count"] / g["stages"][0]["count"] if g["stages"][0]["count"] else 0
                for row in g["stages"]
            ]
            ax.bar(
                [x + i * width for x in range(len(stages))],
                rates,
                width=width,
                color=_PALETTE[i % len(_PALETTE)],
                label=f"{g['group']} ({g['stages'][0]['count']:,} leads)",
            )
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(stages))], stages)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        ax.set_ylabel("share of the group's first stage (%, log scale)")
        ax.set_xlabel("lifecycle stage")
        ax.set_title(f"By {doc['by']}: share reaching each stage", loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
        ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def _velocity_chart(doc: Mapping[str, Any], path: Path) -> None:
    fig, axes = _new_figure(1, 6)
    ax = axes[0]
    rows = [
        *doc["stages"],
        {"stage": "lead to customer", **doc["lead_to_customer"], "visits": doc["lead_to_customer"]["count"]},
    ]
    labels = [f"{r['stage']}\n(n={r['visits']:,})" for r in rows]
    xs = range(len(rows))
    ax.bar(
        [x - 0.2 for x in xs],
        [r["median_days"] or 0 for r in rows],
        width=0.4,
        color=_PALETTE[0],
        label="median",
    )
    ax.bar(
        [x + 0.2 for x in xs],
        [r["p80_days"] or 0 for r in rows],
        width=0.4,
        color=_PALETTE[1],
        label="80th percentile",
    )
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("days")
    ax.set_xlabel("stage (completed visits) and lead creation to first win")
    ax.set_title(f"Velocity: days in each stage ({_scope_text(doc)})", loc="left")
    ax.legend(loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def _attribution_chart(doc: Mapping[str, Any], path: Path) -> None:
    fig, axes = _new_figure(2, 5.5)
    models = list(doc["models"])
    first = doc["models"][models[0]]
    values = [v["value"] for v in sorted(first, key=lambda v: -(v["customer"] + v["mql"] / 1000))][:10]
    for ax, outcome, unit in ((axes[0], "customer", "customers credited"), (axes[1], "mql", "MQLs credited")):
        height = 0.8 / len(models)
        for i, model in enumerate(models):
            by_value = {v["value"]: v for v in doc["models"][model]}
            ax.barh(
                [y + i * height for y in range(len(values))],
                [by_value.get(v, {}).get(outcome, 0) for v in values],
                height=height,
                color=_PALETTE[i % len(_PALETTE)],
                label=model,
            )
        ax.set_yticks([y + 0.4 - height / 2 for y in range(len(values))], [v[:45] for v in values])
        ax.invert_yaxis()
        ax.set_xlabel(f"{unit} (leads, fractional credit)")
        ax.set_ylabel(doc["by"])
        total = doc["outcomes"][outcome]["count"]
        ax.set_title(
            f"{unit.capitalize()} by {doc['by']} under each model ({total:,} in scope; {_scope_text(doc)})",
            loc="left",
        )
        ax.legend(loc="lower right", fontsize="small")
        ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def _feedback_chart(doc: Mapping[str, Any], path: Path) -> None:
    groups = doc.get("groups") or []
    fig, axes = _new_figure(2 if groups else 1, 5.5)
    ax = axes[0]
    actions = sorted({r["action"] for r in doc["reasons"]})
    reasons = sorted({r["reason"] for r in doc["reasons"]})
    left = [0] * len(reasons)
    for i, action in enumerate(actions):
        counts = {r["reason"]: r["count"] for r in doc["reasons"] if r["action"] == action}
        widths = [counts.get(reason, 0) for reason in reasons]
        ax.barh(reasons, widths, left=left, color=_PALETTE[i % len(_PALETTE)], label=action)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlabel("decisions (count)")
    ax.set_ylabel("reason code")
    ax.set_title(
        f"Sales feedback: reasons given; MQL acceptance {_pct(doc['acceptance_rate'])} of "
        f"{doc['reviewed']:,} reviewed ({_scope_text(doc)})",
        loc="left",
    )
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    if groups:
        ax = axes[1]
        names = [g["group"] for g in groups]
        ax.bar(names, [g["acceptance_rate"] for g in groups], color=_PALETTE[2], label="MQL acceptance rate")
        ax.axhline(doc["acceptance_rate"], color=_PALETTE[3], linestyle="--", label="all leads")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        ax.set_ylabel("accepted / reviewed (%)")
        ax.set_xlabel(doc["by"])
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(f"MQL acceptance by {doc['by']}", loc="left")
        ax.legend(loc="lower right")
        ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def _calibration_chart(doc: Mapping[str, Any], path: Path) -> None:
    fig, axes = _new_figure(1, 6)
    ax = axes[0]
    bands = doc["bands"]
    xs = list(range(len(bands)))
    for offset, key, color in ((-0.15, "sql", _PALETTE[0]), (0.15, "customer", _PALETTE[2])):
        rates = [b[f"{key}_rate"] for b in bands]
        low = [r - (b[f"{key}_ci95"] or [r, r])[0] for r, b in zip(rates, bands, strict=True)]
        high = [(b[f"{key}_ci95"] or [r, r])[1] - r for r, b in zip(rates, bands, strict=True)]
        ax.errorbar(
            [x + offset for x in xs],
            rates,
            yerr=[low, high],
            fmt="o",
            color=color,
            capsize=4,
            label=f"reached {key} (95% CI)",
        )
    ax.set_xticks(xs, [f"{b['band']}\n(n={b['leads']:,})" for b in bands])
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_ylabel("conversion (% of the band's leads)")
    ax.set_xlabel(f"score band: {doc['band']}")
    ax.set_title(f"Calibration: conversion by {doc['band']} ({_scope_text(doc)})", loc="left")
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def write_report_chart(doc: Mapping[str, Any], path: Path) -> None:
    """Write the chart of a report document (``leadstage report NAME --json``) as a PNG."""
    charts = {
        "funnel": _funnel_chart,
        "velocity": _velocity_chart,
        "attribution": _attribution_chart,
        "feedback": _feedback_chart,
        "calibration": _calibration_chart,
    }
    charts[doc["report"]](doc, path)
