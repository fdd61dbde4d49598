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
    the curve rises, ceiling = floor + share (1 - floor): a box that keeps floor <= ceiling <= 1."""
    span = max(np.ptp(log_n), 1.0)
    return np.array([0.0, log_n.min() - span, 1e-6, 0.0]), np.array([1.0, log_n.max() + span, np.inf, 1.0])


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
    lower, upper = sigmoid_bounds(log_n)
    if start:
        best = sigmoid_start(start, lower, upper)
    else:
        floor = float(np.clip(y.min(), 0.0, 0.99))
        share = max(share_of(floor, float(np.clip(y.max(), 0.0, 1.0))), 1e-3)
        midpoints = np.quantile(log_n, SIGMOID_MIDPOINT_QUANTILES)
        grid = np.array([[floor, m, s, share] for m, s in itertools.product(midpoints, SIGMOID_SLOPE_STARTS)])
        ends, finite = minimise_batch(sigmoid_terms(log_n), grid, np.tile(y, (len(grid), 1)), lower, upper)
        cost = np.where(finite, np.sum((sigmoid_values(log_n, ends) - y) ** 2, axis=1), np.inf)
        if not np.isfinite(cost).any():
            raise ValueError("no start reached a finite fit")
        best = ends[int(np.argmin(cost))]
    try:
        found = least_squares(
            lambda p: sigmoid_values(log_n, p[None])[0] - y,
            best,
            jac=lambda p: sigmoid_jacobian(log_n, p[None])[0],
            bounds=(lower, upper),
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

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        value, psi = huber(p[0] - p[1] * (x - centre) - y, delta)
        return float(value), np.array([psi.sum(), -(psi * (x - centre)).sum()])

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
    """Fits as dicts from `params` (B x 2: c, alpha of ln L = c - alpha (ln N - mean ln N)) on `y` (B x n, ln L)."""
    c, alpha = params[:, :1], params[:, 1:]
    intercept = c + alpha * x.mean()
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
    """A registered scaling fit: its replicate fitter ((x, means, delta) -> list of parameter dicts or None)
    and its prediction ((parameters, x) -> values), both against scale x itself (N or C, not its log)."""

    replicates: Callable[[np.ndarray, np.ndarray, float], list[dict | None]]
    predict: Callable[[dict, np.ndarray], np.ndarray]


FITS: Registry[ScalingFit] = Registry("fit")


def fit_replicates(fit: str, x: np.ndarray, means: np.ndarray, delta: float) -> list[dict | None]:
    """The registered `fit` of every row of `means` ((1 + B) x n: row 0 the point estimate, rows 1..B
    bootstrap replicates) against scale `x` (n); None where a replicate's fit fails.

    Row 0 is fitted multi-start by `fit_sigmoid_floor` or `fit_power_law`; rows 1..B start from that
    fit, as they did one scipy fit at a time, but are solved together by `minimise_batch` (a
    curve's 200 replicates in some 5 ms instead of 0.3 s). Raises ValueError when the point fit fails.
    """
    return FITS.find(fit, "fits").replicates(np.asarray(x, float), np.asarray(means, float), delta)


def sigmoid_replicates(log_n: np.ndarray, means: np.ndarray) -> list[dict | None]:
    """`fit_replicates` for `sigmoid_floor`: least squares within `sigmoid_bounds`."""
    point = fit_sigmoid_floor(log_n, means[0])
    lower, upper = sigmoid_bounds(log_n)
    start = np.tile(sigmoid_start(point, lower, upper), (len(means) - 1, 1))
    params, ok = minimise_batch(sigmoid_terms(log_n), start, means[1:], lower, upper)
    found = sigmoid_result(params, sigmoid_values(log_n, params) - means[1:])
    return [point, *(f if good else None for f, good in zip(found, ok))]


def power_law_replicates(n: np.ndarray, means: np.ndarray, delta: float) -> list[dict | None]:
    """`fit_replicates` for the power law: summed Huber loss in log space; a replicate whose loss is not
    positive or does not fall with N fails, as it did alone."""
    point = fit_power_law(n, means[0], delta)
    x = np.log(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(means[1:])
    start = np.tile(power_law_start(point, x.mean()), (len(means) - 1, 1))
    centred, unbounded = x - x.mean(), np.full(2, np.inf)
    every_residual_within_delta = np.array([len(x), np.sum(centred**2)])  # the Hessian's diagonal then
    terms = huber_terms(centred, delta)
    params, ok = minimise_batch(terms, start, y, -unbounded, unbounded, every_residual_within_delta)
    found = power_law_result(params, x, y)
    return [point, *(f if good and f["alpha"] > 0 else None for f, good in zip(found, ok))]


Terms = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def sigmoid_terms(log_n: np.ndarray) -> Terms:
    """Half the summed squared residuals of `sigmoid_floor`, its gradient and Gauss-Newton Hessian J'J.

    The returned function takes parameters (b x 4: floor, midpoint, slope, share; see `sigmoid_bounds`)
    and data (b x n); the Jacobian (b x n x 4) is `sigmoid_jacobian`'s.
    """

    def terms(params: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        residual = sigmoid_values(log_n, params) - y
        jacobian = sigmoid_jacobian(log_n, params)
        gradient = np.einsum("bn,bnk->bk", residual, jacobian)
        return 0.5 * np.sum(residual**2, axis=1), gradient, jacobian.transpose(0, 2, 1) @ jacobian

    return terms


def huber_terms(centred: np.ndarray, delta: float) -> Terms:
    """Summed Huber loss of ln L = c - alpha * `centred` (ln N less its mean), its gradient and Hessian.

    The Hessian counts the residuals within `delta` (the loss is quadratic there, linear beyond). The
    returned function takes parameters (b x 2: c, alpha) and data (b x n, ln L).
    """
    design = np.stack([np.ones_like(centred), -centred], axis=1)  # n x 2: d residual / d (c, alpha)

    def terms(params: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        residual = params @ design.T - y
        value, psi = huber(residual, delta)
        inside = (np.abs(residual) <= delta).astype(float)
        return value, psi @ design, np.einsum("bn,ni,nj->bij", inside, design, design)

    return terms


def minimise_batch(
    terms: Terms,
    start: np.ndarray,
    y: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    min_scale: np.ndarray | float = 1e-12,
    max_iterations: int = 200,
    tolerance: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise B independent problems at once from `start` (B x k) on data `y` (B x n), within [lower, upper] (k).

    Each step is a few numpy operations on all live problems, where one scipy call per problem spent
    its time in Python. Levenberg-Marquardt with Marquardt's diagonal scaling and Nielsen's damping
    update (Madsen, Nielsen & Tingleff 2004, "Methods for non-linear least squares problems",
    algorithm 3.16): `terms(params (b x k), y (b x n))` gives each problem's objective (b), gradient
    (b x k) and Hessian or its Gauss-Newton approximation (b x k x k); the damping is scaled by the
    Hessian's diagonal, or `min_scale` (k) where that is smaller. Bounds by projection, a variable at
    a bound that the gradient pushes outward held fixed (Bertsekas 1982, projected Newton). A problem
    stops when a step gains or moves less than `tolerance` (relative), or at `max_iterations`.
    Returns the parameters (B x k) and whether each problem ended finite.
    """
    params = np.clip(start, lower, upper).astype(float)
    value, gradient, hessian = terms(params, y)
    damping, growth = np.full(len(params), 1e-3), np.full(len(params), 2.0)
    live = np.flatnonzero(np.isfinite(value))
    identity = np.eye(params.shape[1], dtype=bool)
    for _ in range(max_iterations):
        if not live.size:
            break
        p, g, h, lam = params[live], gradient[live], hessian[live], damping[live]
        free = ~(((p <= lower) & (g > 0)) | ((p >= upper) & (g < 0)))
        scale = np.maximum(np.diagonal(h, axis1=1, axis2=2), min_scale)
        system = h + (lam[:, None] * scale)[:, :, None] * identity
        system = np.where(free[:, :, None] & free[:, None, :], system, identity)
        step = np.clip(p + np.linalg.solve(system, -(g * free)[:, :, None])[:, :, 0], lower, upper) - p
        new_value, new_gradient, new_hessian = terms(p + step, y[live])
        gain = value[live] - new_value
        predicted = -np.sum(g * step, axis=1) - 0.5 * np.einsum("bi,bij,bj->b", step, h, step)
        better = gain > 0
        ratio = np.where(better, np.minimum(gain / np.maximum(predicted, 1e-300), 1.0), 0.0)  # above 1: as 1
        shrink = np.maximum(1 / 3, 1 - (2 * ratio - 1) ** 3)
        damping[live] = np.maximum(np.where(better, lam * shrink, lam * growth[live]), 1e-12)
        growth[live] = np.where(better, 2.0, 2 * growth[live])
        moved = np.linalg.norm(step, axis=1) <= tolerance * (np.linalg.norm(p, axis=1) + tolerance)
        done = (better & (gain <= tolerance * value[live])) | moved | (damping[live] > 1e16)
        kept = live[better]
        params[kept], value[kept] = p[better] + step[better], new_value[better]
        gradient[kept], hessian[kept] = new_gradient[better], new_hessian[better]
        live = live[~done]
    return params, np.isfinite(value) & np.isfinite(params).all(axis=1)


FITS.add(
    "sigmoid_floor",
    ScalingFit(
        lambda x, means, delta: sigmoid_replicates(np.log10(x), means),
        lambda p, x: sigmoid_floor(np.log10(x), p["floor"], p["midpoint"], p["slope"], p.get("ceiling", 1.0)),
    ),
)
FITS.add("power_law", ScalingFit(power_law_replicates, lambda p, x: (p["N_c"] / x) ** p["alpha"]))
