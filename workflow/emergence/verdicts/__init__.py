"""A verdict per curve: emergent, mirage, smooth, flat, saturated, non_monotone or insufficient.

The question (Wei et al. 2022; Schaeffer et al. 2023): does an ability appear suddenly with scale, or
only look sudden because the metric is all-or-nothing? `judge` answers it for one curve from per-model
means and standard errors, so results made elsewhere (means and stderr only) are judged like the
project's own. Every statistic compares model classes fitted by weighted least squares with known
variances (`verdicts.fits`), so none grows with the number of models the way breakthroughness does.
Thresholds are calibrated by simulation (benchmarks/verdict_calibration.py; README "Verdicts").

Checks, in order (the first that applies decides):
1. insufficient: fewer than `min_models` models, fewer than `min_items` items, or one size only.
2. saturated: the `min_at_ceiling` largest models (at least) within `ceiling_margin` of 1.
3. flat: the constant is not rejected (chi-square test at `flat_alpha`).
4. non_monotone: the increasing isotonic fit is rejected (its chi-bar-squared p-value below
   `monotone_alpha`) and the largest drop below the running maximum is at least `min_drop`.
5. sharp? The sigmoid (floor >= chance, free ceiling <= 1) must beat the best line / monotone-curvature
   curve by `sharp_chi2` (divided by the overdispersion estimated from the sigmoid's residuals, as in
   quasi-likelihood: Burnham & Anderson 2002), with its midpoint inside the sizes observed and the
   smallest model near chance (below `floor_fraction` of the rise: Wei et al.'s "near random, then
   well above"). Not sharp: smooth.
6. A sharp curve is judged by its continuous twin: no twin -> insufficient (cannot tell mirage from
   emergence); twin jumps (a sigmoid beats the power law on its NLL, straight or bent by monotone
   curvature, by `twin_chi2`, with a width below `twin_width` of the range) -> emergent; twin smooth
   and p^L from it matching the curve (chi-square p-value >= `prediction_alpha`) -> mirage;
   otherwise insufficient (the twin does not explain the jump).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from emergence.errors import InputError
from emergence.io import VERDICT_STATISTICS as STATISTICS
from emergence.verdicts import fits
from emergence.verdicts.text import confidence_of, sentence_for

__all__ = ["STATISTICS", "VERDICTS", "Twin", "Verdict", "VerdictSettings", "judge", "sigmoid_comparison"]
VERDICTS = ("emergent", "mirage", "smooth", "flat", "saturated", "non_monotone", "insufficient")


@dataclass(frozen=True)
class VerdictSettings:
    """Thresholds of the checks (module docstring); defaults calibrated by benchmarks/verdict_calibration.py."""

    min_models: int = 3
    min_items: int = 20
    ceiling_margin: float = 0.02
    min_at_ceiling: int = 2
    flat_alpha: float = 0.01
    monotone_alpha: float = 0.001
    min_drop: float = 0.03
    sharp_chi2: float = 13.8
    floor_fraction: float = 0.2
    twin_chi2: float = 13.8
    twin_width: float = 0.5
    prediction_alpha: float = 0.001
    variance_floor: float = 0.5  # a mean over n items has variance at least variance_floor / n^2


@dataclass(frozen=True)
class Twin:
    """The continuous twin of a curve, per model (M,): the per-token probability p (Schaeffer's p, e.g.
    `per_token_prob` or per-token accuracy), its standard error, the answer length L in tokens (scalar
    or (M,)), and optionally the exact match predicted from it (mean of p^L over items) with its stderr;
    without them the prediction is p^L."""

    prob: np.ndarray
    stderr: np.ndarray
    tokens: float | np.ndarray = 1.0
    predicted: np.ndarray | None = None
    predicted_stderr: np.ndarray | None = None


@dataclass(frozen=True)
class Verdict:
    """One curve's verdict, the statistics it rests on (NaN where a check was not reached), a confidence
    (high / medium / low: how far the deciding statistic is from its threshold) and one sentence."""

    verdict: str
    statistics: dict[str, float] = field(default_factory=dict)
    confidence: str = "low"
    sentence: str = ""


def judge(
    scale: np.ndarray,
    y: np.ndarray,
    n_items: np.ndarray | float,
    *,
    stderr: np.ndarray | None = None,
    twin: Twin | None = None,
    chance: float = 0.0,
    higher_is_better: bool = True,
    settings: VerdictSettings | None = None,
) -> Verdict:
    """The verdict of one curve of a proportion metric (exact match, grade) over model sizes.

    scale (M,): model sizes (parameters or FLOPs, > 0); y (M,): per-model means in [0, 1]; n_items:
    items per mean, (M,) or scalar; stderr (M,): standard errors if known (else binomial,
    sqrt(y (1 - y) / n), floored); twin: the continuous twin (see `Twin`); chance: the metric's value
    for a model that knows nothing (0 for exact match). With higher_is_better False, 1 - y is judged.
    Raises InputError for mismatched shapes, NaN, or values outside [0, 1].
    """
    settings = settings or VerdictSettings()
    x, y, n, var, order = _inputs(scale, y, n_items, stderr, settings)
    twin = None if twin is None else _sorted_twin(twin, order)
    if not higher_is_better:
        y, chance = 1.0 - y, 1.0 - chance
    stat = dict.fromkeys(STATISTICS, np.nan)
    stat.update(range_decades=float(np.ptp(x)) if len(x) else np.nan, top=float(y.max()) if len(y) else np.nan)
    reason = _insufficient(x, n, settings)
    if reason:
        return _verdict("insufficient", stat, settings, reason)
    w = 1.0 / var
    at_ceiling = np.flatnonzero(y < 1.0 - settings.ceiling_margin)
    if len(y) - (at_ceiling[-1] + 1 if len(at_ceiling) else 0) >= min(settings.min_at_ceiling, len(y)):
        return _verdict("saturated", stat, settings)
    stat["chi2_constant"] = fits.constant(y, w)
    stat["p_constant"] = float(stats.chi2.sf(stat["chi2_constant"], len(y) - 1))
    if stat["p_constant"] >= settings.flat_alpha:
        return _verdict("flat", stat, settings)
    iso = optimize.isotonic_regression(y, weights=w).x
    stat["chi2_isotonic"] = float(fits.chi2(y, w, iso))
    stat["p_monotone"] = chi_bar_squared_sf(stat["chi2_isotonic"], len(y))
    stat["drop"] = float(np.max(np.maximum.accumulate(y) - y))
    if stat["p_monotone"] < settings.monotone_alpha and stat["drop"] >= settings.min_drop:
        return _verdict("non_monotone", stat, settings)
    smooth = _not_sharp(x, y, w, chance, stat, settings)
    if smooth:
        return _verdict("smooth", stat, settings, smooth)
    if twin is None:
        return _verdict("insufficient", stat, settings, "no continuous twin")
    if _twin_jumps(x, twin, stat, settings):
        return _verdict("emergent", stat, settings)
    _prediction(y, var, twin, stat)
    if stat["prediction_p"] >= settings.prediction_alpha:
        return _verdict("mirage", stat, settings)
    return _verdict("insufficient", stat, settings, "twin does not explain")


def _inputs(scale, y, n_items, stderr, settings: VerdictSettings):
    """x = log10 scale, y, n and the variances, as float arrays sorted by scale; checks shapes and values."""
    y = np.asarray(y, float)
    scale = np.asarray(scale, float)
    n = np.asarray(n_items, float)
    n = np.full(y.shape, float(n)) if n.ndim == 0 else n
    if y.ndim != 1 or scale.shape != y.shape or n.shape != y.shape:
        shapes = f"{scale.shape}, {y.shape}, {n.shape}"
        raise InputError(f"verdict: scale, values and n_items must be equally long 1-d arrays (got {shapes})")
    for name, values in (("scale", scale), ("values", y), ("n_items", n)):
        if not np.isfinite(values).all():
            raise InputError(
                f"verdict: {name} has a NaN or infinite entry at model index {int(np.argmin(np.isfinite(values)))}"
            )
    if (scale <= 0).any() or (y < 0).any() or (y > 1).any():
        raise InputError("verdict: scales must be > 0 and values proportions in [0, 1]")
    order = np.argsort(scale, kind="stable")
    x, y, n = np.log10(scale[order]), y[order], n[order]
    floor = settings.variance_floor / np.maximum(n, 1.0) ** 2
    if stderr is None:
        var = np.maximum(y * (1 - y) / np.maximum(n, 1.0), floor)
    else:
        se = np.asarray(stderr, float)
        if se.shape != y.shape or not np.isfinite(se).all():
            raise InputError("verdict: stderr must be finite and as long as the values")
        var = np.maximum(se[order] ** 2, floor)
    return x, y, n, var, order


def _sorted_twin(twin: Twin, order: np.ndarray) -> Twin:
    """The twin's per-model arrays in the curve's order (smallest model first)."""
    m = len(order)

    def pick(values):
        if values is None:
            return None
        values = np.asarray(values, float)
        if values.shape not in ((), (m,)):
            raise InputError(f"verdict: the twin needs one value per model ({m}), got shape {values.shape}")
        return values if values.ndim == 0 else values[order]

    return Twin(
        pick(twin.prob), pick(twin.stderr), pick(twin.tokens), pick(twin.predicted), pick(twin.predicted_stderr)
    )


def _insufficient(x: np.ndarray, n: np.ndarray, settings: VerdictSettings) -> str:
    if len(x) < settings.min_models:
        return f"only {len(x)} model{'s' * (len(x) != 1)} (need {settings.min_models})"
    if n.min() < settings.min_items:
        return f"only {int(n.min())} items for a model (need {settings.min_items})"
    if np.ptp(x) == 0:
        return "every model has the same size"
    return ""


def chi_bar_squared_sf(statistic: float, m: int) -> float:
    """P(chi-bar-squared > statistic) for the isotonic fit of m equally weighted means under a
    constant: sum over l of P(l level sets) P(chi2 with m - l df > statistic), with P(l) = |s(m, l)| / m!
    (unsigned Stirling numbers of the first kind; Barlow et al. 1972, Robertson, Wright & Dykstra 1988,
    ch. 2-3). The constant is the least favourable monotone truth, so the test does not grow with m."""
    counts = np.zeros(m + 1)
    counts[0] = 1.0
    for n in range(m):  # c(n + 1, k) = n c(n, k) + c(n, k - 1), scaled by 1 / (n + 1) to stay finite
        counts[1:] = (n * counts[1:] + counts[:-1]) / (n + 1)
        counts[0] = 0.0
    levels = np.arange(1, m + 1)
    tails = np.where(levels < m, stats.chi2.sf(statistic, np.maximum(m - levels, 1)), float(statistic <= 0))
    return float(np.sum(counts[1:] * tails))


def _overdispersion(chi2: float, m: int, k: int) -> float:
    """Variance inflation from the most general model's residuals, chi2 / (M - k), at least 1; 1 when
    fewer than 2 degrees of freedom are left (Burnham & Anderson 2002, quasi-likelihood)."""
    return max(1.0, chi2 / (m - k)) if m - k >= 2 else 1.0


def sigmoid_comparison(
    scale: np.ndarray,
    y: np.ndarray,
    n_items: np.ndarray | float,
    *,
    stderr: np.ndarray | None = None,
    chance: float = 0.0,
    higher_is_better: bool = True,
    settings: VerdictSettings | None = None,
) -> dict[str, float]:
    """Check 5's model comparison alone, for a curve that `judge` may stop before reaching it: chi2 of
    the line, the monotone-curvature class and the sigmoid, the overdispersion and the sharpness
    (see `judge` for the arguments and errors). The sigmoid beats the smooth classes when sharpness >
    `settings.sharp_chi2`; the scaling fits' `sigmoid_preferred` flag is that test."""
    settings = settings or VerdictSettings()
    x, y, _, var, _ = _inputs(scale, y, n_items, stderr, settings)
    if not higher_is_better:
        y, chance = 1.0 - y, 1.0 - chance
    stat: dict[str, float] = {}
    _compare(x, y, 1.0 / var, chance, stat)
    return stat


def _compare(x, y, w, chance: float, stat: dict) -> fits.Sigmoid:
    """The sigmoid (floor >= chance, ceiling <= 1) against the line and monotone-curvature classes:
    fills chi2_line, chi2_power, chi2_sigmoid, overdispersion, sharpness, midpoint and width_decades."""
    stat["chi2_line"] = fits.line(x, y, w)[0]
    stat["chi2_power"] = fits.power(x, y, w)
    fit = fits.sigmoid(x, y, w, lo=min(chance, float(y.min())), hi=1.0)
    stat["chi2_sigmoid"] = fit.chi2
    stat["overdispersion"] = _overdispersion(fit.chi2, len(y), 4)
    stat["sharpness"] = (min(stat["chi2_line"], stat["chi2_power"]) - fit.chi2) / stat["overdispersion"]
    stat["midpoint"], stat["width_decades"] = fit.midpoint, fit.width
    return fit


def _not_sharp(x, y, w, chance: float, stat: dict, settings: VerdictSettings) -> str:
    """Why the curve does not jump, or "" when it does: a jump needs the sigmoid to beat every smooth
    class by the threshold, its midpoint inside the sizes observed, and the smallest model near chance."""
    fit = _compare(x, y, w, chance, stat)
    rise = fit.fitted[-1] - chance
    stat["floor_fraction"] = float((fit.fitted[0] - chance) / rise) if rise > 0 else np.inf
    if stat["sharpness"] <= settings.sharp_chi2:
        return f"a smooth curve fits as well as a jump (sharpness {stat['sharpness']:.1f} <= {settings.sharp_chi2:g})"
    if not x[0] <= fit.midpoint <= x[-1]:
        return f"its steepest change, near 10^{fit.midpoint:.1f}, lies outside the sizes observed"
    if stat["floor_fraction"] > settings.floor_fraction:
        return f"the smallest model is already {stat['floor_fraction']:.0%} of the way up from chance"
    return ""


def _twin_nll(twin: Twin, m: int) -> tuple[np.ndarray, np.ndarray]:
    """u = -log NLL of the twin (NLL = -ln p per token) and its variance by the delta method: under
    Schaeffer's p = exp(-(N/c)^-alpha), u is a line in log N."""
    p = np.clip(np.asarray(twin.prob, float), 1e-300, 1 - 1e-9)
    se = np.maximum(np.asarray(twin.stderr, float), 1e-9)
    if p.shape != (m,) or se.shape != (m,):
        raise InputError(f"verdict: the twin needs one probability and stderr per model ({m})")
    nll = -np.log(p)
    return -np.log(nll), (se / (p * nll)) ** 2


def _twin_jumps(x, twin: Twin, stat: dict, settings: VerdictSettings) -> bool:
    """Whether the twin itself jumps: a sigmoid in log N beats the power law on its per-token NLL, and
    the power law bent by monotone curvature (an irreducible loss, NLL = E + A N^-alpha, bends it)."""
    u, var = _twin_nll(twin, len(x))
    w = 1.0 / var
    stat["twin_chi2_power_law"] = fits.line(x, u, w)[0]
    fit = fits.sigmoid(x, u, w)
    phi = _overdispersion(fit.chi2, len(x), 4)
    stat["twin_jump"] = (min(stat["twin_chi2_power_law"], fits.power(x, u, w)) - fit.chi2) / phi
    stat["twin_width_decades"] = fit.width
    return bool(
        stat["twin_jump"] > settings.twin_chi2
        and fit.width <= settings.twin_width * np.ptp(x)
        and x[0] <= fit.midpoint <= x[-1]
    )


def _prediction(y, var, twin: Twin, stat: dict) -> None:
    """Observed curve against p^L from the twin: chi-square of the differences and its p-value (M df)."""
    p, se = np.asarray(twin.prob, float), np.asarray(twin.stderr, float)
    tokens = np.broadcast_to(np.asarray(twin.tokens, float), p.shape)
    predicted = p**tokens if twin.predicted is None else np.asarray(twin.predicted, float)
    if twin.predicted_stderr is None:
        pred_se = tokens * p ** np.maximum(tokens - 1, 0) * se
    else:
        pred_se = np.asarray(twin.predicted_stderr, float)
    z2 = (y - predicted) ** 2 / (var + pred_se**2)
    stat["prediction_chi2"] = float(z2.sum())
    stat["prediction_p"] = float(stats.chi2.sf(z2.sum(), len(y)))
    stat["prediction_max_error"] = float(np.max(np.abs(y - predicted)))


def _verdict(verdict: str, stat: dict, settings: VerdictSettings, reason: str = "") -> Verdict:
    statistics = {k: float(v) for k, v in stat.items()}
    return Verdict(
        verdict, statistics, confidence_of(verdict, statistics, settings), sentence_for(verdict, statistics, reason)
    )
