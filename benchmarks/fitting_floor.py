"""Where the fit stage's CPU goes, and how much of it the fitted values' last bits pin down.

    .venv/bin/python benchmarks/fitting_floor.py                 # 2 tasks x 3 methods of benchmarks/fitting.py
    .venv/bin/python benchmarks/fitting_floor.py --repeats 5

Issue 19 asks for every fit of a task x method in <= 1 s of CPU with the fitted values identical to
1e-6 (relative). On `benchmarks/fitting.py`'s scores files (written here the same way), in this
process, with config/config.yaml's `fitting` settings and one BLAS thread, this prints:

1. the CPU seconds of one task x method (median over the jobs and --repeats, the first run aside) and
   of its parts: scipy's point fits (a dogbox polish per sigmoid, 5 L-BFGS-B starts per power law),
   the batched Levenberg-Marquardt solves (`solver.minimise_batch`: the sigmoids' grids, their
   replicates, the power laws' replicates), and the rest (reading, curves, rows, verdicts, writing);
2. what one changed last bit does: every fits file again with one gradient component of the sigmoid's
   terms (`fits.sigmoid_terms`, which the grids and the replicates solve) multiplied by 1 + 2^-52, and
   how many values and interval ends then move by more than 1e-6 (relative), and by how much;
3. how far the power laws' point fits (the stage's scipy L-BFGS-B, default tolerances) are from the
   minimum of their own objective (found again from their end by L-BFGS-B and Nelder-Mead with
   tolerances near machine precision): N_c, alpha, and the objective's excess at scipy's end.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # as Snakemake's fit jobs run (see benchmarks/fitting.py)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io as text  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

import fitting as bench  # noqa: E402  (benchmarks/fitting.py: the same scores files)

from emergence import fits  # noqa: E402
from emergence.cli import main as emergence  # noqa: E402

KEYS = ["family", "task", "method", "digits", "metric", "x", "fit", "parameter", "model", "versus"]


def fit_all(jobs: list, out: Path, config: dict) -> list[pd.DataFrame]:
    """`emergence fit` of every job (task, method, scores files), quietly; each job's fits table."""
    tables = []
    for task, method, paths in jobs:
        fits_file = out / f"{task}-{method}.parquet"
        args = ["fit", "--scores", *paths, "--settings", json.dumps(config["fitting"]), "--seed", str(config["seed"])]
        args += ["--out", str(fits_file), "--calibration", str(out / "c.parquet"), "--verdicts", str(out / "v.parquet")]
        with contextlib.redirect_stdout(text.StringIO()):
            emergence(args)
        tables.append(pd.read_parquet(fits_file))
    return tables


def timed(owner: object, name: str, seconds: dict, key: Callable[..., str]) -> None:
    """Wrap `owner.name` so that its CPU seconds add to `seconds[key(*args)]`."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            label = key(*args)
            seconds[label] = seconds.get(label, 0.0) + time.process_time() - started

    setattr(owner, name, wrapper)


def solver_part(terms, start, *_) -> str:
    if len(start) < 1000:  # a grid: 9 starts per curve; replicates: 200 per curve
        return "batched solver: the sigmoids' point grids"
    return f"batched solver: {'sigmoid' if terms is fits.sigmoid_terms else 'power-law'} replicates"


def parts(jobs: list, out: Path, config: dict, repeats: int) -> None:
    """Section 1: CPU seconds per task x method, and its parts."""
    seconds: dict[str, float] = {}
    timed(fits, "sigmoid_polish", seconds, lambda *a: "scipy: dogbox polish of the sigmoids' point fits")
    timed(fits, "fit_power_law", seconds, lambda *a: "scipy: L-BFGS-B point fits of the power laws (5 starts)")
    timed(fits, "minimise_batch", seconds, solver_part)
    runs = []
    for repeat in range(repeats + 1):
        for task, method, paths in jobs:
            seconds.clear()
            started = time.process_time()
            fit_all([(task, method, paths)], out, config)
            if repeat:  # the first run imports and warms caches
                runs.append({**seconds, "total": time.process_time() - started})
    median = {k: float(np.median([r.get(k, 0.0) for r in runs])) for k in runs[0]}
    pinned = sum(v for k, v in median.items() if k != "total")
    print(f"1. CPU per task x method (median of {len(runs)}): {median['total']:.2f} s")
    for name in sorted(k for k in median if k != "total"):
        print(f"   {median[name]:5.2f} s  {name}")
    print(f"   {median['total'] - pinned:5.2f} s  the rest (reading, curves, rows, intervals, verdicts, writing)")
    print(f"   scipy and the batched solver together: {pinned:.2f} s")


def last_bit(jobs: list, out: Path, config: dict) -> None:
    """Section 2: the fits files with one gradient component of the sigmoid's terms moved by one ulp."""
    base = pd.concat(fit_all(jobs, out, config), ignore_index=True)
    terms = fits.sigmoid_terms

    def nudged(params: np.ndarray, data: np.ndarray):
        value, gradient, hessian = terms(params, data)
        gradient = gradient.copy()
        gradient[:, 0] *= 1 + 2.0**-52
        return value, gradient, hessian

    fits.sigmoid_terms = nudged
    try:
        moved = pd.concat(fit_all(jobs, out, config), ignore_index=True)
    finally:
        fits.sigmoid_terms = terms
    assert base[KEYS].fillna("").equals(moved[KEYS].fillna(""))
    print(f"2. one last bit of the sigmoid's gradient (floor component), {len(base):,} rows of fits:")
    for column in ("value", "ci_low", "ci_high"):
        a, b = base[column].to_numpy(), moved[column].to_numpy()
        both = np.isfinite(a) & np.isfinite(b)
        relative = np.abs(a[both] - b[both]) / np.maximum(np.abs(a[both]), 1e-300)
        beyond = base[both][relative > 1e-6]
        where = ", ".join(f"{n} {f}" for f, n in beyond.groupby("fit").size().sort_values()[::-1].items())
        print(
            f"   {column}: {(relative > 0).sum():,} of {both.sum():,} moved, {len(beyond)} by more than 1e-6"
            f" (at most {relative.max():.2g}){': ' + where if where else ''}"
        )


def power_law_precision(jobs: list, out: Path, config: dict) -> None:
    """Section 3: the stage's power-law point fits against their objective's minimum."""
    found = []
    inner = fits.fit_power_law

    def recorded(n, loss, delta=1e-3, start=None):
        fit = inner(n, loss, delta, start)
        found.append((np.asarray(n, float), np.asarray(loss, float), delta, fit))
        return fit

    fits.fit_power_law = recorded
    try:
        fit_all(jobs, out, config)
    finally:
        fits.fit_power_law = inner
    gaps = []
    for n, loss, delta, fit in found:
        x, y = np.log(n), np.log(loss)
        centred = x - x.mean()

        def objective(p: np.ndarray, centred=centred, y=y, delta=delta) -> tuple[float, np.ndarray]:
            value, psi = fits.huber(p[0] - p[1] * centred - y, delta)  # `fits.fit_power_law`'s objective
            return float(value), np.array([psi.sum(), -(psi * centred).sum()])

        stage = np.array(fits.power_law_start(fit, x.mean()))
        tight = minimize(objective, stage, jac=True, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-14})
        simplex = minimize(
            lambda p: objective(p)[0], tight.x, method="Nelder-Mead", options={"xatol": 1e-14, "fatol": 0}
        )
        best = simplex.x if simplex.fun < tight.fun else tight.x
        (minimum,) = fits.power_law_result(best[None, :], x, y[None, :])
        gaps.append(
            [abs(minimum[k] / fit[k] - 1) for k in ("N_c", "alpha")] + [objective(stage)[0] - objective(best)[0]]
        )
    gap = np.array(gaps)
    print(f"3. the stage's power-law point fits ({len(gap)}) against their objective's minimum:")
    for i, name in enumerate(("N_c", "alpha")):
        print(
            f"   {name}: {(gap[:, i] > 1e-6).sum()} differ by more than 1e-6 (relative; median {np.median(gap[:, i]):.2g},"
            f" at most {gap[:, i].max():.2g})"
        )
    print(f"   the objective at the stage's end above the minimum by at most {gap[:, 2].max():.2g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--methods", type=int, default=3, help=f"the first this many of {', '.join(bench.METHODS)}")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of every job (section 1)")
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    with tempfile.TemporaryDirectory(prefix="emergence-fitting-floor-") as tmp:
        folder = Path(tmp)
        jobs = bench.write_scores(folder, args.tasks, list(bench.METHODS)[: args.methods], 100)
        print(
            f"{len(jobs)} task x method fits of benchmarks/fitting.py's sweep; settings {json.dumps(config['fitting'])}"
        )
        power_law_precision(jobs, folder, config)  # before the timing wrappers
        last_bit(jobs, folder, config)
        parts(jobs, folder, config, args.repeats)


if __name__ == "__main__":
    main()
