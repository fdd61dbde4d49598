"""The tiny sweep through a real SLURM cluster: `--profile profiles/slurm` (`--executor slurm`).

Needs `sbatch` on PATH, an idle node in `sinfo` and a working `sacct` (the executor plugin reads
job states from sacct). On one machine, `workflow/scripts/slurm_localhost.sh` (as root) sets such
a cluster up on localhost. Without one this test skips, naming what is missing; with
EMERGENCE_REQUIRE_SLURM=1 (CI sets it after running that script) it fails instead.

Takes about 4-6 minutes on 2 cores, 2-3 of them the plugin's own waits. The pinned plugin (1.4.0)
fixes most of them in its code: the first look at job states 40 s after the first submission, 40 s
after any look that found a job finished, and shutting down waits out the current interval; its
`--slurm-init-seconds-before-status-checks` setting is read nowhere. The one interval Snakemake
sets is the start of the series used while no job finishes (each look adds 10 s to the last):
`--seconds-between-status-checks 1` makes it 11, 21, 31 s instead of 20, 30, 40 s, so a finished
job is seen sooner (a failing sacct is then asked again every second or so, not every 10 s).
`latency-wait` (60 s in profiles/slurm) costs nothing here: the outputs are on this machine's disk
and Snakemake waits only for missing ones. To keep it short, scoring and fitting are bundled into
one SLURM job (`--groups`, as in the comments of profiles/slurm), the Snakefile's local rules (tasks,
prompts, manifests, figures, report) run beside Snakemake, and the local run it is compared with
runs at the same time.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from conftest import REPO, snakemake, sweep_config

REQUIRE_SLURM = os.environ.get("EMERGENCE_REQUIRE_SLURM") == "1"
GENERATIONS = "results/generations/{model}/addition/zero_shot.parquet"
# One SLURM job for every score and fit (the other cheap rules are the Snakefile's local rules).
GROUPS = ["--groups", "score=analysis", "fit=analysis", "--group-components", "analysis=100"]
# The shortest polling the plugin allows from the command line (see the module's docstring).
POLLING = ["--seconds-between-status-checks", "1"]


def cluster_problem() -> str | None:
    """Why this machine cannot run SLURM jobs, or None when it can."""
    for tool in ("sbatch", "sinfo", "sacct"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH"
    try:
        sinfo = subprocess.run(["sinfo", "-h", "-o", "%N %T"], capture_output=True, text=True, timeout=60)
        if sinfo.returncode != 0:
            return f"`sinfo` failed: {(sinfo.stderr or sinfo.stdout).strip()[:300]}"
        if not any(line.split()[-1] == "idle" for line in sinfo.stdout.splitlines() if line.strip()):
            return f"`sinfo` shows no idle node: {sinfo.stdout.strip()[:300] or 'no nodes'}"
        sacct = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True, timeout=60)
        if sacct.returncode != 0:
            return f"`sacct` fails (no job accounting): {(sacct.stderr or sacct.stdout).strip()[:300]}"
    except subprocess.TimeoutExpired as err:
        return f"`{err.cmd[0]}` did not answer within {err.timeout:.0f} s"
    return None


@pytest.fixture
def slurm_cluster():
    problem = cluster_problem()
    if problem is None:
        return
    if REQUIRE_SLURM:
        pytest.fail(f"EMERGENCE_REQUIRE_SLURM=1, but no usable SLURM cluster: {problem}")
    pytest.skip(f"no usable SLURM cluster ({problem}); run workflow/scripts/slurm_localhost.sh as root to make one")


def test_tiny_sweep_through_slurm_gives_the_generations_of_a_local_run(
    slurm_cluster, tiny_checkpoints, tmp_path, monkeypatch
):
    """Inference runs as one SLURM job per model and scoring and fitting as one more, the sweep finishes with its
    report and figures, sacct knows the inference jobs as COMPLETED under this run's job name, and
    each model's generations equal those of a plain local run of the same config."""
    monkeypatch.setenv("USER", os.environ.get("USER") or getpass.getuser())  # the plugin reads $USER
    config = sweep_config(tiny_checkpoints)
    models = sorted(tiny_checkpoints)
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    # one thread per inference job (as profiles/default): two models answer at once on 2 cores
    # and no retries (the profile's 2 would only hide a failure)
    slurm_args = [
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--slurm-keep-successful-logs",
        "--retries",
        "0",
        "--set-threads",
        "inference=1",
        *GROUPS,
        *POLLING,
    ]
    started = datetime.now() - timedelta(minutes=1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        slurm_run = pool.submit(snakemake, on_slurm, config, *slurm_args)
        local_run = pool.submit(snakemake, local, config, *(GENERATIONS.format(model=model) for model in models))
        slurm_result, local_result = slurm_run.result(), local_run.result()
    assert local_result.returncode == 0, local_result.stderr[-3000:]
    assert slurm_result.returncode == 0, slurm_result.stderr[-5000:]

    # the whole sweep finished
    assert (on_slurm / "results" / "report.html").stat().st_size > 0
    assert len(list((on_slurm / "results" / "figures").rglob("*.pdf"))) == 3

    # ... through SLURM: each inference job has its SLURM log, and sacct knows it as COMPLETED
    run_id = re.search(r"SLURM run ID: (\S+)", slurm_result.stderr)
    assert run_id, slurm_result.stderr[-3000:]
    job_ids = {}
    for model in models:
        logs = list((on_slurm / ".snakemake" / "slurm_logs" / "rule_inference" / model).glob("*.log"))
        assert len(logs) == 1, logs
        assert "--executor slurm-jobstep" in logs[0].read_text()  # run by Snakemake inside the allocation
        job_ids[model] = logs[0].stem
    assert (
        len(re.findall(r"has been submitted with SLURM jobid \d+", slurm_result.stderr)) == len(models) + 1
    )  # + the scoring and fitting group
    sacct = subprocess.run(
        [
            "sacct",
            "-X",
            "-n",
            "--parsable2",
            "--format",
            "JobIDRaw,State",
            "--name",
            run_id.group(1),
            "--starttime",
            f"{started:%Y-%m-%dT%H:%M:%S}",
            "--endtime",
            "now",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sacct.returncode == 0, sacct.stderr
    states = dict(line.split("|") for line in sacct.stdout.splitlines() if line)  # this run's jobs (job name = run ID)
    assert len(states) == len(models) + 1 and set(states.values()) == {"COMPLETED"}, sacct.stdout
    assert set(job_ids.values()) <= set(states), (job_ids, sacct.stdout)

    # ... and gave the generations a local run gives
    for model in models:
        expected = pd.read_parquet(local / GENERATIONS.format(model=model))
        assert len(expected) == 18
        assert_frame_equal(pd.read_parquet(on_slurm / GENERATIONS.format(model=model)), expected, obj=model)
