"""`naive`: the largest rung's score, whatever the target's size (persistence).

The baseline every method must beat, and the number a task judged unforecastable is shown with (marked
so). Its noise is the spread of that rung's last checkpoints, or its reported standard error.
"""

from __future__ import annotations

import numpy as np

from emergence.forecast import Fitted, ForecastMethod, forecast_method
from emergence.forecast.ladder import Ladder


@forecast_method
class Naive(ForecastMethod):
    name = "naive"
    candidate = False

    def missing(self, ladder: Ladder) -> str:
        return ""

    def fit(self, ladder: Ladder, weights: np.ndarray) -> Fitted:
        finals = ladder.finals()
        last = finals.iloc[-1]  # the largest N, and of its runs the most tokens
        noise = last["stderr"] if np.isfinite(last["stderr"]) else last["noise"]
        return Fitted(
            lambda n, d: np.full((len(weights), len(np.atleast_1d(n))), last["y"]),
            float(np.nan_to_num(noise)),
        )
