"""Forecasts on real ladders: the OLMo ladder's 7B-4T and 13B-5T targets, and Pythia's 6.9B and 12B.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/forecast.py          # ../shared/data
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/forecast.py --replicates 500

The same code `emergence forecast` runs, in this process, with the default settings (200 bootstrap
replicates, 90 % intervals, rollouts holding out the one and two largest rungs). OLMo: the 190M-1.3B
rungs of the paper's main configuration (final.json) on its 8 main tasks, the chosen method beside the
repository's committed chained predictions (reference/chained_main.csv, 13B-5T only). Pythia: the
70M-2.8B final checkpoints (zero-shot, both suites), one checkpoint as a run's final value, the chosen
method against the naive forecast (the largest rung's score). Prints the tables and the wall seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

import pandas as pd  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--replicates", type=int, default=Settings.replicates)
    args = parser.parse_args()
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
