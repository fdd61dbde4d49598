"""Per-curve measures beside the fits: the resolution and metric-disagreement flags, the Mirage
relation (Schaeffer et al. 2023) and calibration (see `emergence.measures` for the formulas)."""

from __future__ import annotations

import numpy as np

from emergence import measures
from emergence.analysis.curve import CALIBRATION_METRICS, Rows, discontinuous


def add_flags(rows: Rows, metrics: list[str], breakthrough: dict[tuple[str, str], np.ndarray]) -> None:
    """Resolution-limited and metric-disagreement flags (1 raised, 0 not), thresholds from the settings."""
    curve, settings = rows.curve, rows.curve.settings
    for metric in metrics:
        if discontinuous(metric) and not curve.problem(metric) and np.isfinite(settings.resolution_items):
            limited = measures.resolution_limited(
                curve.means(metric)[0], curve.items_per_model, settings.resolution_items
            )
            rows.add(metric, "", "flag", "resolution_limited", [float(limited)])
    for (metric, axis), jump in breakthrough.items():
        if not discontinuous(metric):
            continue
        for (other, other_axis), smooth in breakthrough.items():
            if other_axis != axis or discontinuous(other) or other in CALIBRATION_METRICS:
                continue
            disagree = (
                jump[0] >= settings.emergent_breakthroughness and abs(smooth[0]) <= settings.smooth_breakthroughness
            )
            rows.add(metric, axis, "flag", "metric_disagreement", [float(disagree)], versus=other)


def add_mirage(rows: Rows) -> None:
    """Observed exact match next to the p^L prediction from per-token probability, per model.

    p and L are the answer's (`answer_logprob`) where the sweep scores it: for chain-of-thought and
    scratchpad the target is the whole worked chain, while exact match scores only its answer. Else
    the whole target's (`target_logprob`); `versus` names which.
    """
    curve = rows.curve
    logprob = next((m for m in ("answer_logprob", "target_logprob") if m in curve.values), None)
    if "exact_match" not in curve.values or logprob is None:
        return
    problem = curve.data_problem("exact_match") or curve.data_problem(logprob)
    if problem:
        rows.not_fittable("exact_match", "", "mirage", problem)
        return
    predicted = curve.mirage_prediction(logprob)
    observed = curve.means("exact_match")
    for i, model in enumerate(curve.models):
        rows.add("exact_match", "", "mirage", "predicted", predicted[:, i], model=model, versus=logprob)  # p^L
        rows.add("exact_match", "", "mirage", "observed", observed[:, i], model=model, versus=logprob)


def add_calibration(rows: Rows) -> list[dict]:
    """Expected calibration error per model with its interval; returns the reliability table's rows."""
    curve, settings = rows.curve, rows.curve.settings
    target = "multiple_choice_grade" if "multiple_choice_grade" in curve.values else "exact_match"
    if "confidence" not in curve.values or target not in curve.values:
        return []
    problem = curve.data_problem("confidence") or curve.data_problem(target)
    if problem:
        rows.not_fittable("confidence", "", "calibration", problem)
        return []
    table = []
    for i, model in enumerate(curve.models):
        confidence, correct = curve.values["confidence"][:, i], curve.values[target][:, i]
        ece = measures.expected_calibration_error(confidence, correct, curve.weights, settings.calibration_bins)
        rows.add("confidence", "", "calibration", "ECE", ece, model=model)
        for row in measures.reliability_table(confidence, correct, settings.calibration_bins):
            table.append({**curve.key, "model": model, "n_params": int(curve.x["n_params"][i]), **row})
    return table
