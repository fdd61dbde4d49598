"""Scaling fits of one curve with bootstrap intervals, their extrapolation to the held-out largest
models, and BIG-bench breakthroughness (see `emergence.fits` and `emergence.measures` for the formulas)."""

from __future__ import annotations

from typing import cast

import numpy as np

from emergence import fits, measures
from emergence.analysis.curve import CURVE_POINTS, TARGET_NLL, Curve, Rows, Settings, intervals, sigmoid_applies
from emergence.io import stable_hash
from emergence.scoring.metrics import spec
from emergence.solver import Points
from emergence.verdicts import VerdictSettings, sigmoid_comparison

SHARP_CHI2 = VerdictSettings().sharp_chi2  # the verdicts' threshold for a jump (README "Verdicts")
NOT_PREFERRED = "not preferred: a line or monotone curve in log scale fits as well"


def predict(fit: str, params: dict, x: np.ndarray) -> np.ndarray:
    return fits.FITS.find(fit, "fits").predict(params, x)


def predict_all(fit: str, replicates: list[dict | None], x: np.ndarray) -> np.ndarray:
    """Every fit of `replicates` (the point fit first: never None) at `x`, (1 + B) x len(x), NaN where a
    replicate failed: one call with each parameter a column (the predictions are elementwise, so each
    row's numbers are those of `predict` on its own fit)."""
    names = replicates[0] or {}
    params = {name: np.array([[r[name] if r else np.nan] for r in replicates]) for name in names}
    return np.broadcast_to(predict(fit, params, x), (len(replicates), len(x))).copy()


def scaling_fits(metric: str, settings: Settings) -> tuple[str, ...]:
    """The scaling fits of a metric: a sigmoid on the configured metrics, the power law on the per-token loss."""
    return ("sigmoid_floor",) * sigmoid_applies(metric, settings) + ("power_law",) * (metric == TARGET_NLL)


def fit_data(curve: Curve, metric: str, axis: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order of the models by scale, their scales x, means ((1 + B) x models) in that order)."""
    order = np.argsort(curve.x[axis], kind="stable")
    return order, curve.x[axis][order], curve.means(metric)[:, order]


def held_out(curve: Curve) -> int:
    """How many of the smallest models the extrapolation fits (the `extrapolate` largest left out); 0: none."""
    settings = curve.settings
    small = len(curve.models) - settings.extrapolate
    return small if settings.extrapolate >= 1 and small >= settings.min_models else 0


def prefit(curves: list[Curve]) -> None:
    """Every scaling fit the curves' rows need, on each axis and again on the smaller models only
    (`held_out`), solved together per fit and Huber delta by `fits.fit_curves` (curves on the same scales
    in one batch: the digit counts of a family) and kept in each curve's `fitted` for `add_fit`: the point
    fits first, then the replicates with `with_model_scatter`, starting from them."""
    # per fit and Huber delta: (curve, fitted key, scales x, means, the models' indices in x's order)
    requests: dict[tuple[str, float], list[tuple[Curve, tuple, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for curve in curves:
        for metric in sorted(curve.values):
            for axis in curve.settings.x_axes:
                for fit in scaling_fits(metric, curve.settings):
                    if curve.problem(metric, axis):
                        continue
                    order, x, means = fit_data(curve, metric, axis)
                    batch = requests.setdefault((fit, curve.settings.huber_delta), [])
                    batch.append((curve, (metric, axis, fit, len(x)), x, means, order))
                    if held_out(curve):
                        small = held_out(curve)
                        batch.append((curve, (metric, axis, fit, small), x[:small], means[:, :small], order[:small]))
    for (fit, delta), batch in requests.items():
        found = fits.fit_curves(fit, [(x, means[:1]) for _, _, x, means, _ in batch], delta)
        # the point fit of each curve, or why it failed (a point fit is never None: a failed one raises)
        points = cast(Points, [fitted if isinstance(fitted, ValueError) else fitted[0] for fitted in found])
        scattered = [
            (x, with_model_scatter(curve, key[0], fit, point, x, means, models))
            for (curve, key, x, means, models), point in zip(batch, points)
        ]
        for (curve, key, *_), fitted in zip(batch, fits.fit_curves(fit, scattered, delta, points)):
            curve.fitted[key] = fitted


def with_model_scatter(
    curve: Curve, metric: str, fit: str, point: dict | ValueError, x: np.ndarray, means: np.ndarray, models: np.ndarray
) -> np.ndarray:
    """The means ((1 + B) x n, row 0 the point estimate) with each bootstrap replicate's models moved by
    a normal draw of sd tau: the models' scatter about the point fit beyond what item sampling explains.

    Item resampling alone sees only the noise of each model's mean, so a fit of the wrong shape, or
    models scattered about the curve by their training runs, got intervals as narrow as a good fit's.
    tau^2 = (|r|^2 - mean_b |(I - H)(m_b - m_0)|^2) / (n - rank H), at least 0: r the point fit's
    residuals, m_b replicate b's means and H the hat matrix of the fit's Jacobian at the point fit, so
    the item noise is measured as it shows in residuals (items shared by all sizes move the models
    together, which the fit absorbs). An unweighted method-of-moments estimate of a random-effects
    variance (DerSimonian & Laird 1986 take the weighted one). The power law is fitted to log loss, so
    there tau is relative and the draws multiply. tau = 0 leaves the means as they are, bit for bit.
    The draw of a model is the same on every x axis and in the held-out fit (`models`: indices into
    `curve.models`, in the order of `x`), seeded by the curve and metric.
    """
    if isinstance(point, ValueError) or len(means) < 3:
        return means
    space = np.log if fit in LOG_SPACE else (lambda values: values)
    with np.errstate(divide="ignore", invalid="ignore"):
        y, fitted = space(means), space(predict(fit, point, x))
    jacobian = fit_jacobian(fit, point, x, space)
    if not np.isfinite(jacobian).all():  # a step too steep to differentiate: no scatter is estimated
        return means
    projection = np.eye(len(x)) - jacobian @ np.linalg.pinv(jacobian)  # onto what the fit cannot absorb
    residual = y[0] - fitted  # what the fit left, bounds and Huber's loss included
    items = np.nanmean(np.sum(((y[1:] - y[0]) @ projection.T) ** 2, axis=1))
    tau2 = (residual @ residual - items) / max(len(x) - np.linalg.matrix_rank(jacobian), 1)
    if not np.isfinite(tau2) or tau2 <= 0:
        return means
    draws = curve_rng(curve, "model scatter", metric).standard_normal((len(means) - 1, len(curve.models)))
    moved = np.sqrt(tau2) * draws[:, models]
    scattered = means.copy()
    scattered[1:] = means[1:] * np.exp(moved) if fit in LOG_SPACE else means[1:] + moved
    return scattered


def fit_jacobian(fit: str, point: dict, x: np.ndarray, space) -> np.ndarray:
    """d space(prediction) / d parameter at the point fit (n x k, central differences, `PARAMETERS[fit]`)."""
    columns = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # an overflowed fit gives NaN columns
        for name in PARAMETERS[fit]:
            step = 1e-6 * max(abs(point[name]), 1e-3)
            up, down = (space(predict(fit, {**point, name: point[name] + d}, x)) for d in (step, -step))
            columns.append((up - down) / (2 * step))
    return np.stack(columns, axis=1)


def curve_rng(curve: Curve, *key) -> np.random.Generator:
    """A generator seeded by the sweep's seed, the curve and `key`: the same draws on every run."""
    return np.random.default_rng([curve.settings.seed, int(stable_hash([curve.key, *key])[:12], 16)])


def add_fit(rows: Rows, metric: str, axis: str, fit: str) -> None:
    """A scaling fit with intervals on its parameters (items resampled and the models' scatter about the
    fit drawn: `with_model_scatter`), and its extrapolation to the held-out largest models; the fits
    are `prefit`'s. The rmse, how well the point fit fits, gets no interval (the drawn scatter would
    inflate every replicate's)."""
    curve = rows.curve
    problem = curve.problem(metric, axis)
    order, x, means = fit_data(curve, metric, axis)
    replicates: list[dict | None] = []
    if not problem:
        fitted = curve.fitted[metric, axis, fit, len(x)]
        if isinstance(fitted, ValueError):
            problem = f"not fittable: {fit} fit failed ({fitted})"
        else:
            replicates = fitted
    if problem:
        rows.not_fittable(metric, axis, fit, problem)
        return
    sharpness = sigmoid_sharpness(rows, metric, axis, order) if fit == "sigmoid_floor" else np.inf
    preferred = sharpness > SHARP_CHI2
    point = replicates[0] or {}  # the point fit: never None (a failed one raised above)
    for name in point:
        samples = [r[name] if r else np.nan for r in replicates] if name != "rmse" else [point[name]]
        rows.add(metric, axis, fit, name, samples, "ok" if preferred else NOT_PREFERRED)
    if fit == "sigmoid_floor":
        rows.add(metric, axis, fit, "sharpness", [sharpness])
        rows.add(metric, axis, "flag", "sigmoid_preferred", [float(preferred)])
    if "midpoint" in point:  # a midpoint outside the sizes seen: the rise is extrapolated, not observed
        outside = not np.log10(x.min()) <= point["midpoint"] <= np.log10(x.max())
        rows.add(metric, axis, "flag", "midpoint_outside_range", [float(outside)])
    add_curve(rows, metric, axis, f"{fit}_curve", fit, replicates, x)
    add_extrapolation(rows, metric, axis, fit, x, means, np.array(curve.models)[order])


def add_extrapolation(
    rows: Rows, metric: str, axis: str, fit: str, x: np.ndarray, means: np.ndarray, models: np.ndarray
) -> None:
    """The fit again without the `extrapolate` largest models (`prefit`'s): its curve, and per held-out
    model the predicted and observed values and their difference. `x`, `means` ((1 + B) x models) and
    `models` are in scale order."""
    settings = rows.curve.settings
    small = held_out(rows.curve)
    if not small:
        return
    held = rows.curve.fitted[metric, axis, fit, small]
    if isinstance(held, ValueError):
        rows.not_fittable(
            metric, axis, "extrapolation", f"not fittable: {fit} fit on the smaller models failed ({held})"
        )
        return
    add_curve(rows, metric, axis, "extrapolation_curve", fit, held, x)
    predicted = predict_all(fit, held, x[small:])
    predicted[1:] += model_scatter(rows, fit, held[0], x[:small], means[0, :small], axis, metric)[:, None]
    low, high = intervals(predicted[1:].T, settings.confidence_level)
    for i, model in enumerate(models[small:]):
        observed = means[:, small + i]
        tolerance = 1e-9 * max(abs(low[i]), abs(high[i]), 1e-12)  # a perfect fit's interval is one point
        outside = not low[i] - tolerance <= observed[0] <= high[i] + tolerance
        rows.add(metric, axis, "extrapolation", "predicted", predicted[:, i], model=model)
        rows.add(metric, axis, "extrapolation", "observed", observed, model=model)
        rows.add(metric, axis, "extrapolation", "error", predicted[:, i] - observed, model=model)
        rows.add(metric, axis, "flag", "outside_prediction_interval", [float(outside)], model=model)


def sigmoid_sharpness(rows: Rows, metric: str, axis: str, order: np.ndarray) -> float:
    """How much better the sigmoid fits than the smooth classes (a line, and a curve of monotone
    curvature, in log scale): the verdicts' own sharpness (`emergence.verdicts`, check 5), from the
    models' means and their standard errors over items (binomial where a mean is all there is). The
    sigmoid is preferred, and its parameter rows `ok`, when it exceeds `SHARP_CHI2`."""
    curve = rows.curve
    values = curve.values[metric][:, order]
    stderr = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) >= 2 else None
    stat = sigmoid_comparison(
        curve.x[axis][order],
        values.mean(axis=0),
        curve.items_per_model,
        stderr=stderr,
        higher_is_better=not spec(metric).lower_is_better,
    )
    return stat["sharpness"]


PARAMETERS = {"sigmoid_floor": ("floor", "midpoint", "slope", "ceiling"), "power_law": ("N_c", "alpha")}
LOG_SPACE = {"power_law"}  # fitted to the log of its values: its residuals are relative


def model_scatter(rows: Rows, fit: str, point: dict | None, x: np.ndarray, y: np.ndarray, *key: str) -> np.ndarray:
    """One draw per bootstrap replicate of the fitted models' residuals about the point fit, inflated by
    sqrt(n / (n - k)) for the k parameters fitted (a residual bootstrap: Efron & Tibshirani 1993, ch. 9).

    Item resampling sees only the noise of each model's mean; a curve of the wrong shape, or models
    scattered about it by their training runs, shows in the residuals instead. Adding a residual to each
    replicate's prediction makes the prediction interval cover both. Seeded by the curve and `key`.
    """
    settings = rows.curve.settings
    if point is None:
        return np.zeros(settings.bootstrap)
    residuals = y - predict(fit, point, x)
    residuals *= np.sqrt(len(y) / max(len(y) - len(PARAMETERS.get(fit, ())), 1))
    return curve_rng(rows.curve, fit, *key).choice(residuals, size=settings.bootstrap)


def add_curve(
    rows: Rows, metric: str, axis: str, name: str, fit: str, replicates: list[dict | None], x: np.ndarray
) -> None:
    """The fitted curve at CURVE_POINTS log-spaced scales across `x`, with its bootstrap band (column `scale`)."""
    grid = np.geomspace(x.min(), x.max(), CURVE_POINTS)
    predicted = predict_all(fit, replicates, grid)
    for i, scale in enumerate(grid):
        rows.add(metric, axis, name, "fitted", predicted[:, i], scale=float(scale))


def add_breakthroughness(rows: Rows, metric: str, axis: str) -> np.ndarray | None:
    """BIG-bench breakthroughness along one x axis (higher-is-better orientation); its replicates, or None."""
    curve = rows.curve
    problem = curve.problem(metric, axis)
    if problem:
        rows.not_fittable(metric, axis, "breakthroughness", problem)
        return None
    sign = -1.0 if metric == TARGET_NLL or spec(metric).lower_is_better else 1.0
    samples = measures.breakthroughness(sign * curve.means(metric)[:, np.argsort(curve.x[axis], kind="stable")])
    rows.add(metric, axis, "breakthroughness", "breakthroughness", samples)
    return samples
