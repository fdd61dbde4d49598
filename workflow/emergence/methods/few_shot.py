"""`few_shot`: k solved exemplars, then the item (Brown et al. 2020)."""

from __future__ import annotations

import random

import pandas as pd

from emergence.methods import PromptMethod, exemplars, prompt_method, task_format


@prompt_method
class FewShot(PromptMethod):
    name = "few_shot"

    def prompts(self, test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
        """k solved exemplars, then the item (Brown et al. 2020), in the task's own format.

        `task_prefix + (shot input + shot target + separator) for each shot + item input`: BIG-bench's
        `make_nshot_dataset`, whose exemplars carry a target drawn at random where an example lists
        several; here they carry the first.
        """
        prompts = []
        for item, shots in exemplars(test, train, spec["k"], rng):
            prefix, separator = task_format(item)
            prompts.append(
                (prefix + "".join(f"{shot.input}{shot.target}{separator}" for shot in shots) + item.input, item.target)
            )
        return prompts
