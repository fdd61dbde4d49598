"""Metrics: every stored generation scored under discontinuous and continuous metrics.

Schaeffer et al. (2023, "Are Emergent Abilities of Large Language Models a Mirage?") argue that
emergence is often a property of the metric, not the model: exact match is all-or-nothing, while
token edit distance and the target's log-probability move smoothly. Each metric here is a small
named function over a table of items (see `Items`), registered with what kind of metric it is;
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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache, cached_property, lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emergence.errors import InputError
from emergence.registry import registrar


@dataclass(frozen=True)
class Metric:
    fn: Callable[[pd.DataFrame], np.ndarray]
    discontinuous: bool  # all-or-nothing per item (the metrics under which abilities look emergent)
    lower_is_better: bool
    choices: bool  # needs multiple-choice columns
    reads: tuple[str, ...] = ()  # the optional engine outputs it needs (engines.OPTIONAL_OUTPUTS)


METRICS: dict[str, Metric] = {}
SAMPLED = ("pass", "maj", "cmaj")  # "pass@k" etc. in the config: one metric per k up to the samples drawn
# A number as written in answers: a sign, a dollar, digits with optional thousands commas, decimals.
NUMBER = re.compile(r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d,]*\d)")
# LaTeX thousands separators (`9{,}500`, `9\,500`): read as a comma, never as two numbers.
LATEX_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|\\,)(?=\d{3}(?!\d))")


_register_metric = registrar(METRICS)


def metric(
    name: str,
    discontinuous: bool = False,
    lower_is_better: bool = False,
    choices: bool = False,
    reads: tuple[str, ...] = (),
):
    """Register a metric function with what kind of metric it is; a name registered twice is an error."""

    def register(fn):
        _register_metric(name)(Metric(fn, discontinuous, lower_is_better, choices, reads))
        return fn

    return register


def spec(name: str) -> Metric:
    """The Metric behind a name, `pass@3` and `maj@3` included; ValueError for an unknown name."""
    kind, at, k = name.partition("@")
    if at and kind in SAMPLED and k.isdigit() and int(k) >= 1:
        return Metric(lambda items: SAMPLED_FNS[kind](items, int(k)), True, False, False)
    if name in METRICS:
        return METRICS[name]
    raise InputError(f"unknown metric {name!r} (known: {sorted(METRICS)}, pass@k, maj@k)")


# --- discontinuous --------------------------------------------------------------------------------


def plain_numbers(text: str) -> str:
    """The text with LaTeX thousands separators written as commas, so `9{,}500` reads as one number."""
    return LATEX_THOUSANDS.sub(",", text) if "," in text else text


@lru_cache(maxsize=1 << 16)  # the same answers recur in every batch of a file
def normalise(answer: str) -> str:
    """An answer as compared: stripped of spaces and a final period; a number is written canonically.

    A number loses "$", thousands commas and trailing decimal zeros, so numbers equal as numbers
    compare equal: `$1,200.00` and `1200`, `18.0` and `18`, `-7.50` and `-7.5` (but not `29.01` and `29`).
    """
    answer = plain_numbers(answer.strip().removesuffix(".").strip())
    if NUMBER.fullmatch(answer):
        try:
            number = Decimal(answer.replace("$", "").replace(",", "")).normalize()
        except InvalidOperation:  # unreachable for a NUMBER match; kept as written if it ever happens
            return answer
        answer = format(number + 0, "f")  # + 0 turns -0 into 0
    return answer


def last_number(text: str) -> str:
    """The flexible extraction rule: the last number in the text, normalised ("" when there is none)."""
    numbers = NUMBER.findall(plain_numbers(text))
    return normalise(numbers[-1]) if numbers else ""


def accepted(items, compared: Callable[[str], str] = normalise) -> np.ndarray:
    """Per item, the set of its accepted answers as compared (`compared` of each): BIG-bench examples
    list several targets, and an output is right when it equals any of them."""
    return objects((frozenset(map(compared, answers)) for answers in items["answers"]), len(items))


def is_accepted(values, sets: np.ndarray) -> np.ndarray:
    """1.0 where a value is in its item's set of accepted answers."""
    return np.fromiter((value in answers for value, answers in zip(values, sets)), dtype=float, count=len(sets))


@metric("exact_match", discontinuous=True)
def exact_match(items: pd.DataFrame) -> np.ndarray:
    """Accuracy after answer extraction (the method's strict rule): the normalised output equals an accepted answer."""
    return is_accepted(per_distinct(normalise, items["output"]), accepted(items))


@metric("flexible_exact_match", discontinuous=True)
def flexible_exact_match(items: pd.DataFrame) -> np.ndarray:
    """Accuracy under the flexible rule: the last number of the whole output equals an accepted answer."""
    return is_accepted(per_distinct(last_number, items["raw"]), accepted(items))


def normalise_text(text: str) -> str:
    """Lower case without punctuation, articles (a, an, the) or extra white space: SQuAD/TriviaQA scoring."""
    text = "".join(
        ch for ch in str(text).lower() if ch not in string.punctuation and not unicodedata.category(ch).startswith("P")
    )
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
    return is_accepted(items["raw"].str.strip(), accepted(items, str.strip))


def pass_at_k(items: pd.DataFrame, k: int) -> np.ndarray:
    """Unbiased pass@k of Chen et al. (2021, eq. 1): 1 - C(n-c, k) / C(n, k) over n samples, c correct.

    A sample is correct when it equals any accepted answer. NaN for an item with fewer than k samples.
    """
    sets = accepted(items)
    return np.array(
        [
            pass_probability(len(s), sum(x in a for x in s), k) if len(s) >= k else np.nan
            for s, a in zip(items["normalised_samples"], sets)
        ]
    )


@cache
def pass_probability(n: int, c: int, k: int) -> float:
    """pass@k of one item, as a product that cannot overflow; n and c take few values, hence the cache."""
    return 1.0 if n - c < k else 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def majority(answers: Iterable[str]) -> str:
    """The most common non-empty normalised answer; a tie goes to the answer sampled first. "" when none parsed."""
    votes = Counter(answer for answer in answers if answer)
    return max(votes, key=lambda answer: votes[answer], default="")  # max keeps the first of equals


def majority_answer(samples: Iterable[str]) -> str:
    """The most common non-empty answer; a tie goes to the answer sampled first. "" when none parsed."""
    return majority(map(normalise, samples))


def maj_at_k(items: pd.DataFrame, k: int) -> np.ndarray:
    """Self-consistency (Wang et al. 2023): 1 when the majority answer of the first k samples is right.

    Samples with no extractable answer do not vote. NaN for an item with fewer than k samples.
    """
    sets = accepted(items)
    return np.array(
        [float(majority(s[:k]) in a) if len(s) >= k else np.nan for s, a in zip(items["normalised_samples"], sets)]
    )


def chain_steps(text: str) -> int:
    """Reasoning steps of a sampled chain: its non-empty lines before the answer sentence (Fu et al. 2023)."""
    return sum(1 for line in text.split("\n") if line.strip() and not line.strip().lower().startswith("the answer is"))


def complex_maj_at_k(items: pd.DataFrame, k: int) -> np.ndarray:
    """Complexity-based voting (Fu et al. 2023): the majority answer of the k samples with the most steps.

    Ties in step count go to the sample drawn first. NaN for an item with fewer than k samples.
    """
    out = np.full(len(items), np.nan)
    for row, (samples, steps, answers) in enumerate(zip(items["normalised_samples"], items["steps"], accepted(items))):
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


# --- continuous -----------------------------------------------------------------------------------


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


# --- the items table and scoring ------------------------------------------------------------------


@lru_cache(maxsize=256)
def compiled(regex: str) -> re.Pattern:
    return re.compile(regex)


def extract_answer(text: str, regex: str) -> str:
    """The answer within an output: the first match of `regex`, its group 1 where it has groups (as
    BIG-bench's `re.findall` reads an output_regex); "" when it does not match; the whole text for "".

    LaTeX thousands separators are read as commas first, so no rule can take `9{,}500` for 9.
    """
    if not regex:
        return text
    pattern = compiled(regex)
    match = pattern.search(plain_numbers(text))
    return "" if match is None else match.group(1 if pattern.groups else 0) or ""


def objects(values: Iterable, count: int) -> np.ndarray:
    """A 1-d object array of `count` values; lists stay whole (np.array would nest them)."""
    return np.fromiter(values, dtype=object, count=count)


def per_distinct(fn: Callable, values) -> np.ndarray:
    """`fn` of every value, called once per distinct value: answers and outputs repeat across items and samples."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    return objects(map(fn, uniques), len(uniques))[codes]


def extract_answers(texts: np.ndarray, regexes: np.ndarray) -> np.ndarray:
    """`extract_answer` of each text with its regex: one regex at a time, each distinct text once."""
    answers = texts.copy()
    for regex in pd.unique(regexes):
        if regex:
            rows = regexes == regex
            answers[rows] = per_distinct(lambda text, regex=regex: extract_answer(text, regex), texts[rows])
    return answers


def row_sums(lists: pa.Array) -> np.ndarray:
    """Per-row sums of an Arrow column of number lists, adding each row's values in order (a null counts as NaN)."""
    values = lists.flatten().to_numpy(zero_copy_only=False).astype(float)
    return np.bincount(pc.list_parent_indices(lists).to_numpy(), weights=values, minlength=len(lists))


def list_lengths(lists: pa.Array) -> np.ndarray:
    """Each list's length in an Arrow list column (0 for a null)."""
    return pc.list_value_length(lists).fill_null(0).to_numpy()


def batch_tokenizer(tokenizer) -> Callable[[list[str]], list[list[int]]]:
    """A transformers tokenizer as a batch function without special tokens; a fast one's Rust core is called directly.

    Its `encode_batch_fast` skips the character offsets, which scoring does not read.
    """
    core = getattr(tokenizer, "backend_tokenizer", None)
    if core is None:
        return lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    encode = getattr(core, "encode_batch_fast", core.encode_batch)
    return lambda texts: [encoding.ids for encoding in encode(texts, add_special_tokens=False)] if texts else []


def remembering(
    tokenize: Callable[[list[str]], list[list[int]]], most: int = 1 << 20
) -> Callable[[list[str]], list[list[int]]]:
    """`tokenize` that keeps the tokens of up to `most` texts across calls: a file's batches share
    most of their answers and outputs. Forgets everything when full, so memory stays bounded."""
    known: dict[str, list[int]] = {}

    def run(texts: list[str]) -> list[list[int]]:
        new = [text for text in texts if text not in known]
        if len(known) + len(new) > most:
            known.clear()
            new = texts
        known.update(zip(new, tokenize(new)))
        return [known[text] for text in texts]

    return run


def tokenize_unique(texts, tokenize: Callable[[list[str]], list[list[int]]]) -> np.ndarray:
    """Tokenize each distinct text once: answers and outputs repeat across items, models and methods."""
    codes, uniques = pd.factorize(np.asarray(texts, dtype=object), use_na_sentinel=False)
    return objects(tokenize(list(uniques)), len(uniques))[codes]


def arrow_table(generations: pd.DataFrame | pa.Table) -> pa.Table:
    """Generations as an Arrow table of one chunk per column, strings typed as in the stage schema."""
    if isinstance(generations, pd.DataFrame):  # pandas strings arrive as large_string
        table = pa.Table.from_pandas(generations, preserve_index=False)
        generations = table.cast(
            pa.schema([f.with_type(pa.string()) if f.type == pa.large_string() else f for f in table.schema])
        )
    return generations.combine_chunks()


def column(values: np.ndarray) -> pd.Series:
    """A column of the items table; strings stay Python objects (iterating pandas' Arrow strings makes a
    scalar per row)."""
    return pd.Series(values, dtype=values.dtype)


class Items:
    """What the metrics read, one row per request: a table whose columns are built when first read.

    `samples` are the extracted answers of every sample (`normalised_samples` as compared, `steps`
    their chains' lengths), `output` the first of them and `raw` the first sample's whole text;
    `answers` are every answer a correct output may equal (`answer`, the first, and the task's other
    targets), `answer_rows` and `accepted_tokens` the same flattened into (item, answer) pairs, and
    `references` what a closed-book answer may match (the task's aliases, else the answers). Token
    lists come from `tokenize` (a batch tokenizer), so token edit distances are in the model's own
    tokens. The multiple-choice columns exist when every item has choices. Columns are built lazily
    because each metric reads a few of them, and tokenizing alone costs more than most metrics;
    strings are read from Arrow without pandas.
    """

    COLUMNS = (
        "samples",
        "normalised_samples",
        "steps",
        "texts",
        "output",
        "raw",
        "answer",
        "answers",
        "references",
        "target_logprob",
        "target_tokens",
        "sample_logprob",
        "output_tokens",
        "answer_tokens",
        "choice_logprobs",
        "choice_scores",
    )
    PAIRS = ("answer_rows", "accepted_tokens")  # one entry per (item, accepted answer), not per item
    CHOICES = ("choice_logprobs", "choice_scores")
    READS = (
        "request_id",
        "item_id",
        "task",
        "method",
        "answer",
        "answers",
        "answer_regex",
        "texts",
        "token_logprobs",
        "target_token_ids",
        "target_logprobs",
        *CHOICES,
    )  # the generations columns scoring reads

    def __init__(
        self,
        generations: pd.DataFrame | pa.Table,
        tokenize: Callable[[list[str]], list[list[int]]],
        tasks: pd.DataFrame | None = None,
    ):
        self.table, self.tokenize, self.tasks = arrow_table(generations), tokenize, tasks
        texts = self.table["texts"].combine_chunks()
        self.flat_texts, self.n_samples = texts.flatten().to_numpy(zero_copy_only=False), list_lengths(texts)
        self.ends = np.cumsum(self.n_samples)  # a row's samples are flat[end - n_samples : end]
        self.choices = (
            len(self) > 0
            and "choice_logprobs" in self.table.column_names
            and bool(  # a multiple-choice task
                list_lengths(self.table["choice_logprobs"].combine_chunks()).all()
            )
        )

    def __len__(self) -> int:
        return self.table.num_rows

    def __contains__(self, name: str) -> bool:
        return name in self.COLUMNS + self.PAIRS and (self.choices or name not in self.CHOICES)

    def __getitem__(self, name: str) -> pd.Series:
        if name not in self:
            raise KeyError(name)
        return getattr(self, name)

    def frame(self) -> pd.DataFrame:
        """Every column, built."""
        return pd.DataFrame({name: self[name] for name in self.COLUMNS if name in self})

    def strings(self, name: str) -> np.ndarray:
        return self.table[name].to_numpy()

    def per_row(self, flat: np.ndarray) -> np.ndarray:
        """A flat per-sample array as each row's list."""
        flat = flat.tolist()
        return objects((flat[end - n : end] for n, end in zip(self.n_samples.tolist(), self.ends.tolist())), len(self))

    def first(self, flat: np.ndarray) -> np.ndarray:
        """Each row's first value of a flat per-sample array, "" for a row without samples."""
        out, sampled = np.full(len(self), "", dtype=object), self.n_samples > 0
        out[sampled] = flat[(self.ends - self.n_samples)[sampled]]
        return out

    @cached_property
    def flat_samples(self) -> np.ndarray:
        return extract_answers(self.flat_texts, np.repeat(self.strings("answer_regex"), self.n_samples))

    @cached_property
    def tokens(self) -> np.ndarray:
        """The stripped outputs, then every accepted answer, tokenized in one call: they overlap (every
        right answer)."""
        flat = objects((answer for answers in self["answers"] for answer in answers), len(self.answer_rows))
        return tokenize_unique(per_distinct(str.strip, np.concatenate([self["output"], flat])), self.tokenize)

    @cached_property
    def samples(self) -> pd.Series:
        return column(self.per_row(self.flat_samples))

    @cached_property
    def normalised_samples(self) -> pd.Series:
        """Each sample's answer as compared (`normalise`d), for the votes of sampled metrics."""
        return column(self.per_row(per_distinct(normalise, self.flat_samples)))

    @cached_property
    def steps(self) -> pd.Series:
        """Each sample's reasoning steps (`chain_steps` of its text)."""
        return column(self.per_row(per_distinct(chain_steps, self.flat_texts)))

    @cached_property
    def texts(self) -> pd.Series:
        return column(self.per_row(self.flat_texts))

    @cached_property
    def output(self) -> pd.Series:
        return column(self.first(self.flat_samples))

    @cached_property
    def raw(self) -> pd.Series:
        return column(self.first(self.flat_texts))

    @cached_property
    def answer(self) -> pd.Series:
        return column(self.strings("answer"))

    @cached_property
    def answers(self) -> pd.Series:
        """Every accepted answer, `answer` first; a table without the column (or an empty list) accepts
        `answer` alone."""
        listed = self.table["answers"].to_pylist() if "answers" in self.table.column_names else [None] * len(self)
        return column(
            objects((list(dict.fromkeys([a, *(more or [])])) for a, more in zip(self["answer"], listed)), len(self))
        )

    @cached_property
    def answer_rows(self) -> np.ndarray:
        """The item of each (item, accepted answer) pair, items in order."""
        return np.repeat(np.arange(len(self)), [len(answers) for answers in self["answers"]])

    @cached_property
    def accepted_tokens(self) -> pd.Series:
        """The tokens of each (item, accepted answer) pair's answer."""
        return column(self.tokens[len(self) :])

    @cached_property
    def references(self) -> pd.Series:
        tasks = self.tasks if self.tasks is not None and "metadata" in self.tasks else None
        aliases = (
            {i: json.loads(m).get("aliases") for i, m in zip(tasks["item_id"], tasks["metadata"])}
            if tasks is not None
            else {}
        )
        references = (aliases.get(i) or answers for i, answers in zip(self.strings("item_id"), self["answers"]))
        return column(objects(references, len(self)))

    @cached_property
    def target_logprob(self) -> pd.Series:
        return column(row_sums(self.table["target_logprobs"].combine_chunks()))

    @cached_property
    def target_tokens(self) -> pd.Series:
        return column(list_lengths(self.table["target_token_ids"].combine_chunks()))

    @cached_property
    def sample_logprob(self) -> pd.Series:
        """The first sample's log-probability; NaN without a sample."""
        out = np.full(len(self), np.nan)
        if "token_logprobs" in self.table.column_names:
            logprobs = self.table["token_logprobs"].combine_chunks()
            sampled = list_lengths(logprobs) > 0
            out[sampled] = row_sums(pc.list_element(logprobs.filter(sampled), 0))
        return column(out)

    @cached_property
    def output_tokens(self) -> pd.Series:
        return column(self.tokens[: len(self)])

    @cached_property
    def answer_tokens(self) -> pd.Series:
        """The tokens of each item's first answer."""
        firsts: np.ndarray | list[int] = (
            np.concatenate([[0], np.cumsum([len(answers) for answers in self["answers"]])[:-1]]).astype(int)
            if len(self)
            else []
        )
        return column(self.tokens[len(self) :][firsts] if len(self) else self.tokens[:0])

    @cached_property
    def choice_logprobs(self) -> pd.Series:
        return column(self.table["choice_logprobs"].to_numpy())

    @cached_property
    def choice_scores(self) -> pd.Series:
        return column(self.table["choice_scores"].to_numpy())


def expand_metrics(names: list[str], max_samples: int) -> list[str]:
    """Config metric names with `pass@k` / `maj@k` replaced by one name per k up to `max_samples`."""
    out = []
    for name in names:
        kind, _, k = name.partition("@")
        out += [f"{kind}@{i}" for i in range(1, max_samples + 1)] if kind in SAMPLED and k == "k" else [name]
    return out


def score_generations(
    generations: pd.DataFrame | pa.Table, tasks: pd.DataFrame, model: dict, tokenize, metrics: list[str]
) -> pd.DataFrame:
    """Score every generation under each named metric, in the long format of the "scores" stage.

    `generations` is a table of the generations stage (pandas or Arrow) and `model` the model's
    manifest (model, family, n_params, training_flops). Metrics that need multiple-choice columns
    are skipped for items without them; sampled metrics give rows only for k up to the samples an
    item has.
    """
    items = Items(generations, tokenize, tasks)
    generations, n = items.table, len(items)
    names = expand_metrics(metrics, int(items.n_samples.max()) if n else 1)
    for name in names:
        spec(name)  # unknown names fail before any work
    codes, ids = pd.factorize(generations["item_id"].to_numpy())
    flops = model.get("training_flops")
    common = {  # the columns every metric's rows share, built once
        "request_id": generations["request_id"],
        "item_id": generations["item_id"],
        "model": pa.repeat(model["model"], n),
        "family": pa.repeat(model["family"], n),
        "task": generations["task"],
        "method": generations["method"],
        "digits": pd.Series(ids).map(tasks.set_index("item_id")["digits"]).astype("int32").to_numpy()[codes],
        "n_params": np.full(n, model["n_params"], np.int64),
        "training_flops": np.full(n, float(flops) if flops else np.nan),
        "target_tokens": items["target_tokens"].to_numpy().astype("int32"),
    }
    tables = []
    for name in names:
        if spec(name).choices and "choice_logprobs" not in items:
            continue
        values = np.asarray(spec(name).fn(items), dtype=float)
        table = pa.table({**common, "metric": pa.repeat(name, n), "value": values})
        tables.append(table.filter(~np.isnan(values)) if "@" in name else table)
    # strings stay Arrow strings (no conversion on the way to Parquet), one chunk per metric as concatenated
    # per-metric frames had: the Parquet bytes stay the same
    return pa.concat_tables(tables).to_pandas(types_mapper={pa.string(): pd.ArrowDtype(pa.string())}.get)


def score_file(
    generations: str, tasks: pd.DataFrame, model: dict, tokenize, metrics: list[str], out: str, provenance: dict
) -> int:
    """Score a generations file into a scores file, one Parquet row group at a time; returns the rows written.

    Memory holds one batch of generations and its scores, whatever the file's size.
    """
    from emergence import io

    tokenize = remembering(tokenize)
    batches = (score_generations(batch, tasks, model, tokenize, metrics) for batch in generation_batches(generations))
    with ThreadPoolExecutor(1) as pool:
        return io.write_table_stream(ahead(batches, pool), out, "scores", provenance)


def ahead(frames: Iterator, pool: ThreadPoolExecutor) -> Iterator:
    """The items of `frames`, each next one made in `pool` while the caller handles this one: scoring overlaps writing.

    Holds one item more than plain iteration. The Parquet writer and the tokenizer release the GIL.
    """
    future = pool.submit(next, frames, None)
    while (frame := future.result()) is not None:
        future = pool.submit(next, frames, None)
        yield frame


def generation_batches(path: str, batch_rows: int = 65536) -> Iterator[pa.Table]:
    """The columns scoring reads from a generations file, as Arrow tables, checked and batched as `io.iter_table` does.

    Arrow, not pandas: turning the list columns into Python objects took longer than scoring them.
    The same batches as `io.iter_table` give the scores file the same row groups.
    """
    from emergence import io

    try:
        source = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20, page_checksum_verification=True)
    except FileNotFoundError:
        raise io.StageFileError(f"{path}: missing") from None
    except (pa.ArrowInvalid, OSError) as err:
        raise io.CorruptStageFile(path, err) from None
    io.check_schema(path, source.schema_arrow, "generations")
    try:
        for batch in source.iter_batches(batch_size=batch_rows, columns=list(Items.READS)):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, OSError) as err:
        raise io.CorruptStageFile(path, err) from None
