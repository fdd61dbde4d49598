"""The chained forecast shared by `two_step` and `loss_based`: a loss from (N, D), then the metric from that loss.

Step 1 fits L(N, D) = E + A/N^alpha + B/D^beta to the runs' final losses; step 2 fits the metric as a
sigmoid of the loss, acc = f + (c - f) sigmoid(-k (L - L0)), over every checkpoint of the runs
(intermediate checkpoints are the ladder's cheap data); the prediction for (N, D) is step 2 at step 1's
loss (Bhagia et al. 2024, their steps 1 and 2). Bootstrap weights resample runs: a run's final point in
step 1 and all its checkpoints in step 2 are drawn together.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from emergence.forecast import Fitted, ForecastMethod, exact_fit
from emergence.forecast.curves import fit_loss_law, fit_sigmoid
from emergence.forecast.ladder import Ladder, step2_points


class Chained(ForecastMethod):
    """Subclasses set `column` (the loss: `task_loss` or `lm_loss`) and `anchor` (add the ideal point
    loss 0, metric 1, as Bhagia et al. 2024 do for task loss: a perfect model is right on every item)."""

    column: ClassVar[str]
    anchor: ClassVar[bool] = False

    def missing(self, ladder: Ladder) -> str:
        finals = ladder.finals()
        if finals[self.column].isna().any():
            return f"no {self.source(ladder)} for every run"
        if len(finals) < 5:  # five parameters in step 1
            return f"{len(finals)} runs, fewer than the 5 parameters of L(N, D)"
        return ladder.unknown_tokens()

    def source(self, ladder: Ladder) -> str:
        """The loss as the settings name it, so that a log line shows a misspelt metric or task."""
        raise NotImplementedError

    def fit(self, ladder: Ladder, weights: np.ndarray) -> Fitted:
        finals = ladder.finals()
        law = fit_loss_law(finals["n"], finals["d"], finals[self.column], weights)
        points = step2_points(ladder, self.column)
        index = finals.reset_index().set_index("run").loc[points["run"], "index"].to_numpy()
        x, y, point_weights = -points["x"].to_numpy(), points["y"].to_numpy(), weights[:, index]
        top = float(y.max())  # floor at most, ceiling at least the best checkpoint
        if self.anchor:
            x, y = np.append(x, 0.0), np.append(y, 1.0)
            point_weights = np.hstack([point_weights, np.ones((len(weights), 1))])
        sigmoid = fit_sigmoid(x, y, point_weights, floor=(0.0, top), ceiling=(top, 1.0))
        raw = points["raw"].to_numpy() - sigmoid.predict(-points["x"].to_numpy())[0]
        return Fitted(
            lambda n, d: sigmoid.predict(-law.predict(n, d)),
            float(np.sqrt(np.mean(raw**2))),
            exact_fit(len(finals[["n", "d"]].drop_duplicates()), 5, "L(N, D)"),  # step 1's replicates
        )
