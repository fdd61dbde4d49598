"""Time the sweep over results made elsewhere: config/sweeps/pythia_evals.yaml from scratch, 2 cores.

    .venv/bin/python benchmarks/imported_sweep.py        # ../shared/data/pythia_evals beside the repository

Runs `snakemake --cores 2 --configfile config/sweeps/pythia_evals.yaml` with this checkout's Snakefile
in a fresh temporary working folder laid out as CI lays out a clone (`shared/` beside it, here a link to
the real one), so nothing is cached. Prints the wall time of the run, then of a second run (which must
do nothing), and the wall seconds of each job from Snakemake's log. The issue's target: under 3 minutes.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "sweeps" / "pythia_evals.yaml"


def snakemake(workdir: Path, *args: str) -> tuple[float, str]:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--cores", "2", "--configfile", str(CONFIG), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"snakemake failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stderr


def main() -> None:
    top = Path(tempfile.mkdtemp(prefix="emergence-imported-"))
    (top / "shared").symlink_to(ROOT.parent / "shared")
    workdir = top / "repo"
    workdir.mkdir()
    load = os.getloadavg()[0]
    wall, log = snakemake(workdir)
    again, second = snakemake(workdir)
    jobs = re.findall(r"^(?:local)?rule (\w+):", log, flags=re.M)
    print(f"working folder: {workdir}")
    print(f"sweep from scratch: {wall:.1f} s wall, {len(jobs)} jobs, 2 cores (load average before: {load:.1f})")
    for bench in sorted((workdir / "logs" / "imported").rglob("*.benchmark.tsv")):
        row = next(csv.DictReader(bench.open(), delimiter="\t"))
        print(
            f"  {bench.parent.name}/{bench.name.removesuffix('.benchmark.tsv')}: {float(row['s']):.1f} s wall,"
            f" {float(row['cpu_time']):.1f} s CPU"
        )
    print(f"second run: {again:.1f} s wall, {'nothing to do' if 'Nothing to be done' in second else 'RAN JOBS'}")
    report = workdir / "results" / "report.html"
    print(f"report: {report} ({report.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
