"""Model sources: a hub repo from a pre-populated Hugging Face cache (offline), local folders, manifests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from emergence.models import ModelError, count_parameters, materialise

SHA = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(root, checkpoint):
    """Lay out `checkpoint` as huggingface_hub caches a download of tiny-org/tiny-llama at SHA."""
    repo = root / "models--tiny-org--tiny-llama"
    shutil.copytree(checkpoint, repo / "snapshots" / SHA)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    return root


def error_lines(result) -> list[str]:
    """The `error:` lines a CLI run wrote to stderr; a traceback there fails the test."""
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def run_model_cli(tmp_path, cache, entry, *options):
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "manifest.json"
    command = [
        sys.executable,
        "-m",
        "emergence",
        "model",
        "--name",
        "m",
        "--entry",
        json.dumps(entry),
        "--seed",
        "0",
        "--out",
        str(out),
        *options,
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300), out


@pytest.mark.parametrize("revision", [SHA, "main"])
def test_hub_model_resolves_from_the_cache_offline(tiny_checkpoints, tmp_path, revision):
    cache = hub_cache(tmp_path / "hf", tiny_checkpoints["tiny-a"])
    result, out = run_model_cli(tmp_path, cache, {"source": "hub", "repo": "tiny-org/tiny-llama", "revision": revision})
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = json.loads(out.read_text())
    assert manifest["sha"] == SHA and manifest["revision"] == revision
    assert manifest["path"].endswith(f"snapshots/{SHA}")
    assert manifest["n_params"] == count_parameters(tiny_checkpoints["tiny-a"])["n_params"]


def test_a_branch_is_pinned_in_the_lock_file_at_first_download_and_reused(tiny_checkpoints, tmp_path):
    cache = hub_cache(tmp_path / "hf", tiny_checkpoints["tiny-a"])
    lock = tmp_path / "sweep.lock.yaml"
    entry = {"source": "hub", "repo": "tiny-org/tiny-llama", "revision": "main"}
    first, out = run_model_cli(tmp_path, cache, entry, "--revision-lock", str(lock))
    assert first.returncode == 0, first.stdout + first.stderr
    assert yaml.safe_load(lock.read_text()) == {"tiny-org/tiny-llama@main": SHA}
    assert json.loads(out.read_text())["locked"] is False

    newer = "f" * 40  # the branch moves on upstream
    shutil.copytree(tiny_checkpoints["tiny-b"], cache / "models--tiny-org--tiny-llama" / "snapshots" / newer)
    (cache / "models--tiny-org--tiny-llama" / "refs" / "main").write_text(newer)
    again, out = run_model_cli(tmp_path, cache, entry, "--revision-lock", str(lock))
    assert (
        again.returncode == 0
        and json.loads(out.read_text())["sha"] == SHA
        and json.loads(out.read_text())["locked"] is True
    )
    unlocked, out = run_model_cli(tmp_path, cache, entry)
    assert unlocked.returncode == 0 and json.loads(out.read_text())["sha"] == newer

    lock.write_text("tiny-org/tiny-llama@main: not-a-commit\n")
    broken, out = run_model_cli(tmp_path, cache, entry, "--revision-lock", str(lock))
    assert broken.returncode == 1 and error_lines(broken) == [
        f"error: revision lock {lock}: every entry must be repo@revision: <40-hex commit>"
    ]


def test_unknown_hub_repo_offline_fails_with_one_line(tmp_path):
    result, out = run_model_cli(
        tmp_path, tmp_path / "empty-cache", {"source": "hub", "repo": "tiny-org/absent", "revision": "main"}
    )
    assert result.returncode == 1 and not out.exists()
    assert error_lines(result) == [
        "error: model m: tiny-org/absent@main is not in the Hugging Face cache and the hub cannot be reached"
        " (HF_HUB_OFFLINE is set or there is no network)"
    ]


def test_parameter_counts_separate_embeddings(tiny_checkpoints):
    counts = count_parameters(tiny_checkpoints["tiny-a"])
    vocab, hidden = 259, 64  # byte tokenizer: 256 bytes + 3 specials; untied input and output embeddings
    assert counts["n_params"] - counts["n_params_non_embedding"] == 2 * vocab * hidden


def test_tiny_models_are_built_deterministically(tmp_path):
    spec = {"source": "tiny_random", "hidden_size": 64, "num_layers": 1, "num_heads": 2}
    first = materialise("t", spec, tmp_path / "a" / "manifest.json", seed=0)
    second = materialise("t", spec, tmp_path / "b" / "manifest.json", seed=0)
    other = materialise("t", spec, tmp_path / "c" / "manifest.json", seed=1)
    assert first["file_sha256"] == second["file_sha256"] and first["sha"] == second["sha"]
    assert first["file_sha256"]["model.safetensors"] != other["file_sha256"]["model.safetensors"]


def test_local_checkpoint_without_weights_is_refused(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"has no \*.safetensors weights"):
        materialise("broken", {"source": "local", "path": str(tmp_path / "ckpt")}, tmp_path / "manifest.json", seed=0)
    assert not (tmp_path / "manifest.json").exists()
