"""`variant`: a task's items with their inputs shifted, to compare clean and shifted across scale.

Three seeded shifts of the test inputs (exemplars stay clean, as a deployed prompt's would):
- `typos`: character-level noise, each letter or digit changed with probability `rate`;
- `distractors`: an irrelevant sentence before the question;
- `number_words`: every integer written out in English words.
Item ids and targets are kept, so a variant's curve sits beside its clean task's item for item.
"""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path

import pandas as pd

from emergence import io
from emergence.config import ConfigError
from emergence.errors import InputError
from emergence.tasks import TaskKind, kind_of, task_kind

SHIFTS = ("typos", "distractors", "number_words")
DISTRACTORS = (  # written for this project: true, short, and about nothing a task asks
    "The library closes at six on Sundays.",
    "Rain is expected later in the week.",
    "Some birds fly south for the winter.",
    "The kettle was left on the stove.",
    "A new bridge opened across the river last year.",
    "Most maps put north at the top.",
)
ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


def number_in_words(n: int) -> str:
    """An integer in English words: 125 -> "one hundred twenty-five", -7 -> "minus seven"."""
    if n < 0:
        return "minus " + number_in_words(-n)
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    for size, name in SCALES:
        if n >= size:
            rest = n % size
            return f"{number_in_words(n // size)} {name}" + ("" if rest == 0 else " " + number_in_words(rest))
    raise AssertionError(n)


def typos(text: str, rate: float, rng: random.Random) -> str:
    """Each letter or digit, with probability `rate`, dropped, doubled, or replaced by another of its kind."""
    out = []
    for ch in text:
        if not ch.isalnum() or rng.random() >= rate:
            out.append(ch)
            continue
        edit = rng.choice(("drop", "double", "replace"))
        pool = string.digits if ch.isdigit() else string.ascii_lowercase
        out.append({"drop": "", "double": ch + ch, "replace": rng.choice([c for c in pool if c != ch.lower()])}[edit])
    return "".join(out)


def shift_input(text: str, shift: str, rate: float, rng: random.Random) -> str:
    if shift == "typos":
        return typos(text, rate, rng)
    if shift == "distractors":
        return f"{rng.choice(DISTRACTORS)} {text}"
    if shift == "number_words":
        return re.sub(r"\d+", lambda m: number_in_words(int(m.group())), text)
    raise InputError(f"unknown shift {shift!r} (known: {', '.join(SHIFTS)})")


def shifted_items(base: pd.DataFrame, name: str, shift: str, rate: float, seed: int) -> pd.DataFrame:
    """The base task's items with every test input shifted (seeded per item); the clean input kept in metadata."""
    items = base.copy()
    inputs, metadata = [], []
    for row in items.itertuples():
        if row.split != "test":
            inputs.append(row.input)
            metadata.append(row.metadata)
            continue
        rng = random.Random(f"{seed}/{name}/{row.item_id}")
        inputs.append(shift_input(row.input, shift, rate, rng))
        metadata.append(
            json.dumps({**json.loads(row.metadata), "shift": shift, "clean_input": row.input}, sort_keys=True)
        )
    items["input"], items["metadata"] = inputs, metadata
    return items


@task_kind
class Variant(TaskKind):
    """Built from the items of another configured task (`of`), which must not be a variant itself."""

    name = "variant"

    def inputs(self, task: str, spec: dict) -> dict[str, str]:
        return {"base": f"results/tasks/{spec['of']}.parquet"}

    def check(self, task: str, spec: dict, config: dict) -> None:
        base = config["tasks"].get(spec["of"])
        if base is None or base["kind"] == self.name:
            raise ConfigError(f"tasks.{task}.of: {spec['of']} is not a configured task to shift")

    def exemplar_pool(self, task: str, spec: dict, config: dict) -> int:
        base = config["tasks"][spec["of"]]
        return kind_of(spec["of"], base).exemplar_pool(spec["of"], base, config)

    def shifted_from(self, spec: dict) -> str | None:
        return spec["of"]

    def build(self, task: str, spec: dict, seed: int, inputs: dict[str, Path]) -> pd.DataFrame:
        base = io.read_table(self.input(task, inputs, "base"), "tasks")
        return shifted_items(base, task, spec["shift"], spec.get("rate", 0.0), seed)
