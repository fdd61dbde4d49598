"""Time the fit stage over a sweep: 10 models x 20 tasks x 6 methods, with the configured bootstrap.

    .venv/bin/python benchmarks/fitting.py                          # 120 task x method fits
    .venv/bin/python benchmarks/fitting.py --tasks 2 --methods 2    # a quick look
    .venv/bin/python benchmarks/fitting.py --tasks 2 --methods 2 --against ../main/workflow --repeats 2

Writes synthetic scores files, every model's for each task x method as the score stage leaves them
(two families of five sizes; items at four digit counts; exact match that jumps with scale, later
for more digits, and smooth continuous metrics under a power-law loss; four samples for the
sampling methods), then runs the fits one after another in a fresh process, each through `emergence
fit`'s code (reading the scores files, writing the fits, calibration and verdicts files) with
config/config.yaml's `fitting` settings and seed, and the thread settings Snakemake gives the fit
rule. A fit reads only scores files: manifests are not among the rule's inputs. Prints the wall
and CPU seconds of all fits together and per fit (and how much of the CPU the scaling fits themselves take), score rows read and fit rows written per second,
and the fitting process's peak resident memory. With `--against`, another checkout's code fits the
same scores files too, each run in its own fresh process, the order alternated over `--repeats`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.special import comb, expit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from emergence import io  # noqa: E402

FAMILIES = {"small": np.geomspace(3e4, 3e6, 5), "large": np.geomspace(7e7, 7e9, 5)}  # n_params of each family's sizes
TOKENS_PER_PARAM = 20  # D = 20 N, so training FLOPs C = 6ND
DIGITS = (1, 2, 3, 4)
METHODS = {
    "zero_shot": 1,
    "few_shot_4": 1,
    "scratchpad_2": 1,
    "chain_of_thought_2": 1,
    "self_consistency_4": 4,
    "complexity_based_4": 4,
}
# Snakemake's shell sets these to a job's threads (1 for the fit rule); without them, OpenBLAS threads
# make SciPy's L-BFGS-B (power-law fits) some 100 times slower on a busy machine (scipy/scipy#22438)
SNAKEMAKE_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def curve_scores(
    rng: np.random.Generator, task: str, method: str, model: str, family: str, n_params: float, items: pd.DataFrame
) -> pd.DataFrame:
    """One model's scores file for one task x method, in the "scores" schema."""
    sizes = np.log10(FAMILIES[family])
    share = 0.35 + 0.15 * items["digits"].to_numpy()  # where in the family's range each digit count emerges
    midpoint = sizes[0] + share * np.ptp(sizes) + items["difficulty"].to_numpy()
    p = 0.02 + 0.98 * expit(4.0 * (np.log10(n_params) - midpoint))
    samples = METHODS[method]
    right = rng.random((len(items), samples)) < p[:, None]
    correct = right[:, 0].astype(float)
    tokens = items["digits"].to_numpy() + 1 + (8 * items["digits"].to_numpy() if method.startswith("scratch") else 0)
    loss = (1e4 / n_params) ** 0.12 * (1 + 0.1 * items["digits"].to_numpy()) * rng.lognormal(0, 0.15, len(items))
    logprob = -loss * tokens
    distance = np.where(correct == 1, 0, 1 + rng.binomial(tokens - 1, 1 - p))
    confidence = np.clip(p + rng.normal(0, 0.1, len(items)), 0.01, 0.99)
    values = {
        "exact_match": correct,
        "exact_string_match": correct * (rng.random(len(items)) < 0.9),
        "flexible_exact_match": np.maximum(correct, rng.random(len(items)) < 0.05),
        "token_edit_distance": distance,
        "normalized_token_edit_distance": distance / tokens,
        "char_edit_distance": distance,
        "target_logprob": logprob,
        "mean_token_logprob": logprob / tokens,
        "per_token_prob": np.exp(logprob / tokens),
        "confidence": confidence,
        "brier_binary": (confidence - correct) ** 2,
    }
    n_right = right.sum(axis=1)
    for k in range(1, samples + 1):
        values[f"pass@{k}"] = 1 - comb(samples - n_right, k) / comb(samples, k)
        values[f"maj@{k}"] = (right[:, :k].mean(axis=1) > 0.5).astype(float)
        values[f"cmaj@{k}"] = (right[:, samples - k :].mean(axis=1) > 0.5).astype(float)
    frame = pd.DataFrame(
        {
            "request_id": task + "/" + method + "/" + items["item_id"],
            "item_id": items["item_id"],
            "model": model,
            "family": family,
            "task": task,
            "method": method,
            "digits": items["digits"].astype("int32"),
            "n_params": np.int64(n_params),
            "training_flops": 6.0 * n_params * TOKENS_PER_PARAM * n_params,
            "target_tokens": tokens.astype("int32"),
        }
    )
    return pd.concat(
        [frame.assign(metric=metric, value=np.asarray(v, float)) for metric, v in values.items()], ignore_index=True
    )


def write_scores(
    folder: Path, tasks: int, methods: list[str], items_per_digit: int
) -> list[tuple[str, str, list[str]]]:
    """Every model's scores file for every task x method; returns (task, method, its scores files)."""
    rng = np.random.default_rng(0)
    jobs = []
    for t in range(tasks):
        task = f"task{t:02d}"
        digits = np.repeat(DIGITS, items_per_digit)
        items = pd.DataFrame(
            {
                "item_id": [f"{task}-{i}" for i in range(len(digits))],
                "digits": digits,
                "difficulty": rng.normal(0, 0.3, len(digits)),
            }
        )
        for method in methods:
            paths = []
            for family, sizes in FAMILIES.items():
                for n_params in sizes:
                    model = f"{family}-{n_params:.2g}"
                    path = folder / "scores" / model / task / f"{method}.parquet"
                    io.write_table(
                        curve_scores(rng, task, method, model, family, n_params, items),
                        path,
                        "scores",
                        {"model": model},
                    )
                    paths.append(str(path))
            jobs.append((task, method, paths))
    return jobs


FITTER = """
import contextlib, io as text, json, resource, sys, time
import pyarrow.parquet as pq
import emergence.analysis as analysis
from emergence.cli import main
jobs, settings, seed, out = json.loads(open(sys.argv[1]).read()), sys.argv[2], sys.argv[3], sys.argv[4]
seconds, cpu, fitting_cpu, score_rows, fit_rows = [], [], [], 0, 0
prefit = getattr(analysis, "prefit", None)  # the scaling fits alone: point fits and replicates of every curve
def timed_prefit(curves):
    started = time.process_time()
    prefit(curves)
    fitting_cpu[-1] += time.process_time() - started
if prefit:
    analysis.prefit = timed_prefit
for task, method, paths in jobs:
    fits, calibration = f"{out}/fits/{task}/{method}.parquet", f"{out}/calibration/{task}/{method}.parquet"
    verdicts = f"{out}/verdicts/{task}/{method}.parquet"
    fitting_cpu.append(0.0)
    started, started_cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(text.StringIO()):
        main(["fit", "--scores", *paths, "--settings", settings, "--seed", seed, "--out", fits, "--calibration", calibration,
              "--verdicts", verdicts])
    seconds.append(time.perf_counter() - started)
    cpu.append(time.process_time() - started_cpu)
    score_rows += sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    fit_rows += pq.ParquetFile(fits).metadata.num_rows
    print(f"{task}/{method}: {seconds[-1]:.2f} s ({cpu[-1]:.2f} s CPU)", file=sys.stderr, flush=True)
print(json.dumps({"seconds": seconds, "cpu": cpu, "fitting_cpu": fitting_cpu if prefit else None, "score_rows": score_rows, "fit_rows": fit_rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_fits(folder: Path, workflow: Path, out: Path, fitting: dict, seed: int) -> dict:
    """Every job's fits in one fresh process on the code under `workflow`, written under `out`."""
    env = {"PYTHONPATH": str(workflow), "PATH": "", **{name: "1" for name in SNAKEMAKE_THREAD_VARIABLES}}
    command = [sys.executable, "-c", FITTER, str(folder / "jobs.json"), json.dumps(fitting), str(seed), str(out)]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=False)
    if result.returncode:
        sys.exit(f"fitting with {workflow} failed (exit status {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def summary(name: str, runs: list[dict], items: int) -> None:
    """Each run's totals, then per fit: wall and CPU medians over the jobs of each run."""
    for figures in runs:
        seconds, cpu = np.array(figures["seconds"]), np.array(figures["cpu"])
        print(
            f"{name}: {len(seconds)} task x method fits ({len(FAMILIES)} families x "
            f"{len(next(iter(FAMILIES.values())))} models, {items} items each) in {seconds.sum():.1f} s "
            f"({cpu.sum():.1f} s CPU): {figures['score_rows'] / seconds.sum():,.0f} score rows/s read, "
            f"{figures['fit_rows'] / seconds.sum():,.0f} fit rows/s written ({figures['fit_rows']:,} rows)"
        )
        print(
            f"  per fit: median {np.median(seconds):.2f} s, min {seconds.min():.2f} s, max {seconds.max():.2f} s; "
            f"CPU median {np.median(cpu):.2f} s; peak memory {figures['peak_rss_mb']:,.0f} MB"
        )
        if figures.get("fitting_cpu"):
            print(
                f"  of which the scaling fits (every curve's point fits and bootstrap replicates, "
                f"`analysis.prefit`): CPU median {np.median(figures['fitting_cpu']):.2f} s; the rest (reading, "
                f"curve set-up, rows, intervals, verdicts, writing) {np.median(cpu - np.array(figures['fitting_cpu'])):.2f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument(
        "--methods", type=int, default=len(METHODS), help=f"the first this many of {', '.join(METHODS)}"
    )
    parser.add_argument(
        "--items-per-digit", type=int, default=100, help=f"test items per digit count ({len(DIGITS)} counts)"
    )
    parser.add_argument("--keep", help="write the scores and fits here and keep them (default: a temporary folder)")
    parser.add_argument(
        "--against", help="another checkout's workflow/ folder: its fits too, on the same scores, A/B alternated"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each code tree")
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    trees = {"this": ROOT / "workflow", **({"against": Path(args.against).resolve()} if args.against else {})}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="emergence-fitting-") as tmp:
        folder = Path(args.keep or tmp)
        started = time.perf_counter()
        jobs = write_scores(folder, args.tasks, list(METHODS)[: args.methods], args.items_per_digit)
        print(
            f"wrote {sum(len(p) for *_, p in jobs):,} scores files in {time.perf_counter() - started:.0f} s", flush=True
        )
        (folder / "jobs.json").write_text(json.dumps(jobs))
        for repeat in range(args.repeats):
            order = list(trees) if repeat % 2 == 0 else list(trees)[::-1]
            for name in order:
                figures = run_fits(folder, trees[name], folder / name, config["fitting"], config["seed"])
                runs[name].append(figures)
    print(f"settings: {json.dumps(config['fitting'])}, seed {config['seed']}")
    for name, path in trees.items():
        summary(f"{name} ({path})", runs[name], len(DIGITS) * args.items_per_digit)


if __name__ == "__main__":
    main()
