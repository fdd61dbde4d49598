"""The scoring stage of a finished sweep as one job per model against one job per model x task x method.

    .venv/bin/python benchmarks/score_jobs.py --workdir .       # the default sweep, once it has run
    .venv/bin/python benchmarks/score_jobs.py --workdir . --model tiny-490k --runs 3

For one model of a finished sweep (default: the first in its config), scores every generations file the
sweep holds for it twice, into a temporary folder: (A) as the `score` rule runs it now, one `emergence
score` process for all of the model's task x method files; (B) as it ran before, one process per file,
each loading the tokenizer again. `farm-bench` runs A and B in turn (--runs pairs) and prints wall and
CPU seconds, medians and the A/B ratio. Then it checks that A and B wrote the same bytes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def score_command(workdir: Path, model: str, pairs: list[tuple[str, str]], out: Path) -> str:
    """`emergence score` for `pairs` of one model, writing under `out`; a shell command line."""
    metrics = json.dumps(yaml.safe_load((workdir / "config" / "config.yaml").read_text())["metrics"])
    parts = [str(BIN / "emergence"), "score", "--model", model]
    parts += ["--manifest", str(workdir / f"results/models/{model}/manifest.json"), "--metrics", metrics]
    parts += ["--generations", *[str(workdir / f"results/generations/{model}/{t}/{m}.parquet") for t, m in pairs]]
    parts += ["--tasks", *[str(workdir / f"results/tasks/{t}.parquet") for t, _ in pairs]]
    parts += ["--out", *[str(out / f"{t}/{m}.parquet") for t, m in pairs]]
    return shlex.join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("."), help="a folder where the default sweep ran")
    parser.add_argument("--model", help="default: the first model with generations")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    generations = args.workdir / "results" / "generations"
    model = args.model or sorted(p.name for p in generations.iterdir())[0]
    pairs = sorted((p.parent.name, p.stem) for p in (generations / model).glob("*/*.parquet"))
    if not pairs:
        sys.exit(f"error: no generations of {model} under {generations}: run the sweep first")
    scratch = Path(tempfile.mkdtemp(prefix="score-jobs-"))
    one = score_command(args.workdir, model, pairs, scratch / "one")
    each = " && ".join(score_command(args.workdir, model, [pair], scratch / "each") for pair in pairs)
    print(f"{model}: {len(pairs)} task x method files; A: one job, B: {len(pairs)} jobs", flush=True)
    pair = ["--vs", f"sh -c {shlex.quote(each)}", "--", "sh", "-c", one]
    subprocess.run(["farm-bench", "-n", str(args.runs), "--timeout", "3600", *pair], check=True)
    same = all(
        (scratch / "one" / t / f"{m}.parquet").read_bytes() == (scratch / "each" / t / f"{m}.parquet").read_bytes()
        for t, m in pairs
    )
    print(f"A and B wrote the same bytes: {same}")


if __name__ == "__main__":
    main()
