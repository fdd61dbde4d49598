"""Weighted least-squares fits of the model classes a verdict compares, vectorised over grids.

Every class is linear in its amplitude parameters once its shape parameters are fixed, so each is
solved in closed form on a grid of shape parameters and the smallest weighted residual sum of squares
(chi-square, weights 1/variance) is kept. No optimiser, no starts: the same input gives the same
numbers, and a fit costs well under a millisecond for the 3 to 20 models a curve has.

Classes (x = log10 scale, one value per model):
- constant: y = a                                   (1 parameter)
- line: y = a + b x (on -log NLL: a power law in N)  (2)
- power: y = a + b exp(beta t), t = (x - x_1)/range  (3; monotone curvature: convex or saturating)
- sigmoid: y = f + h g(s (x - m)), g the logistic or either Gompertz curve, h >= 0, lo <= f,
  f + h <= hi (4; floor, free bounded ceiling, midpoint m, slope s; a very large s is a step
  between two adjacent sizes)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

# a logistic rises from 10 % to 90 % of its height over WIDTH / slope (a Gompertz curve over 0.70 of it):
# the width reported for every shape, in decades
WIDTH = 2 * np.log(9.0)
WIDTHS = np.geomspace(3.0, 0.005, 28)  # 10-90 % widths tried, as fractions of the observed range
BETAS = np.concatenate([np.linspace(-8.0, -0.25, 16), np.linspace(0.25, 8.0, 16)])


def chi2(y: np.ndarray, w: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Weighted residual sum of squares over the last axis."""
    return np.sum(w * (y - fitted) ** 2, axis=-1)


def constant(y: np.ndarray, w: np.ndarray) -> float:
    """chi-square of the weighted mean."""
    return float(chi2(y, w, np.average(y, weights=w)))


def line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Weighted least-squares line: (chi-square, intercept, slope)."""
    design = np.stack([np.ones_like(x), x], axis=1) * np.sqrt(w)[:, None]
    (a, b), *_ = np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)
    return float(chi2(y, w, a + b * x)), float(a), float(b)


def two_term(basis: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """chi-square of y = a + b basis for each row of basis (K, M), unconstrained."""
    s0, s1, s2 = w.sum(), basis @ w, (basis**2) @ w
    t0, t1 = w @ y, basis @ (w * y)
    det = s0 * s2 - s1**2
    ok = det > 1e-12 * s0 * np.maximum(s2, 1e-300)
    b = np.where(ok, (s0 * t1 - s1 * t0) / np.where(ok, det, 1.0), 0.0)
    a = (t0 - b * s1) / s0
    return chi2(y, w, a[:, None] + b[:, None] * basis)


def power(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """chi-square of the best y = a + b exp(beta t) over the beta grid, or of the line if smaller."""
    t = (x - x[0]) / max(np.ptp(x), 1e-12)
    best = float(two_term(np.exp(BETAS[:, None] * t[None]), y, w).min())
    return min(best, line(x, y, w)[0])


@dataclass(frozen=True)
class Sigmoid:
    """The best sigmoid on the grid: chi-square, floor f, height h, midpoint m (log10 scale), slope s
    (per decade), its 10-90 % width in decades, and its fitted values (M,)."""

    chi2: float
    floor: float
    height: float
    midpoint: float
    slope: float
    width: float
    fitted: np.ndarray


def shape_grid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(midpoints, slopes) of every grid shape, each (K,): midpoints across and a quarter range beyond
    the data plus every gap between adjacent sizes, widths from 3 ranges down to a step."""
    span = max(np.ptp(x), 1e-12)
    mids = np.concatenate([np.linspace(x[0] - span / 4, x[-1] + span / 4, 49), (x[1:] + x[:-1]) / 2])
    slopes = WIDTH / (WIDTHS * span)
    m, s = np.meshgrid(mids, slopes, indexing="ij")
    return m.ravel(), s.ravel()


SHAPES = {
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "gompertz": lambda z: np.exp(-np.exp(-z)),  # slow start, fast finish: Schaeffer's exp(-L (N/c)^-alpha)
    "gompertz_mirrored": lambda z: 1.0 - np.exp(-np.exp(z)),  # fast start, slow finish
}


def sigmoid_bases(x: np.ndarray, shapes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every grid shape's basis g (K, M) in [0, 1] with its midpoint and slope (K,); cached per x,
    since every curve of a sweep shares its sizes (read-only arrays)."""
    return _bases(x.tobytes(), len(x), shapes)


@functools.lru_cache(maxsize=64)
def _bases(key: bytes, size: int, shapes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.frombuffer(key, dtype=float, count=size)
    m, s = shape_grid(x)
    z = np.clip(s[:, None] * (x[None] - m[:, None]), -50, 50)
    out = np.concatenate([SHAPES[name](z) for name in shapes]), np.tile(m, len(shapes)), np.tile(s, len(shapes))
    for array in out:
        array.flags.writeable = False
    return out


def sigmoid(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    lo: float = -np.inf,
    hi: float = np.inf,
    shapes: tuple[str, ...] = tuple(SHAPES),
) -> Sigmoid:
    """Best y = f + h g(s (x - m)) over sigmoid shapes g (logistic and both Gompertz curves), with
    h >= 0 and lo <= f <= f + h <= hi, x sorted ascending.

    For each grid shape the bounded two-parameter least squares is exact: the optimum is the
    unconstrained one if feasible, else on an edge of the triangle (f = lo, h = 0 or f + h = hi), each
    a one-dimensional problem solved and clipped in closed form."""
    g, m, s = sigmoid_bases(x, shapes)
    sums = w.sum(), g @ w, (g**2) @ w, w @ y, g @ (w * y)
    s0, sg, sgg, sy, sgy = sums
    syy = w @ (y * y)
    best_chi, best_f, best_h = np.full(len(m), np.inf), np.zeros(len(m)), np.zeros(len(m))
    for f, h in _candidates(g, y, w, lo, hi, sums):
        # the weighted residual sum of squares from the sufficient sums, without forming fitted values
        c = syy - 2 * f * sy - 2 * h * sgy + f * f * s0 + 2 * f * h * sg + h * h * sgg
        c = np.where(np.isnan(f), np.inf, c)
        better = c < best_chi
        best_chi = np.where(better, c, best_chi)
        best_f, best_h = np.where(better, f, best_f), np.where(better, h, best_h)
    # the sums can lose digits when f and h nearly cancel: recompute the best few directly, keep the best
    few = smallest(best_chi, 8)
    direct = chi2(y, w, best_f[few, None] + best_h[few, None] * g[few])
    k = int(few[np.argmin(direct)])
    fitted = best_f[k] + best_h[k] * g[k]
    floor, height, midpoint, slope = float(best_f[k]), float(best_h[k]), float(m[k]), float(s[k])
    return Sigmoid(float(chi2(y, w, fitted)), floor, height, midpoint, slope, WIDTH / slope, fitted)


def smallest(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` smallest `values`, ties by index: `np.argsort(values, kind="stable")[:count]`
    without sorting them all (a grid has thousands of shapes). `values` has no NaN."""
    if len(values) <= count:
        return np.argsort(values, kind="stable")
    candidates = np.flatnonzero(values <= np.partition(values, count - 1)[count - 1])
    return candidates[np.argsort(values[candidates], kind="stable")][:count]


def _candidates(g, y, w, lo: float, hi: float, sums) -> list[tuple[np.ndarray, np.ndarray]]:
    """(f, h) per grid shape: the unconstrained optimum where feasible (NaN elsewhere), then the best
    point of each edge of the feasible triangle that exists for these bounds."""
    s0, sg, sgg, sy, sgy = sums
    det = s0 * sgg - sg**2
    solvable = det > 1e-8 * s0 * sgg  # g not nearly constant: else f and h cancel and the sums lose all digits
    safe = np.where(solvable, det, 1.0)
    f_free, h_free = (sgg * sy - sg * sgy) / safe, (s0 * sgy - sg * sy) / safe
    feasible = solvable & (h_free >= 0) & (f_free >= lo) & (f_free + h_free <= hi)
    candidates = [(np.where(feasible, f_free, np.nan), np.where(feasible, h_free, np.nan))]
    room = hi - lo if np.isfinite(hi - lo) else np.inf
    if np.isfinite(lo):  # edge f = lo, 0 <= h <= hi - lo
        h = np.clip((sgy - lo * sg) / np.maximum(sgg, 1e-300), 0.0, room)
        candidates.append((np.full_like(h, lo), h))
    # edge h = 0: the weighted mean, clipped into the bounds
    candidates.append((np.full_like(sg, np.clip(sy / s0, lo, hi)), np.zeros_like(sg)))
    if np.isfinite(hi):  # edge f + h = hi: y - hi g = f (1 - g)
        f = np.clip(_edge(1.0 - g, y, g, w, hi), lo, hi)
        candidates.append((f, hi - f))
    return candidates


def _edge(one: np.ndarray, y: np.ndarray, g: np.ndarray, w: np.ndarray, hi: float) -> np.ndarray:
    """Least-squares f on the edge f + h = hi: minimise sum w (y - hi g - f (1 - g))^2."""
    return ((y[None] - hi * g) * one) @ w / np.maximum((one**2) @ w, 1e-300)
