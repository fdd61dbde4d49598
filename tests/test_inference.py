"""Inference with the real vLLM engine: parity with transformers, the request cache, resuming a killed job."""

from __future__ import annotations

import gc
import json
import re
from dataclasses import replace

import pytest

from conftest import infer_command, run_cli, sweep_config
from emergence import io
from emergence.engines import Request, load_engine
from emergence.engines.vllm import cpu_kv_cache_bytes
from emergence.inference import InferenceJob, RequestCache, run_inference
from emergence.methods import build_prompts
from emergence.tasks import build_task


@pytest.fixture(autouse=True)
def release_engines():
    """Tear down each test's engines before the next test loads one: an engine collected later
    would reset vLLM's process-wide parallel state under the next engine's feet."""
    yield
    gc.collect()


SETTINGS = {"dtype": "float32", "max_model_len": 256, "memory_fraction": 0.3, "tensor_parallel_size": 1, "seed": 0}


def requests(n_test: int = 6) -> list[Request]:
    items = build_task(
        "addition",
        {"kind": "synthetic_arithmetic", "operation": "addition", "digits": [1, 2, 3], "n_test": n_test, "n_train": 4},
        0,
    )
    return [
        Request(
            prompt=row.prompt, target=row.target, max_tokens=8, temperature=0.0, top_p=1.0, n=1, seed=1, stop=("\n",)
        )
        for row in build_prompts(
            "addition",
            items,
            "few_shot_2",
            {"kind": "few_shot", "k": 2},
            {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0, "stop": ["\n"]},
            0,
        ).itertuples()
    ]


def test_the_cpu_kv_cache_holds_what_the_engine_runs_at_once_and_no_more(tiny_checkpoints, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    checkpoint = str(tiny_checkpoints["tiny-c"])
    config = json.loads((tiny_checkpoints["tiny-c"] / "config.json").read_text())
    per_position = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * config["head_dim"] * 4  # fp32
    assert cpu_kv_cache_bytes(checkpoint, SETTINGS) == 256 * 256 * per_position  # 256 sequences of 256 positions
    assert cpu_kv_cache_bytes(checkpoint, {**SETTINGS, "max_num_seqs": 8, "max_model_len": 40}) == 8 * 64 * per_position
    assert cpu_kv_cache_bytes(checkpoint, {**SETTINGS, "dtype": "auto"}) is None  # vLLM's own share of memory
    assert cpu_kv_cache_bytes(checkpoint, {**SETTINGS, "memory_fraction": 1e-9}) is None
    engine = load_engine("vllm", checkpoint, SETTINGS)
    assert engine.llm.llm_engine.vllm_config.cache_config.kv_cache_memory_bytes == 256 * 256 * per_position
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    assert cpu_kv_cache_bytes(checkpoint, SETTINGS) is None


def test_vllm_and_transformers_agree_in_fp32(tiny_checkpoints):
    checkpoint = str(tiny_checkpoints["tiny-c"])
    batch = requests()
    vllm_results = load_engine("vllm", checkpoint, SETTINGS).run(batch)
    hf_results = load_engine("hf", checkpoint, SETTINGS).run(batch)
    for ours, reference in zip(vllm_results, hf_results):
        assert ours.texts == reference.texts
        assert ours.token_ids == reference.token_ids
        assert ours.finish_reasons == reference.finish_reasons
        assert ours.target_token_ids == reference.target_token_ids
        assert ours.target_logprobs == pytest.approx(reference.target_logprobs, abs=1e-4)
        assert ours.token_logprobs[0] == pytest.approx(reference.token_logprobs[0], abs=1e-4)
    # the model is not trivially uniform: a wrong position would change these numbers
    assert max(abs(a - b) for r in vllm_results for a, b in zip(r.target_logprobs, r.target_logprobs[1:])) > 1e-3


def test_multiple_choice_log_probabilities(tiny_checkpoints):
    """Each choice is scored as a teacher-forced continuation; the engines agree, and a choice equal to
    the target scores as the target."""
    from dataclasses import replace

    checkpoint = str(tiny_checkpoints["tiny-c"])
    batch = [replace(r, choices=(r.target, r.target + "0", " 7")) for r in requests(2)] + requests(1)
    vllm_results = load_engine("vllm", checkpoint, SETTINGS).run(batch)
    hf_results = load_engine("hf", checkpoint, SETTINGS).run(batch)
    for request, ours, reference in zip(batch, vllm_results, hf_results):
        assert len(ours.choice_logprobs) == len(request.choices)
        assert ours.choice_logprobs == pytest.approx(reference.choice_logprobs, abs=1e-4)
        if request.choices:
            assert ours.choice_logprobs[0] == pytest.approx(sum(ours.target_logprobs), abs=1e-5)
            assert ours.choice_logprobs[1] < ours.choice_logprobs[0]  # a longer continuation costs more
    assert vllm_results[-1].choice_logprobs == []  # no choices, nothing scored


def test_a_target_the_model_generated_is_scored_like_any_other(tiny_checkpoints):
    """Two shortcuts of teacher forcing agree with transformers: a greedy sample that begins with the
    target gives the target's log-probs itself, and a teacher-forced prompt whose target the prefix
    cache already holds (a sampled answer equal to the target; vLLM leaves the log-probs of cached
    positions unset) is sent again without the cache."""
    from dataclasses import replace

    checkpoint = str(tiny_checkpoints["tiny-c"])
    engine = load_engine("vllm", checkpoint, SETTINGS)
    # prompts of 16-34 tokens and 16 more generated: the cached blocks of 32 tokens reach into the target
    batch = [
        replace(r, max_tokens=16, stop=(), temperature=temperature) for r in requests(6) for temperature in (0.0, 0.8)
    ]
    generated = engine.run(batch)
    batch = [replace(r, target=result.texts[0]) for r, result in zip(batch, generated)]  # seeded: sampled again alike
    ours = engine.run(batch)
    assert engine.counts["targets_from_samples"] > 0 and engine.counts["forced_again"] > 0  # both paths were taken
    reference = load_engine("hf", checkpoint, SETTINGS).run(batch)
    for result, expected in zip(ours, reference):
        assert result.target_token_ids == expected.target_token_ids
        assert result.target_logprobs == pytest.approx(expected.target_logprobs, abs=1e-4)


def test_log_probabilities_are_computed_only_when_a_metric_reads_them(tiny_checkpoints):
    from dataclasses import replace

    from emergence.plan import engine_outputs

    assert engine_outputs(["exact_match", "maj@k", "token_edit_distance"]) == {
        "target_logprobs": False,
        "sample_logprobs": False,
    }
    assert engine_outputs(["exact_match", "per_token_prob", "brier_binary"]) == {
        "target_logprobs": True,
        "sample_logprobs": True,
    }
    checkpoint = str(tiny_checkpoints["tiny-c"])
    batch = [replace(r, choices=(r.target, " 7")) for r in requests(2)]
    full = load_engine("vllm", checkpoint, SETTINGS).run(batch)
    gc.collect()
    for engine in ("vllm", "hf"):
        for targets, samples in ((False, False), (False, True), (True, False)):
            lean = load_engine(
                engine, checkpoint, {**SETTINGS, "target_logprobs": targets, "sample_logprobs": samples}
            ).run(batch)
            gc.collect()
            for a, b in zip(full, lean):
                assert (b.texts, b.token_ids, b.target_token_ids) == (a.texts, a.token_ids, a.target_token_ids)
                assert b.choice_logprobs == pytest.approx(a.choice_logprobs, abs=1e-4)  # choices are always scored
                assert b.target_logprobs == (pytest.approx(a.target_logprobs, abs=1e-4) if targets else [])
                assert b.token_logprobs[0] == (pytest.approx(a.token_logprobs[0], abs=1e-4) if samples else [])
                assert a.target_logprobs and a.token_logprobs[0]  # what the lean runs leave out is there by default


class KilledAfter:
    """Wraps the real engine and dies (as a SIGKILL would, or with `error`) after answering `chunks` chunks."""

    def __init__(self, chunks: int, error: BaseException | None = None):
        self.chunks, self.engine, self.sent, self.settings = chunks, None, 0, None
        self.error = error if error is not None else KeyboardInterrupt("killed")

    def __call__(self, name, checkpoint, settings):
        self.engine = load_engine(name, checkpoint, settings)
        self.name, self.version, self.tokenizer, self.settings = (
            self.engine.name,
            self.engine.version,
            self.engine.tokenizer,
            settings,
        )
        return self

    def run(self, batch):
        if self.chunks == 0:
            raise self.error
        self.chunks -= 1
        self.sent += len(batch)
        return self.engine.run(batch)


def test_killed_job_resumes_with_only_uncached_requests(tiny_checkpoints, tmp_path):
    config = sweep_config(tiny_checkpoints)
    items = build_task("addition", config["tasks"]["addition"], 0)
    prompt_file = tmp_path / "prompts.parquet"
    io.write_table(
        build_prompts("addition", items, "zero_shot", {"kind": "zero_shot"}, config["sampling"], 0),
        prompt_file,
        "prompts",
    )
    manifest = {"sha": "test-sha", "path": str(tiny_checkpoints["tiny-a"])}
    out, stats = tmp_path / "generations.parquet", tmp_path / "stats.jsonl"
    job = InferenceJob("tiny-a", manifest, "vllm", {**config["engine"], "seed": 0}, tmp_path / "cache", 5, stats)
    args = (job, [str(prompt_file)], [str(out)])

    killed = KilledAfter(chunks=2)
    with pytest.raises(KeyboardInterrupt):
        run_inference(replace(job, engine_factory=killed), *args[1:])
    assert killed.sent == 10 and not out.exists()
    assert len(RequestCache(tmp_path / "cache").load()) == 10

    resumed = run_inference(*args)
    assert resumed == {**resumed, "requests": 18, "cached": 10, "sent": 8, "engine_loads": 1}
    uninterrupted = tmp_path / "uninterrupted.parquet"
    run_inference(replace(job, cache_dir=tmp_path / "fresh", chunk_size=18), [str(prompt_file)], [str(uninterrupted)])
    assert io.read_table(out, "generations").equals(io.read_table(uninterrupted, "generations"))

    again = run_inference(*args)
    assert again["sent"] == 0 and again["engine_loads"] == 0  # everything cached: the engine is not loaded


def test_out_of_memory_is_retried_with_smaller_settings_keeping_finished_chunks(tiny_checkpoints, tmp_path):
    import torch

    from emergence.inference import EngineOutOfMemory, attempt_settings

    config = sweep_config(tiny_checkpoints)
    items = build_task("addition", config["tasks"]["addition"], 0)
    prompt_file = tmp_path / "prompts.parquet"
    io.write_table(
        build_prompts("addition", items, "zero_shot", {"kind": "zero_shot"}, config["sampling"], 0),
        prompt_file,
        "prompts",
    )
    manifest = {"sha": "test-sha", "path": str(tiny_checkpoints["tiny-b"])}
    settings = {**config["engine"], "seed": 0, "max_num_seqs": 64}
    out, stats = tmp_path / "generations.parquet", tmp_path / "stats.jsonl"
    job = InferenceJob("tiny-b", manifest, "vllm", settings, tmp_path / "cache", 4, stats)
    files = ([str(prompt_file)], [str(out)])

    first = KilledAfter(chunks=3, error=torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    with pytest.raises(EngineOutOfMemory, match=r"ran out of memory on attempt 1 .* 12 answers are cached"):
        run_inference(replace(job, engine_factory=first), *files)
    assert first.settings["max_num_seqs"] == 64 and not out.exists()

    second = KilledAfter(chunks=99)
    retried = run_inference(replace(job, engine_factory=second, attempt=2), *files)
    assert second.settings["max_num_seqs"] == 32 and second.settings["memory_fraction"] == pytest.approx(0.3 * 0.85)
    assert retried["cached"] == 12 and retried["sent"] == 6 == second.sent
    assert attempt_settings(settings, 3)["max_num_seqs"] == 16 and attempt_settings(settings, 1) == settings

    uninterrupted = tmp_path / "uninterrupted.parquet"
    run_inference(replace(job, cache_dir=tmp_path / "fresh", chunk_size=18), [str(prompt_file)], [str(uninterrupted)])
    assert io.read_table(out, "generations").equals(io.read_table(uninterrupted, "generations"))


def test_prompt_longer_than_the_context_fails_with_one_line_or_is_truncated_and_recorded(
    tiny_checkpoints, tmp_path, capsys, root_logging
):
    config = sweep_config(tiny_checkpoints)
    items = build_task("addition", config["tasks"]["addition"], 0)
    prompts = build_prompts("addition", items, "zero_shot", {"kind": "zero_shot"}, config["sampling"], 0)
    prompts.loc[3, "prompt"] = (
        "7+8=15\n" * 20 + prompts.loc[3, "prompt"]
    )  # 120 bytes of exemplars: over a 64-position context
    prompt_file = tmp_path / "prompts.parquet"
    io.write_table(prompts, prompt_file, "prompts")
    manifest = {"sha": "test-sha", "path": str(tiny_checkpoints["tiny-a"])}
    settings = {**config["engine"], "seed": 0, "max_model_len": 64}
    out = tmp_path / "generations.parquet"
    command = infer_command(tmp_path, manifest, prompt_file, out)
    status, _, stderr = run_cli([*command, json.dumps(settings)], capsys)
    request = prompts.loc[3, "request_id"]
    assert status == 1 and not out.exists()
    assert re.search(
        rf"^error: request addition/zero_shot/{request} needs 1\d\d context positions, "
        r"more than engine.max_model_len 64",
        stderr,
        re.M,
    )
    gc.collect()  # the failed job's engine goes before the next one loads

    status, stdout, stderr = run_cli([*command, json.dumps({**settings, "long_prompts": "truncate"})], capsys)
    assert status == 0, stdout + stderr[-2000:]
    generations = io.read_table(out, "generations").set_index("request_id")
    dropped = generations["prompt_tokens_dropped"]
    assert dropped[request] > 60 and (dropped.drop(request) == 0).all()
    assert generations.loc[request, "prompt_tokens"] + len(generations.loc[request, "target_token_ids"]) <= 64


def test_cache_key_changes_with_model_sha_and_request():
    from emergence.inference import request_key

    row = {
        "prompt": "1+1=",
        "target": "2",
        "max_tokens": 4,
        "temperature": 0.0,
        "top_p": 1.0,
        "n": 1,
        "seed": 3,
        "stop": ["\n"],
    }
    base = request_key("sha-a", "vllm", SETTINGS, row)
    assert base == request_key("sha-a", "vllm", {**SETTINGS, "memory_fraction": 0.9}, row)
    assert base != request_key("sha-b", "vllm", SETTINGS, row)
    assert base != request_key("sha-a", "hf", SETTINGS, row)
    assert base != request_key("sha-a", "vllm", {**SETTINGS, "dtype": "bfloat16"}, row)
    assert base != request_key("sha-a", "vllm", SETTINGS, {**row, "seed": 4})
    # answers without teacher-forced targets are cached apart; full answers keep the keys they had
    assert base == request_key("sha-a", "vllm", {**SETTINGS, "target_logprobs": True}, row)
    assert base != request_key("sha-a", "vllm", {**SETTINGS, "target_logprobs": False}, row)
    assert base != request_key("sha-a", "vllm", {**SETTINGS, "sample_logprobs": False}, row)


def test_seeded_sampling_survives_a_batch_larger_than_one_prefill(tiny_checkpoints):
    """Many long sampled prompts in one call: vLLM on CPUs crashed here while prompts were prefilled in pieces."""
    engine = load_engine("vllm", str(tiny_checkpoints["tiny-a"]), SETTINGS)
    batch = [
        Request(
            prompt="12+34=46\n" * (10 + i % 15),
            target=" 5",
            max_tokens=4,
            temperature=0.7,
            top_p=1.0,
            n=4,
            seed=i,
            stop=("\n\n",),
        )
        for i in range(400)
    ]
    results = engine.run(batch)
    assert len(results) == 400 and all(len(r.texts) == 4 for r in results)
    again = engine.run(batch[:5])
    assert [r.token_ids for r in again] == [r.token_ids for r in results[:5]]  # per-request seeds: the same draws
