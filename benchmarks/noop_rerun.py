"""Time Snakemake's no-op call on a finished sweep of several hundred jobs.

    .venv/bin/python benchmarks/noop_rerun.py                               # build the sweep (once), then time
    .venv/bin/python benchmarks/noop_rerun.py --workdir /tmp/emergence-bench/noop/work   # reuse a finished one
    .venv/bin/python benchmarks/noop_rerun.py --workdir ... --profile       # also cProfile one no-op call

Builds the cheapest sweep that still has the shape of a real one: 3 `tiny_random` models (one family),
--tasks (default 14, so 292 jobs) small synthetic_arithmetic tasks (1-2 digits, 2-4 test items each), the 6 prompting methods of
config/config.yaml, two metrics and a small fitting bootstrap, in a work folder run with
`snakemake --snakefile <repo>/Snakefile --directory <workdir> --configfile <workdir>/sweep.yaml --cores 2`,
exactly as the tests run the workflow. The first (full) run prints its progress. Then it times the same
call again, which has nothing to do (median of --repeats), and the dry run (`-n`), and prints the job
count and seconds. Target: the no-op call under 10 s.

A finished work folder is reused when given with --workdir (or when the default one is finished), so
the timing can be repeated without rebuilding; if the workflow changed since, so that the second call
has work to do, that work is run (and named) first.
"""

from __future__ import annotations

import argparse
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OPERATIONS = ["addition", "subtraction", "multiplication"]
DIGITS = [[1], [2], [1, 2]]
MODELS = {  # head size 32, the smallest vLLM's CPU attention takes
    "tiny-a": {"source": "tiny_random", "family": "tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 1},
    "tiny-b": {"source": "tiny_random", "family": "tiny", "hidden_size": 64, "num_layers": 1, "num_heads": 2},
    "tiny-c": {"source": "tiny_random", "family": "tiny", "hidden_size": 96, "num_layers": 1, "num_heads": 3},
}
# the methods of config/config.yaml
METHODS = {
    "zero_shot": {"kind": "zero_shot"},
    "few_shot_4": {"kind": "few_shot", "k": 4},
    "scratchpad_2": {"kind": "scratchpad", "k": 2, "max_tokens": 160},
    "chain_of_thought_2": {"kind": "chain_of_thought", "k": 2, "max_tokens": 64},
    "self_consistency_4": {"kind": "self_consistency", "k": 2, "n": 4, "temperature": 0.7, "max_tokens": 64},
    "complexity_based_4": {"kind": "complexity_based", "k": 2, "n": 4, "temperature": 0.7, "max_tokens": 64},
}


def sweep(n_tasks: int) -> dict:
    tasks = {}
    for index in range(n_tasks):
        operation, digits = OPERATIONS[index % 3], DIGITS[(index // 3) % 3]
        tasks[f"{operation[:3]}{''.join(map(str, digits))}-{index:02d}"] = {
            "kind": "synthetic_arithmetic",
            "operation": operation,
            "digits": digits,
            "n_test": 2 + (index + index // 3) % 3,
            "n_train": 5,
        }
    return {
        "seed": 0,
        "models": MODELS,
        "tasks": tasks,
        "methods": METHODS,
        "sampling": {"max_tokens": 12, "temperature": 0.0, "top_p": 1.0, "stop": ["\n"]},
        "metrics": ["exact_match", "token_edit_distance"],
        "engine": {
            "name": "vllm",
            "dtype": "float32",
            "max_model_len": 512,
            "memory_fraction": 0.3,
            "tensor_parallel_size": 1,
            "chunk_size": 256,
        },
        "fitting": {"min_models": 3, "bootstrap": 10},
        "figures": {"x": "n_params", "metric": "exact_match"},
    }


def snakemake_command(workdir: Path, *args: str, python: list[str] | None = None) -> list[str]:
    return [
        *(python or [str(BIN / "snakemake")]),
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "sweep.yaml"),
        "--cores",
        "2",
        *args,
    ]


def env() -> dict:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_with_progress(workdir: Path, log: Path) -> tuple[float, int]:
    """One Snakemake call; prints its progress lines (every 5 %), returns seconds and jobs done (< 0: failed)."""
    started, last, done_jobs = time.perf_counter(), -5, 0
    with open(log, "w") as out:
        process = subprocess.Popen(
            snakemake_command(workdir), env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:
            out.write(line)
            match = re.search(r"(\d+) of (\d+) steps \((\d+)%\) done", line)
            if match:
                done_jobs = int(match.group(1))
                if int(match.group(3)) >= last + 5 or done_jobs == int(match.group(2)):
                    last = int(match.group(3))
                    print(
                        f"  {time.perf_counter() - started:7.0f} s  {match.group(0)}  (load average {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
        process.wait()
    return time.perf_counter() - started, done_jobs if process.returncode == 0 else -1


MEMORY_REFUSAL = "Available memory on node"  # vLLM CPU: other processes hold the memory share it asks for


def build(workdir: Path, log: Path) -> float:
    """Run the sweep to the end; a run stopped because an inference job found the shared machine's
    memory taken by other processes is resumed after a pause. Returns the seconds it took."""
    started = time.perf_counter()
    for attempt in range(20):
        this_log = log.with_suffix(f".{attempt}.log") if attempt else log
        _, status = run_with_progress(workdir, this_log)
        if status >= 0:
            return time.perf_counter() - started
        if MEMORY_REFUSAL not in this_log.read_text():  # `emergence infer` prints its one-line error on stdout
            sys.exit(f"snakemake failed; see {this_log}")
        print(
            f"  (an inference job found the memory taken by other processes; resuming in 60 s, attempt {attempt + 1})",
            flush=True,
        )
        time.sleep(60)
    sys.exit(f"snakemake failed; see {log}")


def job_count(workdir: Path) -> int:
    """Every job of the sweep, from a forced dry run's job stats."""
    done = subprocess.run(snakemake_command(workdir, "-n", "--forceall"), env=env(), capture_output=True, text=True)
    match = re.search(r"^total\s+(\d+)\s*$", done.stdout + done.stderr, re.MULTILINE)
    if done.returncode or not match:
        sys.exit(f"dry run failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return int(match.group(1))


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: list[float] = []  # CPU seconds (user + system) of each timed call, beside its wall time


def timed(command: list[str]) -> tuple[float, str]:
    started, cpu = time.perf_counter(), child_cpu()
    done = subprocess.run(command, env=env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    CPU.append(child_cpu() - cpu)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds, done.stdout + done.stderr


def finished(workdir: Path) -> bool:
    return (workdir / "sweep.yaml").exists() and (workdir / "results" / "report.html").exists()


def print_profile(path: Path, top: int) -> None:
    """The workflow's own code (Snakefile, rules/, emergence/) by cumulative time, then the top functions."""
    stats = pstats.Stats(str(path))
    total = max(ct for (_, _, _, ct, _) in stats.stats.values())
    print(f"\ncProfile of one no-op call ({path}; {total:.2f} s in all)")
    own_code = [
        (key, value)
        for key, value in stats.stats.items()
        if "/rules/" in key[0] or key[0].endswith("Snakefile") or "/emergence/" in key[0] or key[0].endswith(".smk")
    ]
    own_code.sort(key=lambda kv: -kv[1][3])
    print("  the workflow's own code, by cumulative time:")
    for (filename, line, func), (_, calls, own, cumulative, _) in own_code[:25]:
        print(
            f"    {cumulative:7.3f} s cumulative {own:7.3f} s own {calls:7d} calls  {'/'.join(Path(filename).parts[-2:])}:{line} {func}"
        )
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/emergence-bench/noop/work"),
        help="reused when it holds a finished sweep",
    )
    parser.add_argument(
        "--tasks",
        type=int,
        default=14,
        help="synthetic arithmetic tasks, each under the 6 methods (14: 541 jobs, 20: 749)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also cProfile one no-op call and print the hot spots")
    args = parser.parse_args()
    workdir = args.workdir.resolve()

    if finished(workdir):
        print(f"reusing the finished sweep in {workdir}")
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        import yaml

        if not (workdir / "sweep.yaml").exists():
            (workdir / "sweep.yaml").write_text(yaml.safe_dump(sweep(args.tasks), sort_keys=True))
        jobs = job_count(workdir)
        print(f"building the sweep in {workdir}: {jobs} jobs, --cores 2 (log: {workdir / 'full-run.log'})", flush=True)
        seconds = build(workdir, workdir / "full-run.log")
        print(f"full run: {seconds / 60:.1f} min", flush=True)

    # The second call must find nothing to do; if the workflow changed since the sweep was built
    # (rerun triggers: code, params, input, mtime), run that work first and say what it was.
    for _ in range(2):
        seconds, output = timed(snakemake_command(workdir, "-n"))
        if "Nothing to be done" in output:
            break
        stats = re.search(r"Job stats:.*?total\s+\d+", output, re.DOTALL)
        reasons = sorted(set(re.findall(r"^\s*reason: (.*)$", output, re.MULTILINE)))[:5]
        print(
            f"the sweep is not up to date, running what is left first:\n{stats.group(0) if stats else output[-2000:]}\n  reasons: {reasons}",
            flush=True,
        )
        build(workdir, workdir / "catch-up.log")
    else:
        sys.exit("the sweep still has work to do after catching up")

    jobs = job_count(workdir)
    noop, dry, noop_cpu, dry_cpu, startups = [], [], [], [], []
    for repeat in range(args.repeats):  # alternating, side by side
        seconds, output = timed(snakemake_command(workdir))
        if "Nothing to be done" not in output:
            sys.exit(f"the no-op call ran jobs:\n{output[-3000:]}")
        noop.append(seconds)
        noop_cpu.append(CPU[-1])
        seconds, output = timed(snakemake_command(workdir, "-n"))
        dry.append(seconds)
        dry_cpu.append(CPU[-1])
        startups.append(timed([str(BIN / "python"), "-c", "import snakemake.cli"])[0])  # the floor: importing Snakemake
        print(
            f"repeat {repeat + 1}/{args.repeats}: no-op {noop[-1]:.2f} s ({noop_cpu[-1]:.2f} s CPU), dry run {dry[-1]:.2f} s ({dry_cpu[-1]:.2f} s CPU), "
            f"import snakemake.cli {startups[-1]:.2f} s (load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )

    print(f"\nsweep: {workdir}")
    import yaml

    config = yaml.safe_load((workdir / "sweep.yaml").read_text())
    print(
        f"jobs: {jobs} ({len(config['models'])} models, {len(config['tasks'])} tasks, {len(config['methods'])} methods)"
    )
    print(
        f"no-op `snakemake` call: median {statistics.median(noop):.2f} s (each: {', '.join(f'{s:.2f}' for s in noop)}), "
        f"CPU median {statistics.median(noop_cpu):.2f} s -> target < 10 s: {'met' if statistics.median(noop) < 10 else 'MISSED'}"
    )
    print(
        f"dry run `snakemake -n`: median {statistics.median(dry):.2f} s (each: {', '.join(f'{s:.2f}' for s in dry)}), CPU median {statistics.median(dry_cpu):.2f} s"
    )
    print(
        f"python -c 'import snakemake.cli' alone (the floor): median {statistics.median(startups):.2f} s; "
        f"no-op / floor {statistics.median(n / f for n, f in zip(noop, startups)):.1f}; load average {os.getloadavg()[0]:.1f}"
    )

    if args.profile:
        prof = workdir.parent / "noop.prof"
        seconds, _ = timed(
            snakemake_command(workdir, python=[sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "snakemake"])
        )
        print(f"profiled no-op call: {seconds:.2f} s (with cProfile's overhead)")
        print_profile(prof, 40)


if __name__ == "__main__":
    main()
