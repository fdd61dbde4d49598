"""`gsm8k`, `mmlu`, `trivia_qa`: benchmark datasets from the Hugging Face hub at a pinned revision
(the files and their parsing: `emergence.hub_tasks`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emergence.tasks import TaskKind, task_kind


class HubTask(TaskKind):
    """One dataset of `hub_tasks.HUB_FILES`, fetched at the spec's revision (offline from the cache)."""

    def build(self, task: str, spec: dict, seed: int, inputs: dict[str, Path]) -> pd.DataFrame:
        from emergence import hub_tasks

        folder = hub_tasks.fetch(
            hub_tasks.HUB_FILES[self.name][0], spec["revision"], hub_tasks.hub_patterns(self.name, self.subject(spec))
        )
        return self.items(folder, spec, seed, n_test=spec.get("n_test"), n_train=spec.get("n_train", 0))

    def subject(self, spec: dict) -> str:
        return ""

    def items(self, folder: Path, spec: dict, seed: int, n_test: int | None, n_train: int) -> pd.DataFrame:
        raise NotImplementedError


@task_kind
class Gsm8k(HubTask):
    name = "gsm8k"

    def items(self, folder: Path, spec: dict, seed: int, n_test: int | None, n_train: int) -> pd.DataFrame:
        from emergence.hub_tasks import gsm8k_items

        return gsm8k_items(folder, seed, n_test=n_test, n_train=n_train)


@task_kind
class Mmlu(HubTask):
    name = "mmlu"

    def subject(self, spec: dict) -> str:
        return spec.get("subject", "")

    def multiple_choice(self, spec: dict) -> bool:
        return True

    def items(self, folder: Path, spec: dict, seed: int, n_test: int | None, n_train: int) -> pd.DataFrame:
        from emergence.hub_tasks import mmlu_items

        return mmlu_items(folder, self.subject(spec), seed, n_test=n_test, n_train=n_train)


@task_kind
class TriviaQa(HubTask):
    name = "trivia_qa"

    def items(self, folder: Path, spec: dict, seed: int, n_test: int | None, n_train: int) -> pd.DataFrame:
        from emergence.hub_tasks import trivia_qa_items

        return trivia_qa_items(folder, seed, n_test=n_test, n_train=n_train)
