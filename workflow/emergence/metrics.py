"""Metrics: every stored generation scored under discontinuous and continuous metrics.

Schaeffer et al. (2023, "Are Emergent Abilities of Large Language Models a Mirage?") argue that
emergence is often a property of the metric, not the model: exact match is all-or-nothing, while
token edit distance and the target's log-probability move smoothly. Each metric here is a small
named function over a table of items (see `item_table`), registered with what kind of metric it is;
the config chooses which run. Scoring reads stored generations only: rescoring never re-runs a model.

Multiple-choice metrics read two optional generation columns, `choice_logprobs` (log P(choice |
prompt) for each choice) and `choice_scores` (BIG-bench's `target_scores`: the best score marks the
correct choices); items without them are not multiple choice and get no rows for those metrics.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cpdist


@dataclass(frozen=True)
class Metric:
    fn: Callable[[pd.DataFrame], np.ndarray]
    discontinuous: bool  # all-or-nothing per item (the metrics under which abilities look emergent)
    lower_is_better: bool
    choices: bool  # needs multiple-choice columns


METRICS: dict[str, Metric] = {}
SAMPLED = ("pass", "maj", "cmaj")  # "pass@k" etc. in the config: one metric per k up to the samples drawn
NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def metric(name: str, discontinuous: bool = False, lower_is_better: bool = False, choices: bool = False):
    def register(fn):
        METRICS[name] = Metric(fn, discontinuous, lower_is_better, choices)
        return fn

    return register


def spec(name: str) -> Metric:
    """The Metric behind a name, `pass@3` and `maj@3` included; ValueError for an unknown name."""
    kind, at, k = name.partition("@")
    if at and kind in SAMPLED and k.isdigit() and int(k) >= 1:
        return Metric(lambda items: SAMPLED_FNS[kind](items, int(k)), True, False, False)
    if name in METRICS:
        return METRICS[name]
    raise ValueError(f"unknown metric {name!r} (known: {sorted(METRICS)}, pass@k, maj@k)")


# --- discontinuous --------------------------------------------------------------------------------


def normalise(answer: str) -> str:
    """An answer as compared: stripped of spaces and a final period; a number loses "$" and thousands commas."""
    answer = answer.strip().removesuffix(".").strip()
    if re.fullmatch(r"-?\$?\d[\d,]*(\.\d+)?", answer):
        answer = answer.replace("$", "").replace(",", "")
    return answer


def last_number(text: str) -> str:
    """The flexible extraction rule: the last number in the text, normalised ("" when there is none)."""
    numbers = NUMBER.findall(text)
    return normalise(numbers[-1]) if numbers else ""


@metric("exact_match", discontinuous=True)
def exact_match(items: pd.DataFrame) -> np.ndarray:
    """Accuracy after answer extraction (the method's strict rule): the normalised answers are equal."""
    return np.array([normalise(o) == normalise(a) for o, a in zip(items["output"], items["answer"])], dtype=float)


@metric("flexible_exact_match", discontinuous=True)
def flexible_exact_match(items: pd.DataFrame) -> np.ndarray:
    """Accuracy under the flexible rule: the last number of the whole output equals the answer."""
    return np.array([last_number(raw) == normalise(a) for raw, a in zip(items["raw"], items["answer"])], dtype=float)


def normalise_text(text: str) -> str:
    """Lower case without punctuation, articles (a, an, the) or extra white space: SQuAD/TriviaQA scoring."""
    text = "".join(ch for ch in str(text).lower() if ch not in string.punctuation and not unicodedata.category(ch).startswith("P"))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(prediction: str, references: list[str]) -> float:
    """Best token-overlap F1 against any reference after `normalise_text`: partial credit for near misses.

    Two answers both empty after normalisation match, as in the SQuAD scorer; no references score 0.
    """
    predicted, best = normalise_text(prediction).split(), 0.0
    for reference in references:
        wanted = normalise_text(reference).split()
        if not predicted or not wanted:
            best = max(best, float(predicted == wanted))
            continue
        same = sum((Counter(predicted) & Counter(wanted)).values())
        if same:
            precision, recall = same / len(predicted), same / len(wanted)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


@metric("normalized_exact_match", discontinuous=True)
def normalized_exact_match(items: pd.DataFrame) -> np.ndarray:
    """1 when the normalised output equals any normalised reference (TriviaQA's aliases, else the answer)."""
    return np.array([float(normalise_text(o) in {normalise_text(r) for r in refs}) for o, refs in zip(items["output"], items["references"])])


@metric("token_f1")
def token_f1_metric(items: pd.DataFrame) -> np.ndarray:
    """Best token-overlap F1 against the references: partial credit for a near miss (continuous)."""
    return np.array([token_f1(o, list(refs)) for o, refs in zip(items["output"], items["references"])])


@metric("exact_string_match", discontinuous=True)
def exact_string_match(items: pd.DataFrame) -> np.ndarray:
    """1 when the whole output, stripped, equals the answer: no extraction, so a worked answer scores 0."""
    return (items["raw"].str.strip() == items["answer"].str.strip()).to_numpy(dtype=float)


def pass_at_k(items: pd.DataFrame, k: int) -> np.ndarray:
    """Unbiased pass@k of Chen et al. (2021, eq. 1): 1 - C(n-c, k) / C(n, k) over n samples, c correct.

    NaN for an item with fewer than k samples.
    """
    out = np.full(len(items), np.nan)
    for row, (samples, answer) in enumerate(zip(items["samples"], items["answer"])):
        n, c = len(samples), sum(normalise(s) == normalise(answer) for s in samples)
        if n >= k:
            out[row] = 1.0 if n - c < k else 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
    return out


def majority_answer(samples: Iterable[str]) -> str:
    """The most common non-empty answer; a tie goes to the answer sampled first. "" when none parsed."""
    votes = Counter(normalise(s) for s in samples if normalise(s))
    return max(votes, key=lambda answer: votes[answer], default="")  # max keeps the first of equals


def maj_at_k(items: pd.DataFrame, k: int) -> np.ndarray:
    """Self-consistency (Wang et al. 2023): 1 when the majority answer of the first k samples is right.

    Samples with no extractable answer do not vote. NaN for an item with fewer than k samples.
    """
    return np.array(
        [float(majority_answer(s[:k]) == normalise(a)) if len(s) >= k else np.nan for s, a in zip(items["samples"], items["answer"])]
    )


def chain_steps(text: str) -> int:
    """Reasoning steps of a sampled chain: its non-empty lines before the answer sentence (Fu et al. 2023)."""
    return sum(1 for line in text.split("\n") if line.strip() and not line.strip().lower().startswith("the answer is"))


def complex_maj_at_k(items: pd.DataFrame, k: int) -> np.ndarray:
    """Complexity-based voting (Fu et al. 2023): the majority answer of the k samples with the most steps.

    Ties in step count go to the sample drawn first. NaN for an item with fewer than k samples.
    """
    out = np.full(len(items), np.nan)
    for row, (samples, texts, answer) in enumerate(zip(items["samples"], items["texts"], items["answer"])):
        if len(samples) >= k:
            ranked = sorted(range(len(samples)), key=lambda i: (-chain_steps(texts[i]), i))[:k]
            out[row] = float(majority_answer([samples[i] for i in sorted(ranked)]) == normalise(answer))
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


# --- continuous -----------------------------------------------------------------------------------


def token_distances(items: pd.DataFrame) -> np.ndarray:
    return cpdist(list(items["output_tokens"]), list(items["answer_tokens"]), scorer=Levenshtein.distance, dtype=np.int64).astype(float)


@metric("token_edit_distance", lower_is_better=True)
def token_edit_distance(items: pd.DataFrame) -> np.ndarray:
    """Levenshtein distance between the answer's and the extracted output's tokens (Mirage Fig. 3)."""
    return token_distances(items)


@metric("normalized_token_edit_distance", lower_is_better=True)
def normalized_token_edit_distance(items: pd.DataFrame) -> np.ndarray:
    """Token edit distance divided by the answer's length in tokens, so lengths can be compared."""
    lengths = np.array([len(tokens) for tokens in items["answer_tokens"]], dtype=float)
    return token_distances(items) / np.maximum(lengths, 1.0)


@metric("char_edit_distance", lower_is_better=True)
def char_edit_distance(items: pd.DataFrame) -> np.ndarray:
    """Levenshtein distance in Unicode characters between the stripped extracted output and answer."""
    outputs, answers = items["output"].str.strip(), items["answer"].str.strip()
    return cpdist(list(outputs), list(answers), scorer=Levenshtein.distance, dtype=np.int64).astype(float)


@metric("target_logprob")
def target_logprob(items: pd.DataFrame) -> np.ndarray:
    """log P(target | prompt), teacher-forced: the answer, or a method's whole worked continuation."""
    return items["target_logprob"].to_numpy(float)


@metric("mean_token_logprob")
def mean_token_logprob(items: pd.DataFrame) -> np.ndarray:
    """log P(target) per target token; its negation is the per-token loss fitted by power laws."""
    return items["target_logprob"].to_numpy(float) / np.maximum(items["target_tokens"].to_numpy(float), 1.0)


@metric("per_token_prob")
def per_token_prob(items: pd.DataFrame) -> np.ndarray:
    """Geometric-mean probability of the target's tokens, exp(mean log p): Mirage's p, with EM ~ p^L."""
    return np.exp(mean_token_logprob(items))


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


@metric("confidence")
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


@metric("brier_binary", lower_is_better=True)
def brier_binary(items: pd.DataFrame) -> np.ndarray:
    """(confidence - correct)^2: how far the model's stated probability is from being right."""
    return (confidence(items) - correct(items)) ** 2


# --- the items table and scoring ------------------------------------------------------------------


def extract_answer(text: str, regex: str) -> str:
    """The answer within an output: group 1 of `regex` (empty when it does not match), or the whole text."""
    if not regex:
        return text
    match = re.search(regex, text)
    return match.group(1) if match else ""


def row_sums(lists) -> np.ndarray:
    """Per-row sums of a column of number lists, in one pass over their concatenation."""
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.concatenate([np.asarray(x, float) for x in lists]) if lengths.sum() else np.zeros(0)
    return np.bincount(np.repeat(np.arange(len(lists)), lengths), weights=flat, minlength=len(lists))


def batch_tokenizer(tokenizer) -> Callable[[list[str]], list[list[int]]]:
    """A transformers tokenizer as a batch function without special tokens; a fast one's Rust core is called directly."""
    core = getattr(tokenizer, "backend_tokenizer", None)
    if core is None:
        return lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    return lambda texts: [encoding.ids for encoding in core.encode_batch(texts, add_special_tokens=False)] if texts else []


def tokenize_unique(texts: list[str], tokenize: Callable[[list[str]], list[list[int]]]) -> list[list[int]]:
    """Tokenize each distinct text once: answers and outputs repeat across items, models and methods."""
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object))
    tokens = tokenize(list(uniques))
    return [tokens[c] for c in codes]


def item_table(generations: pd.DataFrame, tokenize: Callable[[list[str]], list[list[int]]]) -> pd.DataFrame:
    """What the metrics read, one row per request.

    `samples` are the extracted answers of every sample, `output` the first of them and `raw` the
    first sample's whole text; `answer` is what a correct answer equals. Token lists come from
    `tokenize` (a batch tokenizer), so token edit distances are in the model's own tokens.
    """
    samples = [[extract_answer(text, regex) for text in texts] for texts, regex in zip(generations["texts"], generations["answer_regex"])]
    first_sample_logprobs = [lps[0] if len(lps) else [np.nan] for lps in generations["token_logprobs"]] if "token_logprobs" in generations else [[np.nan]] * len(generations)
    items = pd.DataFrame(
        {
            "samples": samples,
            "texts": generations["texts"].to_numpy(),
            "output": [s[0] if s else "" for s in samples],
            "raw": [texts[0] if len(texts) else "" for texts in generations["texts"]],
            "answer": generations["answer"].to_numpy(),
            "references": [[answer] for answer in generations["answer"]],  # score_generations adds a task's aliases
            "target_logprob": row_sums(generations["target_logprobs"].to_numpy()),
            "target_tokens": np.fromiter(map(len, generations["target_token_ids"]), dtype=np.int64, count=len(generations)),
            "sample_logprob": row_sums(first_sample_logprobs),
        }
    )
    items["output_tokens"] = tokenize_unique([text.strip() for text in items["output"]], tokenize)
    items["answer_tokens"] = tokenize_unique([answer.strip() for answer in items["answer"]], tokenize)
    if "choice_logprobs" in generations and len(generations) and all(len(c) for c in generations["choice_logprobs"]):
        for column in ("choice_logprobs", "choice_scores"):  # a multiple-choice task: every item has choices
            items[column] = generations[column].to_numpy()
    return items


def expand_metrics(names: list[str], max_samples: int) -> list[str]:
    """Config metric names with `pass@k` / `maj@k` replaced by one name per k up to `max_samples`."""
    out = []
    for name in names:
        kind, _, k = name.partition("@")
        out += [f"{kind}@{i}" for i in range(1, max_samples + 1)] if kind in SAMPLED and k == "k" else [name]
    return out


def score_generations(generations: pd.DataFrame, tasks: pd.DataFrame, model: dict, tokenize, metrics: list[str]) -> pd.DataFrame:
    """Score every generation under each named metric, in the long format of the "scores" stage.

    `model` is the model's manifest (model, family, n_params, training_flops). Metrics that need
    multiple-choice columns are skipped for items without them; sampled metrics give rows only for
    k up to the samples an item has.
    """
    items = item_table(generations, tokenize)
    aliases = {i: json.loads(m).get("aliases") for i, m in zip(tasks["item_id"], tasks["metadata"])} if "metadata" in tasks else {}
    items["references"] = [aliases.get(i) or refs for i, refs in zip(generations["item_id"], items["references"])]
    max_samples = max((len(s) for s in items["samples"]), default=1)
    names = expand_metrics(metrics, max_samples)
    for name in names:
        spec(name)  # unknown names fail before any work
    digits = tasks.set_index("item_id")["digits"]
    flops = model.get("training_flops")
    common = {
        "request_id": generations["request_id"].to_numpy(),
        "item_id": generations["item_id"].to_numpy(),
        "model": model["model"],
        "family": model["family"],
        "task": generations["task"].to_numpy(),
        "method": generations["method"].to_numpy(),
        "digits": generations["item_id"].map(digits).astype("int32").to_numpy(),
        "n_params": np.int64(model["n_params"]),
        "training_flops": float(flops) if flops else np.nan,
        "target_tokens": items["target_tokens"].astype("int32").to_numpy(),
    }
    frames = []
    for name in names:
        if spec(name).choices and "choice_logprobs" not in items:
            continue
        frame = pd.DataFrame({**common, "metric": name, "value": spec(name).fn(items)})
        frames.append(frame.dropna(subset=["value"]) if "@" in name else frame)
    return pd.concat(frames, ignore_index=True)


def score_file(generations: str, tasks: pd.DataFrame, model: dict, tokenize, metrics: list[str], out: str, provenance: dict) -> int:
    """Score a generations file into a scores file, one Parquet row group at a time; returns the rows written.

    Memory holds one batch of generations and its scores, whatever the file's size.
    """
    from emergence import io

    batches = (score_generations(batch, tasks, model, tokenize, metrics) for batch in io.iter_table(generations, "generations"))
    return io.write_table_stream(batches, out, "scores", provenance)
