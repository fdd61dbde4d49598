"""`two_step`: the metric from the task loss, the task loss from N and D (Bhagia et al. 2024, arXiv 2412.04403).

The task loss is the metric `Settings.task_loss`: the bits per byte of the correct continuation
(`bits_per_byte`, imported results), or for a sweep's own models the per-token loss of the teacher-forced
target (`target_nll`, nats per token); step 2 adds the ideal point (loss 0, metric 1) as the paper does.
See `chain` for the two steps.
"""

from __future__ import annotations

from emergence.forecast import forecast_method
from emergence.forecast.chain import Chained
from emergence.forecast.ladder import Ladder


@forecast_method
class TwoStep(Chained):
    name = "two_step"
    column = "task_loss"
    anchor = True

    def source(self, ladder: Ladder) -> str:
        return f"task_loss {ladder.settings.task_loss!r}"
