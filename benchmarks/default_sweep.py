"""Time the README's main command on a fresh clone: set-up, training of the tiny family, whole sweep.

    python3.11 benchmarks/default_sweep.py            # clones HEAD of this checkout into a temporary folder

Prints the wall time of each phase, the seconds each family member trained (from Snakemake's
benchmark files) and their held-out losses. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    clone = Path(tempfile.mkdtemp(prefix="emergence-bench-")) / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    setup = timed([sys.executable, "workflow/scripts/bootstrap.py"], clone)
    sweep = timed([".venv/bin/snakemake"], clone)
    print(f"fresh clone: {clone}")
    print(f"set-up (bootstrap.py, first run): {setup / 60:.1f} min")
    print(f"main command (snakemake, default sweep): {sweep / 60:.1f} min")
    total = 0.0
    for bench in sorted((clone / "logs" / "training").glob("*.benchmark.tsv")):
        seconds = float(next(csv.DictReader(bench.open(), delimiter="\t"))["s"])
        total += seconds
        model = bench.name.removesuffix(".benchmark.tsv")
        manifest = json.loads((clone / "results" / "models" / model / "manifest.json").read_text())
        curve = ", ".join(f"{p['heldout_loss']:.3f}" for p in manifest["training"]["curve"])
        print(
            f"  trained {model}: N={manifest['n_params']:,}, D={manifest['training_tokens']:,}, {seconds:.0f} s, held-out loss {curve}"
        )
    print(f"tiny family training, sum of the job times (sizes train side by side): {total / 60:.1f} min")


if __name__ == "__main__":
    main()
