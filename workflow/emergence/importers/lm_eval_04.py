"""lm-evaluation-harness 0.4 output folders: `results_<date>.json` and, beside it, `samples_<task>_<date>.jsonl`.

`lm_eval --output_path OUT --log_samples` (EleutherAI, v0.4; field names checked against 0.4.13's
`evaluator.py` and `loggers/evaluation_tracker.py`) writes under OUT/<model_name_sanitized>/ one results
JSON per run: `results` maps each task to `"<metric>,<filter>"` values and `"<metric>_stderr,<filter>"`
(a number, or "N/A"); `configs` each task's settings (`output_type`, `num_fewshot`); `n-shot` and
`n-samples` (`original`, `effective`: the items scored) per task; `group_subtasks` the groups; `config`
the run (`model_args`, a dict or the command line's `key=value,...`, naming `pretrained` and perhaps
`revision`; `model_revision`); `model_name`. With `--log_samples`, each task's items follow in
`samples_<task>_<date>.jsonl` (the date of the results file), one line per item and filter; see
`importers.lm_eval_samples`.

Metric names (README, "Results made elsewhere"): `acc` of a `multiple_choice` task is 1 when the choice
with the highest log-likelihood is the gold one (`multiple_choice_grade`); `acc` of a `loglikelihood`
task is 1 when the target is the greedy continuation (`exact_match`, LAMBADA's is_greedy); `exact_match`
under filter `none` or `strict-match` (or a task's only filter) is `exact_match`, under `flexible-extract`
`flexible_exact_match`; `perplexity` is exp(-mean log P(target)), kept as `target_logprob` = -ln(ppl)
(per item, lm-eval logs log P(target) itself); `acc_norm` has no project metric and keeps its name.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from emergence.errors import InputError
from emergence.importers import ResultsImporter, method_of, results_importer
from emergence.importers.lm_eval_03 import checked, converted, read_json
from emergence.importers.lm_eval_03 import field as json_field
from emergence.importers.metadata import REGISTRY

log = logging.getLogger(__name__)
FILTERED = {"strict-match": "exact_match", "none": "exact_match", "flexible-extract": "flexible_exact_match"}


@dataclass(frozen=True)
class Value:
    """One `"<metric>,<filter>"` entry of a task's results."""

    key: str  # as written: "exact_match,strict-match"
    name: str  # "exact_match"
    filter: str  # "strict-match"
    value: float
    stderr: float | None


@dataclass
class Task:
    name: str
    output_type: str
    num_fewshot: int
    n_items: float  # n-samples.effective; NaN where the file does not say
    values: list[Value] = field(default_factory=list)


@dataclass
class Run:
    """One results file: the checkpoint it evaluated and its tasks."""

    path: Path
    model: str
    revision: str
    tokenizer: str  # what model_args name as the tokenizer (else the model)
    tasks: dict[str, Task]

    @property
    def date(self) -> str:
        """The run's date id, which its samples files share (`results_<date>.json`)."""
        return self.path.stem.removeprefix("results_")

    def samples_file(self, task: str) -> Path:
        return self.path.with_name(f"samples_{task}_{self.date}.jsonl")


def project_metric(task: Task, value: Value) -> str | None:
    """The project's name of a 0.4 metric of a task (see the module docstring); None for none."""
    if value.name == "acc":
        return {"multiple_choice": "multiple_choice_grade", "loglikelihood": "exact_match"}.get(task.output_type)
    if value.name == "acc_norm":
        return "acc_norm"
    if value.name == "perplexity" and task.output_type == "loglikelihood":
        return "target_logprob"
    if value.name == "exact_match":
        filters = {v.filter for v in task.values if v.name == "exact_match"}
        return "exact_match" if len(filters) == 1 else FILTERED.get(value.filter)
    return None


def read_run(path: Path) -> Run:
    """A results file, checked: one line naming the file and key for anything missing or mistyped."""
    data = read_json(path)
    results = json_field(path, data, "results", dict, version="0.4")
    configs = json_field(path, data, "configs", dict, version="0.4")
    config = json_field(path, data, "config", dict, version="0.4")
    args = model_args(path, config.get("model_args"))
    model = str(args.get("pretrained") or args.get("model") or data.get("model_name") or "")
    if not model:
        raise InputError(f"{path}: config.model_args names no pretrained=<model> and there is no 'model_name'")
    revision = str(args.get("revision") or config.get("model_revision") or "")
    groups = {name: subtasks for name, subtasks in (data.get("group_subtasks") or {}).items() if subtasks}
    counts, shots = data.get("n-samples") or {}, data.get("n-shot") or {}
    tasks = {}
    for name, entry in results.items():
        json_field(path, results, name, dict, "results.", "0.4")
        if name in groups and name not in configs:
            log.info(f"{path}: group {name} ({len(groups[name])} tasks): its aggregate skipped, its tasks imported")
            continue
        task_config = json_field(path, configs, name, dict, "configs.", "0.4")
        fewshot = task_config.get("num_fewshot", shots.get(name))
        if not isinstance(fewshot, int) or isinstance(fewshot, bool):
            raise InputError(f"{path}: configs.{name}.num_fewshot is not a whole number ({fewshot!r})")
        effective = (counts.get(name) or {}).get("effective")
        task = Task(name, str(task_config.get("output_type", "")), fewshot, float(effective or math.nan))
        task.values = task_values(path, name, entry)
        tasks[name] = task
    return Run(path, model, revision, str(args.get("tokenizer") or model), tasks)


def task_values(path: Path, task: str, entry: dict) -> list[Value]:
    """A task's `"<metric>,<filter>"` values with their stderrs ("N/A" is no stderr)."""
    values = []
    for key, value in entry.items():
        name, comma, filter_name = key.partition(",")
        if not comma or name.endswith("_stderr"):
            continue  # `alias`, `name`, `sample_len`: about the task; a stderr is read with its metric
        stderr_key = f"{name}_stderr,{filter_name}"
        stderr = entry.get(stderr_key)
        stderr = None if stderr is None or stderr == "N/A" else checked(path, task, stderr_key, stderr)
        values.append(Value(key, name, filter_name, checked(path, task, key, value), stderr))
    return values


def model_args(path: Path, args: object) -> dict:
    """`config.model_args` as a dict: lm-eval 0.4 writes the dict it parsed, or the string as given."""
    if isinstance(args, dict):
        return args
    if isinstance(args, str):
        pairs = [part.partition("=") for part in args.split(",") if part.strip()]
        return {key.strip(): value.strip() for key, sep, value in pairs if sep}
    if args is None:
        return {}
    raise InputError(f"{path}: config.model_args is neither key=value text nor an object ({args!r})")


def result_rows(run: Run) -> tuple[list[dict], set[str]]:
    """The long table's rows of a run (COLUMNS up to `file`, without scale) and the keys it has no name for."""
    common = {"source_model": run.model, "revision": run.revision, "file": str(run.path)}
    rows, unknown = [], set()
    for task in run.tasks.values():
        for value in task.values:
            metric = project_metric(task, value)
            if metric is None:
                unknown.add(value.key)
                continue
            try:
                number, stderr = converted("ppl" if metric == "target_logprob" else "", value.value, value.stderr)
            except ValueError as err:
                raise InputError(f"{run.path}: results.{task.name}.{value.key}: {err}") from None
            rows.append(
                {
                    **common,
                    "task": task.name,
                    "num_fewshot": task.num_fewshot,
                    "method": method_of(task.num_fewshot),
                    "metric": metric,
                    "source_metric": value.key,
                    "value": number,
                    "stderr": stderr,
                    "source_value": value.value,
                    "n_items": task.n_items,
                }
            )
    return rows, unknown


@results_importer
class LmEval04(ResultsImporter):
    name = "lm_eval_0.4"
    pattern = "results_*.json"
    item_pattern = "samples_*.jsonl"

    def rows(self, path: Path) -> tuple[list[dict], set[str]]:
        return result_rows(read_run(path))

    def items(self, path: Path, models: Path = REGISTRY, tokenizer: str | None = None) -> pd.DataFrame:
        """The per-item table of every results file's samples (`lm_eval_samples.per_item`)."""
        from emergence.importers.lm_eval_samples import per_item

        return per_item([read_run(file) for file in self.files(path)], models, tokenizer)
