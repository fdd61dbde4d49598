"""Shared fixtures: tiny checkpoints built here (no download) and a way to run the real workflow."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Two test processes share the cores (pytest-xdist, see SHARED_FIXTURES): each computes on one thread, as a
# one-thread Snakemake job does (Snakemake sets these for its jobs itself). Threads of OpenMP and OpenBLAS
# that wait for work spin, taking the other process's core (SciPy's L-BFGS-B ran 4 times slower so).
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

# Three random-initialised Llamas of increasing size (head size 32, the smallest vLLM's CPU attention takes).
TINY_SIZES = {
    "tiny-a": {"hidden_size": 64, "num_layers": 1, "num_heads": 2},
    "tiny-b": {"hidden_size": 96, "num_layers": 2, "num_heads": 3},
    "tiny-c": {"hidden_size": 128, "num_layers": 3, "num_heads": 4},
}


# The suite runs in two worker processes (pytest-xdist, `-n 2` in pyproject.toml), and a worker builds a
# session fixture for itself. So each module's tests run in one worker (its module fixtures are built once),
# and so do the modules that share a session fixture of minutes (`SHARED_FIXTURES`): SAME_WORKER names the
# module whose worker each of them joins, and collection fails if a module is missing from it.
SHARED_FIXTURES = ("finished_sweep", "bigbench_files")
SAME_WORKER = {"test_sweep_forecast": "test_workflow", "test_fidelity": "test_bigbench"}
# Modules whose tests start first, slowest first (`--durations=0` of a whole run), so that no long module
# starts last; the rest follow in collection order. test_slurm mostly waits for SLURM's polling.
SLOWEST_FIRST = ("test_reliability", "test_workflow", "test_slurm", "test_bigbench", "test_chinchilla")


def worker_group(module: str) -> str:
    """The module whose worker runs the tests of `module` (a module's name, e.g. "test_fidelity")."""
    return SAME_WORKER.get(module, module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scheduling by scope (`--dist loadscope`, pyproject.toml's), with `worker_group` of a test's
    module as its scope; another `--dist` on the command line is xdist's own. (xdist 3.8's `--dist loadgroup`
    renames test ids in a way pytest 9.2 no longer reads: pytest-dev/pytest-xdist#1386.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(Path(nodeid.split("::", 1)[0]).stem)

    return ModuleGroups(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check that the modules sharing each of SHARED_FIXTURES run in one worker, and put the tests of
    SLOWEST_FIRST first (a stable sort: each module keeps its order)."""
    for fixture in SHARED_FIXTURES:
        modules = sorted({item.path.stem for item in items if fixture in getattr(item, "fixturenames", ())})
        if len({worker_group(module) for module in modules}) > 1:
            problem = f"tests/conftest.py: SAME_WORKER must send {modules} to one worker ({fixture})"
            if "PYTEST_XDIST_WORKER" not in os.environ:
                raise pytest.UsageError(problem)
            # a worker's UsageError reaches the user as a crash blamed on some test: a collection error instead
            config.hook.pytest_collectreport(report=pytest.CollectReport("tests/conftest.py", "failed", problem, []))
            items.clear()
            return

    def rank(item: pytest.Item) -> int:
        group = worker_group(item.path.stem)
        return SLOWEST_FIRST.index(group) if group in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, Path]:
    from emergence.models import build_tiny_llama

    root = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for seed, (name, spec) in enumerate(TINY_SIZES.items()):
        build_tiny_llama(root / name, spec, seed)
        paths[name] = root / name
    return paths


ARCHIVE = "bigbench-1.0.0.tar.gz"


@pytest.fixture(scope="session")
def archive(request) -> Path:
    """The real BIG-bench source archive (358 MB), downloaded once into the pytest cache."""
    cache = Path(request.config.cache.mkdir("bigbench"))
    path = cache / ARCHIVE
    with open(cache / "download.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test processes side by side (pytest-xdist): one downloads, the rest wait
        if not path.is_file():
            download(cache, path)
    return path


def download(cache: Path, path: Path) -> None:
    """pip's download of bigbench==1.0.0's archive, moved to `path` once it is whole."""
    partial = cache / "partial"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "bigbench==1.0.0", "-d", str(partial)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not (partial / ARCHIVE).is_file():
        pytest.fail(f"pip download bigbench==1.0.0 failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    (partial / ARCHIVE).replace(path)
    partial.rmdir()


# Every BIG-bench task a test reads: the default sweep's arithmetic, and tasks of each prompt format.
BIGBENCH_TASKS = [
    "arithmetic",
    "modified_arithmetic",
    "simple_arithmetic_json_multiple_choice",
    "simple_arithmetic_multiple_targets_json",
    "penguins_in_a_table",
    "periodic_elements/subtask_1",
    "physics_questions",
]


@pytest.fixture(scope="session")
def bigbench_files(archive, tmp_path_factory) -> tuple[Path, list[Path]]:
    """BIGBENCH_TASKS extracted from the real archive, once per test run (reading the 358 MB archive
    through takes about 9 s of CPU): the folder, and the files that hold examples."""
    from emergence.bigbench import extract_tasks

    out = tmp_path_factory.mktemp("bigbench")
    return out, extract_tasks(archive, BIGBENCH_TASKS, out)


@pytest.fixture(scope="session")
def task_archive(bigbench_files, tmp_path_factory) -> Path:
    """An archive named and laid out as bigbench==1.0.0's that holds only the task files of BIGBENCH_TASKS
    (taken unchanged from the real one), for the tests that read tasks, not the archive itself."""
    import tarfile

    folder, _ = bigbench_files
    path = tmp_path_factory.mktemp("bigbench-tasks") / ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        for file in sorted(folder.rglob("task.json")):
            tar.add(file, arcname=f"bigbench-1.0.0/bigbench/benchmark_tasks/{file.relative_to(folder).as_posix()}")
    return path


SWEEP_METRICS = [
    "exact_match",
    "exact_string_match",
    "maj@k",
    "token_edit_distance",
    "char_edit_distance",
    "target_logprob",
    "per_token_prob",
    "answer_logprob",
    "confidence",
    "brier_binary",
]


def sweep_config(checkpoints: dict[str, Path], **overrides) -> dict:
    """A small sweep over local tiny checkpoints; keyword arguments replace top-level keys."""
    config = {
        "seed": 0,
        "models": {
            name: {"source": "local", "path": str(path), "family": "tiny"} for name, path in checkpoints.items()
        },
        "tasks": {
            "addition": {
                "kind": "synthetic_arithmetic",
                "operation": "addition",
                "digits": [1, 2, 3],
                "n_test": 6,
                "n_train": 4,
            },
        },
        "methods": {"zero_shot": {"kind": "zero_shot"}},
        "sampling": {"max_tokens": 6, "temperature": 0.0, "top_p": 1.0, "stop": ["\n"]},
        "metrics": list(SWEEP_METRICS),
        "engine": {
            "name": "vllm",
            "dtype": "float32",
            "max_model_len": 256,
            "memory_fraction": 0.3,
            "tensor_parallel_size": 1,
            "chunk_size": 8,
        },
        "fitting": {"min_models": 3, "bootstrap": 50},
        "figures": {"x": "n_params", "metric": "exact_match"},
    }
    config.update(overrides)
    return config


# One thread per inference job (as profiles/default gives it; named here so that no test depends on a
# profile): two models answer at once on 2 cores. Starting a job (importing vLLM, loading the engine)
# is most of its time on these tiny models and runs on one core. Tests that compare answers run both
# sides with it (the sigkill test, the byte-identical rerun); test_generations_match_a_direct_engine_run
# finds them equal to an in-process engine's.
ONE_THREAD_INFERENCE = ("--set-threads", "inference=1")


def snakemake_command(workdir: Path, config: dict, *args: str, cores: int = 2) -> list[str]:
    """The command that runs the real workflow on `config` in `workdir` (written there as sweep.yaml)."""
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = workdir / "sweep.yaml"
    configfile.write_text(yaml.safe_dump(config, sort_keys=True))
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        str(cores),
        *args,
    ]


def snakemake(workdir: Path, config: dict, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real workflow on `config` in `workdir` (in `env`, default this one); returns the finished process."""
    command = snakemake_command(workdir, config, *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)


@pytest.fixture(scope="session")
def finished_sweep(tiny_checkpoints, tmp_path_factory) -> tuple[Path, dict]:
    """The small sweep (`sweep_config`) run through the real workflow once per session, one thread per
    inference job (`ONE_THREAD_INFERENCE`; reruns compared with it use it too): (workdir, config).
    Tests that change its folder say so (test_workflow.py adds tasks late); others work on a copy."""
    workdir = tmp_path_factory.mktemp("sweep")
    config = sweep_config(tiny_checkpoints)
    result = snakemake(workdir, config, *ONE_THREAD_INFERENCE)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, config


def snakemake_all(runs: list[tuple[Path, dict, tuple[str, ...]]]) -> list[subprocess.CompletedProcess]:
    """`snakemake(workdir, config, *args)` for each run, as many at a time as this machine has cores (for
    runs that only parse the Snakefile, one core each); the finished processes in the order of `runs`."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda run: snakemake(run[0], run[1], *run[2]), runs))


def engine_stats(workdir: Path, model: str) -> list[dict]:
    import json

    path = workdir / "logs" / "inference" / f"{model}.stats.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def infer_command(tmp_path: Path, manifest: dict, prompt_file: Path, out: Path) -> list[str]:
    """The arguments of `emergence infer` (for `run_cli`) for model tiny-a on one prompts file, its manifest
    written beside it; the settings JSON goes last (the arguments end with --settings)."""
    import json

    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return [
        "infer", "--model", "tiny-a", "--manifest", str(tmp_path / "manifest.json"),
        "--prompts", str(prompt_file), "--out", str(out), "--engine", "vllm", "--cache-dir", str(tmp_path / "cache"),
        "--chunk-size", "8", "--stats", str(tmp_path / "stats.jsonl"), "--settings",
    ]  # fmt: skip


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`emergence ARGV` run by `cli.main` in this process, as `python -m emergence` runs it, without the
    5-20 s a fresh interpreter takes to import the package's libraries (vLLM's the most): the exit status
    and what it printed, (status, stdout, stderr). Use with the `root_logging` fixture (`cli.main` points
    the root logger at the captured stderr)."""
    from emergence import cli

    capsys.readouterr()
    try:
        cli.main(argv)
        status = 0
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


class Collect(logging.Handler):
    """Keeps the messages logged to the logger it is added to."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def logged():
    """The messages the package logs (logger "emergence" and its children, INFO and above) during a test."""
    handler = Collect()
    logger = logging.getLogger("emergence")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.messages
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def root_logging():
    """`cli.main` points the root logger at the captured stderr; put its handlers and level back afterwards."""
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)
