"""`synthetic_arithmetic`: two d-digit operands and one operation, with held-out pairs and scratchpads."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pandas as pd

from emergence.tasks import TaskError, TaskKind, task_kind

OPERATORS = {
    "addition": ("+", lambda a, b: a + b),
    "subtraction": ("-", lambda a, b: a - b),
    "multiplication": ("*", lambda a, b: a * b),
}


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


@task_kind
class SyntheticArithmetic(TaskKind):
    name = "synthetic_arithmetic"

    def build(self, task: str, spec: dict, seed: int, inputs: dict[str, Path]) -> pd.DataFrame:
        return synthetic_arithmetic(task, spec, seed)
