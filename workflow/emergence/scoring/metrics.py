"""Metrics: every stored generation scored under discontinuous and continuous metrics.

Schaeffer et al. (2023, "Are Emergent Abilities of Large Language Models a Mirage?") argue that
emergence is often a property of the metric, not the model: exact match is all-or-nothing, while
token edit distance and the target's log-probability move smoothly. Each metric here is a small
named function over a table of items (`scoring.items.Items`), registered with what kind of metric it
is; the config chooses which run. Scoring reads stored generations only: rescoring never re-runs a model.

Multiple-choice metrics read two optional generation columns, `choice_logprobs` (log P(choice |
prompt) for each choice) and `choice_scores` (BIG-bench's `target_scores`: the best score marks the
correct choices); items without them are not multiple choice and get no rows for those metrics.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from emergence.errors import InputError
from emergence.registry import Registry
from emergence.scoring.answers import FILTERS, majority, normalise, normalise_text, token_f1
from emergence.scoring.items import objects

SAMPLED = ("pass", "maj", "cmaj")  # "pass@k" etc. in the config: one metric per k up to the samples drawn
DEFAULT_FILTER = "strict"  # the answer filter of a sampled metric named without one ("maj@k" = "maj@k:strict")
# A threshold on a continuous metric ("per_token_prob>=0.9", "token_edit_distance==0"): induced emergence.
THRESHOLD = re.compile(r"^([a-z_]+)(>=|<=|==|>|<)(-?[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)$")
COMPARISONS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Metric:
    fn: Callable[[pd.DataFrame], np.ndarray]
    discontinuous: bool  # all-or-nothing per item (the metrics under which abilities look emergent)
    lower_is_better: bool
    choices: bool  # needs multiple-choice columns
    reads: tuple[str, ...] = ()  # the optional engine outputs it needs (engines.OPTIONAL_OUTPUTS)
    # for a log-probability over part of the target: the tokens it covers, per item (else the target's)
    tokens: Callable[[pd.DataFrame], np.ndarray] | None = None


METRICS: Registry[Metric] = Registry("metric")


def metric(
    name: str,
    discontinuous: bool = False,
    lower_is_better: bool = False,
    choices: bool = False,
    reads: tuple[str, ...] = (),
    tokens: Callable[[pd.DataFrame], np.ndarray] | None = None,
):
    """Register a metric function with what kind of metric it is; a name registered twice is an error."""

    def register(fn):
        METRICS.add(name, Metric(fn, discontinuous, lower_is_better, choices, reads, tokens))
        return fn

    return register


def spec(name: str) -> Metric:
    """The Metric behind a name, sampled ones included: `pass@3`, `maj@3`, `maj@3:flexible` (a reducer over
    the first k samples under a registered answer filter, `strict` when none is named). InputError for an
    unknown name."""
    base, colon, rule = name.partition(":")
    kind, at, k = base.partition("@")
    if at and kind in SAMPLED and k.isdigit() and int(k) >= 1 and (rule in FILTERS or not colon):
        return Metric(lambda items: SAMPLED_FNS[kind](items, int(k), rule or DEFAULT_FILTER), True, False, False)
    if name in METRICS:
        return METRICS[name]
    threshold = THRESHOLD.match(name)
    if threshold and threshold[1] in METRICS:
        if METRICS[threshold[1]].discontinuous:
            raise InputError(f"metric {name!r}: {threshold[1]} is already all-or-nothing; threshold a continuous one")
        return thresholded(METRICS[threshold[1]], COMPARISONS[threshold[2]], float(threshold[3]))
    raise InputError(
        f"unknown metric {name!r} (known: {sorted(METRICS)}, and {', '.join(f'{s}@k' for s in SAMPLED)}"
        f" with an optional answer filter :{' / :'.join(FILTERS)}, and thresholds on a continuous metric like"
        " per_token_prob>=0.9)"
    )


# continuous metrics in [0, 1], higher is better: besides the discontinuous ones, what a sigmoid can fit
BOUNDED = ("per_token_prob", "correct_choice_prob")


def check_sigmoid_metrics(names: list[str] | tuple[str, ...]) -> None:
    """Refuse a `fitting.sigmoid_metrics` entry the fits would pass over: an unknown metric, or one neither
    discontinuous nor in BOUNDED (a sigmoid rises between a floor and a ceiling in [0, 1]). InputError."""
    for name in names:
        try:
            metric = spec(name)
        except InputError as err:
            raise InputError(f"sigmoid_metrics: {err}") from None
        if not (metric.discontinuous or name in BOUNDED):
            raise InputError(
                f"sigmoid_metrics: {name} is continuous and not bounded in [0, 1]: a sigmoid fits discontinuous"
                f" metrics and {', '.join(BOUNDED)}"
            )


def thresholded(base: Metric, compare: Callable, threshold: float) -> Metric:
    """A continuous metric made all-or-nothing per item: 1 where `compare(value, threshold)` holds, 0 where
    not, NaN where the base metric has no value. Schaeffer et al. (2023, section 5) induce apparent
    emergence this way: a smooth per-item quantity crossing a sharp threshold looks like a jump."""

    def fn(items: pd.DataFrame) -> np.ndarray:
        values = np.asarray(base.fn(items), dtype=float)
        return np.where(np.isnan(values), np.nan, compare(values, threshold).astype(float))

    return Metric(fn, True, False, base.choices, base.reads)


def base_metric(name: str) -> str:
    """The registered metric a name transforms: `per_token_prob` for `per_token_prob>=0.9`, else the name."""
    threshold = THRESHOLD.match(name)
    return threshold[1] if threshold and name not in METRICS else name


def accepted(items, compared: Callable[[str], str] = normalise) -> np.ndarray:
    """Per item, the set of its accepted answers as compared (`compared` of each): BIG-bench examples
    list several targets, and an output is right when it equals any of them."""
    return objects((frozenset(map(compared, answers)) for answers in items["answers"]), len(items))


def is_accepted(values, sets: np.ndarray) -> np.ndarray:
    """1.0 where a value is in its item's set of accepted answers."""
    return np.fromiter((value in answers for value, answers in zip(values, sets)), dtype=float, count=len(sets))


def first_accepted(items, rule: str) -> np.ndarray:
    """1.0 where the first sample's answer under an answer filter equals an accepted answer."""
    return is_accepted(items.first(items.filtered(rule)), accepted(items, FILTERS[rule].compare))


@metric("exact_match", discontinuous=True)
def exact_match(items: pd.DataFrame) -> np.ndarray:
    """Accuracy after answer extraction (the strict filter: the prompt's rule, numbers as numbers)."""
    return first_accepted(items, "strict")


@metric("flexible_exact_match", discontinuous=True)
def flexible_exact_match(items: pd.DataFrame) -> np.ndarray:
    """Accuracy under the flexible filter: the last number of the whole output equals an accepted answer."""
    return first_accepted(items, "flexible")


@metric("normalized_exact_match", discontinuous=True)
def normalized_exact_match(items: pd.DataFrame) -> np.ndarray:
    """1 when the normalised output equals any normalised reference (TriviaQA's aliases, else the answer)."""
    return np.array(
        [
            float(normalise_text(o) in {normalise_text(r) for r in refs})
            for o, refs in zip(items["output"], items["references"])
        ]
    )


@metric("token_f1")
def token_f1_metric(items: pd.DataFrame) -> np.ndarray:
    """Best token-overlap F1 against the references: partial credit for a near miss (continuous)."""
    return np.array([token_f1(o, list(refs)) for o, refs in zip(items["output"], items["references"])])


@metric("exact_string_match", discontinuous=True)
def exact_string_match(items: pd.DataFrame) -> np.ndarray:
    """1 when the whole output, stripped, equals an accepted answer: no extraction, so a worked answer scores 0."""
    return first_accepted(items, "whole")


def voted(items, rule: str) -> zip:
    """Per item: its samples' answers under the answer filter, and its accepted answers as that filter compares."""
    return zip(items.per_row(items.filtered(rule)), accepted(items, FILTERS[rule].compare))


def pass_at_k(items: pd.DataFrame, k: int, rule: str = DEFAULT_FILTER) -> np.ndarray:
    """Unbiased pass@k of Chen et al. (2021, eq. 1): 1 - C(n-c, k) / C(n, k) over n samples, c correct.

    A sample is correct when its answer under the filter equals any accepted answer. NaN for an item with
    fewer than k samples.
    """
    return np.array(
        [pass_probability(len(s), sum(x in a for x in s), k) if len(s) >= k else np.nan for s, a in voted(items, rule)]
    )


@cache
def pass_probability(n: int, c: int, k: int) -> float:
    """pass@k of one item, as a product that cannot overflow; n and c take few values, hence the cache."""
    return 1.0 if n - c < k else 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def maj_at_k(items: pd.DataFrame, k: int, rule: str = DEFAULT_FILTER) -> np.ndarray:
    """Self-consistency (Wang et al. 2023): 1 when the majority answer of the first k samples is right.

    Samples with no answer under the filter do not vote. NaN for an item with fewer than k samples.
    """
    return np.array([float(majority(s[:k]) in a) if len(s) >= k else np.nan for s, a in voted(items, rule)])


def complex_maj_at_k(items: pd.DataFrame, k: int, rule: str = DEFAULT_FILTER) -> np.ndarray:
    """Complexity-based voting (Fu et al. 2023): the majority answer of the k samples with the most steps.

    Ties in step count go to the sample drawn first. NaN for an item with fewer than k samples.
    """
    out = np.full(len(items), np.nan)
    for row, ((samples, answers), steps) in enumerate(zip(voted(items, rule), items["steps"])):
        if len(samples) >= k:
            ranked = sorted(range(len(samples)), key=lambda i: (-steps[i], i))[:k]
            out[row] = float(majority([samples[i] for i in sorted(ranked)]) in answers)
    return out


SAMPLED_FNS = {"pass": pass_at_k, "maj": maj_at_k, "cmaj": complex_maj_at_k}


def choice_probs(items: pd.DataFrame) -> list[np.ndarray]:
    """Each item's choice probabilities, renormalised over its choices (softmax of log P(choice))."""
    probs = []
    for logprobs in items["choice_logprobs"]:
        z = np.exp(np.asarray(logprobs, float) - np.max(logprobs))
        probs.append(z / z.sum())
    return probs


def correct_choices(items: pd.DataFrame) -> list[np.ndarray]:
    """Masks of the correct choices: those with the item's best target score."""
    return [np.asarray(s, float) == np.max(s) for s in items["choice_scores"]]


@metric("multiple_choice_grade", discontinuous=True, choices=True)
def multiple_choice_grade(items: pd.DataFrame) -> np.ndarray:
    """BIG-bench's grade: the target score of the most likely choice. Tied choices share it: their mean."""
    grades = []
    for logprobs, scores in zip(items["choice_logprobs"], items["choice_scores"]):
        logprobs = np.asarray(logprobs, float)
        grades.append(float(np.mean(np.asarray(scores, float)[logprobs == logprobs.max()])))
    return np.array(grades)


def best_per_item(items, values: np.ndarray) -> np.ndarray:
    """The smallest of each item's values, given one value per (item, accepted answer) pair in
    `items["answer_rows"]` order: a distance to the nearest accepted answer."""
    rows = items["answer_rows"]
    best = np.full(len(items), np.inf)
    np.minimum.at(best, rows, values)
    return best


def levenshtein(a: list, b: list) -> np.ndarray:
    """Pairwise Levenshtein distances of two equally long lists of strings or token lists (rapidfuzz,
    imported here so that planning a sweep, which reads the metrics' metadata, does not load it)."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cpdist

    return cpdist(a, b, scorer=Levenshtein.distance, dtype=np.int64).astype(float)


def token_distances(items) -> np.ndarray:
    """Per (item, accepted answer) pair: Levenshtein distance between the output's and the answer's tokens."""
    outputs = [items["output_tokens"].iat[row] for row in items["answer_rows"]]
    return levenshtein(outputs, list(items["accepted_tokens"]))


@metric("token_edit_distance", lower_is_better=True)
def token_edit_distance(items: pd.DataFrame) -> np.ndarray:
    """Levenshtein distance between the extracted output's tokens and the nearest accepted answer's (Mirage Fig. 3)."""
    return best_per_item(items, token_distances(items))


@metric("normalized_token_edit_distance", lower_is_better=True)
def normalized_token_edit_distance(items: pd.DataFrame) -> np.ndarray:
    """Token edit distance divided by the answer's length in tokens (the smallest over accepted answers),
    so lengths can be compared."""
    lengths = np.array([len(tokens) for tokens in items["accepted_tokens"]], dtype=float)
    return best_per_item(items, token_distances(items) / np.maximum(lengths, 1.0))


@metric("char_edit_distance", lower_is_better=True)
def char_edit_distance(items: pd.DataFrame) -> np.ndarray:
    """Levenshtein distance in Unicode characters between the stripped extracted output and the nearest
    accepted answer."""
    outputs = items["output"].str.strip().to_numpy(dtype=object)[items["answer_rows"]]
    answers = [answer.strip() for answers in items["answers"] for answer in answers]
    return best_per_item(items, levenshtein(list(outputs), answers))


@metric("target_logprob", reads=("target_logprobs",))
def target_logprob(items: pd.DataFrame) -> np.ndarray:
    """log P(target | prompt), teacher-forced: the answer, or a method's whole worked continuation."""
    return items["target_logprob"].to_numpy(float)


@metric("mean_token_logprob", reads=("target_logprobs",))
def mean_token_logprob(items: pd.DataFrame) -> np.ndarray:
    """log P(target) per target token; its negation is the per-token loss fitted by power laws."""
    return items["target_logprob"].to_numpy(float) / np.maximum(items["target_tokens"].to_numpy(float), 1.0)


@metric("per_token_prob", reads=("target_logprobs",))
def per_token_prob(items: pd.DataFrame) -> np.ndarray:
    """Geometric-mean probability of the target's tokens, exp(mean log p): Mirage's p, with EM ~ p^L."""
    return np.exp(mean_token_logprob(items))


def answer_tokens(items: pd.DataFrame) -> np.ndarray:
    """The answer's length in tokens within the target (0 where it is not found)."""
    return np.array([n for _, n in items["answer_span"]], dtype=np.int64)


@metric("answer_logprob", reads=("target_logprobs",), tokens=answer_tokens)
def answer_logprob(items: pd.DataFrame) -> np.ndarray:
    """log P(answer | prompt, reference chain), teacher-forced: the answer's tokens only, so that for
    chain-of-thought and scratchpad Mirage's p and L are those of what exact match scores."""
    return items["answer_logprob"].to_numpy(float)


@metric("correct_choice_prob", choices=True)
def correct_choice_prob(items: pd.DataFrame) -> np.ndarray:
    """Probability of the correct choice(s), renormalised over the item's choices (Mirage Fig. 6)."""
    return np.array([float(p[c].sum()) for p, c in zip(choice_probs(items), correct_choices(items))])


@metric("brier_multiclass", lower_is_better=True, choices=True)
def brier_multiclass(items: pd.DataFrame) -> np.ndarray:
    """Brier (1950) over the choices: sum_j (p_j - y_j)^2, y spread evenly over the correct choices."""
    scores = []
    for p, c in zip(choice_probs(items), correct_choices(items)):
        scores.append(float(np.sum((p - c / c.sum()) ** 2)))
    return np.array(scores)


@metric("confidence", reads=("sample_logprobs",))
def confidence(items: pd.DataFrame) -> np.ndarray:
    """The model's probability for its own answer: of its first sample, or of its likeliest choice.

    With `correct` (exact match, or the multiple-choice grade) it gives the binary Brier score and
    the expected calibration error.
    """
    if "choice_logprobs" in items:
        return np.array([float(p.max()) for p in choice_probs(items)])
    return np.exp(items["sample_logprob"].to_numpy(float))


def correct(items: pd.DataFrame) -> np.ndarray:
    """What confidence is calibrated against: the multiple-choice grade, else exact match."""
    return multiple_choice_grade(items) if "choice_logprobs" in items else exact_match(items)


@metric("brier_binary", lower_is_better=True, reads=("sample_logprobs",))
def brier_binary(items: pd.DataFrame) -> np.ndarray:
    """(confidence - correct)^2: how far the model's stated probability is from being right."""
    return (confidence(items) - correct(items)) ** 2


def expand_metrics(names: list[str], max_samples: int) -> list[str]:
    """Config metric names with `pass@k` / `maj@k[:filter]` replaced by one name per k up to `max_samples`."""
    out = []
    for name in names:
        base, colon, rule = name.partition(":")
        kind, _, k = base.partition("@")
        if kind in SAMPLED and k == "k":
            out += [f"{kind}@{i}{colon}{rule}" for i in range(1, max_samples + 1)]
        else:
            out.append(name)
    return out
