"""Task items: the questions every model answers.

A task is a table of items (see `io.SCHEMAS["tasks"]`). Test items are evaluated; train items are the
pool that few-shot exemplars are drawn from, disjoint from the test items by construction.
Task builders are registered by the `kind` they carry in the config.
"""

from __future__ import annotations

import json
import random
from typing import Callable

import pandas as pd

from emergence.registry import registrar

TaskBuilder = Callable[[str, dict, int], pd.DataFrame]
TASK_BUILDERS: dict[str, TaskBuilder] = {}

OPERATORS = {
    "addition": ("+", lambda a, b: a + b),
    "subtraction": ("-", lambda a, b: a - b),
    "multiplication": ("*", lambda a, b: a * b),
}


class TaskError(ValueError):
    """A task definition or task file that cannot give usable items."""


task_builder = registrar(TASK_BUILDERS)


@task_builder("synthetic_arithmetic")
def synthetic_arithmetic(name: str, spec: dict, seed: int) -> pd.DataFrame:
    """Two d-digit operands and one operation, written `a+b=`, target the exact result.

    The multi-digit arithmetic of Wei et al. (2022) and Schaeffer et al. (2023, Fig. 3): both operands
    have exactly d digits, so target length grows with d. Pairs are drawn without replacement; the
    first `n_test` per digit count are test items, the next `n_train` the exemplar pool.
    """
    symbol, apply = OPERATORS[spec["operation"]]
    n_test, n_train = spec["n_test"], spec.get("n_train", 0)
    rng = random.Random(f"{seed}/{name}")
    rows = []
    for digits in spec["digits"]:
        low, high = (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1
        n_pairs = (high - low + 1) ** 2
        if n_test + n_train > n_pairs:
            raise TaskError(
                f"task {name}: {n_test + n_train} items asked for {digits}-digit operands, "
                f"only {n_pairs} distinct pairs exist"
            )
        seen: set[tuple[int, int]] = set()
        while len(seen) < n_test + n_train:
            pair = (rng.randint(low, high), rng.randint(low, high))
            if pair in seen:
                continue
            seen.add(pair)
            a, b = pair
            index = len(seen) - 1
            split = "test" if index < n_test else "train"
            rows.append(
                {
                    "item_id": f"{digits}d-{split}-{index:05d}",
                    "split": split,
                    "input": f"{a}{symbol}{b}=",
                    "target": str(apply(a, b)),
                    "digits": digits,
                    "metadata": json.dumps({"a": a, "b": b, "operation": spec["operation"]}),
                }
            )
    return pd.DataFrame(rows)


def build_task(name: str, spec: dict, seed: int) -> pd.DataFrame:
    """Build the items of one configured task, refusing an empty one."""
    kind = spec["kind"]
    if kind not in TASK_BUILDERS:
        raise TaskError(f"task {name}: unknown kind {kind!r} (known: {sorted(TASK_BUILDERS)})")
    items = TASK_BUILDERS[kind](name, spec, seed)
    if (items["split"] == "test").sum() == 0:
        raise TaskError(f"task {name}: no test items")
    if items["item_id"].duplicated().any():
        raise TaskError(f"task {name}: duplicate item ids")
    return items
