"""Metrics: every stored generation scored under discontinuous and continuous metrics.

Schaeffer et al. (2023) argue that emergence is often a property of the metric, not the model: exact
match is all-or-nothing, while token edit distance and the target's log-probability move smoothly.
Each metric is a small named function over a table of items (columns `output`, the extracted
answer; `target`, the item's answer; their token lists `output_tokens`, `target_tokens`; and
`target_logprobs`), registered by name and selected in the config.
Scoring reads stored generations only: rescoring never re-runs a model.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from emergence.registry import registrar

Metric = Callable[[pd.DataFrame], np.ndarray]
METRICS: dict[str, Metric] = {}


metric = registrar(METRICS)


@metric("exact_match")
def exact_match(items: pd.DataFrame) -> np.ndarray:
    """1 when the output, stripped of surrounding whitespace, equals the target exactly (discontinuous)."""
    return (items["output"].str.strip() == items["target"].str.strip()).to_numpy(dtype=float)


@metric("token_edit_distance")
def token_edit_distance(items: pd.DataFrame) -> np.ndarray:
    """Levenshtein distance between output and target token sequences (continuous; Mirage Fig. 3)."""
    return np.array(
        [Levenshtein.distance(out, tgt) for out, tgt in zip(items["output_tokens"], items["target_tokens"])],
        dtype=float,
    )


@metric("target_logprob")
def target_logprob(items: pd.DataFrame) -> np.ndarray:
    """log P(target | prompt), teacher-forced (continuous)."""
    return np.array([float(np.sum(lp)) for lp in items["target_logprobs"]])


@metric("per_token_prob")
def per_token_prob(items: pd.DataFrame) -> np.ndarray:
    """Geometric-mean probability of the target's tokens, exp(mean log p) (Mirage's p, with EM ~ p^L)."""
    return np.array([float(np.exp(np.mean(lp))) for lp in items["target_logprobs"]])


def extract_answer(text: str, regex: str) -> str:
    """The answer within an output: group 1 of `regex` (empty when it does not match), or the whole text."""
    if not regex:
        return text
    match = re.search(regex, text)
    return match.group(1) if match else ""


def score_generations(
    generations: pd.DataFrame, tasks: pd.DataFrame, model: str, family: str, n_params: int, tokenize, metrics: list[str]
) -> pd.DataFrame:
    """Score the first sample of every generation under each named metric, in long format.

    Exact match and token edit distance compare the extracted answer with the item's answer;
    log-probabilities are those of the teacher-forced continuation (the answer, or a whole scratchpad).
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown} (known: {sorted(METRICS)})")
    items = pd.DataFrame(
        {
            "request_id": generations["request_id"],
            "item_id": generations["item_id"],
            "output": [extract_answer(texts[0], regex) for texts, regex in zip(generations["texts"], generations["answer_regex"])],
            "target": generations["answer"],
            "target_logprobs": generations["target_logprobs"],
        }
    )
    items["output_tokens"] = [tokenize(text.strip()) for text in items["output"]]
    items["target_tokens"] = [tokenize(target.strip()) for target in items["target"]]
    digits = tasks.set_index("item_id")["digits"]
    frames = []
    for name in metrics:
        frames.append(
            pd.DataFrame(
                {
                    "request_id": items["request_id"],
                    "item_id": items["item_id"],
                    "model": model,
                    "family": family,
                    "task": generations["task"],
                    "method": generations["method"],
                    "digits": items["item_id"].map(digits).astype("int32"),
                    "n_params": np.int64(n_params),
                    "target_tokens": [len(ids) for ids in generations["target_token_ids"]],
                    "metric": name,
                    "value": METRICS[name](items),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
