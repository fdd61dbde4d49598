"""lm-evaluation-harness 0.3 results JSON: `results` -> task -> metric values, `config` -> the run.

The harness (EleutherAI, v0.3.0) writes one JSON per run: `results` maps each task to its metrics
(`acc`, `acc_norm`, `ppl`, ... and `<metric>_stderr`), `versions` the task versions, and `config` the
run, with `model_args` as the command line gave it (`pretrained=EleutherAI/pythia-410m,revision=step33000`,
other `key=value` pairs in any order) and `num_fewshot`. The Pythia suite's published evaluations
(github.com/EleutherAI/pythia, `evals/pythia-v1/`) are such files.

Metric names (README, "Results made elsewhere"): in 0.3, a multiple-choice task's `acc` is 1 when the
choice with the highest log-likelihood is the correct one, which is `multiple_choice_grade`; for the
tasks in EXACT_MATCH_TASKS `acc` is instead 1 when the greedy continuation is the target (lambada's
`is_greedy`, a generated answer for gsm8k and MATH), which is `exact_match`. `acc_norm` (the choice
with the highest log-likelihood per character) has no project metric and keeps its name. `ppl` is
exp(-mean log P(target)) over the items, so -ln(ppl) is the mean of `target_logprob` exactly; its
stderr is carried by the delta method, stderr(ppl) / ppl.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TypeVar

from emergence.errors import InputError
from emergence.importers import ResultsImporter, items_from_stderr, method_of, results_importer

ALIASES = {"acc": "multiple_choice_grade", "acc_norm": "acc_norm", "ppl": "target_logprob"}
T = TypeVar("T")
EXACT_MATCH_TASKS = ("lambada", "arithmetic_", "gsm8k", "math_")  # task names starting so: acc is a greedy match


def project_metric(task: str, key: str) -> str | None:
    """The project's name of a 0.3 metric key in a task; None for a key without one."""
    if key == "acc" and task.startswith(EXACT_MATCH_TASKS):
        return "exact_match"
    return ALIASES.get(key)


def converted(key: str, value: float, stderr: float | None) -> tuple[float, float | None]:
    """A value and its stderr in the project metric's units (only `ppl` changes: -ln ppl)."""
    if key != "ppl":
        return value, stderr
    if not value > 0:
        raise ValueError(f"ppl = {value!r} is not positive")
    return -math.log(value), None if stderr is None else stderr / value


@results_importer
class LmEval03(ResultsImporter):
    name = "lm_eval_0.3"
    pattern = "*.json"

    def rows(self, path: Path) -> tuple[list[dict], set[str]]:
        data = read_json(path)
        config = field(path, data, "config", dict)
        results = field(path, data, "results", dict)
        args = model_args(path, field(path, config, "model_args", str, "config."))
        shots = field(path, config, "num_fewshot", int, "config.")
        run = {
            "source_model": args["pretrained"],
            "revision": args.get("revision", ""),
            "num_fewshot": shots,
            "method": method_of(shots),
            "file": str(path),
        }
        rows, unknown = [], set()
        for task, metrics in results.items():
            field(path, results, task, dict, "results.")
            task_rows, task_unknown = task_metrics(path, task, metrics)
            rows += [{**run, **row} for row in task_rows]
            unknown |= task_unknown
        return rows, unknown


def task_metrics(path: Path, task: str, metrics: dict) -> tuple[list[dict], set[str]]:
    """One task's rows (task, metric, source_metric, value, stderr, source_value, n_items) and unknown keys."""
    for key, value in metrics.items():
        checked(path, task, key, value)
    binary = next((k for k in ("acc", "acc_norm") if k in metrics), None)
    n_items = items_from_stderr(metrics[binary], metrics.get(f"{binary}_stderr")) if binary else math.nan
    rows, unknown = [], set()
    for key, value in metrics.items():
        base = key.removesuffix("_stderr")
        metric = project_metric(task, base)
        if metric is None:
            unknown.add(base)
            continue
        if key != base:
            if base not in metrics:
                raise InputError(f"{path}: results.{task}.{key} without results.{task}.{base}")
            continue
        try:
            number, stderr = converted(key, float(value), metrics.get(f"{key}_stderr"))
        except ValueError as err:
            raise InputError(f"{path}: results.{task}.{key}: {err}") from None
        rows.append(
            {
                "task": task,
                "metric": metric,
                "source_metric": key,
                "value": number,
                "stderr": stderr,
                "source_value": float(value),
                "n_items": n_items,
            }
        )
    return rows, unknown


def checked(path: Path, task: str, key: str, value: object) -> float:
    """A result value or stderr as a float; one line naming file, task and key for text, NaN or
    infinity (the harness writes NaN where a metric failed) or a negative stderr, none of which is a
    measurement to fit."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{path}: results.{task}.{key} is not a number ({value!r})")
    if not math.isfinite(value):
        raise InputError(f"{path}: results.{task}.{key} is {value!r}, not a finite number")
    if "_stderr" in key and value < 0:
        raise InputError(f"{path}: results.{task}.{key} = {value!r}: a standard error cannot be negative")
    return float(value)


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot be read ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a results object (a JSON {type(data).__name__})")
    return data


KINDS = {int: "a whole number", float: "a number", str: "a string", dict: "a JSON object", list: "a JSON list"}


def field(path: Path, parent: dict, key: str, kind: type[T], prefix: str = "", version: str = "0.3") -> T:
    """`parent[key]` of the expected type; a missing or mistyped key is one line naming file and key (the
    results file of lm-evaluation-harness `version`)."""
    if key not in parent:
        raise InputError(f"{path}: no {prefix + key!r} key (not an lm-evaluation-harness {version} results file?)")
    value = parent[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(f"{path}: {prefix}{key} is not {KINDS.get(kind, kind.__name__)} ({str(value)[:80]!r})")
    return value


def model_args(path: Path, text: str) -> dict[str, str]:
    """`config.model_args` as a dict: comma-separated `key=value` pairs, `pretrained` required."""
    pairs = [part.partition("=") for part in text.split(",") if part.strip()]
    args = {key.strip(): value.strip() for key, sep, value in pairs if sep}
    if not args.get("pretrained"):
        raise InputError(f"{path}: config.model_args {text!r} names no pretrained=<model>")
    return args
