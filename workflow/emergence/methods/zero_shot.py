"""`zero_shot`: the item's input alone, in its task's format."""

from __future__ import annotations

import random

import pandas as pd

from emergence.methods import PromptMethod, prompt_method, task_format


@prompt_method
class ZeroShot(PromptMethod):
    name = "zero_shot"

    def prompts(self, test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
        """The item's input alone, after its task's prefix."""
        return [(task_format(item)[0] + item.input, item.target) for item in test.itertuples()]
