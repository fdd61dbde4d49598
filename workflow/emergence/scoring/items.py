"""The items table the metrics read: one row per request, built lazily from stored generations.

Reading Arrow columns without pandas, tokenizing each distinct text once and extracting each distinct
answer once keep scoring fast; see `Items`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from emergence.scoring.answers import FILTERS, chain_steps, extract_answer


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


def last_run(tokens: list[int], run: list[int]) -> int:
    """Where the last occurrence of `run` starts in `tokens`, or -1 (also for an empty run)."""
    for start in range(len(tokens) - len(run), -1, -1):
        if run and tokens[start : start + len(run)] == run:
            return start
    return -1


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

    `samples` are the extracted answers of every sample (`filtered(name)`: as compared under an answer
    filter; `steps`: their chains' lengths), `output` the first of them and `raw` the first sample's whole text;
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
        "steps",
        "texts",
        "output",
        "raw",
        "answer",
        "answers",
        "references",
        "target_logprob",
        "target_tokens",
        "answer_logprob",
        "answer_span",
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
        self.by_filter: dict[str, np.ndarray] = {}
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

    def filtered(self, name: str) -> np.ndarray:
        """Every sample's answer as compared under a registered answer filter, flat (see `per_row`)."""
        if name not in self.by_filter:
            rule = FILTERS[name]
            self.by_filter[name] = per_distinct(rule.read, self.flat_samples if rule.extract else self.flat_texts)
        return self.by_filter[name]

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
    def answer_span(self) -> pd.Series:
        """Where each item's answer lies in its teacher-forced target: (first token, token count), found as
        the last run of the answer's tokens (alone, else after a space) in the target's tokens; (-1, 0)
        where it is not there. A reasoning method's target is the worked chain ending in the answer."""
        answers = self.strings("answer")
        bare = tokenize_unique(answers, self.tokenize)
        spaced = tokenize_unique(np.array([f" {answer}" for answer in answers], dtype=object), self.tokenize)
        spans = [(-1, 0)] * len(self)
        for row, (target, *forms) in enumerate(zip(self.table["target_token_ids"].to_pylist(), bare, spaced)):
            for form in map(list, forms):
                start = last_run(target or [], form)
                if start >= 0:
                    spans[row] = (start, len(form))
                    break
        return column(objects(spans, len(self)))

    @cached_property
    def answer_logprob(self) -> pd.Series:
        """log P(answer | prompt, the reference chain before it): the target's log-probabilities over the
        answer's tokens (`answer_span`); NaN where the answer is not found in the target."""
        logprobs = self.table["target_logprobs"].to_pylist()
        return column(
            np.array(
                [sum((lp or [])[s : s + n]) if n else np.nan for lp, (s, n) in zip(logprobs, self["answer_span"])],
                dtype=float,
            )
        )

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
