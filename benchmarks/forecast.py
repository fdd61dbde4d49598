"""Forecasts on real ladders: the OLMo ladder's 7B-4T and 13B-5T targets, and Pythia's 6.9B and 12B.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/forecast.py          # ../shared/data
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/forecast.py --replicates 500

The same code `emergence forecast` runs, in this process, with the default settings (200 bootstrap
replicates, 90 % intervals, rollouts holding out the one and two largest rungs). OLMo: the 190M-1.3B
rungs of the paper's main configuration (final.json) on its 8 main tasks, the chosen method beside the
repository's committed chained predictions (reference/chained_main.csv, 13B-5T only). Pythia: the
70M-2.8B final checkpoints (zero-shot, both suites), one checkpoint as a run's final value, the chosen
method against the naive forecast (the largest rung's score). Prints the tables and the wall seconds.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/forecast.py --sweep        # the default sweep's jobs
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/forecast.py --sweep DIR    # a finished sweep's results

`--sweep`: the three jobs of rules/forecast.smk (sweep-results, forecast, figures-forecast), each in a
fresh process with the command line its rule gives (config/config.yaml's `forecast:`), one after the
other as the DAG runs them; prints each job's wall and CPU seconds and their sum, what the forecast
stage adds to the sweep. Without DIR they read synthetic scores files and manifests of the default
sweep's shape (config/config.yaml: its models at their sizes and D, its task x method pairs, n_test
items per digit count or subtask; the scores as benchmarks/fitting.py writes them); with DIR, the scores files and
manifests under DIR/results/ of a finished sweep (its config: --config).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from emergence import io  # noqa: E402
from emergence.forecast.ladder import Settings  # noqa: E402
from emergence.forecast.stage import run  # noqa: E402
from emergence.importers import import_results  # noqa: E402

OLMO_TASKS = [
    "mmlu_avg_test",
    "hellaswag_val",
    "arc_challenge_test",
    "arc_easy_test",
    "piqa_val",
    "csqa_val",
    "socialiqa_val",
    "openbookqa_test",
]
PYTHIA_TASKS = ["arc_challenge", "arc_easy", "lambada_openai", "logiqa", "piqa", "sciq", "winogrande", "wsc"]
COLUMNS = ["family", "task", "target", "method", "verdict", "predicted", "lower", "upper", "actual", "error"]
COLUMNS += ["covered", "backtest_error"]
PYTHIA_TARGETS = ["pythia-6.9b", "pythia-12b", "pythia-6.9b-deduped", "pythia-12b-deduped"]


def points(rows: pd.DataFrame) -> pd.DataFrame:
    """The chosen forecasts of the targets, in points."""
    chosen = rows[rows["chosen"] & (rows["holdout"] == 0)].copy()
    for column in ("predicted", "lower", "upper", "actual", "error", "backtest_error"):
        chosen[column] = (chosen[column] * 100).round(2)
    return chosen[COLUMNS]


def olmo(path: Path, settings: Settings) -> None:
    forecasts = run(import_results("olmo_ladder", path), ["7B-4T", "13B-5T"], settings, OLMO_TASKS)
    table = points(forecasts)
    reference = pd.read_csv(path / "reference" / "chained_main.csv")
    reference["task"] = reference["Task"].str.removesuffix("_5shot")
    reference["repository"] = (reference["Pred"] * 100).round(2)
    reference["repository_error"] = ((reference["Pred"] - reference["Actual"]) * 100).round(2)
    table = table.merge(reference[["task", "repository", "repository_error"]].assign(target="13B-5T"), "left")
    print(table.to_string(index=False))
    errors = table.set_index("target")["error"].abs()
    print(f"mean |error| 7B-4T {errors['7B-4T'].mean():.2f}, 13B-5T {errors['13B-5T'].mean():.2f} points;", end=" ")
    print(f"repository 13B-5T {table['repository_error'].abs().mean():.2f}")
    width = (table["upper"] - table["lower"]).median()
    print(f"90 % intervals cover {int(table['covered'].sum())} of {len(table)}, median width {width:.2f} points")


def pythia(path: Path, settings: Settings) -> None:
    table = import_results("lm_eval_0.3", path)
    forecasts = run(table, PYTHIA_TARGETS, settings, PYTHIA_TASKS, "zero_shot")
    print(points(forecasts).to_string(index=False))
    targets = forecasts[forecasts["holdout"] == 0]
    for family, rows in targets.groupby("family"):
        ours = rows[rows["chosen"]]["error"].abs().mean() * 100
        naive = rows[rows["method"] == "naive"]["error"].abs().mean() * 100
        print(f"{family}: mean |error| chosen {ours:.2f} points, naive {naive:.2f} points")


# The default sweep's models (config/config.yaml): parameters N (total; non-embedding a share of it) as
# their names say; D as the training section gives it for the trained ones, unknown for smollm2.
SWEEP_SIZES = {"tiny-33k": 3.3e4, "tiny-160k": 1.6e5, "tiny-490k": 4.9e5, "tiny-1.1m": 1.1e6, "smollm2-135m": 1.35e8}


def synthetic_sweep(folder: Path, config: dict) -> None:
    """Scores files of every model x task x method of `config` and the models' manifests under
    folder/results/, as the scoring and model stages leave them (scores: benchmarks/fitting.py)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fitting import curve_scores

    from emergence.plan import plan

    sweep, rng = plan(config), np.random.default_rng(0)
    if set(sweep.models) != set(SWEEP_SIZES):
        sys.exit(f"--sweep without DIR: config/config.yaml's models {sweep.models} are not {sorted(SWEEP_SIZES)}")
    for model in sweep.models:
        entry = config["models"][model]
        n = SWEEP_SIZES[model]
        d = config["training"]["tokens"] if entry["source"] == "trained_tiny" else None
        manifest = {"model": model, "family": entry.get("family", model), "sha": model, "n_params": int(n),
                    "n_params_non_embedding": int(0.8 * n), "training_tokens": d,
                    "training_flops": 6 * 0.8 * n * d if d else None}  # fmt: skip
        io.write_json(manifest, folder / "results" / "models" / model / "manifest.json")
        for task, method in sweep.pairs:
            count = items_of(config["tasks"][task])
            items = pd.DataFrame({"item_id": [f"{task}-{i}" for i in range(count)], "digits": np.arange(count) % 4 + 1,
                                  "difficulty": rng.normal(0, 0.3, count)})  # fmt: skip
            scale = "small" if model.startswith("tiny") else "large"
            scores = curve_scores(rng, task, method, model, scale, n, items).assign(family=manifest["family"])
            scores["training_flops"] = manifest["training_flops"] or np.nan
            io.write_table(scores, folder / "results" / "scores" / model / task / f"{method}.parquet", "scores")


def items_of(spec: dict) -> int:
    """A default-sweep task's test items: n_test per digit count, or per BIG-bench subtask (modified_arithmetic
    holds 6)."""
    parts = (
        len(spec["digits"]) if "digits" in spec else sum(6 if t == "modified_arithmetic" else 1 for t in spec["tasks"])
    )
    return spec["n_test"] * parts


def sweep_jobs(folder: Path, config: dict) -> None:
    """The forecast stage's three jobs on folder/results, timed one after the other."""
    from emergence.plan import expand_methods, plan, sweep_forecast_arguments

    sweep, results = plan(config), folder / "results"
    scores = [str(results / "scores" / m / t / f"{k}.parquet") for m in sweep.models for t, k in sweep.pairs]
    manifests = [str(results / "models" / m / "manifest.json") for m in sweep.models]
    table, forecasts = results / "forecasts" / "results.parquet", results / "forecasts" / "forecasts.parquet"
    style = json.dumps(config["figures"].get("style", {}), sort_keys=True)
    jobs = {
        "sweep_results": ["sweep-results", "--scores", *scores, "--manifests", *manifests, "--methods",
                          json.dumps(expand_methods(config["methods"]), sort_keys=True), "--out", str(table)],
        "forecast": ["forecast", "--table", str(table), *sweep_forecast_arguments(config), "--out", str(forecasts)],
        "forecast_figures": ["figures-forecast", "--forecasts", str(forecasts), "--style", style,
                             "--out", str(results / "figures" / "forecasts")],
    }  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "workflow"), "OPENBLAS_NUM_THREADS": "1"}
    total_wall = total_cpu = 0.0
    for name, arguments in jobs.items():
        before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "emergence", *arguments], capture_output=True, text=True, env=env)
        wall, after = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        if done.returncode:
            sys.exit(f"{name} failed: {shlex.join(arguments)[:300]}\n{done.stderr[-3000:]}")
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU; {done.stderr.strip().splitlines()[-1]}")
    rows = io.read_table(forecasts, "forecasts")
    figures = len(list((results / "figures" / "forecasts").glob("*.png")))
    print(f"forecast stage: {total_wall:.1f} s wall, {total_cpu:.1f} s CPU for {len(scores)} scores files,")
    print(f"  {rows[['family', 'task', 'prompt_method']].drop_duplicates().shape[0]} curves, {len(rows)} rows,"
          f" {figures} figures; load average {os.getloadavg()[0]:.1f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--replicates", type=int, default=Settings.replicates)
    parser.add_argument("--sweep", nargs="?", const="", help="time the forecast jobs of a sweep (README above)")
    parser.add_argument("--config", default=str(ROOT / "config" / "config.yaml"), help="the sweep's config")
    parser.add_argument("--keep", help="--sweep without DIR: write the synthetic sweep here and keep it")
    args = parser.parse_args()
    if args.sweep is not None:
        config = yaml.safe_load(Path(args.config).read_text())
        with tempfile.TemporaryDirectory(prefix="emergence-forecast-") as tmp:
            folder = Path(args.sweep or args.keep or tmp)
            if not args.sweep:
                synthetic_sweep(folder, config)
            sweep_jobs(folder, config)
        return
    data = Path(args.data)
    for name, work, settings in (
        ("OLMo ladder", olmo, Settings(replicates=args.replicates)),
        ("Pythia", pythia, Settings(replicates=args.replicates, window=1)),
    ):
        print(f"== {name}")
        wall, cpu = time.perf_counter(), time.process_time()
        work(data / ("olmo_ladder" if name == "OLMo ladder" else "pythia_evals"), settings)
        print(f"{name}: {time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU\n")


if __name__ == "__main__":
    main()
