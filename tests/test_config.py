"""Bad sweeps are refused before any job runs, with one line naming the key; the workflow lints clean."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, SWEEP_METRICS, snakemake, snakemake_all, sweep_config

DEFAULT = yaml.safe_load((REPO / "config/config.yaml").read_text())


def refused(tmp_path, config) -> str:
    return refusal(tmp_path, snakemake(tmp_path, config))


def refusal(workdir, result) -> str:
    """The one `config error:` line of a Snakemake run in `workdir` that stopped before any job."""
    assert result.returncode != 0
    assert not (workdir / "results").exists()
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("config error:")]
    assert len(errors) == 1, result.stdout + result.stderr
    return errors[0]


BAD_CONFIGS = [  # (change to a valid sweep, the message its one line must hold)
    (lambda c: c.update(modles=c.pop("models")), "'modles' was unexpected"),
    (lambda c: c["engine"].update(dtype="float64"), "engine.dtype: 'float64' is not one of"),
    (
        lambda c: c["tasks"]["addition"].update(n_tset=3),
        "tasks.addition: Additional properties are not allowed ('n_tset'",
    ),
    (
        lambda c: c["models"].update(ghost={"source": "local", "path": "/no/such/checkpoint"}),
        "models.ghost.path: model ghost: checkpoint folder /no/such/checkpoint does not exist",
    ),
    (lambda c: c["tasks"]["addition"].update(n_test=0), "tasks.addition.n_test: task addition has zero test items"),
    (
        lambda c: c["methods"].update(few={"kind": "few_shot", "k": 9}),
        "methods.few.k: 9 exemplars need n_train >= 9",
    ),
    (
        lambda c: c.update(training={**DEFAULT["training"], "seq_len": 64}),
        "training.seq_len: 64 is shorter than the longest curriculum line (155 tokens)",
    ),
    (lambda c: c["metrics"].append("bleu"), f"metrics.{len(SWEEP_METRICS)}: 'bleu' is not one of"),
    (
        lambda c: c["figures"].update(metric="char_edit_distance_x"),
        "figures.metric: char_edit_distance_x is not among the scored metrics",
    ),
    (lambda c: c["figures"].update(method="cot"), "figures.method: cot is not a configured method (zero_shot)"),
    (
        lambda c: c["tasks"].update(noisy={"kind": "variant", "of": "division", "shift": "typos"}),
        "tasks.noisy.of: division is not a configured task to shift",
    ),
    (
        lambda c: c["methods"].update(sc={"kind": "self_consistency", "k": 1}),
        "methods.sc: self_consistency samples several chains: set n >= 2 and a temperature > 0",
    ),
    (
        lambda c: c["tasks"].update(gsm={"kind": "gsm8k", "n_test": 5}),
        "tasks.gsm: 'revision' is a required property",
    ),
    (
        lambda c: c["fitting"].update(confidence_level=1.5),
        "fitting.confidence_level: 1.5 is greater than or equal to the maximum of 1",
    ),
]


@pytest.fixture(scope="module")
def bad_config_runs(tmp_path_factory) -> list[tuple]:
    """Snakemake on each of BAD_CONFIGS, as many at a time as the machine has cores (each run only parses
    the Snakefile, on one core): (workdir, finished process) in the list's order."""
    runs = []
    for change, _ in BAD_CONFIGS:
        config = sweep_config({"tiny": REPO})  # never used: the run stops before any job
        config["models"] = {}
        config["models"]["tiny"] = {"source": "tiny_random", "hidden_size": 64, "num_layers": 1, "num_heads": 2}
        change(config)
        runs.append((tmp_path_factory.mktemp("bad-config"), config, ()))
    return [(run[0], result) for run, result in zip(runs, snakemake_all(runs))]


@pytest.mark.parametrize("case", range(len(BAD_CONFIGS)), ids=[message for _, message in BAD_CONFIGS])
def test_bad_config_fails_with_one_line(bad_config_runs, case):
    workdir, result = bad_config_runs[case]
    assert BAD_CONFIGS[case][1] in refusal(workdir, result)


def test_checkpoint_folder_without_weights_is_refused(tmp_path):
    folder = tmp_path / "empty-checkpoint"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    config = sweep_config({"broken": folder})
    assert "has no *.safetensors weights" in refused(tmp_path / "run", config)


def test_default_config_follows_the_schema():
    from emergence.config import check_config, schema_problem

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert schema_problem(config, REPO / "config/schema.yaml") is None
    check_config(config)


def test_the_longest_training_is_scheduled_first():
    """Snakemake starts the ready job of highest priority: the default's largest size first, then the next
    ones on the cores left; a ladder rung's own `tokens` scales its cost."""
    from emergence.plan import training_priority

    order = sorted(DEFAULT["models"], key=lambda model: -training_priority(DEFAULT, model))
    assert order == ["tiny-1.1m", "tiny-490k", "tiny-160k", "tiny-33k"]
    ladder = yaml.safe_load((REPO / "config/sweeps/tiny_ladder.yaml").read_text())
    assert training_priority(ladder, "tiny-345k-d500k") * 4 == pytest.approx(training_priority(ladder, "tiny-345k"))
    rungs = [model for model in ladder["models"] if model != "tiny-1.1m"]
    assert training_priority(ladder, "tiny-1.1m") > max(training_priority(ladder, rung) for rung in rungs)


@pytest.mark.parametrize("text,written", [("3e11", "3.0e+11"), ("6.4e10", "6.4e+10"), ("1E-3", "1.0e-03")])
def test_a_number_yaml_reads_as_text_is_refused_with_how_to_write_it(text, written):
    """PyYAML (YAML 1.1) reads 3e11 as a string: the schema's refusal says how to write the number."""
    from emergence.config import schema_problem

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["fitting"]["huber_delta"] = yaml.safe_load(f"x: {text}")["x"]
    assert config["fitting"]["huber_delta"] == text  # what YAML makes of it
    problem = schema_problem(config, REPO / "config/schema.yaml")
    assert problem == (
        f"fitting.huber_delta: '{text}' is not of type 'number' (YAML reads {text} as text: write {written},"
        " with a point and the exponent's sign)"
    )
    config["fitting"]["huber_delta"] = "often"  # text that is no number: no hint
    assert schema_problem(config, REPO / "config/schema.yaml") == "fitting.huber_delta: 'often' is not of type 'number'"


def test_a_count_written_as_a_float_is_refused_with_how_to_write_it():
    """3.0e+11 is a float to YAML: a count (an integer in the schema) must be written whole."""
    from emergence.config import schema_problem

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["training"]["tokens"] = yaml.safe_load("x: 4.0e+6")["x"]
    assert schema_problem(config, REPO / "config/schema.yaml") == (
        "training.tokens: 4000000.0 is not of type 'integer' (write 4000000: with a point or an exponent a number"
        " is read as a float)"
    )


def test_threshold_on_an_all_or_nothing_metric_is_a_config_error():
    from emergence.config import ConfigError, check_config

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["metrics"].append("exact_match>=0.5")
    expected = r"^metrics: metric 'exact_match>=0.5': exact_match is already all-or-nothing"
    with pytest.raises(ConfigError, match=expected):
        check_config(config)


def test_lint_reports_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_malformed_yaml_is_refused_before_any_job(tmp_path):
    (tmp_path / "sweep.yaml").write_text("seed: 0\nmodels: {tiny: [1,\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "sweep.yaml"),
            "--cores",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and not (tmp_path / "results").exists()
    assert "Config file is not valid JSON or YAML" in result.stderr


@pytest.mark.parametrize("sweep, models, gpus", [("pythia", 16, {1}), ("qwen2.5", 7, {1, 2, 4})])
def test_production_sweeps_follow_the_schema_and_plan_one_inference_job_per_model(tmp_path, sweep, models, gpus):
    from emergence.config import check_config, schema_problem

    config = yaml.safe_load((REPO / f"config/sweeps/{sweep}.yaml").read_text())
    assert schema_problem(config, REPO / "config/schema.yaml") is None
    check_config(config)
    assert {m["resources"]["gpus"] for m in config["models"].values()} == gpus
    assert all(
        m["training_tokens"] and m["non_embedding_parameters"] < m["parameters"] for m in config["models"].values()
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(REPO / f"config/sweeps/{sweep}.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, re.M))
    assert int(counts["inference"]) == int(counts["model"]) == models


def test_planning_the_default_sweep_loads_no_engine_plotting_or_scoring_library():
    """What rules/common.smk does at parse time, in a fresh interpreter: heavy libraries stay unloaded."""
    code = (
        "import sys, yaml\n"
        "from snakemake.utils import validate\n"
        "from emergence.config import check_config\n"
        "from emergence.io import unreadable_parquet\n"
        "from emergence.plan import engine_settings, plan\n"
        f"config = yaml.safe_load(open({str(REPO / 'config' / 'config.yaml')!r}))\n"
        f"validate(config, {str(REPO / 'config' / 'schema.yaml')!r})\n"
        "check_config(config)\n"
        "sweep = plan(config)\n"
        "assert sweep.pairs and sweep.figures and engine_settings(config, sweep.models[0])['dtype']\n"
        "print(sorted(m for m in ('vllm', 'torch', 'matplotlib', 'rapidfuzz', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_schema_names_exactly_the_registered_kinds():
    """A kind registered but missing from the schema (or named in the schema with nothing behind it) fails here."""
    from emergence.engines import ENGINES
    from emergence.methods import PROMPT_METHODS
    from emergence.scoring.answers import FILTERS
    from emergence.scoring.metrics import METRICS, SAMPLED
    from emergence.sources import SOURCES
    from emergence.tasks import TASK_KINDS

    properties = yaml.safe_load((REPO / "config/schema.yaml").read_text())["properties"]

    def enum(*path: str) -> set[str]:
        node = properties
        for key in path:
            node = node[key]
        return set(node["enum"])

    task_kinds = enum("tasks", "additionalProperties", "properties", "kind")
    assert task_kinds == set(TASK_KINDS)
    assert enum("methods", "additionalProperties", "properties", "kind") == set(PROMPT_METHODS)
    metrics = properties["metrics"]["items"]["anyOf"]
    assert set(metrics[0]["enum"]) == set(METRICS)
    assert metrics[1]["pattern"] == f"^({'|'.join(SAMPLED)})@k(:({'|'.join(FILTERS)}))?$"
    assert enum("engine", "properties", "name") == set(ENGINES)
    assert enum("models", "additionalProperties", "properties", "source") == set(SOURCES)
