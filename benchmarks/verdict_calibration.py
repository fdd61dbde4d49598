"""Calibration of the verdicts (issue 17's table) and their cost beside the fit stage.

    .venv/bin/python benchmarks/verdict_calibration.py                 # rates table and timing
    .venv/bin/python benchmarks/verdict_calibration.py --datasets 1000 --seed 1   # tighter rates
    .venv/bin/python benchmarks/verdict_calibration.py --no-timing

Rates: for each design of `emergence.verdicts.simulate` (200 seeded datasets of 500 items per model
by default), the share of datasets given each verdict, beside the rate issue 17 requires. Timing: one
task x method of benchmarks/fitting.py's synthetic sweep (two families of five sizes, four digit
counts, 400 items, every metric; config/config.yaml's `fitting` settings), analysed by
`analysis.analyse_stage` with and without verdicts, alternated, median of the repeats; and one
`judge` call on an 8-model curve with its twin.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from emergence.analysis import Settings, analyse_stage  # noqa: E402
from emergence.verdicts import judge  # noqa: E402
from emergence.verdicts.simulate import curves, rates  # noqa: E402

# (design, sizes, answer tokens, verdict required, rate required)
ROWS = [
    *[("schaeffer", m, tokens, "mirage", 0.90) for tokens in (3, 4, 5) for m in (4, 8, 12)],
    *[("jump", m, 3, "emergent", 0.90) for m in (4, 8, 12)],
    *[("constant", m, 1, "flat", 0.95) for m in (4, 8, 12)],
    *[("linear", m, 1, "smooth", 0.90) for m in (4, 8, 12)],
    ("saturated", 8, 1, "saturated", 0.90),
    ("non_monotone", 8, 1, "non_monotone", 0.90),
]


def rates_table(datasets: int, seed: int) -> None:
    print("| design | models | L | verdict required | rate | required | every verdict |")
    print("|---|---|---|---|---|---|---|")
    start = time.process_time()
    for design, m, tokens, wanted, required in ROWS:
        found = rates(design, m, tokens, datasets=datasets, seed=seed)
        others = ", ".join(f"{verdict} {share:.1%}" for verdict, share in found.items())
        rate = found.get(wanted, 0.0)
        mark = "" if rate >= required else " **below**"
        print(f"| {design} | {m} | {tokens} | {wanted} | {rate:.1%}{mark} | ≥ {required:.0%} | {others} |")
    total = sum(datasets for _ in ROWS)
    seconds = time.process_time() - start
    print(f"\n{total} curves judged in {seconds:.1f} s CPU ({1000 * seconds / total:.2f} ms per curve)")


def sweep_scores() -> tuple[pd.DataFrame, Settings]:
    """One task x method of the fitting benchmark's sweep, and the config's fit settings."""
    from fitting import DIGITS, FAMILIES, curve_scores

    rng = np.random.default_rng(0)
    digits = np.repeat(DIGITS, 100)
    items = pd.DataFrame(
        {
            "item_id": [f"task00-{i}" for i in range(len(digits))],
            "digits": digits,
            "difficulty": rng.normal(0, 0.3, len(digits)),
        }
    )
    frames = [
        curve_scores(rng, "task00", "zero_shot", f"{family}-{n:.2g}", family, n, items)
        for family, sizes in FAMILIES.items()
        for n in sizes
    ]
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return pd.concat(frames, ignore_index=True), Settings.from_config(config["fitting"], config.get("seed", 0))


def timing(repeats: int) -> None:
    scores, settings = sweep_scores()
    seconds: dict[bool, list[float]] = {False: [], True: []}
    rows = 0
    for repeat in range(repeats):
        for verdicts in (repeat % 2 == 0, repeat % 2 == 1):  # alternate which goes first
            start = time.process_time()
            analysed = analyse_stage(scores, settings, verdicts=verdicts)
            seconds[verdicts].append(time.process_time() - start)
            rows = max(rows, len(analysed.verdicts))
    without, with_ = statistics.median(seconds[False]), statistics.median(seconds[True])
    print(
        f"\nfit stage, one task x method ({rows} verdict rows): {without:.2f} s CPU without"
        f" verdicts, {with_:.2f} s with: +{100 * (with_ - without) / without:.1f} % (median of {repeats})"
    )
    sizes, exact, twin = next(curves("schaeffer", 8, 3, datasets=1))
    judge(sizes, exact, 500, twin=twin)  # the grid of shapes is built once per set of sizes
    start, calls = time.process_time(), 200
    for _ in range(calls):
        judge(sizes, exact, 500, twin=twin)
    print(f"one verdict (8 models, with twin): {1000 * (time.process_time() - start) / calls:.2f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    rates_table(args.datasets, args.seed)
    if not args.no_timing:
        timing(args.repeats)


if __name__ == "__main__":
    main()
