"""Task items: the questions every model answers.

A task is a table of items (see `io.SCHEMAS["tasks"]`). Test items are evaluated; train items are the
pool that few-shot exemplars are drawn from, disjoint from the test items by construction.
Task builders are registered by the `kind` they carry in the config.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from emergence.errors import EmergenceError
from emergence.registry import registrar

TaskBuilder = Callable[[str, dict, int], pd.DataFrame]
TASK_BUILDERS: dict[str, TaskBuilder] = {}

OPERATORS = {
    "addition": ("+", lambda a, b: a + b),
    "subtraction": ("-", lambda a, b: a - b),
    "multiplication": ("*", lambda a, b: a * b),
}


class TaskError(EmergenceError, ValueError):
    """A task definition or task file that cannot give usable items."""


task_builder = registrar(TASK_BUILDERS)


# One operand pair in four is held out: evaluation items come only from held-out pairs and the
# training curriculum (emergence.training) never contains one, whatever the seeds or sizes.
HELDOUT_PERCENT = 25


def is_heldout(operation: str, a: int, b: int) -> bool:
    digest = hashlib.sha256(f"{operation}:{a}:{b}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELDOUT_PERCENT


def operand_range(digits: int) -> range:
    """The integers with exactly `digits` digits (0 counts as a one-digit number)."""
    return range(0 if digits == 1 else 10 ** (digits - 1), 10**digits)


def operands(rng: random.Random, digits: int) -> tuple[int, int]:
    numbers = operand_range(digits)
    return rng.choice(numbers), rng.choice(numbers)


def scratchpad(operation: str, a: int, b: int) -> str:
    """Worked steps between brackets, then the answer: the scratchpad format (Nye et al. 2021).

    Addition and subtraction go digit by digit from the right with the carry or borrow written
    out (`8+7=15;5+6+1=12`, `2-7=-5+10=5;5-2-1=2`); a negative difference is worked as the swapped
    one (`swap;...`); multiplication writes one partial product per digit of b and their sums.
    """
    apply = OPERATORS[operation][1]
    steps: list[str] = []
    if operation == "multiplication":
        total = 0
        for place, digit in enumerate(reversed(str(b))):
            partial = a * int(digit) * 10**place
            steps.append(f"{a}*{int(digit) * 10**place}={partial}")
            if place:
                steps.append(f"{total}+{partial}={total + partial}")
            total += partial
    else:
        x, y = (a, b) if operation == "addition" or a >= b else (b, a)
        if (x, y) != (a, b):
            steps.append("swap")
        xs, ys = str(x)[::-1], str(y)[::-1].ljust(len(str(x)), "0")
        carry = 0
        for dx, dy in zip(xs, ys):
            if operation == "addition":
                value = int(dx) + int(dy) + carry
                steps.append(f"{dx}+{dy}{'+1' if carry else ''}={value}")
                carry = value // 10
            else:
                value = int(dx) - int(dy) - carry
                step = f"{dx}-{dy}{'-1' if carry else ''}={value}"
                carry = int(value < 0)
                steps.append(step + (f"+10={value + 10}" if carry else ""))
    return "[" + ";".join(steps) + "]" + str(apply(a, b))


@task_builder("synthetic_arithmetic")
def synthetic_arithmetic(name: str, spec: dict, seed: int) -> pd.DataFrame:
    """Two d-digit operands and one operation, written `a+b=`, target the exact result.

    The multi-digit arithmetic of Wei et al. (2022) and Schaeffer et al. (2023, Fig. 3): both operands
    have exactly d digits, so target length grows with d. Test items are distinct held-out pairs
    (never in the training curriculum); the `n_train` exemplar pool comes from the other pairs.
    Each item's metadata carries its scratchpad (worked steps and answer).
    """
    operation = spec["operation"]
    symbol, apply = OPERATORS[operation]
    rng = random.Random(f"{seed}/{name}")
    rows = []
    for digits in spec["digits"]:
        for split, count, heldout in (("test", spec["n_test"], True), ("train", spec.get("n_train", 0), False)):
            if digits <= 2:  # longer operands have far more pairs than any sweep asks for
                numbers = operand_range(digits)
                available = sum(is_heldout(operation, a, b) == heldout for a in numbers for b in numbers)
                if count > available:
                    raise TaskError(
                        f"task {name}: {count} {split} items asked for {digits}-digit operands,"
                        f" only {available} pairs exist"
                    )
            seen: set[tuple[int, int]] = set()
            while len(seen) < count:
                a, b = operands(rng, digits)
                if (a, b) in seen or is_heldout(operation, a, b) != heldout:
                    continue
                seen.add((a, b))
                rows.append(
                    {
                        "item_id": f"{digits}d-{split}-{len(seen) - 1:05d}",
                        "split": split,
                        "input": f"{a}{symbol}{b}=",
                        "target": str(apply(a, b)),
                        "digits": digits,
                        "metadata": json.dumps(
                            {"a": a, "b": b, "operation": operation, "scratchpad": scratchpad(operation, a, b)}
                        ),
                    }
                )
    return pd.DataFrame(rows)


@task_builder("gsm8k")
@task_builder("mmlu")
@task_builder("trivia_qa")
def hub_task(name: str, spec: dict, seed: int) -> pd.DataFrame:
    """A benchmark dataset from the Hugging Face hub at a pinned revision (see emergence.hub_tasks)."""
    from emergence import hub_tasks

    kind = spec["kind"]
    subject = spec.get("subject", "")
    folder = hub_tasks.fetch(hub_tasks.HUB_FILES[kind][0], spec["revision"], hub_tasks.hub_patterns(kind, subject))
    counts = {"n_test": spec.get("n_test"), "n_train": spec.get("n_train", 0)}
    if kind == "mmlu":
        return hub_tasks.mmlu_items(folder, subject, seed, **counts)
    return {"gsm8k": hub_tasks.gsm8k_items, "trivia_qa": hub_tasks.trivia_qa_items}[kind](folder, seed, **counts)


WORKED_QUESTION = re.compile(r"What is (\d+) (plus|minus|times|divided by) (\d+)\?")  # BIG-bench arithmetic's questions
OPERATION_WORDS = {"plus": "addition", "minus": "subtraction", "times": "multiplication", "divided by": "division"}


def bigbench_task(name: str, spec: dict, seed: int, archive: Path) -> pd.DataFrame:
    """BIG-bench JSON tasks from the bigbench==1.0.0 source archive (see emergence.bigbench).

    Inputs are formatted as BIG-bench formats them (prefixes, appended choices), and the metadata
    carries the task prefix and exemplar separator, so zero- and few-shot prompts read as BIG-bench
    writes them; plain arithmetic questions also get worked steps, so chain-of-thought and
    scratchpad methods apply to them.
    """
    from emergence import bigbench

    with tempfile.TemporaryDirectory() as tmp:
        files = bigbench.extract_tasks(archive, spec["tasks"], Path(tmp))
        loaded = [
            (f.parent.relative_to(tmp).as_posix(), bigbench.load_task_file(f, f.relative_to(tmp).as_posix()))
            for f in files
        ]
    items = bigbench.task_items(loaded, seed, spec.get("n_test"), spec.get("n_train", 0))
    metadata = []
    for row in items.itertuples():
        meta = json.loads(row.metadata)
        if spec.get("multiple_choice") and meta["target_scores"]:
            meta["choice_scores"] = meta["target_scores"]
        worked = WORKED_QUESTION.search(meta["question"])
        if worked:
            a, b, operation = int(worked[1]), int(worked[3]), OPERATION_WORDS[worked[2]]
            if operation == "division":  # BIG-bench's quotients are exact: one step
                meta["scratchpad"] = f"[{a}/{b}={row.target}]{row.target}"
            elif str(OPERATORS[operation][1](a, b)) == row.target:
                meta["scratchpad"] = scratchpad(operation, a, b)
        metadata.append(json.dumps(meta, sort_keys=True))
    return items.assign(metadata=metadata, digits=items["digits"].astype("int32"))


def build_task(
    name: str, spec: dict, seed: int, base: pd.DataFrame | None = None, archive: Path | None = None
) -> pd.DataFrame:
    """Build the items of one configured task, refusing an empty one.

    A `variant` shifts its `base` task's items; a `bigbench` task reads the BIG-bench `archive`.
    """
    kind = spec["kind"]
    if kind == "bigbench":
        if archive is None:
            raise TaskError(f"task {name}: BIG-bench tasks need the bigbench source archive")
        items = bigbench_task(name, spec, seed, archive)
    elif kind == "variant":
        from emergence.robustness import shifted_items

        if base is None:
            raise TaskError(f"task {name}: a variant needs the items of its task {spec['of']}")
        items = shifted_items(base, name, spec["shift"], spec.get("rate", 0.0), seed)
    elif kind not in TASK_BUILDERS:
        raise TaskError(
            f"task {name}: unknown kind {kind!r} (known: {sorted([*TASK_BUILDERS, 'bigbench', 'variant'])})"
        )
    else:
        items = TASK_BUILDERS[kind](name, spec, seed)
    if (items["split"] == "test").sum() == 0:
        raise TaskError(f"task {name}: no test items")
    if items["item_id"].duplicated().any():
        raise TaskError(f"task {name}: duplicate item ids")
    return items
