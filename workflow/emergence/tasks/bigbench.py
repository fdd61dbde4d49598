"""`bigbench`: BIG-bench JSON tasks from the bigbench==1.0.0 source archive (see `emergence.bigbench`)."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pandas as pd

from emergence.tasks import TaskKind, task_kind
from emergence.tasks.arithmetic import OPERATORS, scratchpad

ARCHIVE = "resources/downloads/bigbench-1.0.0.tar.gz"  # made by the download_bigbench rule


@task_kind
class BigBench(TaskKind):
    name = "bigbench"

    def inputs(self, task: str, spec: dict) -> dict[str, str]:
        return {"archive": ARCHIVE}

    def multiple_choice(self, spec: dict) -> bool:
        return bool(spec.get("multiple_choice"))

    def build(self, task: str, spec: dict, seed: int, inputs: dict[str, Path]) -> pd.DataFrame:
        return bigbench_task(task, spec, seed, self.input(task, inputs, "archive"))


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
