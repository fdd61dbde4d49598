"""Reliability: a sweep killed again and again ends as if never killed; damaged files are rebuilt; a
full disk leaves nothing that looks complete; secrets stay out of every output; remote code stays off."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import ONE_THREAD_INFERENCE, snakemake, snakemake_command, sweep_config

TOKEN = "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0123"
KILLS = 5
CHUNK = 12


def kill_sweep(checkpoints) -> dict:
    """Enough requests per model (2 methods x 60 items, chunks of 12, 24 tokens each) that kills land mid-generation."""
    config = sweep_config(checkpoints)
    config["sampling"] = {**config["sampling"], "max_tokens": 24, "stop": []}
    config["tasks"]["addition"]["n_test"] = 20
    config["methods"] = {"zero_shot": {"kind": "zero_shot"}, "few_shot_2": {"kind": "few_shot", "k": 2}}
    config["engine"]["chunk_size"] = CHUNK
    config["figures"]["method"] = "few_shot_2"
    return config


class BackgroundSweep:
    """The workflow run on `config` in `workdir` by a Snakemake process of its own, its output (stdout and
    stderr) in workdir/snakemake.out; `wait()` returns the folder once the sweep has finished."""

    def __init__(self, workdir: Path, config: dict, *args: str, env: dict):
        self.workdir = workdir
        command = snakemake_command(workdir, config, *args)
        with open(workdir / "snakemake.out", "w") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def wait(self) -> Path:
        returncode = self.process.wait(timeout=1800)
        assert returncode == 0, (self.workdir / "snakemake.out").read_text()[-3000:]
        return self.workdir

    def stop(self):
        """End the sweep and its jobs if it still runs (a test failed before waiting for it)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="module")
def uninterrupted_run(tiny_checkpoints, tmp_path_factory):
    """The sweep run once without interruption, with a hub token planted in its environment, started in
    the background: the kill test runs its own sweeps meanwhile (mostly on one core) and waits for this
    one only to compare."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    env = {**os.environ, "HF_TOKEN": TOKEN}
    sweep = BackgroundSweep(workdir, kill_sweep(tiny_checkpoints), *ONE_THREAD_INFERENCE, env=env)
    yield sweep
    sweep.stop()


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_run) -> Path:
    """The folder of the uninterrupted sweep, once it has finished."""
    return uninterrupted_run.wait()


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (children, theirs, ...), read from /proc/PID/task/TID/children."""
    found, parents = [], [pid]
    while parents:
        for task in Path(f"/proc/{parents.pop()}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:  # the process or thread has ended meanwhile
                continue
            found += children
            parents += children
    return found


def inference_model(pid: int) -> str | None:
    """The model of process `pid` if it is a running `emergence infer` job (a finished one has no command line)."""
    try:
        command = [part.decode() for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return None
    if "infer" in command and any(part.endswith("emergence") for part in command):
        return command[command.index("--model") + 1]
    return None


def inference_job(sweep: int) -> tuple[int, str] | None:
    """The pid and model of the `emergence infer` job that Snakemake process `sweep` runs, if any: only its
    own descendants are read, not all of /proc, so that watching costs the sweep next to no CPU."""
    for pid in descendants(sweep):
        if (model := inference_model(pid)) is not None:
            return pid, model
    return None


def run_and_kill(workdir: Path, config: dict, rng: random.Random | None) -> dict | None:
    """Run the sweep; once the running inference job has cached a random number (1-4) of new chunks,
    wait a random moment and SIGKILL it (with `rng`; without, let the sweep finish). Returns the
    killed job's model and, read from its printed progress, the requests it had answered and had in
    flight; None if the sweep finished. A run to be killed gets one core (one inference job at a time,
    on one thread: slow enough chunks for a kill to land inside one); the last run gets two, so that
    its inference (one thread each), scoring, fitting and figure jobs run two at a time."""
    log = workdir / f"run-{len(list(workdir.glob('run-*.log')))}.log"
    command = snakemake_command(workdir, config, *ONE_THREAD_INFERENCE, cores=1 if rng else 2)
    for job_log in (workdir / "logs/inference").glob("*.log"):
        job_log.unlink()  # so every job log left after the run was written by it
    with open(log, "w") as out:
        sweep = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True)
        chunks_to_wait, watched, killed, job = (rng.randint(1, 4) if rng else None), None, None, None
        while sweep.poll() is None:
            time.sleep(0.01)
            if not chunks_to_wait or killed:
                continue
            if job is None or inference_model(job[0]) != job[1]:  # look for a job only when none is running
                job = inference_job(sweep.pid)
            if job is None:
                continue
            chunks = len(list((workdir / f"results/cache/{job[1]}").glob("chunk-*.parquet")))
            watched = watched if watched and watched[0] == job[0] else (job[0], chunks)
            if chunks - watched[1] >= chunks_to_wait:
                time.sleep(rng.uniform(0.0, 0.2))
                os.kill(job[0], signal.SIGKILL)
                killed = job[1]
    with open(log, "a") as out:  # the inference jobs' progress is in their rule logs (stderr), not Snakemake's output
        for job_log in sorted((workdir / "logs/inference").glob("*.log")):
            out.write(f"\n{job_log.read_text()}\n")  # a log may end inside a progress bar's line
    lines = log.read_text().splitlines()
    if not killed:
        assert sweep.returncode == 0, lines[-20:]
        return None
    assert sweep.returncode != 0
    header = max(i for i, line in enumerate(lines) if line.startswith(f"inference {killed}: ") and " cached, " in line)
    progress = [line for line in lines[header:] if line.startswith(f"inference {killed}: ")]
    sent = sum(int(line.split("sending ")[1].split()[0]) for line in progress if ": sending " in line)
    answered = [int(line.split(": ")[1].split("/")[0]) for line in progress if "requests answered" in line]
    cached = int(lines[header].split(", ")[1].split()[0])
    kept = answered[-1] if answered else cached
    return {"model": killed, "kept": kept, "in_flight": cached + sent - kept}


def resumed_from(workdir: Path, after: int, model: str) -> int:
    """How many cached answers the next inference job of `model` after run number `after` found."""
    for log in sorted(workdir.glob("run-*.log"), key=lambda path: int(path.stem.split("-")[1]))[after + 1 :]:
        for line in log.read_text().splitlines():
            if line.startswith(f"inference {model}: ") and " cached, " in line:
                return int(line.split(", ")[1].split()[0])
    raise AssertionError(f"no run after run {after} resumed {model}")


def test_sigkilled_inference_resumes_to_the_uninterrupted_results(uninterrupted_run, tiny_checkpoints, tmp_path):
    workdir = tmp_path / "killed"
    rng = random.Random(7)
    kills = []
    config = kill_sweep(tiny_checkpoints)
    while (kill := run_and_kill(workdir, config, rng if len(kills) < KILLS else None)) is not None:
        kills.append(kill)
    assert len(kills) == KILLS

    print(f"\n{'kill':>4} {'model':>8} {'answers kept':>13} {'redone (in flight)':>19}   chunk size {CHUNK}")
    for number, kill in enumerate(kills, 1):
        print(f"{number:>4} {kill['model']:>8} {kill['kept']:>13} {kill['in_flight']:>19}")
        assert kill["in_flight"] <= CHUNK  # at most one cache chunk is redone
        assert resumed_from(workdir, number - 1, kill["model"]) == kill["kept"]  # nothing answered was lost
    assert sum(kill["in_flight"] > 0 for kill in kills) >= 3  # most kills landed mid-generation

    for model in tiny_checkpoints:  # no request lost or answered twice in the cache
        keys = [
            key
            for chunk in sorted((workdir / f"results/cache/{model}").glob("chunk-*.parquet"))
            for key in pq.read_table(chunk)["key"].to_pylist()
        ]
        assert len(keys) == len(set(keys)) == 2 * 60
    uninterrupted = uninterrupted_run.wait()
    assert (uninterrupted / "sweep.yaml").read_text() == (workdir / "sweep.yaml").read_text()
    compared = 0
    for path in sorted((uninterrupted / "results").rglob("*")):
        relative = path.relative_to(uninterrupted)
        if path.is_file() and relative.parts[1] != "cache":
            assert (workdir / relative).read_bytes() == path.read_bytes(), relative
            compared += 1
    assert compared > 30


def test_a_planted_hub_token_appears_in_no_output_or_log(uninterrupted):
    files = [p for p in uninterrupted.rglob("*") if p.is_file()]
    assert len(files) > 30 and any(p.suffix == ".log" for p in files)
    assert [p for p in files if TOKEN.encode() in p.read_bytes()] == []


def test_truncated_and_corrupted_stage_files_are_rebuilt_never_read(uninterrupted, tiny_checkpoints, tmp_path):
    import shutil

    workdir = tmp_path / "damaged"
    shutil.copytree(uninterrupted, workdir, symlinks=True)
    truncated = workdir / "results/fits/addition/zero_shot.parquet"
    truncated.write_bytes(truncated.read_bytes()[:-200])  # a copy cut short: the footer is gone
    corrupted = workdir / "results/fits/addition/few_shot_2.parquet"
    damaged = bytearray(corrupted.read_bytes())
    damaged[len(damaged) // 3] ^= 0xFF  # one flipped byte inside the data; the footer still reads
    corrupted.write_bytes(bytes(damaged))

    first = snakemake(workdir, kill_sweep(tiny_checkpoints))
    output = first.stdout + first.stderr
    assert (
        "results/fits/addition/zero_shot.parquet: truncated or corrupt Parquet file; removed, it will be rebuilt"
        in output
    )
    # the figure and report jobs read the corrupted fits, refuse them and remove them; the next run rebuilds them
    assert (
        first.returncode != 0
        and "few_shot_2.parquet: corrupt or truncated Parquet file" in output
        and not corrupted.exists()
    )
    second = snakemake(workdir, kill_sweep(tiny_checkpoints))
    assert second.returncode == 0, second.stderr[-3000:]
    for relative in (
        "results/fits/addition/zero_shot.parquet",
        "results/fits/addition/few_shot_2.parquet",
        "results/report.html",
    ):
        assert (workdir / relative).read_bytes() == (uninterrupted / relative).read_bytes(), relative


def test_a_full_disk_leaves_no_file_that_looks_complete(uninterrupted, tmp_path):
    """The kernel refuses to grow any file past 8 KB (RLIMIT_FSIZE), as a full disk would refuse a write."""
    out = tmp_path / "generations.parquet"
    command = [
        sys.executable,
        "-c",
        f"""
import resource, signal
from emergence import io
frame = io.read_table({str(uninterrupted / "results/generations/tiny-c/addition/few_shot_2.parquet")!r}, "generations")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
io.write_table(frame, {str(out)!r}, "generations")
""",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0 and "File too large" in result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_remote_code_runs_only_when_a_model_entry_allows_it(tiny_checkpoints, tmp_path):
    checkpoint = tmp_path / "custom"
    import shutil

    shutil.copytree(tiny_checkpoints["tiny-a"], checkpoint)
    marker = tmp_path / "remote-code-ran"
    (checkpoint / "configuration_custom.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import LlamaConfig\n\n\nclass CustomConfig(LlamaConfig):\n    model_type = 'llama'\n"
    )
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(
        json.dumps({**config, "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}})
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")}

    for allowed in (False, True):
        sweep = sweep_config({"custom": checkpoint})
        sweep["models"]["custom"]["trust_remote_code"] = allowed
        result = snakemake(
            tmp_path / f"run-{allowed}", sweep, "results/generations/custom/addition/zero_shot.parquet", env=env
        )
        assert result.returncode == 0, result.stderr[-3000:]
        manifest = json.loads((tmp_path / f"run-{allowed}/results/models/custom/manifest.json").read_text())
        assert manifest["trust_remote_code"] is allowed
        assert marker.exists() is allowed, result.stdout + result.stderr[-2000:]
