"""Scaling fits per task and method: does an ability jump with scale, or does loss fall smoothly?

Two curves are fitted against model size N for every task, method and digit count:
- a sigmoid with a floor on exact-match accuracy, the shape an "emergent" ability takes
  (Wei et al. 2022); its slope measures how sudden the jump looks;
- a power law on per-token target negative log-likelihood, L(N) = (N_c / N)^alpha
  (Kaplan et al. 2020, eq. 1.1), the smooth trend that Schaeffer et al. 2023 ("Are Emergent
  Abilities a Mirage?") argue lies under a discontinuous metric.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

SIGMOID_SLOPE_STARTS = (1.0, 3.0, 10.0)
SIGMOID_MIDPOINT_QUANTILES = (0.25, 0.5, 0.75)
FITS = (("exact_match", "sigmoid_floor"), ("target_nll", "power_law"))  # (metric, fit) pairs


def sigmoid_floor(log_n: np.ndarray, floor: float, midpoint: float, slope: float) -> np.ndarray:
    """Accuracy that rises from `floor` (chance or lucky guesses) to 1 around `midpoint` = log10 N."""
    return floor + (1.0 - floor) / (1.0 + np.exp(-slope * (log_n - midpoint)))


def fit_sigmoid_floor(log_n: np.ndarray, y: np.ndarray) -> dict:
    """Least-squares fit of `sigmoid_floor`, floor in [0, 1] and slope > 0, best of a few fixed starts.

    The midpoint is kept within one data span of the sizes seen, so a flat curve cannot send it
    off to infinity. Raises ValueError when no start converges.
    """
    log_n, y = np.asarray(log_n, float), np.asarray(y, float)
    span = max(np.ptp(log_n), 1.0)
    lower = [0.0, log_n.min() - span, 1e-6]
    upper = [1.0, log_n.max() + span, np.inf]
    floor_start = float(np.clip(y.min(), 0.0, 0.99))
    midpoint_starts = np.quantile(log_n, SIGMOID_MIDPOINT_QUANTILES)
    best = None
    for midpoint, slope in itertools.product(midpoint_starts, SIGMOID_SLOPE_STARTS):
        result = least_squares(
            lambda p: sigmoid_floor(log_n, *p) - y, [floor_start, midpoint, slope], bounds=(lower, upper)
        )
        if result.success and (best is None or result.cost < best.cost):
            best = result
    if best is None:
        raise ValueError("no start converged")
    floor, midpoint, slope = best.x
    rmse = float(np.sqrt(np.mean(best.fun**2)))
    return {"floor": float(floor), "midpoint": float(midpoint), "slope": float(slope), "rmse": rmse}


def fit_power_law(n: np.ndarray, loss: np.ndarray) -> dict:
    """Fit L(N) = (N_c / N)^alpha (Kaplan et al. 2020) as a line in log space; rmse is in ln L.

    log L = alpha log N_c - alpha log N, so a linear regression of ln L on ln N gives both
    parameters. Raises ValueError for a loss that is not positive or does not fall with N.
    """
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    if np.any(loss <= 0) or np.any(n <= 0):
        raise ValueError("loss and N must be positive")
    slope, intercept = np.polyfit(np.log(n), np.log(loss), 1)
    alpha = -slope
    if alpha <= 0:
        raise ValueError("loss does not fall with N")
    residuals = np.log(loss) - (intercept + slope * np.log(n))
    return {"N_c": float(np.exp(intercept / alpha)), "alpha": float(alpha), "rmse": float(np.sqrt(np.mean(residuals**2)))}


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
        small = np.abs(residual) <= delta
        value = np.where(small, 0.5 * residual**2, delta * (np.abs(residual) - 0.5 * delta)).sum()
        psi = np.where(small, residual, delta * np.sign(residual))
        weights = softmax(terms, axis=0) * psi
        gradient = np.array([weights[0].sum(), weights[1].sum(), weights[2].sum(), -(weights[0] * log_n).sum(), -(weights[1] * log_d).sum()])
        return float(value), gradient

    best = None
    grid = CHINCHILLA_GRID
    for start in itertools.product(grid["a"], grid["b"], grid["e"], grid["alpha"], grid["beta"]):
        result = minimize(objective, np.array(start), jac=True, method="L-BFGS-B")
        if best is None or result.fun < best.fun:
            best = result
    a, b, e, alpha, beta = best.x
    return {"E": float(np.exp(e)), "A": float(np.exp(a)), "B": float(np.exp(b)), "alpha": float(alpha), "beta": float(beta), "huber_loss": float(best.fun)}


def largest_step_share(values: np.ndarray) -> float:
    """Share of a metric's movement across sizes made in its largest step between neighbouring sizes.

    1.0 means all the change happens at once (a jump); 1/(k-1) over k sizes means even steps. NaN
    when the metric does not move. A plain descriptive number of this project, not BIG-bench's
    breakthroughness.
    """
    steps = np.abs(np.diff(np.asarray(values, float)))
    total = steps.sum()
    return float(steps.max() / total) if total > 0 else float("nan")


def per_model_points(scores: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per-model means to fit: exact-match accuracy, and mean per-token NLL -log P(target) / tokens."""
    accuracy = scores[scores["metric"] == "exact_match"]
    logprob = scores[(scores["metric"] == "target_logprob") & (scores["target_tokens"] > 0)]
    nll = logprob.assign(value=-logprob["value"] / logprob["target_tokens"])
    return {
        "exact_match": accuracy.groupby(["model", "n_params"], as_index=False)["value"].mean(),
        "target_nll": nll.groupby(["model", "n_params"], as_index=False)["value"].mean(),
    }


def fit_rows(points: pd.DataFrame, metric: str, fit: str, min_models: int) -> list[dict]:
    """Rows of one fit: one per parameter when it succeeds, else one row saying why not."""
    n_models = points["model"].nunique()
    status = "ok" if n_models >= min_models else f"too few models ({n_models} < {min_models})"
    if points.empty:
        status = f"{metric} not scored"
    params: dict = {}
    if status == "ok":
        n = points["n_params"].to_numpy(float)
        try:
            if fit == "sigmoid_floor":
                params = fit_sigmoid_floor(np.log10(n), points["value"].to_numpy())
            else:
                params = fit_power_law(n, points["value"].to_numpy())
        except ValueError as err:
            status = f"fit failed: {err}"
    base = {"metric": metric, "fit": fit, "n_models": n_models, "status": status}
    if status != "ok":
        return [{**base, "parameter": "", "value": np.nan}]
    return [{**base, "parameter": name, "value": value} for name, value in params.items()]


def fit_task_method(scores: pd.DataFrame, min_models: int = 3) -> pd.DataFrame:
    """Fit every (family, task, method) per digit count and over all digits, as rows of the "fits" schema."""
    rows = []
    for (family, task, method), group in scores.groupby(["family", "task", "method"], sort=True):
        subsets = [(str(d), part) for d, part in group.groupby("digits", sort=True)] + [("all", group)]
        for digits, subset in subsets:
            points = per_model_points(subset)
            for metric, fit in FITS:
                for row in fit_rows(points[metric], metric, fit, min_models):
                    rows.append({"family": family, "task": task, "method": method, "digits": digits, **row})
    columns = ["family", "task", "method", "digits", "metric", "fit", "parameter", "value", "n_models", "status"]
    fits = pd.DataFrame(rows, columns=columns)
    return fits.astype({"value": "float64", "n_models": "int32"})
