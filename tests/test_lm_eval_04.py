"""lm-evaluation-harness 0.4 output folders: a real `lm_eval --log_samples` run imported, then bad input.

The real run uses the pinned lm-eval (pyproject's `bench` extra) in its own environment under
benchmarks/out/ (benchmarks/lm_eval_venv.py, shared with benchmarks/against_lm_eval.py; built once,
reused after), its transformers backend on the CPU, a tiny Llama built here and two local tasks written
here: arithmetic answered by generation (two filters) and a three-way multiple choice. It is skipped only
where pip cannot fetch lm-eval (no network), saying why. The bad-input tests write files of the same shape.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from rapidfuzz.distance import Levenshtein

from conftest import snakemake
from emergence import cli, io
from emergence.errors import InputError
from emergence.importers import import_items, import_results
from emergence.importers.lm_eval_samples import as_scores
from emergence.models import build_byte_tokenizer, build_tiny_llama

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import lm_eval_venv  # noqa: E402  (benchmarks/lm_eval_venv.py)

SPEC = {"hidden_size": 64, "num_layers": 1, "num_heads": 2}
SUMS = [(1, 2), (3, 4), (12, 5), (7, 8), (20, 22), (9, 9)]
OWN = (0, 2, 4)  # items whose target is the model's own greedy answer: exact matches among the misses
FORMAT = ["--format", "lm_eval_0.4"]


def registry(folder: Path, model: str, n_params: int = 100_000) -> Path:
    """A model registry naming the test's model (results made elsewhere need N and D)."""
    path = folder / "models.yaml"
    entry = {"n_params": n_params, "n_params_non_embedding": n_params // 2}
    family = {"source": "built by the test", "training_tokens": 1_000_000, "models": {model: entry}}
    path.write_text(yaml.safe_dump({"families": {"tiny": family}}))
    return path


def greedy(checkpoint: Path, prompts: list[str], max_tokens: int) -> list[str]:
    """The model's greedy answers as lm-eval's hf backend makes them: no special tokens added, decoded
    without special tokens, cut at the first newline."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    answers = []
    for prompt in prompts:
        ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=max_tokens, do_sample=False)
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).split("\n")[0])
    return answers


def write_tasks(folder: Path, checkpoint: Path) -> None:
    """Two local lm-eval tasks (YAML + JSONL): generated sums under two filters, and a multiple choice."""
    folder.mkdir()
    prompts = [f"{a}+{b}=" for a, b in SUMS]
    own = greedy(checkpoint, prompts, 4)
    arith = [
        {"question": p, "answer": own[i] if i in OWN else str(a + b)}
        for i, (p, (a, b)) in enumerate(zip(prompts, SUMS))
    ]
    choice = [
        {"question": f"{a}+{b}=", "choices": [str(a + b), str(a + b + 1), str(a * b)], "label": 0} for a, b in SUMS[1:]
    ]
    for name, rows in (("arith", arith), ("choice", choice)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    common = {"dataset_path": "json", "test_split": "test", "doc_to_text": "{{question}}", "metadata": {"version": 1.0}}
    filters = [
        {"name": "strict-match", "filter": [{"function": "take_first"}]},
        {
            "name": "flexible-extract",
            "filter": [
                {"function": "regex", "regex_pattern": "(-?[0-9]+)", "group_select": -1},
                {"function": "take_first"},
            ],
        },
    ]
    tasks = {
        "emergence_arith": {
            "output_type": "generate_until",
            "doc_to_target": "{{answer}}",
            "generation_kwargs": {"until": ["\n"], "max_gen_toks": 4, "do_sample": False},
            "filter_list": filters,
            "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        },
        "emergence_choice": {
            "output_type": "multiple_choice",
            "doc_to_target": "{{label}}",
            "doc_to_choice": "{{choices}}",
            "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
        },
    }
    for (task, spec), data in zip(tasks.items(), ("arith", "choice")):
        body = {
            "task": task,
            **common,
            "dataset_kwargs": {"data_files": {"test": str(folder / f"{data}.jsonl")}},
            **spec,
        }
        (folder / f"{task}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """A real lm-eval 0.4 run with --log_samples on a tiny model: its output folder and the model."""
    started = time.perf_counter()
    command = lm_eval_venv.installed()
    if command is None:
        problem = lm_eval_venv.index_problem()
        if problem:
            print(f"skipped: {problem}")
            pytest.skip(f"lm-eval cannot be installed here: {problem}")
        command = lm_eval_venv.ensure_lm_eval(say=print)
    installed = time.perf_counter()
    root = tmp_path_factory.mktemp("lm_eval_04")
    checkpoint = root / "tiny-lm"
    build_tiny_llama(checkpoint, SPEC, 0)
    write_tasks(root / "tasks", checkpoint)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(root / "datasets")}
    args = [str(command), "--model", "hf", "--model_args", f"pretrained={checkpoint},dtype=float32"]
    args += ["--tasks", "emergence_arith,emergence_choice", "--include_path", str(root / "tasks")]
    args += ["--device", "cpu", "--batch_size", "1", "--seed", "0", "--log_samples", "--output_path", str(root / "out")]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ran = time.perf_counter() - installed
    print(f"lm-eval {lm_eval_venv.LM_EVAL[1]}: set-up {installed - started:.1f} s, model, tasks and run {ran:.1f} s")
    (results,) = (root / "out").rglob("results_*.json")
    return {"out": root / "out", "results": results, "checkpoint": checkpoint, "models": registry(root, "tiny-lm")}


def samples_of(results: Path, task: str) -> list[dict]:
    """A task's samples as lm-eval wrote them, read here without the importer."""
    (file,) = results.parent.glob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in file.read_text().splitlines()]


def test_real_run_imports_with_the_results_values(run):
    table = import_results("lm_eval_0.4", run["out"], run["models"])
    results = json.loads(run["results"].read_text())["results"]
    assert sorted(zip(table["task"], table["source_metric"], table["metric"])) == [
        ("emergence_arith", "exact_match,flexible-extract", "flexible_exact_match"),
        ("emergence_arith", "exact_match,strict-match", "exact_match"),
        ("emergence_choice", "acc,none", "multiple_choice_grade"),
        ("emergence_choice", "acc_norm,none", "acc_norm"),
    ]
    for row in table.itertuples():
        name, _, filter_name = row.source_metric.partition(",")
        assert row.value == results[row.task][row.source_metric]
        assert row.stderr == results[row.task][f"{name}_stderr,{filter_name}"]
    assert table.set_index("task")["n_items"].to_dict() == {"emergence_arith": 6, "emergence_choice": 5}
    assert set(table["model"]) == {"tiny-lm"} and set(table["revision"]) == {"main"} and table["final_checkpoint"].all()
    assert set(table["method"]) == {"zero_shot"} and set(table["n_params"]) == {100_000}


def test_per_item_values_are_lm_evals_and_average_to_its_results(run):
    items = import_items("lm_eval_0.4", run["out"], run["models"])
    results = json.loads(run["results"].read_text())["results"]
    theirs = items[items["source"] == "lm_eval"]
    for task, key in [
        ("emergence_arith", "exact_match,strict-match"),
        ("emergence_arith", "exact_match,flexible-extract"),
        ("emergence_choice", "acc,none"),
        ("emergence_choice", "acc_norm,none"),
    ]:
        name, _, filter_name = key.partition(",")
        expected = {str(s["doc_id"]): s[name] for s in samples_of(run["results"], task) if s["filter"] == filter_name}
        found = theirs[(theirs["task"] == task) & (theirs["source_metric"] == key)]
        assert dict(zip(found["item_id"], found["value"])) == expected
        assert abs(found["value"].mean() - results[task][key]) <= 1e-9
    strict = theirs[theirs["source_metric"] == "exact_match,strict-match"].set_index("item_id")["value"]
    assert strict.to_dict() == {str(i): float(i in OWN) for i in range(6)}  # the model's own answers match
    assert 0 < results["emergence_choice"]["acc,none"] < 1


def test_responses_are_rescored_under_the_projects_metrics(run):
    from transformers import AutoTokenizer

    items = import_items("lm_eval_0.4", run["out"], run["models"])
    ours = items[(items["source"] == "rescored") & (items["filter"] == "strict-match")]
    tokenizer = AutoTokenizer.from_pretrained(run["checkpoint"])
    tokens = lambda text: tokenizer.encode(text.strip(), add_special_tokens=False)  # noqa: E731
    expected: dict[str, dict[str, float]] = {"token_edit_distance": {}, "char_edit_distance": {}, "exact_match": {}}
    for sample in samples_of(run["results"], "emergence_arith"):
        if sample["filter"] == "strict-match":
            answer, target, doc = sample["filtered_resps"][0], sample["target"], str(sample["doc_id"])
            expected["token_edit_distance"][doc] = Levenshtein.distance(tokens(answer), tokens(target))
            expected["char_edit_distance"][doc] = Levenshtein.distance(answer.strip(), target.strip())
            expected["exact_match"][doc] = sample["exact_match"]  # the same comparison for these items
    for metric, values in expected.items():
        found = ours[ours["metric"] == metric]
        assert dict(zip(found["item_id"], found["value"])) == values, metric
    assert len(set(expected["token_edit_distance"].values())) > 2  # distances that tell items apart
    assert set(ours.loc[ours["metric"] == "token_edit_distance", "target_tokens"]) >= {1, 2}
    choice = items[(items["task"] == "emergence_choice") & (items["source"] == "rescored")]
    for sample in samples_of(run["results"], "emergence_choice"):
        lls = np.array([float(pair[0]) for pair in sample["filtered_resps"]])
        probability = math.exp(lls[0]) / np.exp(lls).sum()  # the gold choice is the first
        rows = choice[choice["item_id"] == str(sample["doc_id"])].set_index("metric")["value"]
        assert rows["multiple_choice_grade"] == sample["acc"]
        assert rows["correct_choice_prob"] == pytest.approx(probability, rel=1e-12)


def test_per_item_scores_give_the_curve_analysis_intervals_over_items(run):
    from emergence.analysis import Settings, analyse_task_method

    items = import_items("lm_eval_0.4", run["out"], run["models"])
    scores = as_scores(items)
    assert len(scores) == 6 * 6 + 5 * 3  # the strict-match filter's rescored arithmetic, and the choices
    fits, _ = analyse_task_method(scores[scores["task"] == "emergence_arith"], Settings(bootstrap=200))
    mean = fits[(fits["fit"] == "mean") & (fits["metric"] == "token_edit_distance") & (fits["digits"] == "all")]
    ours = items[(items["source"] == "rescored") & (items["filter"] == "strict-match")]
    distances = ours.loc[ours["metric"] == "token_edit_distance", "value"]
    assert mean["value"].tolist() == [pytest.approx(distances.mean(), rel=1e-12)]
    assert (mean["ci_low"] < mean["value"]).all() and (mean["value"] < mean["ci_high"]).all()
    assert mean["n_items"].tolist() == [6]


def test_cli_writes_the_table_and_the_per_item_scores(run, tmp_path, root_logging):
    out, per_item = tmp_path / "table.csv", tmp_path / "items.parquet"
    paths = ["--path", str(run["out"]), "--models", str(run["models"]), "--out", str(out)]
    cli.main(["import-results", *FORMAT, *paths, "--samples-out", str(per_item), "--tokenizer", str(run["checkpoint"])])
    assert len(pd.read_csv(out)) == 4
    items = io.read_table(per_item, "imported_scores")
    assert len(items) == 6 * 2 * (1 + 6) + 5 * (2 + 3)  # lm-eval's and the rescored values of each item
    first = tmp_path / "again.parquet"
    cli.main(["import-results", *FORMAT, *paths, "--samples-out", str(first), "--tokenizer", str(run["checkpoint"])])
    assert first.read_bytes() == per_item.read_bytes()


# --- the real run's folder as a `results:` source of a sweep, through real Snakemake ---------------


def sweep_config(run: dict, **entry) -> dict:
    """A results-only sweep over the real run's folder, naming its model registry and tokenizer."""
    source = {"name": "tiny", "format": "lm_eval_0.4", "path": str(run["out"]), "models": str(run["models"])}
    return {
        "seed": 0,
        "results": [{**source, "tokenizer": str(run["checkpoint"]), **entry}],
        "metrics": ["exact_match", "token_edit_distance", "char_edit_distance", "multiple_choice_grade"],
        "fitting": {"min_models": 3, "bootstrap": 200},
        "figures": {"x": "n_params", "metric": "exact_match", "style": {"dpi": 50}},
    }


def test_a_results_sweep_fits_sizes_from_the_rescored_items(run, tmp_path):
    done = snakemake(tmp_path, sweep_config(run))
    assert done.returncode == 0, done.stderr[-3000:]
    source = tmp_path / "results" / "imported" / "tiny"
    items = io.read_table(source / "items.parquet", "imported_scores")
    direct = import_items("lm_eval_0.4", run["out"], run["models"], str(run["checkpoint"]))
    keys = ["source", "task", "filter", "metric", "item_id"]
    for table in (items, direct):
        assert not table.duplicated(keys).any()
    for metric in ("token_edit_distance", "char_edit_distance", "exact_match"):
        ours = items[(items["source"] == "rescored") & (items["metric"] == metric)].set_index(keys)["value"]
        theirs = direct[(direct["source"] == "rescored") & (direct["metric"] == metric)].set_index(keys)["value"]
        assert len(ours) == 12 and ours.sort_index().to_dict() == theirs.sort_index().to_dict()  # 6 items, 2 filters

    fits = io.read_table(source / "fits" / "sizes.parquet", "fits")
    means = fits[(fits["fit"] == "mean") & (fits["task"] == "emergence_arith") & (fits["status"] == "ok")]
    strict = items[(items["source"] == "rescored") & (items["filter"] == "strict-match")]
    for metric in ("token_edit_distance", "char_edit_distance", "exact_match"):
        row = means[means["metric"] == metric]
        values = strict.loc[strict["metric"] == metric, "value"]
        assert row["model"].tolist() == ["tiny-lm"] and row["n_items"].tolist() == [6]
        assert row["value"].tolist() == [pytest.approx(values.mean(), rel=1e-12)], metric
        assert (row["ci_low"] < row["value"]).all() and (row["value"] < row["ci_high"]).all(), metric  # items differ
    results = json.loads(run["results"].read_text())["results"]
    theirs = means[means["metric"] == "lm_eval:exact_match"]  # lm-eval's own values, resampled over items too
    assert theirs["value"].tolist() == [pytest.approx(results["emergence_arith"]["exact_match,strict-match"])]
    assert theirs["ci_low"].iloc[0] < theirs["ci_high"].iloc[0]
    choice = fits[(fits["fit"] == "mean") & (fits["task"] == "emergence_choice")]
    assert set(choice["metric"]) == {"multiple_choice_grade", "lm_eval:multiple_choice_grade"}

    verdicts = io.read_table(source / "verdicts.parquet", "verdicts")
    assert set(verdicts["verdict"]) == {"insufficient"} and "lm_eval:exact_match" in set(verdicts["metric"])
    report = (tmp_path / "results" / "report.html").read_text()
    for metric in ("token_edit_distance", "char_edit_distance", "lm_eval:exact_match"):
        assert metric in report, metric

    # the same sweep with a tokenizer that cannot be loaded: only the per-item import runs again, and fails
    broken = snakemake(
        tmp_path, sweep_config(run, tokenizer=str(tmp_path / "nowhere")), "results/imported/tiny/items.parquet"
    )
    assert broken.returncode != 0 and "import_results" not in broken.stdout + broken.stderr
    line = (tmp_path / "logs" / "imported" / "tiny" / "items.log").read_text().strip().splitlines()[-1]
    assert line.startswith("error: ") and f"{tmp_path / 'nowhere'!s}' cannot be loaded" in line
    assert line.endswith("or tokenizer: in the sweep's results entry")
    assert sorted(p.name for p in source.iterdir()) == ["fits", "models.json", "results.parquet", "verdicts.parquet"]


def test_the_per_item_import_keeps_what_the_entry_selects(run, tmp_path, logged, root_logging):
    entry = sweep_config(run, tasks=["emergence_arith"])["results"][0]
    table, items = tmp_path / "results.parquet", tmp_path / "items.parquet"
    models = ["--models", str(tmp_path / "models.json")]
    cli.main(["import-source", "--entry", json.dumps(entry), "--out", str(table), *models])
    cli.main(["import-items", "--entry", json.dumps(entry), "--table", str(table), "--out", str(items)])
    kept = io.read_table(items, "imported_scores")
    assert set(kept["task"]) == {"emergence_arith"} and len(kept) == 6 * 2 * (1 + 6)  # both filters, both sources
    assert "tiny: 25 per-item rows outside the entry's selection left out" in logged  # the choice task's 5 x (2 + 3)


# --- bad input, in files shaped as lm-eval 0.4.13 writes them ------------------------------------

DATE = "2026-12-01T02-46-44.799927"


def fake_run(folder: Path, metrics: dict | None = None, lines: list[str] | None = None, effective: int = 2) -> Path:
    """A results file and one task's samples file of lm-eval 0.4's shape (a generate_until task)."""
    folder.mkdir(exist_ok=True)
    build_byte_tokenizer(folder / "tiny-lm")
    results = {
        "results": {
            "arith": {"alias": "arith", "exact_match,none": 0.5, "exact_match_stderr,none": 0.5, **(metrics or {})}
        },
        "group_subtasks": {"arith": []},
        "configs": {"arith": {"task": "arith", "output_type": "generate_until", "num_fewshot": 0}},
        "n-shot": {"arith": 0},
        "n-samples": {"arith": {"original": 2, "effective": effective}},
        "config": {"model": "hf", "model_args": {"pretrained": str(folder / "tiny-lm")}, "model_revision": "main"},
        "model_name": str(folder / "tiny-lm"),
    }
    path = folder / f"results_{DATE}.json"
    path.write_text(json.dumps(results))
    if lines is None:
        lines = [sample(0, "3", "3", 1.0), sample(1, "7", "8", 0.0)]
    (folder / f"samples_arith_{DATE}.jsonl").write_text("".join(line + "\n" for line in lines))
    return path


def sample(doc: int, response: str, target: str, value: float) -> str:
    arguments = {"gen_args_0": {"arg_0": "Q", "arg_1": {"until": ["\n"]}}}
    line = {"doc_id": doc, "doc": {"q": "Q"}, "target": target, "arguments": arguments, "resps": [[response]]}
    line |= {"filtered_resps": [response], "filter": "none", "metrics": ["exact_match"], "doc_hash": "0"}
    return json.dumps({**line, "exact_match": value})


def test_a_results_file_without_results_is_one_line_naming_it(tmp_path):
    path = fake_run(tmp_path)
    data = json.loads(path.read_text())
    del data["results"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"results_.*\.json: no 'results' key \(not an lm-evaluation-harness 0\.4"):
        import_results("lm_eval_0.4", tmp_path, registry(tmp_path, "tiny-lm"))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"alias": "arith"}, r"results_.*\.json: no results to import$"),
        ({"alias": "arith", "bleu,none": 12.5}, r"results_.*\.json: no results to import \(skipped: bleu,none\)$"),
        ({"exact_match,none": math.nan}, r"results\.arith\.exact_match,none is nan, not a finite number$"),
        (
            {"exact_match,none": 0.5, "exact_match_stderr,none": -0.5},
            r"results\.arith\.exact_match_stderr,none = -0\.5: a standard error cannot be negative$",
        ),
        (
            {"exact_match,none": 0.5, "exact_match_stderr,none": math.inf},
            r"exact_match_stderr,none is inf, not a finite",
        ),
    ],
)
def test_no_results_or_impossible_values_are_one_line_naming_file_task_and_key(tmp_path, entry, message):
    path = fake_run(tmp_path)
    data = json.loads(path.read_text())
    data["results"]["arith"] = entry
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message):
        import_results("lm_eval_0.4", tmp_path, registry(tmp_path, "tiny-lm"))


def test_unknown_metric_keys_and_groups_are_reported_and_skipped(tmp_path, logged):
    path = fake_run(tmp_path, {"bleu,none": 12.5, "bleu_stderr,none": "N/A"})
    data = json.loads(path.read_text())
    data["results"]["arithmetic"] = {"alias": "arithmetic", "exact_match,none": 0.5}  # a group's aggregate
    data["group_subtasks"]["arithmetic"] = ["arith"]
    path.write_text(json.dumps(data))
    table = import_results("lm_eval_0.4", tmp_path, registry(tmp_path, "tiny-lm"))
    assert table[["source_metric", "metric", "value"]].values.tolist() == [["exact_match,none", "exact_match", 0.5]]
    assert "lm_eval_0.4: metric 'bleu,none' has no project name; skipped in 1 files" in logged
    assert f"{path}: group arithmetic (1 tasks): its aggregate skipped, its tasks imported" in logged


def test_samples_that_do_not_match_the_results_are_refused(tmp_path):
    models = registry(tmp_path, "tiny-lm")
    fake_run(tmp_path / "a", lines=[sample(0, "3", "3", 1.0), sample(0, "7", "8", 0.0)])
    with pytest.raises(
        InputError, match=r"samples_arith_.*\.jsonl: line 2: doc_id 0 appears twice under filter 'none'"
    ):
        import_items("lm_eval_0.4", tmp_path / "a", models)
    fake_run(tmp_path / "b", effective=3)
    with pytest.raises(InputError, match=r"2 items under filter 'none', but .*results_.*\.json scored 3 \(n-samples"):
        import_items("lm_eval_0.4", tmp_path / "b", models)
    fake_run(tmp_path / "c", lines=[sample(0, "3", "3", 1.0), sample(1, "8", "8", 1.0)])
    with pytest.raises(
        InputError, match=r"mean of its items' exact_match under 'none' is 1\.0, but .* gives exact_match,none = 0\.5"
    ):
        import_items("lm_eval_0.4", tmp_path / "c", models)
    fake_run(tmp_path / "d", lines=[sample(0, "3", "3", math.nan), sample(1, "7", "8", 0.0)])
    with pytest.raises(
        InputError, match=r"samples_arith_.*\.jsonl: line 1: 'exact_match' is nan, not a finite number$"
    ):
        import_items("lm_eval_0.4", tmp_path / "d", models)


def test_a_truncated_samples_line_names_file_and_line(tmp_path):
    fake_run(tmp_path, lines=[sample(0, "3", "3", 1.0), sample(1, "7", "8", 0.0)[:40]])
    with pytest.raises(InputError) as err:
        import_items("lm_eval_0.4", tmp_path, registry(tmp_path, "tiny-lm"))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{tmp_path}/samples_arith_{DATE}.jsonl: line 2: not valid JSON")


def test_no_tokenizer_ends_the_cli_with_one_line(tmp_path, capsys, root_logging):
    fake_run(tmp_path)
    out = tmp_path / "t.csv"
    args = [
        "import-results",
        *FORMAT,
        "--path",
        str(tmp_path),
        "--out",
        str(out),
        "--samples-out",
        str(tmp_path / "i.parquet"),
    ]
    with pytest.raises(SystemExit):
        cli.main([*args, "--models", str(registry(tmp_path, "tiny-lm")), "--tokenizer", str(tmp_path / "nowhere")])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        line.startswith("error: ")
        and "no tokenizer for" in line
        and line.endswith("give one with --tokenizer PATH_OR_NAME, or tokenizer: in the sweep's results entry")
    )
    assert not out.exists() and not (tmp_path / "i.parquet").exists()


def test_perplexity_is_mean_target_logprob_per_item_and_overall(tmp_path):
    lls = [-2.5, -0.75]
    ppl = math.exp(-sum(lls) / 2)
    lines = [json.loads(sample(d, "", "x", 0.0)) for d in (0, 1)]
    for line, ll in zip(lines, lls):
        line.update(
            {"arguments": {"gen_args_0": {"arg_0": "Q", "arg_1": " word"}}, "perplexity": ll, "acc": float(ll > -1)}
        )
    path = fake_run(tmp_path, lines=[json.dumps(line) for line in lines])
    data = json.loads(path.read_text())
    data["results"]["arith"] = {
        "alias": "arith",
        "perplexity,none": ppl,
        "perplexity_stderr,none": 0.1,
        "acc,none": 0.5,
    }
    data["configs"]["arith"]["output_type"] = "loglikelihood"
    path.write_text(json.dumps(data))
    models = registry(tmp_path, "tiny-lm")
    table = import_results("lm_eval_0.4", tmp_path, models).set_index("metric")
    assert table.loc["target_logprob", "value"] == -math.log(ppl) and table.loc["exact_match", "value"] == 0.5
    items = import_items("lm_eval_0.4", tmp_path, models)
    logprobs = items[items["metric"] == "target_logprob"]
    assert logprobs["value"].tolist() == lls and set(logprobs["target_tokens"]) == {5}  # " word": five bytes


def test_a_curve_without_samples_keeps_the_means_route(tmp_path, logged):
    from emergence.analysis import Settings
    from emergence.analysis.items import item_fits, item_verdicts

    path = fake_run(tmp_path, lines=[sample(0, "3", "3", 1.0), sample(1, "7", "18", 0.0)])
    data = json.loads(path.read_text())  # a second task, scored by the same run, whose samples were not kept
    data["results"]["arith2"] = {"alias": "arith2", "exact_match,none": 0.25, "exact_match_stderr,none": 0.25}
    data["configs"]["arith2"] = data["configs"]["arith"] | {"task": "arith2"}
    data["n-shot"]["arith2"], data["n-samples"]["arith2"] = 0, {"original": 4, "effective": 4}
    path.write_text(json.dumps(data))
    models = registry(tmp_path, "tiny-lm")
    long, items = import_results("lm_eval_0.4", tmp_path, models), import_items("lm_eval_0.4", tmp_path, models)
    metrics = ["exact_match", "token_edit_distance"]
    fits = item_fits(items, long, metrics, Settings(bootstrap=100))
    means = fits[fits["fit"] == "mean"].set_index(["task", "metric"])["value"]
    assert means.to_dict() == {
        ("arith", "exact_match"): 0.5,  # the project's normalisation of the responses
        ("arith", "lm_eval:exact_match"): 0.5,  # lm-eval's own per-item values
        ("arith", "token_edit_distance"): 1.0,  # "7" against "18": two byte tokens apart, "3" equal
        ("arith2", "exact_match"): 0.25,  # the results file's mean
    }
    assert (
        "tiny arith2 zero_shot: per-item scores for 0 of 1 models;"
        " its curve over sizes is fitted from the means (intervals from their stderr)"
    ) in logged
    verdicts = item_verdicts(items, long, metrics, Settings(bootstrap=100))
    assert sorted(zip(verdicts["task"], verdicts["metric"])) == [
        ("arith", "exact_match"),
        ("arith", "lm_eval:exact_match"),
        ("arith2", "exact_match"),
    ]


def test_the_per_item_job_reads_the_samples_and_the_entry_is_checked(tmp_path):
    from emergence.config import ConfigError, check_results
    from emergence.plan import item_files, keeps_items

    results = fake_run(tmp_path)
    models = registry(tmp_path, "tiny-lm")
    entry = {"name": "tiny", "format": "lm_eval_0.4", "path": str(tmp_path), "models": str(models)}
    assert keeps_items(entry) and not keeps_items({**entry, "format": "lm_eval_0.3"})
    assert item_files(entry) == [str(results), str(models), f"{tmp_path}/samples_arith_{DATE}.jsonl"]
    with pytest.raises(ConfigError, match=r"^results\.tiny\.models: .*/nowhere\.yaml is not a file \(a model registry"):
        check_results([{**entry, "models": str(tmp_path / "nowhere.yaml")}])
