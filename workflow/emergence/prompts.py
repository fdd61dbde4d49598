"""Prompting methods: how a task item becomes a request to the engine.

Each method is a small named function (registered by the `kind` it carries in the config) that turns
the test items of a task into prompt rows (see `io.SCHEMAS["prompts"]`). Sampling parameters are
always written out in full: an engine never falls back to its own defaults.
"""

from __future__ import annotations

import random
from typing import Callable

import pandas as pd

from emergence.registry import registrar

PromptMethod = Callable[[pd.DataFrame, pd.DataFrame, dict, random.Random], list[str]]
PROMPT_METHODS: dict[str, PromptMethod] = {}


class PromptError(ValueError):
    """A prompting method that cannot be applied to a task."""


prompt_method = registrar(PROMPT_METHODS)


@prompt_method("zero_shot")
def zero_shot(test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[str]:
    """The item's input alone."""
    return list(test["input"])


@prompt_method("few_shot")
def few_shot(test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[str]:
    """k solved exemplars, then the item (Brown et al. 2020).

    Exemplars come from the task's train pool with the item's digit count, drawn per item from the
    seeded generator; an exemplar whose input equals the item's input is never used.
    """
    k, separator = spec["k"], spec.get("separator", "\n")
    pools = {digits: group for digits, group in train.groupby("digits")}
    prompts = []
    for item in test.itertuples():
        pool = pools.get(item.digits, train)
        pool = pool[pool["input"] != item.input]
        if len(pool) < k:
            raise PromptError(f"few-shot k={k} needs {k} train items with {item.digits} digits, found {len(pool)}")
        chosen = pool.iloc[sorted(rng.sample(range(len(pool)), k))]
        shots = [f"{row.input}{row.target}" for row in chosen.itertuples()]
        prompts.append(separator.join([*shots, item.input]))
    return prompts


def build_prompts(task: str, items: pd.DataFrame, method: str, spec: dict, sampling: dict, seed: int) -> pd.DataFrame:
    """Prompt rows for every test item of `task` under the configured `method`."""
    kind = spec["kind"]
    if kind not in PROMPT_METHODS:
        raise PromptError(f"method {method}: unknown kind {kind!r} (known: {sorted(PROMPT_METHODS)})")
    test = items[items["split"] == "test"].reset_index(drop=True)
    train = items[items["split"] == "train"].reset_index(drop=True)
    rng = random.Random(f"{seed}/{task}/{method}")
    prompts = PROMPT_METHODS[kind](test, train, spec, rng)
    return pd.DataFrame(
        {
            "request_id": [f"{task}/{method}/{item_id}" for item_id in test["item_id"]],
            "item_id": test["item_id"],
            "task": task,
            "method": method,
            "prompt": prompts,
            "target": test["target"],
            "max_tokens": int(spec.get("max_tokens", sampling["max_tokens"])),
            "temperature": float(spec.get("temperature", sampling["temperature"])),
            "top_p": float(spec.get("top_p", sampling["top_p"])),
            "n": int(spec.get("n", 1)),
            "seed": [_request_seed(seed, task, method, item_id) for item_id in test["item_id"]],
            "stop": [list(spec.get("stop", sampling["stop"]))] * len(test),
        }
    )


def _request_seed(seed: int, task: str, method: str, item_id: str) -> int:
    """A per-request seed, so a resumed run draws exactly the samples an uninterrupted run would."""
    return random.Random(f"{seed}/{task}/{method}/{item_id}").getrandbits(31)
