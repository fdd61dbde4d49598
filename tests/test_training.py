"""The tiny family's training: deterministic, never sees an evaluation item, never re-run for evaluation changes."""

from __future__ import annotations

import random

import yaml

from conftest import REPO, snakemake
from emergence.tasks import build_task
from emergence.training import curriculum, train_tiny_family_member

TRAINING = {
    "tokens": 12000,
    "eval_tokens": 3000,
    "eval_points": 3,
    "seq_len": 128,
    "batch_size": 8,
    "threads": 1,
    "operations": ["addition", "subtraction", "multiplication"],
    "max_digits": 2,
    "scratchpad_fraction": 0.5,
    "warmup_fraction": 0.1,
}
SMALLEST = {"source": "trained_tiny", "hidden_size": 32, "num_layers": 1, "num_heads": 1, "learning_rate": 0.004}


def test_training_the_smallest_size_twice_gives_identical_weights(tmp_path):
    first = train_tiny_family_member(tmp_path / "a", SMALLEST, TRAINING, seed=0)
    second = train_tiny_family_member(tmp_path / "b", SMALLEST, TRAINING, seed=0)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert first["curve"] == second["curve"] and len(first["curve"]) == 3
    assert first["curve"][-1]["tokens"] == first["training_tokens"] >= TRAINING["tokens"]
    assert first["curve"][-1]["heldout_loss"] < first["curve"][0]["heldout_loss"]  # it learns
    other = train_tiny_family_member(tmp_path / "c", SMALLEST, TRAINING, seed=1)
    assert (tmp_path / "c" / "model.safetensors").read_bytes() != (tmp_path / "a" / "model.safetensors").read_bytes()
    assert other["curve"] != first["curve"]


def test_a_ladder_rung_trains_on_its_own_budget(tmp_path):
    """An entry's `tokens` replaces `training.tokens` for that size alone (the tiny ladder's budgets)."""
    record = train_tiny_family_member(tmp_path / "a", {**SMALLEST, "tokens": 6000}, TRAINING, seed=0)
    assert 6000 <= record["training_tokens"] < 6000 + TRAINING["seq_len"] * TRAINING["batch_size"]
    assert record["training"]["tokens"] == 6000 and record["steps"] < 12000 // (128 * 8) + 1


def test_evaluation_items_never_appear_in_the_curriculum():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    lines = set(curriculum(random.Random("0/train"), {**config["training"], "max_digits": 2}, 400_000, heldout=False))
    assert len(lines) > 5000
    plain = {line.split("=")[0] for line in lines}
    worked = {line.removeprefix("S:").split("=")[0] for line in lines if line.startswith("S:")}
    assert any(len(p) == 3 for p in plain)  # one-digit problems are in the curriculum ...
    for name, spec in config["tasks"].items():
        if spec["kind"] != "synthetic_arithmetic":
            continue
        test = build_task(name, {**spec, "digits": [1, 2]}, 0).query("split == 'test'")
        questions = {text.removesuffix("=") for text in test["input"]}
        assert not questions & plain and not questions & worked  # ... but never an evaluation item


def test_changing_only_evaluation_settings_retrains_nothing(tmp_path):
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["models"] = {"tiny": SMALLEST}
    config["training"] = TRAINING
    config["tasks"] = {"addition": {**config["tasks"]["addition"], "digits": [1], "n_test": 4}}
    config["methods"] = {"zero_shot": {"kind": "zero_shot"}}
    config["figures"]["method"] = None  # the first method
    first = snakemake(tmp_path, config, "--until", "model")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert (tmp_path / "results/training/tiny/training.json").exists()
    again = snakemake(tmp_path, config, "--dry-run")
    assert "train_tiny" not in again.stdout
    config["tasks"]["addition"]["n_test"] = 6
    config["methods"]["few_shot_2"] = {"kind": "few_shot", "k": 2}
    config["metrics"] = ["exact_match"]
    changed = snakemake(tmp_path, config, "--dry-run")
    assert changed.returncode == 0 and "rule inference" in changed.stdout
    assert "train_tiny" not in changed.stdout and "rule model:" not in changed.stdout
    config["training"] = {**TRAINING, "tokens": 13000}
    retrain = snakemake(tmp_path, config, "--dry-run")
    assert "rule train_tiny" in retrain.stdout
