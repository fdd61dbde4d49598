"""`direct`: the metric as a sigmoid with floor and ceiling of log10 C, C = 6 N D training FLOPs.

The single-step baseline Bhagia et al. (2024) compare with, in the sigmoid form of Wei et al. (2022)
and of this workflow's fits, fitted to the runs' final values: floor in [0, the lowest], ceiling in
[the highest, 1]. Bootstrap weights resample runs.
"""

from __future__ import annotations

import numpy as np

from emergence.forecast import Fitted, ForecastMethod, exact_fit, forecast_method
from emergence.forecast.curves import fit_sigmoid
from emergence.forecast.ladder import Ladder


def log_compute(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """log10 of C = 6 N D (Kaplan et al. 2020), N non-embedding parameters, D tokens."""
    return np.log10(6.0 * np.asarray(n, float) * np.asarray(d, float))


@forecast_method
class Direct(ForecastMethod):
    name = "direct"

    def missing(self, ladder: Ladder) -> str:
        runs = len(ladder.finals())
        if runs < 4:
            return f"{runs} runs, fewer than the sigmoid's 4 parameters"
        return ladder.unknown_tokens()

    def fit(self, ladder: Ladder, weights: np.ndarray) -> Fitted:
        finals = ladder.finals()
        x, y = log_compute(finals["n"], finals["d"]), finals["y"].to_numpy()
        sigmoid = fit_sigmoid(x, y, weights, floor=(0.0, float(y.max())), ceiling=(float(y.max()), 1.0))
        residual = y - sigmoid.predict(x)[0]
        return Fitted(
            lambda n, d: sigmoid.predict(log_compute(n, d)),
            float(np.sqrt(np.mean(residual**2))),
            exact_fit(len(np.unique(x)), 4, "the sigmoid"),
        )
