"""Forecasts of a sweep's own models (rules/forecast.smk): scores files -> the long table -> forecasts.

The rule is run on a copy of the session's finished sweep (conftest `finished_sweep`: three random
tiny Llamas of one family on addition, no model trained or run here); the conversion and the stage's
handling of families and task losses are checked on synthetic scores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the forecast rule runs

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import expit

from conftest import REPO, snakemake
from emergence import cli, io
from emergence.config import ConfigError, check_config, check_sweep_forecast, schema_problem
from emergence.forecast.ladder import Settings, build_ladders
from emergence.forecast.stage import run
from emergence.forecast.sweep import largest_models, sweep_results
from emergence.plan import sweep_forecast_arguments

METHODS = {"zero_shot": {"kind": "zero_shot"}, "few_shot_4": {"kind": "few_shot", "k": 4}}


def test_forecast_rule_reads_the_sweeps_scores_and_the_report_shows_it(
    finished_sweep, tmp_path, monkeypatch, root_logging
):
    """Per model, the rule's long table holds the means, standard errors and item counts of the scores
    files (target_nll: the fits table's per-token loss); the largest model (tiny-c) is the target, its
    naive forecast the next size's per_token_prob and its actual value its own; figure and report follow;
    the same commands give the same bytes again."""
    workdir, config = finished_sweep
    run_dir = tmp_path / "sweep"
    shutil.copytree(workdir, run_dir, symlinks=True)
    config = {**config, "forecast": {"metrics": ["per_token_prob"], "replicates": 50}}
    done = snakemake(run_dir, config)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", done.stdout + done.stderr, flags=re.MULTILINE))
    assert {job: jobs.get(job) for job in ("sweep_results", "forecast", "forecast_figures", "report")} == dict.fromkeys(
        ("sweep_results", "forecast", "forecast_figures", "report"), "1"
    ), jobs  # nothing upstream of the forecast runs again
    results = run_dir / "results"
    table = io.read_table(results / "forecasts" / "results.parquet", "imported").set_index(["model", "metric"])
    fits = io.read_table(results / "fits" / "addition" / "zero_shot.parquet", "fits")
    nll = fits.query("fit == 'mean' and digits == 'all' and metric == 'target_nll'").set_index("model")["value"]
    for model in ("tiny-a", "tiny-b", "tiny-c"):
        scores = io.read_table(results / "scores" / model / "addition" / "zero_shot.parquet", "scores")
        manifest = yaml.safe_load((results / "models" / model / "manifest.json").read_text())
        for metric, values in scores.groupby("metric")["value"]:
            row = table.loc[(model, metric)]
            assert row["value"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-15), (model, metric)
            assert row["stderr"] == pytest.approx(values.sem(), rel=1e-12, abs=1e-15), (model, metric)
            assert row["n_items"] == 18
        assert table.loc[(model, "target_nll"), "value"] == pytest.approx(nll[model], rel=1e-12)
        assert table.loc[(model, "per_token_prob"), "n_params_non_embedding"] == manifest["n_params_non_embedding"]
        assert pd.isna(table.loc[(model, "per_token_prob"), "training_tokens"])  # a local checkpoint: D unknown
    forecasts = io.read_table(results / "forecasts" / "forecasts.parquet", "forecasts")
    assert len(forecasts) == 1  # 2 rungs left: no rollout; D unknown: only the naive forecast applies
    row = forecasts.iloc[0]
    assert (row["family"], row["task"], row["prompt_method"], row["metric"]) == (
        "tiny", "addition", "zero_shot", "per_token_prob"
    )  # fmt: skip
    assert (row["target"], row["holdout"], row["method"], bool(row["chosen"])) == ("tiny-c", 0, "naive", True)
    assert row["predicted"] == table.loc[("tiny-b", "per_token_prob"), "value"]
    assert row["actual"] == table.loc[("tiny-c", "per_token_prob"), "value"]
    assert row["lower"] <= row["predicted"] <= row["upper"] and row["replicates"] == 50
    log = (run_dir / "logs" / "forecasts" / "forecasts.log").read_text()
    assert "direct does not apply (2 runs" in log and "forecast tiny addition tiny-c: naive" in log
    assert [p.name for p in (results / "figures" / "forecasts").glob("*.png")] == ["tiny_addition_zero_shot.png"]
    report = (results / "report.html").read_text()
    section = report[report.index("<h2>Forecasts</h2>") : report.index("<h2>Figures</h2>")]
    assert "tiny-c" in section and section.count("<figure") == 1
    monkeypatch.chdir(run_dir)  # the rule's paths are relative to the sweep's folder
    scores = [f"results/scores/{m}/addition/zero_shot.parquet" for m in ("tiny-a", "tiny-b", "tiny-c")]
    manifests = [f"results/models/{m}/manifest.json" for m in ("tiny-a", "tiny-b", "tiny-c")]
    methods = ["--methods", '{"zero_shot": {"kind": "zero_shot"}}']
    cli.main(["sweep-results", "--scores", *scores, "--manifests", *manifests, *methods, "--out", "t.parquet"])
    cli.main(["forecast", "--table", "t.parquet", *sweep_forecast_arguments(config), "--out", "f.parquet"])
    assert (run_dir / "t.parquet").read_bytes() == (results / "forecasts" / "results.parquet").read_bytes()
    assert (run_dir / "f.parquet").read_bytes() == (results / "forecasts" / "forecasts.parquet").read_bytes()


def synthetic_sweep(seed: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """Scores rows (the scores schema, with `file`) and manifests of two families: `ladder`, 5 sizes x 2
    token budgets (exact match 0.08 to 0.83, sigmoid(-4 (L - 3.2)) of the per-token loss
    L = 0.3 + 30 N^-0.3 + 200 D^-0.3 (3.8 to 2.8)), and
    `solo`, one model. 40 items each, 1-4 target tokens; one exact-match value left NaN."""
    rng = np.random.default_rng(seed)
    frames, manifests = [], []
    runs = [("ladder", n, d) for n in (1e5, 2e5, 4e5, 8e5, 1.6e6) for d in (2e6, 4e6)] + [("solo", 3e5, None)]
    for family, n, d in runs:
        model = f"{family}-{n:g}-{d or 0:g}"
        manifests.append({"model": model, "family": family, "sha": "0" * 64, "n_params": int(1.25 * n),
                          "n_params_non_embedding": int(n), "training_tokens": d,
                          "training_flops": 6 * n * d if d else None})  # fmt: skip
        loss = 0.3 + 30 * n**-0.3 + 200 * (d or 4e6) ** -0.3
        tokens = rng.integers(1, 5, 40)
        for method in METHODS:
            right = (rng.random(40) < expit(-4 * (loss - 3.2))).astype(float)
            logprob = -loss * tokens * rng.lognormal(0, 0.1, 40)
            for metric, values in (("exact_match", right), ("target_logprob", logprob)):
                frames.append(pd.DataFrame({
                    "item_id": [f"i{i}" for i in range(40)], "model": model, "family": family, "task": "addition",
                    "method": method, "digits": 1, "n_params": int(1.25 * n), "target_tokens": tokens,
                    "metric": metric, "value": values, "file": f"results/scores/{model}/addition/{method}.parquet",
                }))  # fmt: skip
    scores = pd.concat(frames, ignore_index=True)
    scores.loc[0, "value"] = np.nan
    return scores, manifests


def test_long_table_holds_per_model_means_and_the_task_loss_feeds_two_step(logged):
    scores, manifests = synthetic_sweep()
    table = sweep_results(scores, manifests, METHODS)
    assert len(table) == 11 * 2 * 3 and table["step"].isna().all() and table["final_checkpoint"].all()
    assert table["family"].is_monotonic_increasing and not table.duplicated(["model", "method", "metric"]).any()
    zero = table.set_index(["model", "method", "metric"])
    assert zero.loc[("ladder-100000-2e+06", "few_shot_4", "exact_match"), "n_items"] == 40
    rows = scores[(scores["model"] == "ladder-100000-2e+06") & (scores["method"] == "zero_shot")]
    right = rows.loc[rows["metric"] == "exact_match", "value"]
    assert zero.loc[("ladder-100000-2e+06", "zero_shot", "exact_match"), "n_items"] == 39  # the NaN left out
    assert zero.loc[("ladder-100000-2e+06", "zero_shot", "exact_match"), "value"] == right.mean()
    logprob = rows[rows["metric"] == "target_logprob"]
    per_token = (-logprob["value"] / logprob["target_tokens"]).mean()
    assert zero.loc[("ladder-100000-2e+06", "zero_shot", "target_nll"), "value"] == pytest.approx(per_token, rel=1e-12)
    assert set(table.loc[table["method"] == "few_shot_4", "num_fewshot"]) == {4}
    assert table.loc[table["model"] == "solo-300000-0", "training_tokens"].isna().all()
    assert largest_models(table) == ["ladder-1.6e+06-2e+06", "ladder-1.6e+06-4e+06", "solo-300000-0"]

    settings = Settings(task_loss="target_nll", replicates=20, methods=("two_step",))
    ladders = build_ladders(table, largest_models(table), settings)
    assert "forecast: family solo has 0 model sizes besides its targets, fewer than min_rungs (2); skipped" in logged
    ladder = ladders[0]
    nll = table[table["metric"] == "target_nll"].set_index(["model", "method"])["value"]
    assert ladder.checkpoints["task_loss"].tolist() == [nll[run, ladder.method] for run in ladder.checkpoints["run"]]
    forecasts = run(table, [], settings, prompt_method="zero_shot", hold_out="largest")
    assert sum("family solo" in message for message in logged) == 2  # once per build: one line each
    assert set(forecasts["family"]) == {"ladder"} and set(forecasts["target"][forecasts["holdout"] == 0]) == {
        "ladder-1.6e+06-2e+06", "ladder-1.6e+06-4e+06"
    }  # fmt: skip
    assert set(forecasts.loc[forecasts["holdout"] == 0, "method"]) == {"two_step", "naive"}
    errors = forecasts[forecasts["holdout"] == 0].groupby("method")["error"].apply(lambda e: e.abs().mean())
    assert errors["two_step"] < errors["naive"] / 3  # the chain through the per-token loss: 0.07 against 0.24
    assert (forecasts.loc[forecasts["holdout"] == 1, "target"].str.startswith("ladder-800000")).all()


def test_a_sweep_without_a_family_to_forecast_gets_an_empty_table(tmp_path, root_logging, capsys):
    scores, manifests = synthetic_sweep()
    solo = scores[scores["family"] == "solo"]
    io.write_table(sweep_results(solo, manifests, METHODS), tmp_path / "results.parquet", "imported")
    out = tmp_path / "forecasts.parquet"
    cli.main(["forecast", "--table", str(tmp_path / "results.parquet"), "--hold-out", "largest", "--out", str(out)])
    assert io.read_table(out, "forecasts").empty
    cli.main(["figures-forecast", "--forecasts", str(out), "--style", "{}", "--out", str(tmp_path / "figures")])
    assert list((tmp_path / "figures").iterdir()) == []
    assert "the table is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["forecast", "--table", str(tmp_path / "results.parquet"), "--hold-out", "all", "--out", str(out)])
    assert "error: forecast --hold-out: 'all' is not a choice (largest)" in capsys.readouterr().err


def test_forecast_config_key_is_checked_and_planned():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    arguments = sweep_forecast_arguments(config)
    assert arguments[-2:] == ["--hold-out", "largest"] and '"task_loss": "target_nll"' in arguments[-3]
    named = {**config, "forecast": {"targets": ["tiny-1.1m"], "task_loss": "bits_per_byte"}}
    planned = sweep_forecast_arguments(named)
    assert "--hold-out" not in planned and planned[-1] == '{"task_loss": "bits_per_byte"}'
    assert planned[planned.index("--targets") + 1] == "tiny-1.1m"
    for forecast, message in (
        ({"targets": ["tiny-2m"]}, "forecast.targets: tiny-2m not in the sweep"),
        ({"targets": []}, "forecast: targets [] holds out no model; give predict"),
        ({"prompt_method": "few_shot_8"}, "forecast.prompt_method: few_shot_8 is not a method"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_config({**config, "forecast": forecast})
    with pytest.raises(ConfigError, match=re.escape("forecast: the sweep runs no models")):
        check_sweep_forecast({**config, "models": {}})
    bad = schema_problem({**config, "forecast": {"methods": ["chain"]}}, REPO / "config/schema.yaml")
    assert bad is not None and bad.startswith("forecast.methods.0: 'chain' is not one of")


def test_the_schema_names_exactly_the_registered_forecast_methods_and_rules():
    from emergence.forecast import FORECASTS
    from emergence.forecast.verdict import RULES

    keys = yaml.safe_load((REPO / "config/schema.yaml").read_text())["properties"]["forecast"]["properties"]
    assert set(keys["methods"]["items"]["enum"]) == set(FORECASTS)
    assert set(keys["rule"]["enum"]) == set(RULES)
    assert set(keys) - {"targets", "predict", "tasks", "prompt_method"} == set(Settings.__dataclass_fields__) - {"seed"}
