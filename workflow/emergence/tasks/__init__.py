"""Task items: the questions every model answers.

A task is a table of items (see `io.SCHEMAS["tasks"]`). Test items are evaluated; train items are the
pool that few-shot exemplars are drawn from, disjoint from the test items by construction. Each task
kind is one class in one module of this package, registered by the `kind` it carries in the config: it
declares the files its items are made from (`inputs`: the BIG-bench archive, another task's items),
checks its spec before any job starts and builds the items. Nothing outside this package names a kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pandas as pd

from emergence.config import ConfigError
from emergence.errors import EmergenceError
from emergence.registry import Registry, load_package


class TaskError(EmergenceError, ValueError):
    """A task definition or task file that cannot give usable items."""


class TaskKind:
    """One kind of task. Subclasses set `name` and override `build`; the rest has defaults."""

    name: ClassVar[str]

    def inputs(self, task: str, spec: dict) -> dict[str, str]:
        """Files (made by other rules) the items are made from, by input name."""
        return {}

    def check(self, task: str, spec: dict, config: dict) -> None:
        """Refuse a spec that is well-formed but cannot give items, with one line naming the key."""
        if spec["n_test"] == 0:
            raise ConfigError(f"tasks.{task}.n_test: task {task} has zero test items")

    def exemplar_pool(self, task: str, spec: dict, config: dict) -> int:
        """How many train items few-shot exemplars can be drawn from."""
        return int(spec.get("n_train", 0))

    def multiple_choice(self, spec: dict) -> bool:
        """Whether items carry choices (scored by their log-probabilities)."""
        return False

    def shifted_from(self, spec: dict) -> str | None:
        """The clean task this one shifts, for the robustness figure; None for a task of its own."""
        return None

    def build(self, task: str, spec: dict, seed: int, inputs: dict[str, Path]) -> pd.DataFrame:
        """The task's items, in the "tasks" schema."""
        raise NotImplementedError

    def input(self, task: str, inputs: dict[str, Path], key: str) -> Path:
        if key not in inputs:
            raise TaskError(f"task {task}: the {key} input was not given")
        return Path(inputs[key])


TASK_KINDS: Registry[TaskKind] = Registry("kind", TaskError)
task_kind = TASK_KINDS.register_class


def kind_of(task: str, spec: dict) -> TaskKind:
    """The registered kind of a task spec; an unknown one is an error naming the task."""
    return TASK_KINDS.find(spec.get("kind"), f"task {task}")


def build_task(task: str, spec: dict, seed: int, inputs: dict[str, Path] | None = None) -> pd.DataFrame:
    """Build the items of one configured task from the files its kind declared, refusing an empty one."""
    items = kind_of(task, spec).build(task, spec, seed, {k: Path(v) for k, v in (inputs or {}).items()})
    if (items["split"] == "test").sum() == 0:
        raise TaskError(f"task {task}: no test items")
    if items["item_id"].duplicated().any():
        raise TaskError(f"task {task}: duplicate item ids")
    return items


load_package(__name__, __path__)
