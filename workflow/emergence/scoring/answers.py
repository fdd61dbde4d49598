"""Answers as compared: extraction from an output, numbers equal as numbers, text normalisation, votes.

Every metric that compares an output with an answer goes through these functions, so a rule (the
strict "The answer is X", the flexible last number, a task's own regex) reads the same everywhere.
The rules are registered answer filters (as lm-evaluation-harness's filter pipelines): a sampled metric
names one (`maj@k:flexible`), and the plain metrics are each one filter's first sample.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from emergence.registry import Registry

# A number as written in answers: a sign, a dollar, digits with optional thousands commas, decimals.
NUMBER = re.compile(r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d,]*\d)")
# LaTeX thousands separators (`9{,}500`, `9\,500`): read as a comma, never as two numbers.
LATEX_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|\\,)(?=\d{3}(?!\d))")


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


def majority(answers: Iterable[str]) -> str:
    """The most common non-empty normalised answer; a tie goes to the answer sampled first. "" when none parsed."""
    votes = Counter(answer for answer in answers if answer)
    return max(votes, key=lambda answer: votes[answer], default="")  # max keeps the first of equals


def majority_answer(samples: Iterable[str]) -> str:
    """The most common non-empty answer; a tie goes to the answer sampled first. "" when none parsed."""
    return majority(map(normalise, samples))


def chain_steps(text: str) -> int:
    """Reasoning steps of a sampled chain: its non-empty lines before the answer sentence (Fu et al. 2023)."""
    return sum(1 for line in text.split("\n") if line.strip() and not line.strip().lower().startswith("the answer is"))


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


@dataclass(frozen=True)
class AnswerFilter:
    """How a sample's answer is read and how an accepted answer is written to be compared with it.

    `extract`: read from the answer the prompt's rule extracts (`extract_answer` with the request's
    `answer_regex`: the method's "The answer is X", or the task's own output_regex), else from the whole
    text; `read`: that string as compared; `compare`: an accepted answer as compared.
    """

    extract: bool
    read: Callable[[str], str]
    compare: Callable[[str], str]


FILTERS: Registry[AnswerFilter] = Registry("answer filter")
FILTERS.add("strict", AnswerFilter(True, normalise, normalise))  # the prompt's rule; numbers as numbers
FILTERS.add("flexible", AnswerFilter(False, last_number, normalise))  # the last number of the whole output
FILTERS.add("whole", AnswerFilter(False, str.strip, str.strip))  # the whole output as written
