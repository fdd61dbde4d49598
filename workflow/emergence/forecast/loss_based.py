"""`loss_based`: the metric from the held-out language-modelling loss (Du et al. 2024, "Understanding
Emergent Abilities of Language Models from the Loss Perspective"), that loss from N and D.

Du et al. find a task's score a function of the pretraining loss alone, whatever the model's size and
checkpoint; the loss of `Settings.loss_task` (C4 validation for the OLMo ladder, nats per token) is
extrapolated by L(N, D) = E + A/N^alpha + B/D^beta. See `chain` for the two steps.
"""

from __future__ import annotations

from emergence.forecast import forecast_method
from emergence.forecast.chain import Chained
from emergence.forecast.ladder import LM_LOSS, Ladder


@forecast_method
class LossBased(Chained):
    name = "loss_based"
    column = "lm_loss"

    def source(self, ladder: Ladder) -> str:
        return f"lm_loss ({LM_LOSS} of loss_task {ladder.settings.loss_task!r})"
