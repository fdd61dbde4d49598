"""Scaling curves: does an ability jump with scale, or does loss fall smoothly?

- a sigmoid with a floor on a bounded metric against log scale, the shape an "emergent" ability
  takes (Wei et al. 2022); its slope measures how sudden the jump looks;
- the Kaplan power law L(N) = (N_c / N)^alpha (Kaplan et al. 2020, eq. 1.1) on a per-token loss, the
  smooth trend that Schaeffer et al. (2023) argue lies under a discontinuous metric;
- the Chinchilla form L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, approach 3).
Power laws are fitted in log space by summed Huber loss and multi-start L-BFGS, as Hoffmann et al.
do. Scale (N, or training FLOPs C = 6ND) is whatever the caller passes.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit

SIGMOID_SLOPE_STARTS = (1.0, 3.0, 10.0)
SIGMOID_MIDPOINT_QUANTILES = (0.25, 0.5, 0.75)


def sigmoid_floor(log_n: np.ndarray, floor: float, midpoint: float, slope: float) -> np.ndarray:
    """Accuracy that rises from `floor` (chance or lucky guesses) to 1 around `midpoint` = log10 N."""
    return floor + (1.0 - floor) * expit(slope * (log_n - midpoint))


def fit_sigmoid_floor(log_n: np.ndarray, y: np.ndarray, start: dict | None = None) -> dict:
    """Least-squares fit of `sigmoid_floor`, floor in [0, 1] and slope > 0, best of a grid of starts.

    `log_n` is log10 of parameters or of training FLOPs. The midpoint is kept within one data span
    of the sizes seen, so a flat curve cannot send it off to infinity. `start` (a previous fit, as
    bootstrap replicates pass) replaces the grid. Raises ValueError when no start ends finite.
    """
    log_n, y = np.asarray(log_n, float), np.asarray(y, float)
    span = max(np.ptp(log_n), 1.0)
    lower = [0.0, log_n.min() - span, 1e-6]
    upper = [1.0, log_n.max() + span, np.inf]
    floor_start = float(np.clip(y.min(), 0.0, 0.99))
    midpoint_starts = np.quantile(log_n, SIGMOID_MIDPOINT_QUANTILES)
    starts: list[Any] = [[floor_start, m, s] for m, s in itertools.product(midpoint_starts, SIGMOID_SLOPE_STARTS)]
    if start:
        starts = [np.clip([start["floor"], start["midpoint"], start["slope"]], lower, np.minimum(upper, 1e6))]
    results = [least_squares(lambda p: sigmoid_floor(log_n, *p) - y, p0, bounds=(lower, upper)) for p0 in starts]
    finite = [
        r for r in results if np.isfinite(r.cost)
    ]  # a start that ran out of evaluations still ends at a usable point
    if not finite:
        raise ValueError("no start reached a finite fit")
    best = min(finite, key=lambda r: r.cost)
    floor, midpoint, slope = best.x
    rmse = float(np.sqrt(np.mean(best.fun**2)))
    return {"floor": float(floor), "midpoint": float(midpoint), "slope": float(slope), "rmse": rmse}


def huber(residual: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
    """Summed Huber loss of the residuals, and its derivative with respect to each residual."""
    small = np.abs(residual) <= delta
    value = np.where(small, 0.5 * residual**2, delta * (np.abs(residual) - 0.5 * delta)).sum()
    return float(value), np.where(small, residual, delta * np.sign(residual))


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
        return value, np.array([psi.sum(), -(psi * (x - centre)).sum()])

    if start:
        starts = [(np.log(start["N_c"]) * start["alpha"] - start["alpha"] * centre, start["alpha"])]
    else:
        starts = [(y.mean(), alpha) for alpha in POWER_LAW_ALPHA_STARTS]
    best = min(
        (minimize(objective, np.array(s, float), jac=True, method="L-BFGS-B") for s in starts), key=lambda r: r.fun
    )
    c, alpha = best.x
    if alpha <= 0:
        raise ValueError("loss does not fall with N")
    intercept = c + alpha * centre
    residuals = y - (intercept - alpha * x)
    return {
        "N_c": float(np.exp(intercept / alpha)),
        "alpha": float(alpha),
        "rmse": float(np.sqrt(np.mean(residuals**2))),
    }


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
        return value, gradient

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
