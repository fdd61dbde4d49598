"""Levenberg-Marquardt for many small independent least-squares (or Huber) problems at once.

One call solves every problem of a batch with a few numpy operations per iteration, where one scipy
call per problem spent its time in Python: the bootstrap replicates of every curve of a task x method
(`emergence.fits`), and the forecasts' curves (`emergence.forecast.curves`). `grouped`, `stacked` and
`unstacked` put many curves' replicates into one batch and take each curve's fits back out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Curves = list[tuple[np.ndarray, np.ndarray]]  # per curve: its scales x (n), its means ((1 + B) x n)
Fitted = list[dict | None] | ValueError  # a curve's fits (point, then replicates), or why its point fit failed

# a problem's objective (b), gradient (b x k) and Hessian or Gauss-Newton approximation (b x k x k), from
# parameters (b x k) and data (b x ...)
Terms = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def length(rows: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row: `np.linalg.norm(rows, axis=1)`'s arithmetic for real rows, without its checks."""
    return np.sqrt(np.add.reduce(rows * rows, axis=1))


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
    """Minimise B independent problems at once from `start` (B x k) on data `y` (B x ...), within [lower, upper]
    (k, or B x k: each problem's own).

    Each step is a few numpy operations on all live problems (their state kept compacted), where one
    scipy call per problem spent its time in Python. Levenberg-Marquardt with Marquardt's diagonal
    scaling and Nielsen's damping update (Madsen, Nielsen & Tingleff 2004, "Methods for non-linear
    least squares problems", algorithm 3.16): `terms(params (b x k), y (b x ...))` gives each problem's
    objective (b), gradient (b x k) and Hessian or its Gauss-Newton approximation (b x k x k); the
    damping is scaled by the Hessian's diagonal, or `min_scale` (k or B x k) where that is smaller.
    Bounds by projection, a variable at a bound that the gradient pushes outward held fixed (Bertsekas
    1982, projected Newton). A problem stops when a step gains or moves less than `tolerance`
    (relative), or at `max_iterations`. Returns the parameters (B x k) and whether each ended finite.
    """
    lower, upper = np.broadcast_to(lower, start.shape), np.broadcast_to(upper, start.shape)
    params = np.clip(start, lower, upper).astype(float)
    value, gradient, hessian = terms(params, y)
    # the live problems' state, compacted (finished problems are written back and dropped)
    live = np.flatnonzero(np.isfinite(value))
    p, v, g, h = params[live], value[live], gradient[live], hessian[live]
    low, high, data, least = lower[live], upper[live], y[live], np.broadcast_to(min_scale, start.shape)[live]
    damping, growth = np.full(len(live), 1e-3), np.full(len(live), 2.0)
    identity = np.eye(params.shape[1], dtype=bool)
    for _ in range(max_iterations):
        if not live.size:
            break
        free = ~(((p <= low) & (g > 0)) | ((p >= high) & (g < 0)))
        scale = np.maximum(np.diagonal(h, axis1=1, axis2=2), least)
        system = h + (damping[:, None] * scale)[:, :, None] * identity
        system = np.where(free[:, :, None] & free[:, None, :], system, identity)
        step = np.clip(p + np.linalg.solve(system, -(g * free)[:, :, None])[:, :, 0], low, high) - p
        new_value, new_gradient, new_hessian = terms(p + step, data)
        gain = v - new_value
        predicted = -np.sum(g * step, axis=1) - 0.5 * np.einsum("bi,bij,bj->b", step, h, step)
        better = gain > 0
        ratio = np.where(better, np.minimum(gain / np.maximum(predicted, 1e-300), 1.0), 0.0)  # above 1: as 1
        shrink = np.maximum(1 / 3, 1 - (2 * ratio - 1) ** 3)
        damping = np.maximum(np.where(better, damping * shrink, damping * growth), 1e-12)
        growth = np.where(better, 2.0, 2 * growth)
        moved = length(step) <= tolerance * (length(p) + tolerance)
        done = (better & (gain <= tolerance * v)) | moved | (damping > 1e16)
        p, v = np.where(better[:, None], p + step, p), np.where(better, new_value, v)
        g, h = np.where(better[:, None], new_gradient, g), np.where(better[:, None, None], new_hessian, h)
        if done.any():
            params[live[done]], value[live[done]] = p[done], v[done]
            live, p, v, g, h, low, high, data, least, damping, growth = (
                a[~done] for a in (live, p, v, g, h, low, high, data, least, damping, growth)
            )
    params[live], value[live] = p, v
    return params, np.isfinite(value) & np.isfinite(params).all(axis=1)


Points = list[dict | ValueError]  # per curve: its point fit, or why it failed
# (scales (C x n), each curve's means, their point fits if already found) -> fits
FitGroup = Callable[[np.ndarray, list[np.ndarray], Points | None], list[Fitted]]


def grouped(
    curves: Curves, key: Callable[[np.ndarray], object], fit_group: FitGroup, points: Points | None = None
) -> list[Fitted]:
    """`fit_group(scales (C x n), [means of each curve], [their points] or None)` on every group of
    `curves` whose scales x have the same `key(x)`, in order of first appearance; per curve."""
    groups: dict[object, list[int]] = {}
    for i, (x, _) in enumerate(curves):
        groups.setdefault(key(x), []).append(i)
    found: dict[int, Fitted] = {}
    for members in groups.values():
        known = None if points is None else [points[i] for i in members]
        fitted = fit_group(np.array([curves[i][0] for i in members]), [curves[i][1] for i in members], known)
        found.update(zip(members, fitted))
    return [found[i] for i in range(len(curves))]


def stacked(means: list[np.ndarray], points: list) -> tuple[np.ndarray, np.ndarray]:
    """The replicate rows (rows 1.. of each of `means`) of the curves whose point fit succeeded (a dict in
    `points`), stacked (R x n), and the index of each row's curve (R)."""
    good = [i for i, point in enumerate(points) if isinstance(point, dict)]
    rows = np.concatenate([np.empty((0, means[0].shape[1])), *(means[i][1:] for i in good)])
    return rows, np.repeat(np.array(good, int), [len(means[i]) - 1 for i in good])


def unstacked(points: list, found: list[dict | None], means: list[np.ndarray]) -> list[Fitted]:
    """Per curve: its point fit and its replicates' fits from `found` (in `stacked` order), or its error."""
    out: list[Fitted] = []
    offset = 0
    for point, m in zip(points, means):
        if isinstance(point, ValueError):
            out.append(point)
        else:
            out.append([point, *found[offset : offset + len(m) - 1]])
            offset += len(m) - 1
    return out
