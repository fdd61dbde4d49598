"""BIG-bench JSON tasks (Srivastava et al. 2022) as Emergence Lab task items.

The JSON tasks ship inside the PyPI source archive bigbench==1.0.0 (358 MB, never installed: its
dependencies are heavy and only the task.json files are needed). They are read straight out of the
.tar.gz and checked field by field on load, so a bad file stops a run with one line naming the file
and the field instead of a KeyError deep inside a later stage.

Prompts follow the format rules of the archive's bigbench/api/json_task.py (`default_format_fn`,
`make_nshot_dataset`): an example reads `input_prefix + input [+ choices] + output_prefix`, where an
example with `target_scores` lists its choices after the input (`choice_prefix` before each, sorted
then permuted by numpy's RandomState(42), as BIG-bench does) unless the file sets
`append_choices_to_input` to a false value; exemplars are joined by `few_shot_example_separator`, and
`task_prefix` opens the whole prompt once. A field a file leaves out gets BIG-bench's default, and a
file with neither `output_regex` nor `stop_string` is read with BIG-bench's default output regex.
"""

from __future__ import annotations

import json
import math
import random
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from emergence.errors import EmergenceError

TASKS_DIR = "/benchmark_tasks/"  # in the archive: bigbench-1.0.0/bigbench/benchmark_tasks/<task>[/<subtask>]/task.json
# (file field, key here, default): the defaults are those of bigbench/api/json_task.py.
FIELDS = [
    ("example_input_prefix", "input_prefix", "\nQ: "),
    ("example_output_prefix", "output_prefix", "\nA: "),
    ("few_shot_example_separator", "separator", "\n"),
    ("task_prefix", "task_prefix", ""),  # put before the whole prompt once
    ("choice_prefix", "choice_prefix", "\n  choice: "),  # before each appended choice
    ("output_regex", "output_regex", None),
    ("stop_string", "stop_string", None),
]
DEFAULT_OUTPUT_REGEX = (
    r"[^\.\?\!\;\n]+"  # json_task.py's _DEFAULT_REGEX: applies when a file sets no output_regex or stop_string
)
CHOICE_ORDER_SEED = 42  # json_task.py's random_seed: choices are permuted by RandomState(42), afresh for every example
SAFE_PART = re.compile(r"[\w-][\w.-]*")  # one folder name: no slash, no "." or ".."
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
DIGITS = re.compile(rf"(?:^|_)(\d+|{'|'.join(WORDS)})_digit")  # "3_digit_addition", "three_digit_addition_control"
COLUMNS = ["item_id", "split", "input", "target", "digits", "metadata"]


class BigBenchError(EmergenceError, ValueError):
    """A BIG-bench task that cannot be used: a malformed file or a name the archive lacks.

    The message is one line, `<file>: <field>: <problem>`, so the CLI can print it as it is.
    """


def extract_tasks(archive: Path, names: list[str], out: Path) -> list[Path]:
    """Copy the task.json files of the named tasks from the archive to out/<task>[/<subtask>]/task.json.

    A name is `task` (the task and all its subtasks) or `task/subtask`. The archive is read once from
    start to end (a .tar.gz cannot seek cheaply) and only regular files whose folders are plain names
    are written, by content, so a crafted archive cannot write outside `out` or plant a link.
    Returns the files that hold examples, sorted: a task with subtasks keeps only metadata in its own.
    """
    archive, out = Path(archive), Path(out)
    for name in names:
        if name.count("/") > 1 or not all(SAFE_PART.fullmatch(part) for part in name.split("/")):
            raise BigBenchError(f"{archive.name}: {name!r}: not a task name (expected task or task/subtask)")
    found: dict[str, list[Path]] = {name: [] for name in names}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            _, inside, rel = ("/" + member.name).partition(TASKS_DIR)
            parts = rel.split("/")
            if not inside or parts[-1] != "task.json" or len(parts) not in (2, 3):
                continue
            wanted = [n for n in names if n.split("/") == parts[: n.count("/") + 1]]
            if not wanted:
                continue
            if not member.isfile() or not all(SAFE_PART.fullmatch(p) for p in parts):
                raise BigBenchError(f"{archive.name}: {member.name}: refusing a link or an unsafe path")
            path = out.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = tar.extractfile(member)
            assert handle is not None  # a regular file (checked above)
            path.write_bytes(handle.read())
            for name in wanted:
                found[name].append(path)
    missing = [name for name, paths in found.items() if not paths]
    if missing:
        raise BigBenchError(f"{archive.name}: no JSON task named {', '.join(missing)}")
    written = {path for paths in found.values() for path in paths}
    parents = {path.parent.parent / "task.json" for path in written if len(path.relative_to(out).parts) == 3}
    return sorted(written - parents)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_task_file(path: Path, label: str) -> dict:
    """Read and check one task.json; return {name, input_prefix, output_prefix, separator, task_prefix,
    choice_prefix, output_regex, stop_string, append_choices, examples: [{input, targets, target_scores}]}.

    `targets` is always a list (empty for a pure multiple-choice example); `target_scores` is a dict of
    floats or None. `append_choices` is the truth value of `append_choices_to_input` (default true) as
    BIG-bench reads it: the string "false", which 6 files of the archive carry, is true there too.
    `output_regex` is compiled here, so a bad pattern stops the run at load, not at scoring. `label`
    names the file in errors. Fields this module does not use are ignored.
    """

    def fail(field: str, problem: str):
        raise BigBenchError(f"{label}: {field}: {' '.join(problem.split())}")

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeError, json.JSONDecodeError) as error:
        fail("(file)", f"not readable JSON ({error})")
    if not isinstance(data, dict):
        fail("(file)", "expected a JSON object")
    task = {}
    for field, key, default in [("name", "name", Path(label).parent.name), *FIELDS]:
        task[key] = data.get(field, default)
        if task[key] is not None and not isinstance(task[key], str):
            fail(field, "expected a string")
    if task["output_regex"] is not None:
        try:
            re.compile(task["output_regex"])
        except re.error as error:
            fail("output_regex", f"not a valid regular expression ({error})")
    elif task["stop_string"] is None:
        task["output_regex"] = DEFAULT_OUTPUT_REGEX
    task["append_choices"] = bool(data.get("append_choices_to_input", True))
    examples = data.get("examples")
    if not isinstance(examples, list) or not examples:
        fail("examples", "expected a non-empty list (a task with subtasks keeps them in the subtask files)")
    task["examples"] = []
    for i, example in enumerate(examples):
        where = f"examples[{i}]"
        if not isinstance(example, dict):
            fail(where, "expected an object")
        if not isinstance(example.get("input"), str):
            fail(f"{where}.input", "missing or not a string")
        targets = example.get("target", [])
        targets = [targets] if isinstance(targets, str) else targets
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            fail(f"{where}.target", "expected a string or a list of strings")
        scores = example.get("target_scores")
        if scores is not None:
            if not isinstance(scores, dict) or not scores or not all(_is_number(v) for v in scores.values()):
                fail(f"{where}.target_scores", "expected a non-empty object of choice -> number")
            scores = {choice: float(score) for choice, score in scores.items()}
            if not targets and max(scores.values()) <= (min(scores.values()) if len(scores) > 1 else 0):
                fail(f"{where}.target_scores", "no choice scores above the others, so none is correct")
        if not targets and not scores:
            fail(where, "has neither target nor target_scores")
        task["examples"].append({"input": example["input"], "targets": targets, "target_scores": scores})
    return task


def format_example(task: dict, example: dict) -> str:
    """An example as BIG-bench prompts it (json_task.py's `default_format_fn`), without the task prefix.

    `input_prefix + input + output_prefix`; an example with target_scores gets its choices after the
    input, each after `choice_prefix`, in the order RandomState(42).permutation(sorted(choices)) gives,
    unless the task's `append_choices` is false.
    """
    text = example["input"]
    if example["target_scores"] is not None and task["append_choices"]:
        order = np.random.RandomState(CHOICE_ORDER_SEED).permutation(sorted(example["target_scores"]))
        text += task["choice_prefix"] + task["choice_prefix"].join(str(choice) for choice in order)
    return task["input_prefix"] + text + task["output_prefix"]


def _digits(subtask: str) -> int:
    match = DIGITS.search(subtask.rsplit("/", 1)[-1])
    return 0 if match is None else int(match[1]) if match[1].isdigit() else WORDS.index(match[1])


def task_items(tasks: list[tuple[str, dict]], seed: int, n_test: int | None, n_train: int) -> pd.DataFrame:
    """Task items (io.SCHEMAS["tasks"]) from loaded tasks, given as (subtask, task) pairs, e.g.
    ("arithmetic/1_digit_addition", ...).

    Per subtask the distinct examples (BIG-bench drops repeats too, and a repeat could sit on both
    sides of the split) are shuffled by random.Random(f"{seed}/{subtask}"): the first n_train are the
    "train" exemplar pool, the next n_test ("test", all the rest when None) are evaluated. Seeding by
    subtask keeps a subtask's split fixed whatever else is in the sweep. A subtask with fewer examples
    gives what it has, but one left with no test item is an error. item_id is `<subtask>/<index in file>`.
    Rows come per subtask in the given order, test then train, each in shuffled order. `input` is the
    example as BIG-bench formats it (`format_example`); the raw question is the metadata's `question`.
    """
    rows = []
    for subtask, task in tasks:
        first: dict[str, int] = {}
        for index, example in enumerate(task["examples"]):
            first.setdefault(json.dumps(example, sort_keys=True), index)
        order = sorted(first.values())
        random.Random(f"{seed}/{subtask}").shuffle(order)
        train = order[:n_train]
        test = order[n_train:] if n_test is None else order[n_train : n_train + n_test]
        if not test:
            raise BigBenchError(f"{subtask}: no test items: {len(order)} distinct examples, {n_train} taken for train")
        for split, indices in (("test", test), ("train", train)):
            for index in indices:
                example = task["examples"][index]
                scores = example["target_scores"]
                target = example["targets"][0] if example["targets"] else max(scores, key=scores.get)
                metadata = {
                    "subtask": subtask,
                    "targets": example["targets"] or [target],
                    "target_scores": scores,
                    "question": example["input"],
                    "append_choices": task["append_choices"],
                }
                metadata |= {key: task[key] for _, key, _ in FIELDS}
                rows.append(
                    [
                        f"{subtask}/{index}",
                        split,
                        format_example(task, example),
                        target,
                        _digits(subtask),
                        json.dumps(metadata, sort_keys=True),
                    ]
                )
    return pd.DataFrame(rows, columns=COLUMNS).astype({"digits": int})
