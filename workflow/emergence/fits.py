"""Scaling curves: does an ability jump with scale, or does loss fall smoothly?

- a sigmoid with a floor and a free ceiling (both in [0, 1]) on a bounded metric against log scale,
  the shape an "emergent" ability takes (Wei et al. 2022); its slope measures how sudden the jump looks;
- the Kaplan power law L(N) = (N_c / N)^alpha (Kaplan et al. 2020, eq. 1.1) on a per-token loss, the
  smooth trend that Schaeffer et al. (2023) argue lies under a discontinuous metric;
- the Chinchilla form L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, approach 3).
Power laws are fitted in log space by summed Huber loss and multi-start L-BFGS, as Hoffmann et al.
do. Scale (N, or training FLOPs C = 6ND) is whatever the caller passes. Bootstrap replicates of a
sigmoid or Kaplan fit start from the point fit and are solved all at once (`fit_replicates`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit

from emergence.registry import Registry
from emergence.solver import Curves, Fitted, Points, Terms, grouped, minimise_batch, stacked, unstacked

SIGMOID_SLOPE_STARTS = (1.0, 3.0, 10.0)
SIGMOID_MIDPOINT_QUANTILES = (0.25, 0.5, 0.75)
# scipy's defaults (1e-8) stopped point fits with a parameter on its bound (a ceiling at 1) at an rmse of 1e-5
POINT_TOLERANCES = {"ftol": 1e-12, "xtol": 1e-12, "gtol": 1e-12}


def sigmoid_floor(log_n: np.ndarray, floor: float, midpoint: float, slope: float, ceiling: float = 1.0) -> np.ndarray:
    """Accuracy that rises from `floor` (chance or lucky guesses) to `ceiling` around `midpoint` = log10 N.

    y = floor + (ceiling - floor) expit(slope (log10 N - midpoint)): Wei et al. (2022)'s sigmoid in log
    scale with a free ceiling, since a task may level off below 1 (label noise, an ability that
    saturates); with the ceiling at 1 it is the sigmoid this project fitted before.
    """
    return floor + (ceiling - floor) * expit(slope * (log_n - midpoint))


def sigmoid_bounds(log_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the fitted vector (floor, midpoint, slope, share): floor in [0, 1], midpoint within one
    data span, slope at least 1e-6, share in [0, 1]. The share is how much of the room above the floor
    the curve rises, ceiling = floor + share (1 - floor): a box that keeps floor <= ceiling <= 1.
    `log_n` (n) gives bounds (4); curves' scales (C x n) give each curve's (C x 4)."""
    span = np.maximum(np.ptp(log_n, axis=-1), 1.0)
    low, high, ones = log_n.min(axis=-1) - span, log_n.max(axis=-1) + span, np.ones_like(span)
    lower = np.stack([0 * ones, low, 1e-6 * ones, 0 * ones], axis=-1)
    return lower, np.stack([ones, high, np.inf * ones, ones], axis=-1)


def share_of(floor: float, ceiling: float) -> float:
    """The share (see `sigmoid_bounds`) of a ceiling above a floor; 1 when the floor is at 1."""
    return float(np.clip((ceiling - floor) / (1.0 - floor), 0.0, 1.0)) if floor < 1.0 else 1.0


def sigmoid_start(fit: dict, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """A previous fit as a start, inside the bounds (a finite slope); a fit without a ceiling had it at 1."""
    share = share_of(fit["floor"], fit.get("ceiling", 1.0))
    return np.clip([fit["floor"], fit["midpoint"], fit["slope"], share], lower, np.minimum(upper, 1e6))


def fit_sigmoid_floor(log_n: np.ndarray, y: np.ndarray, start: dict | None = None) -> dict:
    """Least-squares fit of `sigmoid_floor` with floor <= ceiling in [0, 1] and slope > 0, best of a grid of starts.

    `log_n` is log10 of parameters or of training FLOPs. The midpoint is kept within one data span
    of the sizes seen, so a flat curve cannot send it off to infinity. The grid (floor at the lowest
    value, ceiling at the highest, 3 midpoints x 3 slopes) is solved at once by `minimise_batch`; the
    best end is then polished by scipy's dogleg solver for bounds (`dogbox`: it steps along an active
    bound, where the reflective one crept towards it) with the analytic Jacobian. `start` (a previous
    fit, as bootstrap replicates pass) replaces the grid. Returns floor, ceiling, midpoint, slope and
    rmse. Raises ValueError when no start ends finite.
    """
    log_n, y = np.asarray(log_n, float), np.asarray(y, float)
    if start:
        return sigmoid_polish(log_n, y, sigmoid_start(start, *sigmoid_bounds(log_n)))
    (found,) = sigmoid_points(log_n[None, :], y[None, :])
    if isinstance(found, ValueError):
        raise found
    return found


def sigmoid_points(log_n: np.ndarray, ys: np.ndarray) -> list[dict | ValueError]:
    """`fit_sigmoid_floor` of every row of `ys` (C x n) on its scales, the row of `log_n` (C x n): the
    grids of all C curves in one `minimise_batch` call (each problem is solved as it was alone), then
    each curve's best end polished by scipy. Per curve its fit, or the ValueError its fit raised."""
    lower, upper = sigmoid_bounds(log_n)
    midpoints = np.quantile(log_n, SIGMOID_MIDPOINT_QUANTILES, axis=1).T
    grids = []
    for y, middles in zip(ys, midpoints):
        floor = float(np.clip(y.min(), 0.0, 0.99))
        share = max(share_of(floor, float(np.clip(y.max(), 0.0, 1.0))), 1e-3)
        grids.append([[floor, m, s, share] for m, s in itertools.product(middles, SIGMOID_SLOPE_STARTS)])
    starts = len(grids[0]) if grids else 0
    curve = np.repeat(np.arange(len(ys)), starts)  # each grid start's curve
    data = np.concatenate([log_n[curve], ys[curve]], axis=1)
    ends, finite = minimise_batch(sigmoid_terms, np.reshape(grids, (-1, 4)), data, lower[curve], upper[curve])
    cost = np.where(finite, np.sum((sigmoid_values(log_n[curve], ends) - ys[curve]) ** 2, axis=1), np.inf)
    found: list[dict | ValueError] = []
    for i, (x, y) in enumerate(zip(log_n, ys)):
        own = cost[i * starts : (i + 1) * starts]
        try:
            if not np.isfinite(own).any():
                raise ValueError("no start reached a finite fit")
            found.append(sigmoid_polish(x, y, ends[i * starts + int(np.argmin(own))]))
        except ValueError as err:
            found.append(err)
    return found


def sigmoid_polish(log_n: np.ndarray, y: np.ndarray, best: np.ndarray) -> dict:
    """The fit from `best` (floor, midpoint, slope, share) by scipy's `dogbox` (see `fit_sigmoid_floor`)."""
    try:
        found = least_squares(
            lambda p: sigmoid_values(log_n, p[None])[0] - y,
            best,
            jac=lambda p: sigmoid_jacobian(log_n, p[None])[0],
            bounds=sigmoid_bounds(log_n),
            method="dogbox",
            **POINT_TOLERANCES,
        )
    except ValueError as err:  # residuals not finite at the start
        raise ValueError("no start reached a finite fit") from err
    return sigmoid_result(found.x[None, :], found.fun[None, :])[0]


def sigmoid_values(log_n: np.ndarray, params: np.ndarray) -> np.ndarray:
    """`sigmoid_floor` at `log_n` (n) for each row of `params` (b x 4: floor, midpoint, slope, share): b x n."""
    floor, midpoint, slope, share = params.T[:, :, None]
    return floor + (1.0 - floor) * share * expit(slope * (log_n - midpoint))


def sigmoid_jacobian(log_n: np.ndarray, params: np.ndarray) -> np.ndarray:
    """d `sigmoid_values` / d (floor, midpoint, slope, share): b x n x 4, for `params` b x 4.

    With rise r = expit(slope (x - midpoint)) and height h = (1 - floor) share: 1 - share r,
    -slope h r (1 - r), (x - midpoint) h r (1 - r) and (1 - floor) r.
    """
    floor, midpoint, slope, share = params.T[:, :, None]
    rise = expit(slope * (log_n - midpoint))
    steepness = (1.0 - floor) * share * rise * (1.0 - rise)
    return np.stack(
        [1.0 - share * rise, -slope * steepness, (log_n - midpoint) * steepness, (1.0 - floor) * rise], axis=2
    )


def sigmoid_result(params: np.ndarray, residuals: np.ndarray) -> list[dict]:
    """Fits as dicts from `params` (B x 4: floor, midpoint, slope, share) and their `residuals` (B x n)."""
    rmse = np.sqrt(np.mean(residuals**2, axis=1))
    return [
        {
            "floor": float(f),
            "ceiling": float(f + (1.0 - f) * q),
            "midpoint": float(m),
            "slope": float(s),
            "rmse": float(r),
        }
        for (f, m, s, q), r in zip(params, rmse)
    ]


def huber(residual: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of the residuals summed over the last axis, and its derivative with respect to each residual."""
    small = np.abs(residual) <= delta
    value = np.where(small, 0.5 * residual**2, delta * (np.abs(residual) - 0.5 * delta)).sum(axis=-1)
    return value, np.where(small, residual, delta * np.sign(residual))


POWER_LAW_ALPHA_STARTS = (0.01, 0.1, 0.5, 1.0, 2.0)


def fit_power_law(n: np.ndarray, loss: np.ndarray, delta: float = 1e-3, start: dict | None = None) -> dict:
    """Fit L(N) = (N_c / N)^alpha (Kaplan et al. 2020, eq. 1.1) in log space, by summed Huber loss.

    ln L = alpha ln N_c - alpha ln N is a line; its two coefficients are found by L-BFGS from a grid
    of exponents (or from `start`, a previous fit, as bootstrap replicates do). N may be parameters
    or training FLOPs. Raises ValueError for a loss that is not positive or does not fall with N.
    """
    from scipy.optimize import minimize

    n, loss = np.asarray(n, float), np.asarray(loss, float)
    if np.any(loss <= 0) or np.any(n <= 0):
        raise ValueError("loss and N must be positive")
    x, y = np.log(n), np.log(loss)
    centre = x.mean()  # fit y = c - alpha (x - centre): the two coefficients are then uncorrelated

    centred = x - centre

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        value, psi = huber(p[0] - p[1] * centred - y, delta)
        return float(value), np.array([psi.sum(), -(psi * centred).sum()])

    starts = [power_law_start(start, centre)] if start else [(y.mean(), alpha) for alpha in POWER_LAW_ALPHA_STARTS]
    best = min(
        (minimize(objective, np.array(s, float), jac=True, method="L-BFGS-B") for s in starts), key=lambda r: r.fun
    )
    c, alpha = best.x
    if alpha <= 0:
        raise ValueError("loss does not fall with N")
    return power_law_result(np.array([[c, alpha]]), x, y[None, :])[0]


def power_law_start(fit: dict, centre: float) -> tuple[float, float]:
    """(c, alpha) of a previous fit, for the line ln L = c - alpha (ln N - `centre`)."""
    return np.log(fit["N_c"]) * fit["alpha"] - fit["alpha"] * centre, fit["alpha"]


def power_law_result(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> list[dict]:
    """Fits as dicts from `params` (B x 2: c, alpha of ln L = c - alpha (ln N - mean ln N)) on `y` (B x n, ln L)
    at `x` = ln N (n, or B x n: each row's own)."""
    c, alpha = params[:, :1], params[:, 1:]
    intercept = c + alpha * x.mean(axis=-1, keepdims=True)
    n_c = np.exp(intercept / alpha)[:, 0]
    rmse = np.sqrt(np.mean((y - (intercept - alpha * x)) ** 2, axis=1))
    return [{"N_c": float(a), "alpha": float(b), "rmse": float(r)} for a, b, r in zip(n_c, alpha[:, 0], rmse)]


CHINCHILLA_GRID = {  # starts of Besiroglu et al. (2024), their section 2
    "e": np.arange(-1.0, 1.01, 0.5),
    "a": np.arange(0.0, 25.1, 5.0),
    "b": np.arange(0.0, 25.1, 5.0),
    "alpha": np.arange(0.0, 2.01, 0.5),
    "beta": np.arange(0.0, 2.01, 0.5),
}


def fit_chinchilla(n: np.ndarray, d: np.ndarray, loss: np.ndarray, delta: float = 1e-3) -> dict:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta, Hoffmann et al. (2022) approach 3, as Besiroglu et al. (2024) do.

    In log space, log L = LSE(a - alpha log N, b - beta log D, e) with A = e^a, B = e^b, E = e^e; the
    summed Huber loss (delta) of the residuals is minimised by L-BFGS from every start of a grid, and
    the best end point is kept.
    """
    from scipy.optimize import minimize
    from scipy.special import softmax

    log_n, log_d, log_loss = np.log(n), np.log(d), np.log(loss)

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, e, alpha, beta = p
        terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])
        top = terms.max(axis=0)
        residual = top + np.log(np.exp(terms - top).sum(axis=0)) - log_loss
        value, psi = huber(residual, delta)
        weights = softmax(terms, axis=0) * psi
        gradient = np.array(
            [
                weights[0].sum(),
                weights[1].sum(),
                weights[2].sum(),
                -(weights[0] * log_n).sum(),
                -(weights[1] * log_d).sum(),
            ]
        )
        return float(value), gradient

    best = None
    grid = CHINCHILLA_GRID
    for start in itertools.product(grid["a"], grid["b"], grid["e"], grid["alpha"], grid["beta"]):
        result = minimize(objective, np.array(start), jac=True, method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None  # the grid has starts
    a, b, e, alpha, beta = best.x
    return {
        "E": float(np.exp(e)),
        "A": float(np.exp(a)),
        "B": float(np.exp(b)),
        "alpha": float(alpha),
        "beta": float(beta),
        "huber_loss": float(best.fun),
    }


@dataclass(frozen=True)
class ScalingFit:
    """A registered scaling fit: its replicate fitter ((curves, delta, point fits or None) -> each curve's
    fits or the ValueError of its point fit; see `fit_curves`) and its prediction ((parameters, x) -> values), both
    against scale x itself (N or C, not its log). The prediction is elementwise: parameters given as
    columns (R x 1 arrays) predict R fits at once (R x len(x))."""

    replicates: Callable[[Curves, float, Points | None], list[Fitted]]
    predict: Callable[[dict, np.ndarray], np.ndarray]


FITS: Registry[ScalingFit] = Registry("fit")


def fit_replicates(fit: str, x: np.ndarray, means: np.ndarray, delta: float) -> list[dict | None]:
    """The registered `fit` of every row of `means` ((1 + B) x n: row 0 the point estimate, rows 1..B
    bootstrap replicates) against scale `x` (n); None where a replicate's fit fails.

    Row 0 is fitted multi-start by `fit_sigmoid_floor` or `fit_power_law`; rows 1..B start from that
    fit, as they did one scipy fit at a time, but are solved together by `minimise_batch` (a
    curve's 200 replicates in some 5 ms instead of 0.3 s). Raises ValueError when the point fit fails.
    """
    (found,) = fit_curves(fit, [(x, means)], delta)
    if isinstance(found, ValueError):
        raise found
    return found


def fit_curves(fit: str, curves: Curves, delta: float, points: Points | None = None) -> list[Fitted]:
    """`fit_replicates` of many curves, each (x (n), means ((1 + B) x n)); per curve its fits, or the
    ValueError its point fit raised. `points`, each curve's point fit (or its ValueError) when already
    found, are taken as they are (row 0 of the means is not fitted again) and start its replicates.
    Sigmoids of as many models are solved together (their point fits' grids in one `minimise_batch`
    call, their replicates in another), power laws on the same scales (see `huber_terms`). Every
    problem of a batch is solved as it is alone, so each curve's numbers are those of `fit_replicates`
    on it, bit for bit: a task x method's sigmoids cost 4 batches instead of 80 (each up to 200
    iterations: a replicate whose slope runs off to a step never converges)."""
    curves = [(np.asarray(x, float), np.asarray(means, float)) for x, means in curves]
    return FITS.find(fit, "fits").replicates(curves, delta, points)


def sigmoid_group(log_n: np.ndarray, means: list[np.ndarray], points: Points | None = None) -> list[Fitted]:
    """`fit_curves` for `sigmoid_floor` on curves of as many models (`log_n`: C x n, each curve's scales):
    least squares within `sigmoid_bounds`."""
    if points is None:
        points = sigmoid_points(log_n, np.array([m[0] for m in means]))
    lower, upper = sigmoid_bounds(log_n)
    starts = [sigmoid_start(p, lo, up) if isinstance(p, dict) else lo for p, lo, up in zip(points, lower, upper)]
    y, curve = stacked(means, points)
    start, x = np.reshape(starts, (-1, 4))[curve], log_n[curve]
    params, ok = minimise_batch(sigmoid_terms, start, np.concatenate([x, y], axis=1), lower[curve], upper[curve])
    found = sigmoid_result(params, sigmoid_values(x, params) - y)
    return unstacked(points, [f if good else None for f, good in zip(found, ok)], means)


def power_law_group(n: np.ndarray, means: list[np.ndarray], delta: float, points: Points | None = None) -> list[Fitted]:
    """`fit_curves` for the power law on curves on the same scales (`n`: C x n, equal rows): summed Huber
    loss in log space; a replicate whose loss is not positive or does not fall with N fails, as alone."""
    if points is None:
        points = []
        for m in means:
            try:
                points.append(fit_power_law(n[0], m[0], delta))
            except ValueError as err:
                points.append(err)
    x = np.log(n[0])
    starts = [power_law_start(p, x.mean()) if isinstance(p, dict) else (0.0, 0.0) for p in points]
    rows, curve = stacked(means, points)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(rows)
    centred, unbounded = x - x.mean(), np.full(2, np.inf)
    every_residual_within_delta = np.array([len(x), np.sum(centred**2)])  # the Hessian's diagonal then
    terms, start = huber_terms(centred, delta), np.reshape(starts, (-1, 2))[curve]
    params, ok = minimise_batch(terms, start, y, -unbounded, unbounded, every_residual_within_delta)
    found = power_law_result(params, x, y)
    return unstacked(points, [f if good and f["alpha"] > 0 else None for f, good in zip(found, ok)], means)


def sigmoid_terms(params: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half the summed squared residuals of `sigmoid_floor`, its gradient and Gauss-Newton Hessian J'J
    (`minimise_batch`'s terms), for parameters (b x 4: floor, midpoint, slope, share; see
    `sigmoid_bounds`) on data (b x 2n: each problem's log10 scales, then its values); the Jacobian
    (b x n x 4) is `sigmoid_jacobian`'s."""
    log_n, y = np.split(data, 2, axis=1)
    floor, midpoint, slope, share = params.T[:, :, None]
    centred = log_n - midpoint
    rise = expit(slope * centred)  # `sigmoid_values` and `sigmoid_jacobian` in one, the same arithmetic
    residual = floor + (1.0 - floor) * share * rise - y
    steepness = (1.0 - floor) * share * rise * (1.0 - rise)
    jacobian = np.stack([1.0 - share * rise, -slope * steepness, centred * steepness, (1.0 - floor) * rise], axis=2)
    gradient = np.einsum("bn,bnk->bk", residual, jacobian)
    return 0.5 * np.sum(residual**2, axis=1), gradient, jacobian.transpose(0, 2, 1) @ jacobian


def huber_terms(centred: np.ndarray, delta: float) -> Terms:
    """Summed Huber loss of ln L = c - alpha * `centred` (ln N less its mean), its gradient and Hessian.

    The Hessian counts the residuals within `delta` (the loss is quadratic there, linear beyond). The
    returned function takes parameters (b x 2: c, alpha) and data (b x n, ln L). Its products with the
    design go through BLAS, whose rounding (fused multiply-adds) no per-problem form reproduces, and the
    Huber loss near least absolute deviations turns last bits into visible interval changes: so a batch
    holds curves on the same scales (`fit_curves`).
    """
    design = np.stack([np.ones_like(centred), -centred], axis=1)  # n x 2: d residual / d (c, alpha)

    def terms(params: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        residual = params @ design.T - y
        value, psi = huber(residual, delta)
        inside = (np.abs(residual) <= delta).astype(float)
        return value, psi @ design, np.einsum("bn,ni,nj->bij", inside, design, design)

    return terms


FITS.add(
    "sigmoid_floor",
    ScalingFit(
        lambda curves, delta, points: grouped([(np.log10(x), m) for x, m in curves], len, sigmoid_group, points),
        lambda p, x: sigmoid_floor(np.log10(x), p["floor"], p["midpoint"], p["slope"], p.get("ceiling", 1.0)),
    ),
)
FITS.add(
    "power_law",
    ScalingFit(
        lambda curves, delta, points: grouped(
            curves, bytes, lambda n, means, known: power_law_group(n, means, delta, known), points
        ),
        lambda p, x: (p["N_c"] / x) ** p["alpha"],
    ),
)
