"""Time `emergence import-results` on the Pythia suite's evaluations: the import and the fits over sizes.

    .venv/bin/python benchmarks/import_results.py                       # ../shared/data/pythia_evals
    .venv/bin/python benchmarks/import_results.py --path other/folder

Reads every lm-evaluation-harness 0.3 results JSON under the folder (the Pythia suite: 630 files,
15 models x up to 27 checkpoints, zero- and five-shot) into the long table, then fits every
(family, task, method) curve over the final checkpoints' sizes with the command's default settings
(`Settings.from_config({}, 0)`, as `import-results --fits` without `--settings`; the JSONs hold means,
not items, so no bootstrap replicates are drawn). The same code the command runs, in this process.
Prints the wall and CPU seconds of each part, the rows and fit rows made, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from emergence.analysis import Settings, analyse_imported  # noqa: E402
from emergence.importers import import_results  # noqa: E402


def timed(label: str, work):
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:8s} {wall:6.2f} s wall {cpu:6.2f} s CPU")
    return result, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=str(ROOT.parent / "shared" / "data" / "pythia_evals"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    table, import_wall, import_cpu = timed("import", lambda: import_results("lm_eval_0.3", args.path))
    fits, fit_wall, fit_cpu = timed("fits", lambda: analyse_imported(table, Settings.from_config({}, 0)))
    curves = fits[["family", "task", "method"]].drop_duplicates()
    print(f"total    {import_wall + fit_wall:6.2f} s wall {import_cpu + fit_cpu:6.2f} s CPU")
    print(
        f"{table['file'].nunique()} files -> {len(table)} rows ({len(table) / import_wall:,.0f} rows/s);"
        f" {len(curves)} curves -> {len(fits)} fit rows, {(fits['status'] == 'ok').sum()} ok"
    )
    print(f"peak resident memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
