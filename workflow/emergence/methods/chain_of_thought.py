"""`chain_of_thought` and `self_consistency`: exemplars with worked rationales, then the question."""

from __future__ import annotations

import json
import random

import pandas as pd

from emergence.methods import STRICT_ANSWER_REGEX, PromptError, PromptMethod, exemplars, prompt_method

CHAIN_STOP = ["\n\n", "\nQ:"]  # a chain ends at the blank line before the next question


def reasoning_steps(item) -> list[str]:
    """An item's worked steps: its rationale's lines (GSM8K), or its scratchpad's steps (arithmetic)."""
    meta = json.loads(item.metadata)
    if "rationale" in meta:
        return [line.strip() for line in meta["rationale"].splitlines() if line.strip()]
    if "scratchpad" in meta:
        return meta["scratchpad"][1:].split("]")[0].split(";")
    raise PromptError(f"item {item.item_id} has no rationale or scratchpad for chain-of-thought exemplars")


def chain(item) -> str:
    """One step a line, then the answer sentence: the exemplar (and teacher-forced) answer of a chain of thought."""
    return "\n".join([*reasoning_steps(item), f"The answer is {item.target}."])


def question(item) -> str:
    """The bare question, without a task's own prompt format (BIG-bench inputs carry "Q: ... A:")."""
    return json.loads(item.metadata).get("question", item.input)


def chain_prompt(shots: list, item) -> str:
    return "".join(f"Q: {question(shot)}\nA: {chain(shot)}\n\n" for shot in shots) + f"Q: {question(item)}\nA:"


@prompt_method
class ChainOfThought(PromptMethod):
    name = "chain_of_thought"
    answer_regex = STRICT_ANSWER_REGEX
    stop = CHAIN_STOP

    def prompts(self, test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
        """k exemplars with worked rationales, then the question (Wei et al. 2022b).

        Self-consistency (Wang et al. 2023) is the same prompt sampled n times in one request at a
        temperature; its majority vote is the maj@k metric, for every k up to n, from the same samples.
        """
        return [
            (chain_prompt(shots, item), " " + chain(item))
            for item, shots in exemplars(test, train, spec.get("k", 0), rng)
        ]


@prompt_method
class SelfConsistency(ChainOfThought):
    """The chain-of-thought prompt sampled n times in one request at a temperature (Wang et al. 2023)."""

    name = "self_consistency"
    samples = True
