"""Forecasts: a larger model's score on a task predicted from a ladder of smaller ones, with an interval.

Each method is one class in one module of this package, registered in `FORECASTS` by name:
`two_step` (task loss from N and D, then the metric from task loss; Bhagia et al. 2024), `loss_based`
(the same chain through the held-out language-modelling loss; Du et al. 2024), `direct` (the metric
as a sigmoid of log C) and `naive` (the largest rung's score: the baseline, and what a task judged
unforecastable gets). A method fits a `Ladder` under bootstrap weights on its runs and predicts
(N, D) points; `backtest` rolls out the largest rungs, picks a method per task by the rule declared
there, and writes the `forecasts` table (`io.SCHEMAS["forecasts"]`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from emergence.forecast.ladder import Ladder
from emergence.registry import Registry, load_package


@dataclass(frozen=True)
class Fitted:
    """A method fitted under B bootstrap weightings: `predict(n, d)` gives the metric (B x len(n)), row 0
    the point fit; `noise` is the standard deviation of one evaluation around the fitted curve.
    `no_interval` says why no interval can be drawn ("" when one can): a fit with as many parameters
    as data points passes through them under every weighting, so its replicates agree and its
    residuals are zero: the interval would have no width, a certainty the data do not give."""

    predict: Callable[[np.ndarray, np.ndarray], np.ndarray]
    noise: float
    no_interval: str = ""


def exact_fit(points: int, parameters: int, curve: str) -> str:
    """`Fitted.no_interval` of a fit of `curve`'s `parameters` to `points` distinct runs: why no
    interval can be drawn when the runs are no more than the parameters, else ""."""
    return f"{points} runs for {curve}'s {parameters} parameters: an exact fit" if points <= parameters else ""


class ForecastMethod:
    """One forecasting method. Subclasses set `name` and override `missing` and `fit`.

    `candidate` methods compete in the selection rule (`backtest.choose`); others are baselines."""

    name: ClassVar[str]
    candidate: ClassVar[bool] = True

    def missing(self, ladder: Ladder) -> str:
        """Why the method cannot forecast this ladder ("" when it can)."""
        raise NotImplementedError

    def fit(self, ladder: Ladder, weights: np.ndarray) -> Fitted:
        """The method fitted under `weights` (B x runs of `ladder.finals()`: row 0 ones, rows 1.. bootstrap
        counts of each run, so a run's checkpoints are drawn together)."""
        raise NotImplementedError


FORECASTS: Registry[ForecastMethod] = Registry("forecast method")
forecast_method = FORECASTS.register_class

load_package(__name__, __path__)
