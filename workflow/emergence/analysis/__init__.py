"""Per task x method: per-model means, scaling fits and emergence measures, each with a bootstrap interval.

A curve is one family's models on one task x method x digit count (or all digits). Every mean, fit and
measure is recomputed on each bootstrap replicate of the items; intervals are percentiles of the
replicates. Everything ends up in the "fits" table (io.SCHEMAS["fits"]), one row per (metric, x axis,
fit, parameter, model, scale), with a status that says why a row holds no number. Modules: `curve`
(data and rows), `scaling` (fits and extrapolation), `flags` (flags, Mirage, calibration), `verdicts`
(one verdict per curve and discontinuous metric: the "verdicts" table), `imported` (results made elsewhere),
`items` (their curves over sizes from per-item scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from emergence.analysis.curve import CALIBRATION_COLUMNS, COLUMNS, Curve, Rows, Settings
from emergence.analysis.flags import add_calibration, add_flags, add_mirage
from emergence.analysis.scaling import add_breakthroughness, add_fit, prefit, scaling_fits
from emergence.analysis.verdicts import VERDICT_COLUMNS, curve_verdicts

__all__ = [
    "Analysis",
    "Curve",
    "Settings",
    "analyse_csv",
    "analyse_curve",
    "analyse_imported",
    "analyse_stage",
    "analyse_task_method",
    "read_results_csv",
    "verdicts_imported",
]


def analyse_curve(
    scores: pd.DataFrame,
    key: dict,
    settings: Settings,
    items_per_model: int | None = None,
    verdicts: list[dict] | None = None,
) -> tuple[list[dict], list[dict]]:
    """Every row of one curve: means, fits, breakthroughness, flags, Mirage relation, calibration;
    with a `verdicts` list, the curve's verdict rows (io.SCHEMAS["verdicts"]) are appended to it."""
    curve = Curve(scores, key, settings, items_per_model)
    prefit([curve])
    return curve_rows(curve, verdicts)


def curve_rows(curve: Curve, verdicts: list[dict] | None = None) -> tuple[list[dict], list[dict]]:
    """`analyse_curve`'s rows of a curve whose scaling fits `prefit` has solved."""
    settings = curve.settings
    if verdicts is not None:
        verdicts += curve_verdicts(curve)
    rows = Rows(curve)
    metrics = sorted(curve.values)
    breakthrough = {}
    for metric in metrics:
        if curve.data_problem(metric):
            rows.not_fittable(metric, "", "mean", curve.data_problem(metric))
        else:
            for i, model in enumerate(curve.models):
                rows.add(metric, "", "mean", "mean", curve.means(metric)[:, i], model=model)
        for axis in settings.x_axes:
            samples = add_breakthroughness(rows, metric, axis)
            if samples is not None:
                breakthrough[metric, axis] = samples
            for fit in scaling_fits(metric, settings):
                add_fit(rows, metric, axis, fit)
    add_flags(rows, metrics, breakthrough)
    add_mirage(rows)
    calibration = add_calibration(rows)
    return rows.finished(), calibration


def analyse_task_method(scores: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The "fits" and "calibration" tables of one task x method: every family, per digit count and over all."""
    analysed = analyse_stage(scores, settings, verdicts=False)
    return analysed.fits, analysed.calibration


@dataclass(frozen=True)
class Analysis:
    """The analysis stage's tables of one task x method (io.SCHEMAS "fits", "calibration", "verdicts")."""

    fits: pd.DataFrame
    calibration: pd.DataFrame
    verdicts: pd.DataFrame


def analyse_stage(scores: pd.DataFrame, settings: Settings, verdicts: bool = True) -> Analysis:
    """Fits, calibration and (unless `verdicts` is False: an empty table) verdicts of one task x method,
    every family, per digit count and over all. The scaling fits of all its curves are solved together
    (`prefit`): the same numbers as one curve at a time, in a fraction of the time."""
    curves = []
    for (family, task, method), group in scores.groupby(["family", "task", "method"], sort=True):
        subsets = [(str(d), part) for d, part in group.groupby("digits", sort=True)] + [("all", group)]
        for digits, subset in subsets:
            curves.append(Curve(subset, {"family": family, "task": task, "method": method, "digits": digits}, settings))
    prefit(curves)
    rows, calibration = [], []
    verdict_rows: list[dict] | None = [] if verdicts else None
    for curve in curves:
        more, more_calibration = curve_rows(curve, verdict_rows)
        rows += more
        calibration += more_calibration
    fitted = pd.DataFrame(rows, columns=COLUMNS).astype(
        {"scale": "float64", "value": "float64", "n_models": "int32", "n_items": "int32"}
    )
    return Analysis(fitted, pd.DataFrame(calibration, columns=CALIBRATION_COLUMNS), verdict_table(verdict_rows or []))


def verdict_table(rows: list[dict]) -> pd.DataFrame:
    """Verdict rows as a frame with the columns and types of io.SCHEMAS["verdicts"]."""
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS).astype({"n_models": "int32", "n_items": "int32"})


from emergence.analysis.imported import analyse_csv, analyse_imported, read_results_csv, verdicts_imported  # noqa: E402 (it uses analyse_curve)
