"""`complexity_based`: the exemplars with the most reasoning steps (Fu et al. 2023)."""

from __future__ import annotations

import random

import pandas as pd

from emergence.methods import STRICT_ANSWER_REGEX, PromptError, PromptMethod, prompt_method
from emergence.methods.chain_of_thought import CHAIN_STOP, chain, chain_prompt, reasoning_steps


@prompt_method
class ComplexityBased(PromptMethod):
    name = "complexity_based"
    answer_regex = STRICT_ANSWER_REGEX
    stop = CHAIN_STOP
    samples = True

    def prompts(self, test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
        """The k exemplars with the most reasoning steps in the pool of the item's digit count (Fu et al. 2023).

        Ties go to a seeded order. Sampled n times; the vote over the most complex sampled chains is the
        cmaj@k metric.
        """
        k, prompts = spec.get("k", 0), []
        pools = {digits: group for digits, group in train.groupby("digits")}
        for item in test.itertuples():
            pool = list(pools.get(item.digits, train.iloc[:0]).itertuples())
            order = {shot.item_id: rng.random() for shot in pool}
            ranked = sorted(pool, key=lambda shot: (-len(reasoning_steps(shot)), order[shot.item_id]))
            shots = [shot for shot in ranked if shot.input != item.input][:k]
            if len(shots) < k:
                raise PromptError(f"{k} exemplars need {k} train items with {item.digits} digits, found {len(shots)}")
            prompts.append((chain_prompt(shots, item), " " + chain(item)))
        return prompts
