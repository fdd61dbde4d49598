"""Is a ladder's curve forecastable at all? A pluggable rule, registered by name (`Settings.rule`).

`monotone_rise` is a simple, documented rule over the rungs' final scores (one per rung: its run with
the most tokens), each with a noise level s (the reported standard error, else the standard deviation
of the run's last checkpoints): `non_monotone` when some rung scores below the one before by more than
2 sqrt(s1^2 + s2^2); `flat` when the largest rung beats the smallest by less than that; else
`forecastable`. A richer verdict (issue "verdicts") can be registered beside it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emergence.forecast.ladder import Ladder
from emergence.registry import Registry

FORECASTABLE = "forecastable"
RULES: Registry[Callable[[Ladder], str]] = Registry("forecastability rule")


def judge(ladder: Ladder) -> str:
    """The verdict of the ladder's rule: `forecastable`, or why not (`flat`, `non_monotone`, ...)."""
    return RULES.find(ladder.settings.rule, "forecast --rule")(ladder)


def monotone_rise(ladder: Ladder) -> str:
    finals = ladder.finals()
    top = finals.groupby("n", sort=True).tail(1)  # per rung, its longest run
    noise = np.where(np.isfinite(top["stderr"]), top["stderr"], top["noise"])
    noise = np.nan_to_num(noise.astype(float))
    y = top["y"].to_numpy()
    if len(y) < 2:
        return "insufficient"
    margin = 2 * np.sqrt(noise[1:] ** 2 + noise[:-1] ** 2)
    if np.any(np.diff(y) < -margin):
        return "non_monotone"
    if y[-1] - y[0] < 2 * np.sqrt(noise[0] ** 2 + noise[-1] ** 2):
        return "flat"
    return FORECASTABLE


RULES.add("monotone_rise", monotone_rise)
