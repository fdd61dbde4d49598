"""Per-item results of lm-evaluation-harness 0.4 (`--log_samples`): its own values, and rescored responses.

A samples file (`samples_<task>_<date>.jsonl`, written by 0.4.13's `EvaluationTracker.save_results_samples`)
has one line per item and filter: `doc_id`, `doc`, `target` (as text), `arguments` (`gen_args_<i>` ->
`arg_<j>`), `resps`, `filtered_resps` (the responses after the filter; numbers written as text),
`filter`, `metrics` (the names of the per-item values that follow, e.g. `"exact_match": 1.0`) and
`doc_hash`. Per item this gives two kinds of rows of the per-item table (io.SCHEMAS["imported_scores"]):

- `source` "lm_eval": lm-eval's own per-item value of each metric the results file has a project name
  for (`lm_eval_04.project_metric`), so a curve's intervals come from resampling items, not from a
  stderr. Each mean over items is checked against the results file (1e-9): samples of another run stop
  the import.
- `source` "rescored": the responses scored under this project's metrics by `scoring.score_generations`
  (no scoring code here): a `generate_until` task's filtered responses against the target under exact
  match after the project's normalisation, token edit distance in the model's tokenizer and character
  edit distance (Schaeffer et al. 2023: the continuous metrics under which emergence may be a mirage); a
  `multiple_choice` task's choice log-likelihoods under the multiple-choice grade, the correct choice's
  probability and the Brier score.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from emergence import io
from emergence.errors import InputError
from emergence.importers import method_of
from emergence.importers.lm_eval_04 import Run, Task, project_metric
from emergence.importers.metadata import FINAL_REVISIONS, ModelScale, scale_of

log = logging.getLogger(__name__)

COLUMNS = io.SCHEMAS["imported_scores"].names
GENERATED = (
    "exact_match",
    "flexible_exact_match",
    "exact_string_match",
    "token_edit_distance",
    "normalized_token_edit_distance",
    "char_edit_distance",
)
CHOSEN = ("multiple_choice_grade", "correct_choice_prob", "brier_multiclass")
TOKENIZED = ("generate_until", "loglikelihood")  # output types whose rows need the model's tokenizer
MEAN_TOLERANCE = 1e-9
Sample = tuple[int, dict]  # (line number, the line's object)


def per_item(runs: list[Run], models: Path, tokenizer: str | None = None) -> pd.DataFrame:
    """Every item of every run's samples files, lm-eval's values and the rescored ones (COLUMNS).

    `tokenizer` (a path or hub name) replaces the one the runs name; InputError where the rows need a
    tokenizer that cannot be loaded, or where no run has a samples file.
    """
    frames: list[pd.DataFrame] = []
    tokenizers: dict[str, Callable] = {}
    used: set[Path] = set()
    for run in runs:
        scale = scale_of(run.model, run.revision or None, models)
        for task in run.tasks.values():
            file = run.samples_file(task.name)
            if not file.is_file():
                log.warning(f"{run.path}: no {file.name}: {task.name} has no per-item scores (lm_eval --log_samples)")
                continue
            used.add(file)
            samples = read_samples(file)
            check_items(run, task, file, samples)
            tokenize = None
            if task.output_type in TOKENIZED:
                name = tokenizer or run.tokenizer
                tokenize = tokenizers.get(name) or tokenizers.setdefault(name, load_tokenizer(name, run))
            frames += [lm_eval_rows(run, task, file, samples, scale, tokenize)]
            frames += rescored_rows(run, task, file, samples, scale, tokenize)
    for folder in sorted({run.path.parent for run in runs}):
        for file in sorted(set(folder.glob("samples_*.jsonl")) - used):
            log.warning(f"{file}: no results file of its run names its task; skipped")
    if not used:
        raise InputError(
            f"{runs[0].path.parent}: no samples_<task>_<date>.jsonl beside the results files"
            " (run lm_eval with --log_samples)"
        )
    table = pd.concat(frames, ignore_index=True).sort_values(
        ["file", "filter", "source", "metric", "doc"], kind="stable"
    )
    return table.reset_index(drop=True)[COLUMNS]


PREFERRED_FILTERS = ("strict-match", "none")  # the filter a curve reads where a task has several


def as_scores(items: pd.DataFrame, source: str = "rescored") -> pd.DataFrame:
    """One source's rows of a per-item table as the "scores" stage (io.SCHEMAS["scores"]), for the curve
    analysis (`analysis.analyse_task_method`): one filter per checkpoint and task (`strict-match`, else
    `none`, else the first by name; logged where there was a choice), so each item has one value per metric.
    Checkpoints of one model are told apart in `model` as `<model>@<revision>` unless a revision is final."""
    rows = items[items["source"] == source]
    keys = ["model", "revision", "task", "num_fewshot"]
    kept = []
    for key, group in rows.groupby(keys, sort=True):
        filters = sorted(group["filter"].unique())
        chosen = next((f for f in PREFERRED_FILTERS if f in filters), filters[0])
        if len(filters) > 1:
            log.info(f"{' '.join(map(str, key))}: {source} scores under filter {chosen!r} (of {', '.join(filters)})")
        kept.append(group[group["filter"] == chosen])
    scores = pd.concat(kept, ignore_index=True) if kept else rows.iloc[:0]
    final = scores["revision"].isin(FINAL_REVISIONS)
    scores = scores.assign(model=scores["model"].where(final, scores["model"] + "@" + scores["revision"]))
    return scores[io.SCHEMAS["scores"].names].reset_index(drop=True)


def read_samples(file: Path) -> list[Sample]:
    """A samples file's lines; one line naming the file and line for one that is not a whole JSON object."""
    samples = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{file}: line {number}: not valid JSON ({err.msg}, column {err.colno});"
                " a truncated file? run lm_eval again"
            ) from None
        if not isinstance(sample, dict) or not isinstance(sample.get("doc_id"), int) or "filter" not in sample:
            raise InputError(f"{file}: line {number}: not an lm-eval 0.4 sample (no integer doc_id and filter)")
        samples.append((number, sample))
    return samples


def check_items(run: Run, task: Task, file: Path, samples: list[Sample]) -> None:
    """The samples are this run's: each filter has every item once, as many as the results counted, and
    each mean over items is the results file's value."""
    by_filter: dict[str, list[Sample]] = {}
    for sample in samples:
        by_filter.setdefault(sample[1]["filter"], []).append(sample)
    for name, group in by_filter.items():
        repeated = [doc for doc, count in Counter(s["doc_id"] for _, s in group).items() if count > 1]
        if repeated:
            line = [n for n, s in group if s["doc_id"] == repeated[0]][1]  # where it comes again
            raise InputError(f"{file}: line {line}: doc_id {repeated[0]} appears twice under filter {name!r}")
        if np.isfinite(task.n_items) and len(group) != task.n_items:
            raise InputError(
                f"{file}: {len(group)} items under filter {name!r}, but {run.path} scored {task.n_items:.0f}"
                f" (n-samples.effective of {task.name}): samples of another run?"
            )
    for value in task.values:
        metric = project_metric(task, value)
        if metric is None:
            continue
        if value.filter not in by_filter:
            raise InputError(f"{file}: no items under filter {value.filter!r}, which {run.path} reports ({value.key})")
        values = item_values(file, by_filter[value.filter], value.name)
        mean = float(np.mean(values))
        expected = -np.log(value.value) if metric == "target_logprob" else value.value
        if not abs(mean - expected) <= MEAN_TOLERANCE * max(1.0, abs(expected)):
            raise InputError(
                f"{file}: the mean of its items' {value.name} under {value.filter!r} is {mean!r}, but {run.path}"
                f" gives {value.key} = {value.value!r}: samples of another run?"
            )


def item_values(file: Path, group: list[Sample], name: str) -> np.ndarray:
    """Each item's per-item value of a metric (lm-eval writes it under the metric's name)."""
    values = []
    for number, sample in group:
        value = sample.get(name)
        if isinstance(value, str) or not isinstance(value, (int, float)):
            raise InputError(f"{file}: line {number}: {name!r} is not a number ({value!r})")
        if not np.isfinite(value):
            raise InputError(f"{file}: line {number}: {name!r} is {value!r}, not a finite number")
        values.append(float(value))
    return np.array(values)


def load_tokenizer(name: str, run: Run):
    """A batch tokenizer (as scoring uses) of a path or hub name; one line naming the option where it fails."""
    from transformers import AutoTokenizer

    from emergence.scoring.items import batch_tokenizer, remembering

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError, KeyError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise InputError(
            f"{run.path}: no tokenizer for {run.model} (token edit distances and target lengths need one):"
            f" {name!r} cannot be loaded ({reason}); give one with --tokenizer PATH_OR_NAME,"
            " or tokenizer: in the sweep's results entry"
        ) from None
    return remembering(batch_tokenizer(tokenizer))


def common(run: Run, task: Task, file: Path, scale: ModelScale) -> dict:
    """The columns every row of a task's samples shares."""
    return {
        "model": scale.model,
        "family": scale.family,
        "task": task.name,
        "method": method_of(task.num_fewshot),
        "digits": 0,
        "n_params": scale.n_params,
        "training_flops": scale.training_flops,
        "revision": run.revision,
        "num_fewshot": task.num_fewshot,
        "file": str(file),
    }


def target_text(task: Task, sample: dict) -> str:
    """What the target's tokens are counted of: the target, or the continuation a loglikelihood request scored."""
    if task.output_type == "loglikelihood":
        return str(((sample.get("arguments") or {}).get("gen_args_0") or {}).get("arg_1", sample.get("target", "")))
    return str(sample.get("target", ""))


def lm_eval_rows(run: Run, task: Task, file: Path, samples: list[Sample], scale: ModelScale, tokenize) -> pd.DataFrame:
    """lm-eval's own per-item value of each metric with a project name, one row per item."""
    tokens = target_tokens(task, samples, tokenize)
    rows = []
    for value in task.values:
        metric = project_metric(task, value)
        if metric is None:
            continue
        chosen = [i for i, (_, s) in enumerate(samples) if s["filter"] == value.filter]
        values = item_values(file, [samples[i] for i in chosen], value.name)
        for i, number in zip(chosen, values):
            sample = samples[i][1]
            rows.append(
                {
                    "request_id": f"{task.name}/{sample['doc_id']}",
                    "item_id": str(sample["doc_id"]),
                    "doc": sample["doc_id"],
                    "target_tokens": tokens[i],
                    "metric": metric,
                    "value": number,
                    "filter": value.filter,
                    "source": "lm_eval",
                    "source_metric": value.key,
                }
            )
    return pd.DataFrame(rows, columns=[*COLUMNS, "doc"]).assign(**common(run, task, file, scale))


def target_tokens(task: Task, samples: list[Sample], tokenize) -> list[int]:
    """Each sample's target length in the model's tokens; 0 without a tokenizer (a multiple-choice task)."""
    if tokenize is None:
        return [0] * len(samples)
    return [len(ids) for ids in tokenize([target_text(task, s) for _, s in samples])]


def rescored_rows(
    run: Run, task: Task, file: Path, samples: list[Sample], scale: ModelScale, tokenize
) -> list[pd.DataFrame]:
    """The responses of each filter scored under the project's metrics (`scoring.score_generations`)."""
    from emergence.scoring import score_generations

    if task.output_type == "generate_until":
        build, metrics = generated, list(GENERATED)
    elif task.output_type == "multiple_choice":
        build, metrics = chosen, list(CHOSEN)
    else:
        return []
    model: dict[str, Any] = dict(
        model=scale.model, family=scale.family, n_params=scale.n_params, training_flops=scale.training_flops
    )
    frames = []
    for name in sorted({s["filter"] for _, s in samples}):
        group = [(n, s) for n, s in samples if s["filter"] == name]
        generations = build(file, task, group, tokenize)
        if generations is None:
            continue
        items = pd.DataFrame({"item_id": generations["item_id"].to_pylist(), "digits": 0})
        scores = score_generations(generations, items, model, tokenize, metrics)
        frames.append(
            pd.DataFrame(scores).assign(
                doc=scores["item_id"].astype(int).to_numpy(),
                filter=name,
                source="rescored",
                source_metric=scores["metric"],
            )
        )
    return [frame.assign(**common(run, task, file, scale))[[*COLUMNS, "doc"]] for frame in frames]


GENERATION_TYPES = {
    "request_id": pa.string(),
    "item_id": pa.string(),
    "task": pa.string(),
    "method": pa.string(),
    "answer": pa.string(),
    "answers": pa.list_(pa.string()),
    "answer_regex": pa.string(),
    "texts": pa.list_(pa.string()),
    "target_token_ids": pa.list_(pa.int32()),
    "choice_logprobs": pa.list_(pa.float64()),
    "choice_scores": pa.list_(pa.float64()),
}


def generations_table(task: Task, group: list[Sample], columns: dict) -> pa.Table:
    """The generations-stage columns scoring reads, for one filter's samples."""
    docs = [s["doc_id"] for _, s in group]
    base = {
        "request_id": [f"{task.name}/{d}" for d in docs],
        "item_id": [str(d) for d in docs],
        "task": [task.name] * len(docs),
        "method": [method_of(task.num_fewshot)] * len(docs),
        "answer_regex": [""] * len(docs),  # lm-eval's filter has extracted the answer already
    }
    data = {**base, **columns}
    return pa.table({name: pa.array(data[name], GENERATION_TYPES[name]) for name in GENERATION_TYPES if name in data})


def generated(file: Path, task: Task, group: list[Sample], tokenize) -> pa.Table:
    """A generate_until task's filtered responses (every repeat) against its target."""
    texts, targets = [], []
    for number, sample in group:
        response = sample.get("filtered_resps")
        response = response[0] if isinstance(response, list) and len(response) == 1 else response
        response = response if isinstance(response, list) else [response]
        if not all(isinstance(text, str) for text in response):
            raise InputError(f"{file}: line {number}: filtered_resps is not text ({str(response)[:80]!r})")
        texts.append(response)
        targets.append(str(sample.get("target", "")))
    columns = {
        "answer": targets,
        "answers": [[t] for t in targets],
        "texts": texts,
        "target_token_ids": tokenize(targets),
    }
    return generations_table(task, group, columns)


def chosen(file: Path, task: Task, group: list[Sample], tokenize) -> pa.Table | None:
    """A multiple_choice task's choice log-likelihoods, the gold choice (an index as target) scoring 1."""
    logprobs, scores = [], []
    for number, sample in group:
        try:
            lls = [float(pair[0]) for pair in sample["filtered_resps"]]
        except (KeyError, TypeError, ValueError, IndexError):
            raise InputError(
                f"{file}: line {number}: filtered_resps are not (log-likelihood, is_greedy) pairs"
            ) from None
        target = str(sample.get("target", ""))
        if not target.isdigit() or int(target) >= len(lls):
            log.warning(f"{file}: line {number}: target {target!r} is no choice index; {task.name} not rescored")
            return None
        logprobs.append(lls)
        scores.append([float(i == int(target)) for i in range(len(lls))])
    targets = [str(sample.get("target", "")) for _, sample in group]
    columns = {
        "answer": targets,
        "texts": [[] for _ in group],
        "target_token_ids": [[] for _ in group],
        "choice_logprobs": logprobs,
        "choice_scores": scores,
    }
    return generations_table(task, group, columns)
