"""Is a ladder's curve forecastable at all? A pluggable rule, registered by name (`Settings.rule`).

`monotone_rise` is a simple, documented rule over the rungs' final scores (one per rung: its run with
the most tokens), each with a noise level s (the reported standard error, else the standard deviation
of the run's last checkpoints): `non_monotone` when some rung scores below the one before by more than
2 sqrt(s1^2 + s2^2); `flat` when the largest rung beats the smallest by less than that; else
`forecastable`.

`verdicts` asks `emergence.verdicts.judge` (README "Verdicts") about the same rungs' final scores, so
a forecast and the verdicts table apply one set of checks: a curve judged `flat` or `non_monotone` is
unforecastable under that name, as is one too short to judge (`insufficient` before any check ran);
emergent, mirage, smooth and saturated curves (and sharp ones without a continuous twin) are
forecastable. It judges the rungs only, never the targets: the verdicts table judges every model of
a family, the held-out ones included, and a forecast must not be trusted or not by its own target.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from emergence.forecast.ladder import Ladder
from emergence.registry import Registry

log = logging.getLogger(__name__)

FORECASTABLE = "forecastable"
UNFORECASTABLE = ("flat", "non_monotone")  # verdicts of `emergence.verdicts.judge` that stop a forecast
RULES: Registry[Callable[[Ladder], str]] = Registry("forecastability rule")


def judge(ladder: Ladder) -> str:
    """The verdict of the ladder's rule: `forecastable`, or why not (`flat`, `non_monotone`, ...)."""
    return RULES.find(ladder.settings.rule, "forecast --rule")(ladder)


def top_runs(ladder: Ladder) -> pd.DataFrame:
    """Per rung (smallest first), its run with the most tokens: the finals' row, `s` its noise level
    (the reported standard error, else the spread of its last checkpoints; NaN when neither is known)."""
    top = ladder.finals().groupby("n", sort=True).tail(1)
    return top.assign(s=np.where(np.isfinite(top["stderr"]), top["stderr"], top["noise"]).astype(float))


def monotone_rise(ladder: Ladder) -> str:
    top = top_runs(ladder)
    noise = np.nan_to_num(top["s"].to_numpy())
    y = top["y"].to_numpy()
    if len(y) < 2:
        return "insufficient"
    margin = 2 * np.sqrt(noise[1:] ** 2 + noise[:-1] ** 2)
    if np.any(np.diff(y) < -margin):
        return "non_monotone"
    if y[-1] - y[0] < 2 * np.sqrt(noise[0] ** 2 + noise[-1] ** 2):
        return "flat"
    return FORECASTABLE


def verdicts(ladder: Ladder) -> str:
    """The rule `verdicts` (module docstring): the rungs' final scores judged by `verdicts.judge` against N,
    with their standard errors (binomial ones where some are unknown) and item counts."""
    from emergence.verdicts import judge as judge_curve

    top = top_runs(ladder)
    items = item_counts(ladder, top["run"])
    if items is None:
        log.warning(f"forecast {ladder.family} {ladder.task}: number of items unknown; judged insufficient")
        return "insufficient"
    stderr = top["s"].to_numpy() if np.isfinite(top["s"]).all() else None
    verdict = judge_curve(top["n"].to_numpy(float), top["y"].to_numpy(float), items, stderr=stderr)
    if verdict.verdict in UNFORECASTABLE:
        return verdict.verdict
    if verdict.verdict == "insufficient" and np.isnan(verdict.statistics["chi2_constant"]):
        return "insufficient"  # too few rungs or items to test anything, not a sharp curve without a twin
    return FORECASTABLE


def item_counts(ladder: Ladder, runs: pd.Series) -> np.ndarray | None:
    """Items behind each run's last checkpoint (the ladder's `n_items` column), None where unknown."""
    if "n_items" not in ladder.checkpoints:
        return None
    last = ladder.checkpoints.groupby("run", sort=False)["n_items"].last()
    items = last.reindex(runs).to_numpy(float)
    return items if np.isfinite(items).all() else None


RULES.add("monotone_rise", monotone_rise)
RULES.add("verdicts", verdicts)
