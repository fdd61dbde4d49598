"""The Hugging Face transformers engine: the reference that vLLM is checked against.

Plain autoregressive decoding with the model's own forward pass, one request at a time. In fp32 on
the same checkpoint its greedy outputs and log-probabilities must equal vLLM's (tests/test_inference.py).
It also serves users without vLLM; sampled outputs (temperature > 0) follow the same distribution
as vLLM's but not the same draws.
"""

from __future__ import annotations

from emergence.engines import Request, Result, decode_sample, engine_version, split_target


class HFEngine:
    name = "hf"

    def __init__(self, checkpoint: str, settings: dict):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.version = engine_version("hf")
        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        self.model = AutoModelForCausalLM.from_pretrained(
            checkpoint,
            dtype=getattr(torch, settings["dtype"]),
            trust_remote_code=settings.get("trust_remote_code", False),
        ).eval()
        self.eos = self.tokenizer.eos_token_id
        self.target_logprobs = settings.get("target_logprobs", True)  # False: no metric reads them
        self.sample_logprobs = settings.get("sample_logprobs", True)

    def run(self, requests: list[Request]) -> list[Result]:
        with self.torch.inference_mode():
            return [self._answer(request) for request in requests]

    def _answer(self, request: Request) -> Result:
        target = split_target(self.tokenizer, request.prompt, request.target)  # first: EmptyContext before any work
        prompt_ids = self.tokenizer.encode(request.prompt)
        samples = [self._sample(prompt_ids, request, draw) for draw in range(request.n)]
        forced = self._forced(*target) if self.target_logprobs else []
        choices = [sum(self._forced(*split_target(self.tokenizer, request.prompt, c))) for c in request.choices]
        return Result(
            texts=[s[0] for s in samples],
            token_ids=[s[1] for s in samples],
            token_logprobs=[s[2] if self.sample_logprobs else [] for s in samples],
            finish_reasons=[s[3] for s in samples],
            target_token_ids=target[1],
            target_logprobs=forced,
            prompt_tokens=len(prompt_ids),
            choice_logprobs=choices,
        )

    def _forced(self, context: list[int], target: list[int]) -> list[float]:
        """log P of each target token after the context, teacher-forced in one forward pass."""
        logits = self.model(self.torch.tensor([context + target])).logits[0].float()
        logprobs = self.torch.log_softmax(logits, dim=-1)
        return [logprobs[len(context) + i - 1, token].item() for i, token in enumerate(target)]

    def _sample(self, prompt_ids: list[int], request: Request, draw: int):
        """Decode one continuation; stop at EOS, at a stop string (cut from the text) or at max_tokens."""
        torch = self.torch
        generator = torch.Generator().manual_seed(request.seed + draw)
        ids, logprobs, past = [], [], None
        step_input = torch.tensor([prompt_ids])
        reason = "length"
        for _ in range(request.max_tokens):
            out = self.model(input_ids=step_input, past_key_values=past, use_cache=True)
            past = out.past_key_values
            step_logprobs = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            token = self._choose(step_logprobs, request, generator)
            ids.append(token)
            logprobs.append(step_logprobs[token].item())
            step_input = torch.tensor([[token]])
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            if token == self.eos or any(s in text for s in request.stop):
                reason = "stop"
                break
        text = decode_sample(self.tokenizer, ids, request.stop)
        return text, ids, logprobs, reason

    def _choose(self, logprobs, request: Request, generator) -> int:
        torch = self.torch
        if request.temperature == 0:
            return int(torch.argmax(logprobs))
        probs = torch.softmax(logprobs / request.temperature, dim=-1)
        ordered, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(ordered, dim=-1) - ordered < request.top_p
        ordered = ordered * keep
        return int(order[torch.multinomial(ordered / ordered.sum(), 1, generator=generator)])
