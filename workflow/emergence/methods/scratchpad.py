"""`scratchpad`: worked exemplars, then the item with the scratchpad opened (Nye et al. 2021)."""

from __future__ import annotations

import json
import random

import pandas as pd

from emergence.methods import SEPARATOR, PromptMethod, exemplars, prompt_method

SCRATCHPAD_CUE = "S:"  # opens a worked line


@prompt_method
class Scratchpad(PromptMethod):
    name = "scratchpad"
    answer_regex = r"\]([^\]]*)$"  # after the closing bracket

    def prompts(self, test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
        """k worked exemplars, then the item with the scratchpad opened (Nye et al. 2021).

        Worked lines carry the `S:` cue that the trained family learned with its scratchpad lines; the
        model writes the steps, closes the bracket and gives the answer, which is read after the bracket.
        The teacher-forced continuation is the item's whole scratchpad.
        """
        prompts = []
        for item, shots in exemplars(test, train, spec.get("k", 0), rng):
            worked = "".join(f"{SCRATCHPAD_CUE}{shot.input}{_trace(shot)}{SEPARATOR}" for shot in shots)
            trace = _trace(item)
            prompts.append((f"{worked}{SCRATCHPAD_CUE}{item.input}[", trace[1:]))
        return prompts


def _trace(item) -> str:
    return json.loads(item.metadata)["scratchpad"]
