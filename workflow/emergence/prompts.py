"""Prompting methods: how a task item becomes a request to the engine.

Each method is a small named function (registered by the `kind` it carries in the config) that turns
the test items of a task into prompt rows (see `io.SCHEMAS["prompts"]`). Sampling parameters are
always written out in full: an engine never falls back to its own defaults.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pandas as pd

from emergence.errors import EmergenceError
from emergence.registry import registrar

# A method returns, per test item, the prompt and the continuation to teacher-force after it.
PromptMethod = Callable[[pd.DataFrame, pd.DataFrame, dict, random.Random], list[tuple[str, str]]]
PROMPT_METHODS: dict[str, PromptMethod] = {}


class PromptError(EmergenceError, ValueError):
    """A prompting method that cannot be applied to a task."""


prompt_method = registrar(PROMPT_METHODS)

SEPARATOR = "\n"  # between exemplars, as between the lines of the training curriculum
SCRATCHPAD_CUE = "S:"  # opens a worked line
# Chain of thought (Wei et al. 2022b): "Q: ...\nA: <one step a line>\nThe answer is X." The strict
# rule reads X after "The answer is"; the flexible rule (metric flexible_exact_match) takes the last number.
STRICT_ANSWER_REGEX = r"[Tt]he answer is:?\s*\(?\$?(-?[\w,.]*\w)"
CHAIN_METHODS = ("chain_of_thought", "self_consistency", "complexity_based")
CHAIN_STOP = ["\n\n", "\nQ:"]  # a chain ends at the blank line before the next question
ANSWER_REGEX = {
    "scratchpad": r"\]([^\]]*)$",
    **{kind: STRICT_ANSWER_REGEX for kind in CHAIN_METHODS},
}  # scratchpad: after "]"


def task_format(item) -> tuple[str, str]:
    """A task's own prompt format: the prefix that opens the whole prompt and the separator between
    exemplars (BIG-bench's `task_prefix` and `few_shot_example_separator`); "" and SEPARATOR elsewhere."""
    meta = json.loads(item.metadata)
    return meta.get("task_prefix", ""), meta.get("separator", SEPARATOR)


@prompt_method("zero_shot")
def zero_shot(test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
    """The item's input alone, after its task's prefix."""
    return [(task_format(item)[0] + item.input, item.target) for item in test.itertuples()]


@prompt_method("few_shot")
def few_shot(test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
    """k solved exemplars, then the item (Brown et al. 2020), in the task's own format.

    `task_prefix + (shot input + shot target + separator) for each shot + item input`: BIG-bench's
    `make_nshot_dataset`, whose exemplars carry a target drawn at random where an example lists
    several; here they carry the first.
    """
    prompts = []
    for item, shots in exemplars(test, train, spec["k"], rng):
        prefix, separator = task_format(item)
        prompts.append(
            (prefix + "".join(f"{shot.input}{shot.target}{separator}" for shot in shots) + item.input, item.target)
        )
    return prompts


@prompt_method("scratchpad")
def scratchpad(test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
    """k worked exemplars, then the item with the scratchpad opened (Nye et al. 2021).

    Worked lines carry the `S:` cue that the trained family learned with its scratchpad lines; the
    model writes the steps, closes the bracket and gives the answer, which is read after the bracket.
    The teacher-forced continuation is the item's whole scratchpad.
    """
    prompts = []
    for item, shots in exemplars(test, train, spec.get("k", 0), rng):
        worked = "".join(f"{SCRATCHPAD_CUE}{shot.input}{_trace(shot)}{SEPARATOR}" for shot in shots)
        trace = _trace(item)
        prompts.append((f"{worked}{SCRATCHPAD_CUE}{item.input}[", trace[1:]))
    return prompts


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


@prompt_method("chain_of_thought")
@prompt_method("self_consistency")
def chain_of_thought(test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
    """k exemplars with worked rationales, then the question (Wei et al. 2022b).

    Self-consistency (Wang et al. 2023) is the same prompt sampled n times in one request at a
    temperature; its majority vote is the maj@k metric, for every k up to n, from the same samples.
    """
    return [
        (chain_prompt(shots, item), " " + chain(item)) for item, shots in exemplars(test, train, spec.get("k", 0), rng)
    ]


@prompt_method("complexity_based")
def complexity_based(test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
    """The k exemplars with the most reasoning steps in the pool of the item's digit count (Fu et al. 2023).

    Ties go to a seeded order. Sampled n times; the vote over the most complex sampled chains is the
    cmaj@k metric.
    """
    k, prompts = spec.get("k", 0), []
    pools = {digits: group for digits, group in train.groupby("digits")}
    for item in test.itertuples():
        pool = list(pools.get(item.digits, train.iloc[:0]).itertuples())
        order = {shot.item_id: rng.random() for shot in pool}
        ranked = sorted(pool, key=lambda shot: (-len(reasoning_steps(shot)), order[shot.item_id]))
        shots = [shot for shot in ranked if shot.input != item.input][:k]
        if len(shots) < k:
            raise PromptError(f"{k} exemplars need {k} train items with {item.digits} digits, found {len(shots)}")
        prompts.append((chain_prompt(shots, item), " " + chain(item)))
    return prompts


def exemplars(test: pd.DataFrame, train: pd.DataFrame, k: int, rng: random.Random):
    """Each test item with k exemplars drawn from the train pool of its digit count, never itself."""
    pools = {digits: group for digits, group in train.groupby("digits")}
    for item in test.itertuples():
        pool = pools.get(item.digits, train.iloc[:0])
        pool = pool[pool["input"] != item.input]
        if len(pool) < k:
            raise PromptError(f"{k} exemplars need {k} train items with {item.digits} digits, found {len(pool)}")
        yield item, list(pool.iloc[sorted(rng.sample(range(len(pool)), k))].itertuples())


def _trace(item) -> str:
    return json.loads(item.metadata)["scratchpad"]


def build_prompts(task: str, items: pd.DataFrame, method: str, spec: dict, sampling: dict, seed: int) -> pd.DataFrame:
    """Prompt rows for every test item of `task` under the configured `method`."""
    kind = spec["kind"]
    if kind not in PROMPT_METHODS:
        raise PromptError(f"method {method}: unknown kind {kind!r} (known: {sorted(PROMPT_METHODS)})")
    test = items[items["split"] == "test"].reset_index(drop=True)
    train = items[items["split"] == "train"].reset_index(drop=True)
    rng = random.Random(f"{seed}/{task}/{method}")
    try:
        prompts, targets = zip(*PROMPT_METHODS[kind](test, train, spec, rng)) if len(test) else ((), ())
    except PromptError as err:
        raise PromptError(f"method {method} on task {task}: {err}") from None
    return pd.DataFrame(
        {
            "request_id": [f"{task}/{method}/{item_id}" for item_id in test["item_id"]],
            "item_id": test["item_id"],
            "task": task,
            "method": method,
            "prompt": list(prompts),
            "target": list(targets),
            "answer": test["target"],
            "answers": [answers_of(m, target) for m, target in zip(test["metadata"], test["target"])],
            "answer_regex": [ANSWER_REGEX.get(kind) or output_regex(m) for m in test["metadata"]],
            "max_tokens": int(spec.get("max_tokens", sampling["max_tokens"])),
            "temperature": float(spec.get("temperature", sampling["temperature"])),
            "top_p": float(spec.get("top_p", sampling["top_p"])),
            "n": int(spec.get("n", 1)),
            "seed": [_request_seed(seed, task, method, item_id) for item_id in test["item_id"]],
            "stop": [
                stops(list(spec.get("stop", CHAIN_STOP if kind in CHAIN_METHODS else sampling["stop"])), m)
                for m in test["metadata"]
            ],
            "choices": [choices_of(m)[0] for m in test["metadata"]],
            "choice_scores": [choices_of(m)[1] for m in test["metadata"]],
        }
    )


def choices_of(metadata: str) -> tuple[list[str], list[float]]:
    """A multiple-choice item's choices as continuations (exactly the text that follows the prompt) and
    their scores; empty otherwise.

    MMLU items carry `choices` and `answer_index`; their prompt is the bare question, so each choice
    follows after a space. BIG-bench items asked for as multiple choice carry `choice_scores` (their
    target_scores); their prompt ends with the output prefix (`\nA: `), so each choice follows as it
    is, as BIG-bench's `cond_log_prob` scores it, and the correct choice is the same continuation as
    the teacher-forced target.
    """
    meta = json.loads(metadata)
    if "answer_index" in meta:
        return [f" {c}" for c in meta["choices"]], [
            float(i == meta["answer_index"]) for i in range(len(meta["choices"]))
        ]
    if "choice_scores" in meta:
        return list(meta["choice_scores"]), [float(v) for v in meta["choice_scores"].values()]
    return [], []


def answers_of(metadata: str, target: str) -> list[str]:
    """Every accepted answer of an item, its target first: BIG-bench examples may list several."""
    return list(dict.fromkeys([target, *json.loads(metadata).get("targets", [])]))


def stops(base: list[str], metadata: str) -> list[str]:
    """The method's stop strings, and the task's own (BIG-bench's `stop_string`) where it has one."""
    stop = json.loads(metadata).get("stop_string")
    return [*base, stop] if stop and stop not in base else base


def output_regex(metadata: str) -> str:
    """A task's own answer pattern (BIG-bench's output_regex) as the extraction rule; "" reads the whole output.

    Applied as written (an inline flag like `(?i)` must stay first): the answer is its first match,
    or the match's group 1 where the pattern has groups (`metrics.extract_answer`).
    """
    return json.loads(metadata).get("output_regex") or ""


def _request_seed(seed: int, task: str, method: str, item_id: str) -> int:
    """A per-request seed, so a resumed run draws exactly the samples an uninterrupted run would."""
    return random.Random(f"{seed}/{task}/{method}/{item_id}").getrandbits(31)
