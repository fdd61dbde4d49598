"""A verdict's confidence and its one sentence for the report."""

from __future__ import annotations

import math
from typing import Any

HIGH, MEDIUM = 3.0, 1.5  # the deciding statistic's distance from its threshold, as a ratio


def level(ratio: float) -> str:
    """high when the deciding statistic clears its threshold by a factor of 3 or more, medium by 1.5."""
    if ratio != ratio:
        return "low"
    return "high" if ratio >= HIGH else "medium" if ratio >= MEDIUM else "low"


def p_ratio(p: float, alpha: float) -> float:
    """How far a p-value is above its level, as ln(alpha) / ln(p): 1 at the level, larger above it."""
    return math.log(alpha) / math.log(p) if 0 < p < 1 else (math.inf if p >= 1 else 0.0)


def confidence_of(verdict: str, s: dict[str, float], settings: Any) -> str:
    """high / medium / low from the ratio of the deciding statistic to its threshold (the smallest
    ratio when several checks decide together); `insufficient` for lack of data and `saturated` are high."""
    sharp = s["sharpness"] / settings.sharp_chi2
    if verdict in ("saturated",) or (verdict == "insufficient" and math.isnan(s["sharpness"])):
        return "high"
    if verdict == "flat":
        return level(p_ratio(s["p_constant"], settings.flat_alpha))
    if verdict == "non_monotone":
        below = math.log(s["p_monotone"]) / math.log(settings.monotone_alpha) if s["p_monotone"] > 0 else math.inf
        return level(min(below, s["drop"] / settings.min_drop))
    if verdict == "smooth":
        return level(max(1 / max(sharp, 1e-9), s["floor_fraction"] / settings.floor_fraction))
    if verdict == "emergent":
        return level(min(sharp, s["twin_jump"] / settings.twin_chi2))
    if verdict == "mirage":
        twin = settings.twin_chi2 / max(s["twin_jump"], 1e-9)
        return level(min(sharp, twin, p_ratio(s["prediction_p"], settings.prediction_alpha)))
    return level(sharp)


def decade(x: float) -> str:
    return f"10^{x:.1f}"


def sentence_for(verdict: str, s: dict[str, float], reason: str) -> str:
    """One sentence naming the verdict's evidence, for the report."""
    if verdict == "insufficient" and reason == "no continuous twin":
        return (
            f"Jumps near {decade(s['midpoint'])} (sharpness {s['sharpness']:.0f}), but without a continuous twin"
            " a mirage cannot be told from emergence."
        )
    if verdict == "insufficient" and reason == "twin does not explain":
        return (
            f"Jumps near {decade(s['midpoint'])} while its continuous twin follows a power law, but p^L from the"
            f" twin misses the curve by up to {s['prediction_max_error']:.3f}: neither mirage nor emergence is shown."
        )
    if verdict == "insufficient":
        return f"Cannot be judged: {reason}."
    return {
        "saturated": "At the ceiling for the largest models: the metric can no longer show change there.",
        "flat": f"No change beyond sampling noise (constant not rejected, p = {s['p_constant']:.2f}).",
        "non_monotone": f"Falls by {s['drop']:.2f} after rising, beyond noise: inverse or U-shaped scaling.",
        "smooth": f"Changes, but not as a jump from near chance: {reason}.",
        "emergent": (
            f"Jumps near {decade(s['midpoint'])} and its continuous twin jumps too"
            f" (power law on its loss rejected, {s['twin_jump']:.0f}): emergent under both metrics."
        ),
        "mirage": (
            f"Jumps near {decade(s['midpoint'])} while its continuous twin follows a power law and p^L from"
            f" it matches the curve (largest error {s['prediction_max_error']:.3f}): a mirage of the metric."
        ),
    }[verdict]
