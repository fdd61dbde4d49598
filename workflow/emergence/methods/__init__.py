"""Prompting methods: how a task item becomes a request to the engine.

Each method kind is one class in one module of this package, registered by the `kind` it carries in
the config: it turns the test items of a task into (prompt, teacher-forced continuation) pairs and says
how its answer is read (`answer_regex`) and where its output stops. `build_prompts` makes the prompt
rows (see `io.SCHEMAS["prompts"]`); sampling parameters are always written out in full, so an engine
never falls back to its own defaults. Nothing outside this package names a method kind.
"""

from __future__ import annotations

import json
import random
from typing import ClassVar

import pandas as pd

from emergence.config import ConfigError
from emergence.errors import EmergenceError
from emergence.registry import Registry, load_package


class PromptError(EmergenceError, ValueError):
    """A prompting method that cannot be applied to a task."""


SEPARATOR = "\n"  # between exemplars, as between the lines of the training curriculum
# Chain of thought (Wei et al. 2022b): "Q: ...\nA: <one step a line>\nThe answer is X." The strict
# rule reads X after "The answer is"; the flexible rule (metric flexible_exact_match) takes the last number.
STRICT_ANSWER_REGEX = r"[Tt]he answer is:?\s*\(?\$?(-?[\w,.]*\w)"


class PromptMethod:
    """One prompting method. Subclasses set `name` and override `prompts`."""

    name: ClassVar[str]
    answer_regex: ClassVar[str] = ""  # how its answer is read; "" = the task's own rule (or the whole output)
    stop: ClassVar[list[str] | None] = None  # its stop strings; None = the sweep's sampling.stop
    samples: ClassVar[bool] = False  # draws several samples (n >= 2 at a temperature > 0) to vote over

    def prompts(self, test: pd.DataFrame, train: pd.DataFrame, spec: dict, rng: random.Random) -> list[tuple[str, str]]:
        """Per test item, the prompt and the continuation to teacher-force after it."""
        raise NotImplementedError

    def check(self, method: str, spec: dict) -> None:
        """Refuse a spec this method cannot run, with one line naming the key."""
        if self.samples and (spec.get("n", 1) < 2 or not spec.get("temperature")):
            raise ConfigError(f"methods.{method}: {self.name} samples several chains: set n >= 2 and a temperature > 0")


PROMPT_METHODS: Registry[PromptMethod] = Registry("kind", PromptError)
prompt_method = PROMPT_METHODS.register_class


def method_of(method: str, spec: dict) -> PromptMethod:
    """The registered method kind of a method spec; an unknown one is an error naming the method."""
    return PROMPT_METHODS.find(spec.get("kind"), f"method {method}")


def task_format(item) -> tuple[str, str]:
    """A task's own prompt format: the prefix that opens the whole prompt and the separator between
    exemplars (BIG-bench's `task_prefix` and `few_shot_example_separator`); "" and SEPARATOR elsewhere."""
    meta = json.loads(item.metadata)
    return meta.get("task_prefix", ""), meta.get("separator", SEPARATOR)


def exemplars(test: pd.DataFrame, train: pd.DataFrame, k: int, rng: random.Random):
    """Each test item with k exemplars drawn from the train pool of its digit count, never itself."""
    pools = {digits: group for digits, group in train.groupby("digits")}
    for item in test.itertuples():
        pool = pools.get(item.digits, train.iloc[:0])
        pool = pool[pool["input"] != item.input]
        if len(pool) < k:
            raise PromptError(f"{k} exemplars need {k} train items with {item.digits} digits, found {len(pool)}")
        yield item, list(pool.iloc[sorted(rng.sample(range(len(pool)), k))].itertuples())


def build_prompts(task: str, items: pd.DataFrame, method: str, spec: dict, sampling: dict, seed: int) -> pd.DataFrame:
    """Prompt rows for every test item of `task` under the configured `method`."""
    kind = method_of(method, spec)
    test = items[items["split"] == "test"].reset_index(drop=True)
    train = items[items["split"] == "train"].reset_index(drop=True)
    rng = random.Random(f"{seed}/{task}/{method}")
    try:
        prompts, targets = zip(*kind.prompts(test, train, spec, rng)) if len(test) else ((), ())
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
            "answer_regex": [kind.answer_regex or output_regex(m) for m in test["metadata"]],
            "max_tokens": int(spec.get("max_tokens", sampling["max_tokens"])),
            "temperature": float(spec.get("temperature", sampling["temperature"])),
            "top_p": float(spec.get("top_p", sampling["top_p"])),
            "n": int(spec.get("n", 1)),
            "seed": [_request_seed(seed, task, method, item_id) for item_id in test["item_id"]],
            "stop": [
                stops(list(spec.get("stop", sampling["stop"] if kind.stop is None else kind.stop)), m)
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
    or the match's group 1 where the pattern has groups (`scoring.answers.extract_answer`).
    """
    return json.loads(metadata).get("output_regex") or ""


def _request_seed(seed: int, task: str, method: str, item_id: str) -> int:
    """A per-request seed, so a resumed run draws exactly the samples an uninterrupted run would."""
    return random.Random(f"{seed}/{task}/{method}/{item_id}").getrandbits(31)


load_package(__name__, __path__)
