"""A sweep over results made elsewhere (`results:`): the real Snakemake DAG on a copy of a few Pythia files.

Expected values are read from the JSON files with `json` here, not through the importer. The tests
that read ../shared/data/pythia_evals are skipped when `shared/` is not beside the repository.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the forecast rule runs: the same sums in the same order

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake
from emergence import cli, io
from emergence.analysis import Settings
from emergence.analysis.checkpoints import analyse_training, checkpoint_manifests, in_processes, select
from emergence.config import ConfigError, check_config, schema_problem
from emergence.errors import InputError
from emergence.forecast.ladder import Settings as ForecastSettings
from emergence.forecast.stage import run as forecast_run
from emergence.importers import import_results
from emergence.plan import forecast_arguments, forecast_sources, imported_entry, plan
from emergence.report_forecasts import chosen_rows, errors_table, forecast_table, forecasts_section

PYTHIA = REPO.parent / "shared" / "data" / "pythia_evals" / "pythia-v1"
needs_data = pytest.mark.skipif(not PYTHIA.is_dir(), reason=f"the Pythia evaluations are not at {PYTHIA}")
SIZES = ("70m", "160m", "410m")
STEPS = (0, 13000, 33000, 143000)  # step 0 (D = 0) is left out of curves over training
TASKS = ["arc_easy", "lambada_openai", "piqa"]


LARGER = ("1b", "1.4b", "2.8b")  # final checkpoints only: 5 rungs and a target for the forecast
FORECAST = {"targets": ["pythia-2.8b-deduped"], "prompt_method": "zero_shot", "rule": "verdicts", "window": 1}
FORECAST |= {"replicates": 50}


def copy_subset(folder: Path, larger: tuple[str, ...] = ()) -> Path:
    """Three deduplicated Pythia sizes at four checkpoints (and the `larger` sizes' final checkpoints),
    zero-shot, copied unchanged."""
    files = [(size, step) for size in SIZES for step in STEPS] + [(size, 143000) for size in larger]
    for size, step in files:
        source = PYTHIA / f"pythia-{size}-deduped" / "zero-shot" / f"{size}-deduped_step{step}.json"
        (folder / source.parent.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / source.parent.parent.name / source.name)
    return folder


def results_config(path: Path, **entry) -> dict:
    """A results-only sweep: no models, tasks, methods, sampling or engine."""
    return {
        "seed": 0,
        "results": [{"name": "small", "format": "lm_eval_0.3", "path": str(path), "tasks": TASKS, **entry}],
        "metrics": ["multiple_choice_grade", "exact_match", "target_logprob"],
        "fitting": {"min_models": 3, "bootstrap": 0},
        "figures": {"x": "n_params", "metric": "multiple_choice_grade", "style": {"dpi": 50}},
    }


def acc(size: str, step: int, task: str) -> float:
    data = json.loads((PYTHIA / f"pythia-{size}-deduped" / "zero-shot" / f"{size}-deduped_step{step}.json").read_text())
    return data["results"][task]["acc"]


@needs_data
def test_results_only_sweep_runs_the_whole_dag_and_a_rerun_does_nothing(tmp_path, root_logging):
    data = copy_subset(tmp_path / "evals", LARGER)
    config = results_config(data, forecast=FORECAST)
    run = snakemake(tmp_path / "run", config)
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / "run" / "results"
    assert not (results / "models").exists() and not (results / "generations").exists()  # nothing run
    report = (results / "report.html").read_text()
    for task in TASKS:
        assert task in report
    assert "Emergence measures over training" in report and "Results made elsewhere: every task over training" in report
    figures = results / "figures" / "imported" / "small"
    for stem in ("sizes/sizes", "training/pythia-deduped_zero_shot"):
        for suffix in (".png", ".pdf"):
            assert (figures / f"{stem}{suffix}").stat().st_size > 1000
    sizes = io.read_table(results / "imported" / "small" / "fits" / "sizes.parquet", "fits")
    means = sizes[(sizes["fit"] == "mean") & (sizes["task"] == "piqa") & (sizes["metric"] == "multiple_choice_grade")]
    assert dict(zip(means["model"], means["value"])) == {
        f"pythia-{size}-deduped": acc(size, 143000, "piqa") for size in SIZES + LARGER
    }  # the final checkpoints, exactly
    training = io.read_table(results / "imported" / "small" / "fits" / "training.parquet", "fits")
    curve = training[(training["family"] == "pythia-160m-deduped") & (training["task"] == "lambada_openai")]
    means = curve[(curve["fit"] == "mean") & (curve["metric"] == "exact_match")]
    expected = {"pythia-160m-deduped@step13000": acc("160m", 13000, "lambada_openai")}
    expected |= {"pythia-160m-deduped@step33000": acc("160m", 33000, "lambada_openai")}
    expected |= {"pythia-160m-deduped": acc("160m", 143000, "lambada_openai")}
    assert dict(zip(means["model"], means["value"])) == expected  # step 0 left out
    # breakthroughness along the 3 checkpoints, computed here from the JSON values (Srivastava et al. 2022)
    values = np.array(list(expected.values()))
    measured = curve[(curve["fit"] == "breakthroughness") & (curve["metric"] == "exact_match")]["value"]
    assert measured.tolist() == pytest.approx([breakthroughness(values)], rel=1e-12)

    check_forecasts(results, config, report)

    redrawn = tmp_path / "redrawn"  # the same inputs give the same bytes
    imported = results / "imported" / "small"
    cli.main(["figures-imported", "--fits", str(imported / "fits" / "sizes.parquet"), "--manifests",
              str(imported / "models.json"), "--curves", "sizes", "--metrics", json.dumps(config["metrics"]),
              "--source", "small", "--style", json.dumps({"dpi": 50}), "--out", str(redrawn)])  # fmt: skip
    for name in ("sizes.png", "sizes.pdf"):
        assert (redrawn / name).read_bytes() == (figures / "sizes" / name).read_bytes()

    again = snakemake(tmp_path / "run", config)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    changed = data / "pythia-70m-deduped" / "70m-deduped_step13000.json"
    changed.chmod(0o644)
    changed.write_text(json.dumps(json.loads(changed.read_text()), indent=1))  # the same results, rewritten
    dry = snakemake(tmp_path / "run", config, "--dry-run")
    assert "import_results" in dry.stdout and "fit_imported" in dry.stdout, dry.stdout[-2000:]


def check_forecasts(results: Path, config: dict, report: str) -> None:
    """The forecast rule's table is what the forecast module makes of the imported table; its naive
    forecast and actual value are the JSON files' scores; the report shows it after the verdicts."""
    forecasts = io.read_table(results / "imported" / "small" / "forecasts.parquet", "forecasts")
    imported = io.read_table(results / "imported" / "small" / "results.parquet", "imported")
    settings = {key: value for key, value in FORECAST.items() if key not in ("targets", "prompt_method")}
    direct = forecast_run(imported, FORECAST["targets"], ForecastSettings.from_config(settings, 0), None, "zero_shot")
    assert set(forecasts["task"]) == set(TASKS)
    pd.testing.assert_frame_equal(
        forecasts.astype({"covered": "boolean"}),
        direct[forecasts.columns].astype({"covered": "boolean"}),  # io.write_table: the schema's order
        check_dtype=False,
        check_exact=True,
    )
    targets = forecasts[(forecasts["holdout"] == 0) & (forecasts["target"] == "pythia-2.8b-deduped")]
    for task in ("arc_easy", "piqa"):  # multiple-choice grade: lm-eval 0.3's acc
        rows = targets[targets["task"] == task].set_index("method")
        assert rows.loc["naive", "predicted"] == acc("1.4b", 143000, task)  # the largest rung's score
        assert rows.loc["naive", "actual"] == acc("2.8b", 143000, task)
        assert set(rows.index) == {"direct", "naive"}  # no task loss in lm-eval 0.3: the chain does not apply
    assert (forecasts["holdout"] == 1).any()  # a rollout with 4 rungs left
    figures = results / "figures" / "imported" / "small" / "forecasts"
    assert sorted(p.name for p in figures.glob("*.png")) == [f"pythia-deduped_{t}_zero_shot.png" for t in sorted(TASKS)]
    assert report.index("<h2>Verdicts</h2>") < report.index("<h2>Forecasts</h2>") < report.index("<h2>Figures</h2>")
    section = report[report.index("<h2>Forecasts</h2>") : report.index("<h2>Figures</h2>")]
    assert section.count("<figure") == 3 and "pythia-2.8b-deduped" in section


def test_forecasts_section_sets_each_forecast_beside_the_naive_one(tmp_path):
    """Two curves, one target each: a forecastable task (direct 60, naive 55, actual 62) and one judged
    flat (naive 30, actual 33), intervals of +-2.5 points: mean |error| 2.5 points chosen, 5 naive; one
    interval holds its actual value; the flat one is marked."""
    rows = []
    for task, verdict, chosen, predicted, naive, actual in (
        ("a", "forecastable", "direct", 0.60, 0.55, 0.62),
        ("b", "flat", "naive", 0.30, 0.30, 0.33),
    ):
        for method, value in (("direct", predicted if chosen == "direct" else 0.5), ("naive", naive)):
            rows.append(
                {"family": "f", "task": task, "prompt_method": "zero_shot", "metric": "multiple_choice_grade",
                 "target": "big", "holdout": 0, "method": method, "chosen": method == chosen, "predicted": value,
                 "lower": value - 0.025, "upper": value + 0.025, "actual": actual, "error": value - actual,
                 "covered": abs(value - actual) <= 0.025, "backtest_error": 0.01, "verdict": verdict}
            )  # fmt: skip
    chosen = chosen_rows(pd.DataFrame(rows))
    summary = errors_table(chosen).iloc[0]
    assert summary["mean |error|, chosen (points)"] == pytest.approx(2.5)
    assert summary["mean |error|, naive (points)"] == pytest.approx(5.0)
    assert summary["unforecastable tasks"] == 1 and summary["intervals holding the actual value"] == "1 of 2"
    detail = forecast_table(chosen)
    assert detail["verdict"].tolist() == ["forecastable", "unforecastable (flat)"]
    assert detail["forecast [interval]"].tolist() == ["60.00 [57.50, 62.50]", "30.00 [27.50, 32.50]"]
    assert detail["naive"].tolist() == pytest.approx([55.0, 30.0])
    section = "\n".join(forecasts_section(pd.DataFrame(rows), []))
    assert section.startswith("<h2>Forecasts</h2>") and "unforecastable (flat)" in section
    assert forecasts_section(None, []) == [] and forecasts_section(pd.DataFrame(rows).iloc[:0], []) == []


@pytest.fixture
def root_logging():
    """`cli.main` points the root logger at the captured stderr; put the handlers back afterwards."""
    handlers = logging.root.handlers[:]
    yield
    logging.root.handlers[:] = handlers


def breakthroughness(values: np.ndarray) -> float:
    """BIG-bench's breakthroughness of values in order of scale (Srivastava et al. 2022, Appendix B):
    I = sign(argmax - argmin) (max - min), over RootMedianSquare of the steps."""
    change = np.sign(np.argmax(values) - np.argmin(values)) * (values.max() - values.min())
    return float(change / math.sqrt(np.median(np.diff(values) ** 2)))


@needs_data
def test_selection_keeps_what_the_entry_names_and_refuses_an_empty_one(tmp_path):
    long = import_results("lm_eval_0.3", copy_subset(tmp_path))
    kept = select(long, {"tasks": ["piqa"], "checkpoints": "final"})
    assert set(kept["task"]) == {"piqa"} and kept["final_checkpoint"].all()
    assert sorted(kept["model"].unique()) == sorted(f"pythia-{size}-deduped" for size in SIZES)
    with pytest.raises(InputError, match=r"^families: \['pythia'\] keeps no imported result"):
        select(long, {"families": ["pythia"]})
    manifests = checkpoint_manifests(kept, "small")
    assert [m["training_tokens"] for m in manifests] == [143000 * 2097152] * 3


@needs_data
def test_curves_over_training_do_not_depend_on_the_workers(tmp_path):
    long = import_results("lm_eval_0.3", copy_subset(tmp_path))
    long = long[
        long["metric"].isin(["multiple_choice_grade", "exact_match", "target_logprob"]) & long["task"].isin(TASKS)
    ]
    one, two = analyse_training(long, Settings(bootstrap=0)), analyse_training(long, Settings(bootstrap=0), 2)
    pd.testing.assert_frame_equal(one, two)
    assert set(one["x"]) <= {"training_flops", ""} and set(one["family"]) == {f"pythia-{s}-deduped" for s in SIZES}


def test_in_processes_keeps_the_order_of_the_calls():
    calls = [(n, 3) for n in range(9)]
    assert in_processes(pow, calls, 2) == in_processes(pow, calls, 1) == [n**3 for n in range(9)]


def test_results_entries_are_checked_with_one_line_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evals").mkdir()
    schema = REPO / "config" / "schema.yaml"
    config = results_config(Path("evals"))
    assert schema_problem(config, schema) is None
    check_config(config)  # a relative path resolves against the working folder
    plan(config)
    wrong = {**config, "results": [{**config["results"][0], "format": "lm_eval_0.5"}]}
    with pytest.raises(ConfigError, match=r"^results\.small\.format: unknown results format 'lm_eval_0\.5' \(known: "):
        check_config(wrong)
    missing = {**config, "results": [{**config["results"][0], "path": "nowhere"}]}
    with pytest.raises(ConfigError, match=r"^results\.small\.path: nowhere does not exist \(a relative path"):
        check_config(missing)
    twice = {**config, "results": config["results"] * 2}
    with pytest.raises(ConfigError, match="the name small is given twice"):
        check_config(twice)
    typo = {**config, "results": [{**config["results"][0], "task": ["piqa"]}]}
    assert schema_problem(typo, schema) == "results.0: Additional properties are not allowed ('task' was unexpected)"
    bad_filter = {**config, "results": [{**config["results"][0], "checkpoints": "last"}]}
    assert schema_problem(bad_filter, schema) == "results.0.checkpoints: 'last' is not one of ['all', 'final']"
    forecast = {
        "targets": ["pythia-410m-deduped"],
        "predict": [{"name": "1b", "n_params": 8e8, "training_tokens": 3e11}],
    }
    forecast |= {"tasks": ["piqa"], "prompt_method": "zero_shot", "rule": "verdicts", "window": 1}
    with_forecast = {**config, "results": [{**config["results"][0], "forecast": forecast}]}
    assert schema_problem(with_forecast, schema) is None
    check_config(with_forecast)
    assert forecast_sources(with_forecast) == ["small"] and forecast_sources(config) == []
    assert forecast_arguments(forecast, 7) == [
        "--seed", "7", "--targets", "pythia-410m-deduped", "--predict", "1b:800000000.0:300000000000.0",
        "--tasks", "piqa", "--prompt-method", "zero_shot", "--settings", '{"rule": "verdicts", "window": 1}',
    ]  # fmt: skip
    assert imported_entry(with_forecast["results"][0]) == config["results"][0]  # the import job never sees it
    for key, value, message in (
        ("methods", ["direct", "chain"], r"^results\.small\.forecast\.methods: unknown method chain \(known: "),
        ("rule", "monotone", r"^results\.small\.forecast\.rule: unknown rule 'monotone' \(known: "),
        ("targets", [], r"^results\.small\.forecast: give targets \(models held out\) or predict"),
    ):
        wrong = {**config, "results": [{**config["results"][0], "forecast": {"targets": ["m"], key: value}}]}
        with pytest.raises(ConfigError, match=message):
            check_config(wrong)
    typo = {**config, "results": [{**config["results"][0], "forecast": {"targets": ["m"], "level": 90}}]}
    assert schema_problem(typo, schema) == "results.0.forecast.level: 90 is greater than or equal to the maximum of 1"
    neither = {key: value for key, value in config.items() if key != "results"}
    assert "'results' is a required property" in schema_problem(neither, schema)


def test_the_pythia_sweep_config_is_valid_and_names_the_shared_folder():
    config = yaml.safe_load((REPO / "config" / "sweeps" / "pythia_evals.yaml").read_text())
    assert schema_problem(config, REPO / "config" / "schema.yaml") is None
    assert config["results"][0]["path"] == "../shared/data/pythia_evals"
    assert "models" not in config
    forecast = config["results"][0]["forecast"]  # declared before the run: 6.9B and 12B of both suites
    assert sorted(forecast["targets"]) == sorted(f"pythia-{s}{d}" for s in ("6.9b", "12b") for d in ("", "-deduped"))
    assert len(forecast["tasks"]) == 8 and not any(t.startswith("hendrycksTest") for t in forecast["tasks"])
