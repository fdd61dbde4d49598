"""The two curves every forecast is made of, fitted for a point estimate and all bootstrap replicates at once.

- the loss law L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, approach 3; the form
  Bhagia et al. 2024 fit to task loss), by summed Huber loss of ln L (their fit; `fit_loss_law`);
- the sigmoid with floor and ceiling y = f + (c - f) * sigmoid(k (x - m)), rising in x (Bhagia et al.
  2024 write it acc = a / (1 + exp(-k (L - L0))) + b of the task loss L: x = -L, f = a + b, c = b).
Bootstrap replicates are weights on the data points (a point drawn twice weighs 2), so every replicate
shares the design and all are solved together by `solver.minimise_batch` (Levenberg-Marquardt).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from emergence.fits import huber
from emergence.solver import Terms, minimise_batch

EXPONENT_STARTS = (0.1, 0.3, 0.6)
SLOPE_STARTS = (1.0, 4.0, 12.0)  # in units of 1 / (data span of x)


HUBER_DELTA = 1e-3
PAPER_START = (3.0, 6.0, 0.1, 0.2, 1.0)  # ln A, ln B, alpha, beta, E: Bhagia et al.'s start (their step1.py)


@dataclass(frozen=True)
class LossLaw:
    """Fitted L(N, D) = E + A/N^alpha + B/D^beta. `point` (E, ln A, alpha, ln B, beta) is the Huber fit;
    `spread` (B x 5, same order, ln A and ln B at centred ln N and ln D) are least-squares refits,
    row 0 on the data as given, rows 1.. under the bootstrap weights."""

    point: np.ndarray
    spread: np.ndarray
    centre_n: float
    centre_d: float

    def predict(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        """L (B x len(n)) at N = `n`, D = `d`: row 0 the Huber fit; row b > 0 that plus the least-squares
        refit b's departure from the least-squares fit (the basic bootstrap's deviation)."""
        ln_n, ln_d = np.log(np.asarray(n, float)), np.log(np.asarray(d, float))
        e, a, alpha, b, beta = self.point
        point = e + np.exp(a - alpha * ln_n) + np.exp(b - beta * ln_d)
        e, a, alpha, b, beta = (self.spread[:, i : i + 1] for i in range(5))
        ls = e + np.exp(a - alpha * (ln_n - self.centre_n)) + np.exp(b - beta * (ln_d - self.centre_d))
        return point + np.vstack([np.zeros_like(point), ls[1:] - ls[0]])


def fit_loss_law(n: np.ndarray, d: np.ndarray, loss: np.ndarray, weights: np.ndarray) -> LossLaw:
    """The loss law fitted to `loss` (m, positive) at N = `n`, D = `d`; `weights` (B x m: row 0 ones,
    rows 1.. bootstrap counts) give the replicates.

    The point fit is Bhagia et al. (2024)'s: summed Huber loss (delta 1e-3) of ln L residuals, L-BFGS-B
    from their start, every parameter >= 0; it reproduces the repository's step-1 predictions. That fit
    is nearly an L1 fit: refitting it per replicate costs some 0.2 s and stalls at its start, so the
    replicates' spread comes from least-squares refits (batched Levenberg-Marquardt), centred on the
    Huber fit (`LossLaw.predict`). Replicates that end non-finite are NaN rows."""
    ln_n, ln_d, y = np.log(np.asarray(n, float)), np.log(np.asarray(d, float)), np.log(np.asarray(loss, float))
    point = huber_point(ln_n, ln_d, y)
    centre_n, centre_d = float(ln_n.mean()), float(ln_d.mean())
    xn, xd = ln_n - centre_n, ln_d - centre_d
    lower = np.array([0.0, -30.0, 0.0, -30.0, 0.0])
    upper = np.array([float(np.exp(y.min())), 30.0, 3.0, 30.0, 3.0])
    third = np.log(np.exp(y.min()) / 3)
    starts = np.array(
        [
            [e * upper[0], third, alpha, third, beta]
            for e, alpha, beta in itertools.product((0.0, 0.5), EXPONENT_STARTS, EXPONENT_STARTS)
        ]
    )
    spread = solve(loss_law_terms(xn, xd), starts, y, weights, lower, upper)
    return LossLaw(point, spread, centre_n, centre_d)


def huber_point(ln_n: np.ndarray, ln_d: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(E, ln A, alpha, ln B, beta) minimising the summed Huber loss of ln L residuals (Hoffmann et al.
    2022, approach 3; delta and start as Bhagia et al. 2024)."""

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        a, b, alpha, beta, e = p
        tn, td = np.exp(a - alpha * ln_n), np.exp(b - beta * ln_d)
        pred = e + tn + td
        value, psi = huber(np.log(pred) - y, HUBER_DELTA)
        g = psi / pred
        return float(value), np.array([g @ tn, g @ td, -(g * tn) @ ln_n, -(g * td) @ ln_d, g.sum()])

    found = minimize(
        objective,
        np.array(PAPER_START),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * 5,
        options={"ftol": 0.0, "gtol": 1e-10, "maxiter": 100000},
    )
    a, b, alpha, beta, e = found.x
    return np.array([e, a, alpha, b, beta])


def loss_law_terms(xn: np.ndarray, xd: np.ndarray) -> Terms:
    """Weighted half squared residuals of ln L, gradient and Gauss-Newton Hessian; the data are
    [ln L, weights] side by side (b x 2m)."""

    def terms(p: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, w = np.split(data, 2, axis=1)
        e, a, alpha, b, beta = p.T[:, :, None]
        tn, td = np.exp(a - alpha * xn), np.exp(b - beta * xd)
        pred = e + tn + td
        r = np.log(pred) - y
        jac = np.stack([np.ones_like(tn), tn, -xn * tn, td, -xd * td], axis=2) / pred[:, :, None]
        return weighted(r, w, jac)

    return terms


@dataclass(frozen=True)
class Sigmoid:
    """Fitted y = f + (c - f) sigmoid(k (x - m)); `params` (B x 4: f, c, m, k), one row per replicate."""

    params: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        f, c, m, k = (self.params[:, i : i + 1] for i in range(4))
        return f + (c - f) * expit(k * (np.asarray(x, float) - m))


def fit_sigmoid(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, floor: tuple[float, float], ceiling: tuple[float, float]
) -> Sigmoid:
    """The rising sigmoid fitted to `y` (m) at `x` (m) under each row of `weights` (B x m, as
    `fit_loss_law`), floor f and ceiling c within the given (low, high) bounds, midpoint within two data
    spans of the data, slope k in [0, 100 / span]. Least squares; the point fit is the best of a grid."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    span = max(float(np.ptp(x)), 1e-6)
    lower = np.array([floor[0], ceiling[0], x.min() - 2 * span, 0.0])
    upper = np.array([floor[1], ceiling[1], x.max() + 2 * span, 100.0 / span])
    middles = [*np.quantile(x, (0.25, 0.5, 0.75)), x.max() + span / 2]
    starts = np.array(
        [[floor[0], c, m, k / span] for c, m, k in itertools.product((ceiling[0], ceiling[1]), middles, SLOPE_STARTS)]
    )
    return Sigmoid(solve(sigmoid_terms(x), starts, y, weights, lower, upper))


def sigmoid_terms(x: np.ndarray) -> Terms:
    """Weighted half squared residuals of the sigmoid, gradient and Gauss-Newton Hessian ([y, w] data)."""

    def terms(p: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, w = np.split(data, 2, axis=1)
        f, c, m, k = p.T[:, :, None]
        s = expit(k * (x - m))
        r = f + (c - f) * s - y
        slope = (c - f) * s * (1 - s)
        jac = np.stack([1 - s, s, -k * slope, (x - m) * slope], axis=2)
        return weighted(r, w, jac)

    return terms


def weighted(r: np.ndarray, w: np.ndarray, jac: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objective 0.5 sum w r^2, its gradient J'Wr and Gauss-Newton Hessian J'WJ (b, b x k, b x k x k)."""
    return (
        0.5 * np.sum(w * r**2, axis=1),
        np.einsum("bn,bnk->bk", w * r, jac),
        np.einsum("bnj,bn,bnk->bjk", jac, w, jac),
    )


def solve(
    terms: Terms, starts: np.ndarray, y: np.ndarray, weights: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Parameters (B x k) under each row of `weights`: row 0 from the best of `starts`, the rest from row 0."""
    weights = np.atleast_2d(np.asarray(weights, float))
    point_data = np.tile(np.concatenate([y, weights[0]]), (len(starts), 1))
    found, ok = minimise_batch(terms, starts, point_data, lower, upper)
    values = np.where(ok, terms(found, point_data)[0], np.inf)
    best = found[int(np.argmin(values))]
    if len(weights) == 1:
        return best[None, :]
    data = np.concatenate([np.tile(y, (len(weights) - 1, 1)), weights[1:]], axis=1)
    params, ok = minimise_batch(terms, np.tile(best, (len(data), 1)), data, lower, upper)
    params[~ok] = np.nan
    return np.vstack([best, params])
