"""Verdict rows (io.SCHEMAS["verdicts"]): one per curve and discontinuous metric, judged with its
continuous twin by `emergence.verdicts.judge`, for the project's own scores and for imported results."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from emergence import measures
from emergence.analysis.curve import CALIBRATION_METRICS, Curve, discontinuous
from emergence.scoring.metrics import spec
from emergence.verdicts import STATISTICS, Twin, Verdict, VerdictSettings, judge

log = logging.getLogger(__name__)

KEY = ["family", "task", "method", "digits"]
VERDICT_COLUMNS = [
    *KEY,
    "metric",
    "x",
    "twin",
    "verdict",
    "confidence",
    "sentence",
    *STATISTICS,
    "breakthroughness",
    "n_models",
    "n_items",
]


def verdict_row(key: dict, metric: str, axis: str, twin: str, verdict: Verdict, y, n_items: int) -> dict:
    """One row of the verdicts table; breakthroughness (Srivastava et al. 2022) is descriptive only."""
    y = np.asarray(y, float)
    with np.errstate(all="ignore"):
        jump = float(measures.breakthroughness(y)) if len(y) >= 2 else np.nan
    return {
        **key,
        "metric": metric,
        "x": axis,
        "twin": twin,
        "verdict": verdict.verdict,
        "confidence": verdict.confidence,
        "sentence": verdict.sentence,
        **{name: verdict.statistics.get(name, np.nan) for name in STATISTICS},
        "breakthroughness": jump,
        "n_models": len(y),
        "n_items": int(n_items),
    }


def unjudged(reason: str) -> Verdict:
    return Verdict("insufficient", dict.fromkeys(STATISTICS, np.nan), "high", f"Cannot be judged: {reason}.")


def curve_verdicts(curve: Curve, settings: VerdictSettings | None = None) -> list[dict]:
    """Verdict rows of one curve of the project's scores, on its first x axis known for every model."""
    settings = settings or VerdictSettings(min_models=curve.settings.min_models)
    axes = [a for a in curve.settings.x_axes if not np.isnan(curve.x[a]).any()]
    axis = axes[0] if axes else curve.settings.x_axes[0]
    order = np.argsort(curve.x[axis], kind="stable")
    source, twin = project_twin(curve, order)
    rows = []
    for metric in sorted(m for m in curve.values if discontinuous(m) and m not in CALIBRATION_METRICS):
        problem = curve.data_problem(metric) or ("" if axes else f"scale unknown on {axis} for some model")
        means = curve.means(metric)[0][order] if not curve.data_problem(metric) else np.array([])
        if problem:
            verdict = unjudged(problem.removeprefix("not fittable: "))
        else:
            values = curve.values[metric][:, order]
            stderr = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) >= 2 else None
            verdict = judge(
                curve.x[axis][order],
                means,
                curve.items_per_model,
                stderr=stderr,
                twin=twin,
                higher_is_better=not spec(metric).lower_is_better,
                settings=settings,
            )
        rows.append(verdict_row(curve.key, metric, axis, source, verdict, means, curve.items_per_model))
    return rows


def project_twin(curve: Curve, order: np.ndarray) -> tuple[str, Twin | None]:
    """Per model (sorted by `order`): pooled per-token probability p, the exact match it predicts (mean
    of p^L over items, Schaeffer et al. 2023), and their standard errors from the item bootstrap (or
    binomial, sqrt(p (1 - p) / n), when the curve has no replicates), with the log-probability they come
    from: the answer's (`answer_logprob`) where scored, as in `flags.add_mirage`, else the target's;
    ("", None) without either."""
    source = next((m for m in ("answer_logprob", "target_logprob") if m in curve.values), None)
    if source is None or curve.data_problem(source):
        return "", None
    logprob, tokens = curve.values[source][:, order], curve.tokens[source][:, order]
    p = np.exp((curve.weights @ logprob) / (curve.weights @ tokens))  # (1 + B, models)
    predicted = curve.mirage_prediction(source)[:, order]
    if len(p) > 2:
        p_se, predicted_se = p[1:].std(axis=0, ddof=1), predicted[1:].std(axis=0, ddof=1)
    else:
        p_se = np.sqrt(p[0] * (1 - p[0]) / max(curve.items_per_model, 1))
        predicted_se = np.sqrt(predicted[0] * (1 - predicted[0]) / max(curve.items_per_model, 1))
    return source, Twin(p[0], p_se, tokens.mean(axis=0), predicted[0], predicted_se)


def imported_verdicts(long: pd.DataFrame, x_axes: tuple[str, ...], settings: VerdictSettings) -> pd.DataFrame:
    """Verdict rows of an imported long table (`emergence.importers.COLUMNS`): per (family, task,
    method), the final checkpoints' means, stderr and n_items of every discontinuous project metric,
    twinned with `target_logprob` where the task has it (an answer's log P: p = exp(mean), L = 1)."""
    from emergence.analysis.imported import is_project_metric

    final = long[long["final_checkpoint"].astype(bool)]
    rows = []
    for (family, task, method), group in final.groupby(["family", "task", "method"], sort=True):
        key = {"family": family, "task": task, "method": method, "digits": "all"}
        axis = next((a for a in x_axes if group[a].notna().all()), x_axes[0])
        group = group.sort_values([axis, "model"], kind="stable")
        twin = imported_twin(group)
        for metric, curve in group.groupby("metric", sort=True):
            if not is_project_metric(metric) or not discontinuous(metric):
                continue
            rows.append(imported_row(key, metric, axis, curve, twin, settings))
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def imported_twin(group: pd.DataFrame) -> tuple[pd.DataFrame, Twin] | None:
    """The task's per-model target_logprob as a twin, with the models it covers."""
    twin = group[group["metric"] == "target_logprob"]
    if twin.empty or twin[["value", "stderr"]].isna().any().any():
        return None
    p = np.exp(twin["value"].to_numpy(float))
    return twin, Twin(p, p * twin["stderr"].to_numpy(float), 1.0)


def imported_row(key: dict, metric: str, axis: str, curve: pd.DataFrame, twin, settings: VerdictSettings) -> dict:
    """One imported curve's verdict; unknown item counts or scales make it insufficient, never dropped."""
    y, n = curve["value"].to_numpy(float), curve["n_items"].to_numpy(float)
    n_items = int(np.nanmin(n)) if np.isfinite(n).any() else 0
    if curve[axis].isna().any() or np.isnan(y).any() or np.isnan(n).any():
        missing = "scale" if curve[axis].isna().any() else "value" if np.isnan(y).any() else "number of items"
        log.warning(f"{key['family']} {key['task']} {metric}: {missing} unknown for some model; judged insufficient")
        return verdict_row(key, metric, axis, "", unjudged(f"{missing} unknown for some model"), y, n_items)
    stderr = curve["stderr"].to_numpy(float)
    pair = None
    if twin is not None and list(twin[0]["model"]) == list(curve["model"]):
        pair = twin[1]
    verdict = judge(
        curve[axis].to_numpy(float),
        y,
        n,
        stderr=None if np.isnan(stderr).any() else stderr,
        twin=pair,
        higher_is_better=not spec(metric).lower_is_better,
        settings=settings,
    )
    return verdict_row(key, metric, axis, "target_logprob" if pair else "", verdict, y, n_items)
