"""Every metric on hand-computed cases: empty outputs, long targets, unicode, several samples, choices with ties."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from emergence.errors import InputError
from emergence.scoring import score_generations
from emergence.scoring.answers import majority_answer
from emergence.scoring.items import Items
from emergence.scoring.metrics import METRICS, expand_metrics, spec


def chars(texts: list[str]) -> list[list[str]]:
    return [list(text) for text in texts]


def generations(texts: list[list[str]], answers: list[str], **columns) -> pd.DataFrame:
    """Stored generations for one task x method, with log P(target) = -1 per target token."""
    n = len(texts)
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "item_id": [f"i{i}" for i in range(n)],
            "task": "t",
            "method": "m",
            "texts": texts,
            "answer": answers,
            "answer_regex": "",
            "target_token_ids": [list(a) for a in answers],  # the target is the answer, in `chars` tokens
            "target_logprobs": [[-1.0] * len(a) for a in answers],
            "token_logprobs": [[[-0.5, -0.5]] * len(t) for t in texts],
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def score(gens: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    tasks = pd.DataFrame({"item_id": gens["item_id"], "digits": 1})
    scores = score_generations(gens, tasks, {"model": "m", "family": "f", "n_params": 10}, chars, metrics)
    return scores.pivot(index="item_id", columns="metric", values="value").loc[gens["item_id"]]


def test_edit_distances_on_empty_long_and_unicode_outputs():
    gens = generations([[""], ["12"], ["café"], ["123 "]], ["123", "12345", "cafe", "123"])
    wide = score(
        gens,
        [
            "exact_match",
            "exact_string_match",
            "token_edit_distance",
            "normalized_token_edit_distance",
            "char_edit_distance",
        ],
    )
    assert list(wide["exact_match"]) == [0, 0, 0, 1]
    assert list(wide["exact_string_match"]) == [0, 0, 0, 1]
    assert list(wide["token_edit_distance"]) == [3, 3, 1, 0]  # empty: 3 insertions; "12" vs "12345": 3
    assert list(wide["normalized_token_edit_distance"]) == pytest.approx([1.0, 3 / 5, 1 / 4, 0.0])
    assert list(wide["char_edit_distance"]) == [3, 3, 1, 0]  # é is one character, one substitution


def test_extraction_differs_from_string_match():
    gens = generations([["[1+2=3]3"], ["[1+2=3]4"]], ["3", "3"])
    gens["answer_regex"] = r"\](-?\d+)$"
    wide = score(gens, ["exact_match", "exact_string_match"])
    assert list(wide["exact_match"]) == [1, 0] and list(wide["exact_string_match"]) == [0, 0]


def test_log_probability_metrics():
    gens = generations([["1"], ["22"]], ["1", "22"])
    gens["target_logprobs"] = [[-0.5], [-1.0, -3.0]]
    wide = score(gens, ["target_logprob", "mean_token_logprob", "per_token_prob"])
    assert list(wide["target_logprob"]) == [-0.5, -4.0]
    assert list(wide["mean_token_logprob"]) == [-0.5, -2.0]
    assert wide["per_token_prob"].to_numpy() == pytest.approx(np.exp([-0.5, -2.0]))


def test_answer_logprob_covers_the_answer_inside_a_worked_target():
    targets = ["[1+2=3]3", "5+7=12\nThe answer is 12.", "abc"]  # scratchpad, chain of thought, answer absent
    gens = generations([["3"], ["12"], ["9"]], ["3", "12", "9"])
    gens["target_token_ids"] = [list(t) for t in targets]
    gens["target_logprobs"] = [[-(i + 1) / 100 for i in range(len(t))] for t in targets]
    scores = score_generations(
        gens,
        pd.DataFrame({"item_id": gens["item_id"], "digits": 1}),
        {"model": "m", "family": "f", "n_params": 10},
        chars,
        ["answer_logprob", "target_logprob"],
    )
    answer = scores[scores["metric"] == "answer_logprob"]
    last = len(targets[1]) - 3  # "12" before the final "."; the first "12" (in "5+7=12") is not the answer's
    assert answer["value"].iloc[:2].tolist() == pytest.approx([-0.08, -((last + 1) + (last + 2)) / 100])
    assert np.isnan(answer["value"].iloc[2])
    assert answer["target_tokens"].tolist() == [1, 2, 0]  # the tokens the log-probability covers
    assert scores[scores["metric"] == "target_logprob"]["target_tokens"].tolist() == [8, 24, 3]


def test_confidence_and_binary_brier():
    gens = generations([["7"], ["8"]], ["7", "7"])
    gens["token_logprobs"] = [[[np.log(0.8)]], [[np.log(0.6)]]]
    wide = score(gens, ["confidence", "brier_binary"])
    assert wide["confidence"].to_numpy() == pytest.approx([0.8, 0.6])
    assert wide["brier_binary"].to_numpy() == pytest.approx([0.2**2, 0.6**2])  # right at 0.8, wrong at 0.6


def test_pass_at_k_and_maj_at_k_over_samples():
    # item 0: 2 of 4 samples right; majority tied between "5" and "6": the first sampled, "6", wins
    # item 1: 3 of 4 right; item 2: none parse but one; item 3: one sample only
    texts = [["6", "5", "6", "5"], ["5", "4", "5", "5"], ["", "", "5", ""], ["5"]]
    gens = generations(texts, ["5", "5", "5", "5"])
    scores = score_generations(
        gens,
        pd.DataFrame({"item_id": gens["item_id"], "digits": 1}),
        {"model": "m", "family": "f", "n_params": 1},
        chars,
        ["pass@k", "maj@k"],
    )
    wide = scores.pivot(index="item_id", columns="metric", values="value")
    assert sorted(wide.columns) == ["maj@1", "maj@2", "maj@3", "maj@4", "pass@1", "pass@2", "pass@3", "pass@4"]
    assert list(wide.loc["i0", ["pass@1", "pass@2", "pass@3", "pass@4"]]) == pytest.approx([0.5, 1 - 1 / 6, 1.0, 1.0])
    assert list(wide.loc["i1", ["pass@1", "pass@2"]]) == pytest.approx([0.75, 1.0])
    assert list(wide.loc["i0", ["maj@1", "maj@2", "maj@3", "maj@4"]]) == [
        0,
        0,
        0,
        0,
    ]  # 6; 6/5 tie -> 6; 6,5,6; tie -> 6
    assert list(wide.loc["i1", ["maj@1", "maj@2", "maj@3", "maj@4"]]) == [1, 1, 1, 1]
    assert list(wide.loc["i2", ["maj@1", "maj@2", "maj@3", "maj@4"]]) == [0, 0, 1, 1]  # unparsed samples do not vote
    assert wide.loc["i3", "pass@1"] == 1 and wide.loc["i3"].drop(["pass@1", "maj@1"]).isna().all()  # no rows past n
    assert len(scores) == 4 * 8 - 6


def test_reducers_compose_with_any_answer_filter():
    """maj@k, cmaj@k and pass@k under the flexible and whole filters need no code of their own: the same
    chains give different votes when the strict rule ("The answer is X") finds nothing to read."""
    chains = [
        ["I count 4 then 5", "so 12", "The answer is 5.", "sum: 5"],  # strict reads only the third
        ["The answer is 7.", "7", "7", "The answer is 3."],
    ]
    gens = generations(chains, ["5", "7"], answer_regex=r"The answer is (\S+?)\.?$")
    wide = score(gens, ["maj@k", "maj@k:flexible", "cmaj@k", "cmaj@k:whole", "pass@k:flexible", "exact_match"])
    assert list(wide.loc["i0", [f"maj@{k}" for k in (1, 2, 3, 4)]]) == [0, 0, 1, 1]  # blanks do not vote
    assert list(wide.loc["i0", [f"maj@{k}:flexible" for k in (1, 2, 3, 4)]]) == [1, 1, 1, 1]  # 5, 5/12 tie -> 5
    assert list(wide.loc["i1", [f"maj@{k}" for k in (1, 2, 3, 4)]]) == [1, 1, 1, 1]  # strict: 7, -, -, 3
    assert list(wide.loc["i1", [f"pass@{k}:flexible" for k in (1, 4)]]) == [0.75, 1.0]  # 7, 7, 7, 3
    # the most steps: sample 2 ("7", one line); strict reads nothing there, the whole text is the answer
    assert (wide.loc["i1", "cmaj@1"], wide.loc["i1", "cmaj@1:whole"]) == (0, 1)
    assert list(wide["exact_match"]) == [0, 1]
    with pytest.raises(InputError, match="answer filter"):
        spec("maj@2:lenient")


def test_majority_answer_ties_and_blanks():
    assert majority_answer(["a", "b", "b", "a"]) == "a"
    assert majority_answer([" b", "a", "b "]) == "b"
    assert majority_answer(["", " "]) == ""


def test_multiple_choice_item_with_ties():
    # item 0: two choices tie for the highest log-probability; only the second is correct
    # item 1: two correct choices (equal best target score); the likeliest is the third
    logprobs = [[np.log(0.4), np.log(0.4), np.log(0.2)], [np.log(0.1), np.log(0.3), np.log(0.6)]]
    targets = [[0, 1, 0], [1, 0, 1]]
    gens = generations([["a"], ["b"]], ["b", "a"], choice_logprobs=logprobs, choice_scores=targets)
    wide = score(
        gens, ["multiple_choice_grade", "correct_choice_prob", "brier_multiclass", "confidence", "brier_binary"]
    )
    assert list(wide["multiple_choice_grade"]) == [0.5, 1.0]  # a tie shares the grade
    assert wide["correct_choice_prob"].to_numpy() == pytest.approx([0.4, 0.7])
    brier_0 = 0.4**2 + 0.6**2 + 0.2**2
    brier_1 = (0.1 - 0.5) ** 2 + 0.3**2 + (0.6 - 0.5) ** 2
    assert wide["brier_multiclass"].to_numpy() == pytest.approx([brier_0, brier_1])
    assert wide["confidence"].to_numpy() == pytest.approx([0.4, 0.6])
    assert wide["brier_binary"].to_numpy() == pytest.approx([(0.4 - 0.5) ** 2, (0.6 - 1.0) ** 2])


def test_choice_metrics_skip_generation_items():
    scores = score_generations(
        generations([["1"]], ["1"], choice_logprobs=[[]], choice_scores=[[]]),
        pd.DataFrame({"item_id": ["i0"], "digits": [1]}),
        {"model": "m", "family": "f", "n_params": 1},
        chars,
        ["exact_match", "multiple_choice_grade"],
    )
    assert list(scores["metric"]) == ["exact_match"]


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        spec("bleu")
    with pytest.raises(ValueError, match="unknown metric"):
        spec("pass@0")


def test_threshold_makes_a_continuous_metric_all_or_nothing():
    gens = generations([["1"], ["22"], ["3"]], ["1", "22", "4"])
    gens["target_logprobs"] = [[np.log(0.95)], [np.log(0.9), np.log(0.8)], [np.log(0.5)]]
    names = ["per_token_prob", "per_token_prob>=0.9", "per_token_prob<0.6", "token_edit_distance==0"]
    wide = score(gens, names)
    assert list(wide["per_token_prob>=0.9"]) == [1, 0, 0]  # item 1: exp(mean log) = sqrt(0.72) = 0.849
    assert list(wide["per_token_prob<0.6"]) == [0, 0, 1]
    assert list(wide["token_edit_distance==0"]) == [1, 1, 0]
    assert spec("per_token_prob>=0.9").discontinuous and spec("per_token_prob>=0.9").reads == ("target_logprobs",)
    assert not spec("token_edit_distance<=1e-3").lower_is_better  # 1 = the threshold holds: higher is better


def test_threshold_on_an_all_or_nothing_or_unknown_metric_is_refused(tmp_path):
    with pytest.raises(InputError, match="exact_match is already all-or-nothing"):
        spec("exact_match>=0.5")
    with pytest.raises(InputError, match=r"unknown metric 'per_token_prb>=0\.9'"):
        spec("per_token_prb>=0.9")


def test_expand_metrics():
    assert expand_metrics(["exact_match", "maj@k", "pass@2"], 3) == ["exact_match", "maj@1", "maj@2", "maj@3", "pass@2"]


def test_every_registered_metric_runs_on_one_table():
    gens = generations([["1", "2"]], ["1"], choice_logprobs=[[-1.0, -2.0]], choice_scores=[[1, 0]])
    items = Items(gens, chars)
    for name, metric in METRICS.items():
        assert np.isfinite(metric.fn(items)).all(), name


@pytest.mark.parametrize(
    ("text", "strict", "flexible"),
    [
        ("12\nThe answer is 1,234.", "1234", "1234"),  # thousands comma, trailing period
        ("It costs $56, so the answer is $56", "56", "56"),  # dollar sign
        ("7-24=-17\nThe answer is -17.", "-17", "-17"),  # negative number
        ("3 apples and 4 pears make 7", "", "7"),  # several numbers, no answer sentence: flexible takes the last
        ("no number here", "", ""),  # nothing to extract
        ("The answer is 42. Then 5 more.", "42", "5"),  # the rules disagree
        ("the answer is: (B)", "B", ""),  # a choice letter
        ("The answer is 0.5.", "0.5", "0.5"),  # a decimal
    ],
)
def test_answer_extraction_on_tricky_strings(text, strict, flexible):
    from emergence.methods import STRICT_ANSWER_REGEX
    from emergence.scoring.answers import extract_answer, last_number, normalise

    assert normalise(extract_answer(text, STRICT_ANSWER_REGEX)) == strict
    assert last_number(text) == flexible


def test_strict_and_flexible_exact_match_are_both_reported():
    from emergence.methods import STRICT_ANSWER_REGEX

    gens = generations([["4+5=9\nThe answer is 9."], ["4+5=9\nSo 9"], ["The answer is 9. No, 8"]], ["9", "9", "9"])
    gens["answer_regex"] = STRICT_ANSWER_REGEX
    wide = score(gens, ["exact_match", "flexible_exact_match"])
    assert list(wide["exact_match"]) == [1, 0, 1] and list(wide["flexible_exact_match"]) == [1, 1, 0]


def test_complexity_vote_counts_only_the_most_complex_chains():
    from emergence.methods import STRICT_ANSWER_REGEX

    chains = [
        "The answer is 5.",
        "a\nThe answer is 5.",
        "a\nb\nc\nThe answer is 7.",
        "a\nb\nThe answer is 7.",
        "a\nb\nThe answer is 5.",
    ]
    gens = generations([chains], ["7"])
    gens["answer_regex"] = STRICT_ANSWER_REGEX
    wide = score(gens, ["maj@k", "cmaj@k"])
    assert wide.loc["i0", "maj@5"] == 0  # 5, 5, 7, 7, 5: plain majority is 5
    assert wide.loc["i0", "cmaj@2"] == 1  # the two longest chains (3 and 2 steps, first drawn on ties) both say 7
    assert wide.loc["i0", "cmaj@3"] == 1  # 3, 2, 2 steps: 7, 7, 5
    assert wide.loc["i0", "cmaj@5"] == 0  # all five: the plain majority again


def test_closed_book_answers_match_any_alias():
    gens = generations([["The Nile"], ["nile river delta"], ["Amazon"]], ["Nile", "Nile", "Nile"])
    tasks = pd.DataFrame(
        {"item_id": gens["item_id"], "digits": 0, "metadata": json.dumps({"aliases": ["nile", "nile river"]})}
    )
    scores = score_generations(
        gens,
        tasks,
        {"model": "m", "family": "f", "n_params": 1},
        chars,
        ["normalized_exact_match", "token_f1", "exact_match"],
    )
    wide = scores.pivot(index="item_id", columns="metric", values="value").loc[gens["item_id"]]
    assert list(wide["normalized_exact_match"]) == [1, 0, 0]  # "the" is dropped; "delta" is extra
    assert list(wide["exact_match"]) == [0, 0, 0]
    assert wide["token_f1"].to_numpy() == pytest.approx([1.0, 0.8, 0.0])  # best reference "nile river": P 2/3, R 1


def test_a_name_registered_twice_is_an_error():
    from emergence.methods import PromptMethod, prompt_method
    from emergence.scoring.metrics import metric

    with pytest.raises(KeyError, match="'exact_match' is registered twice"):
        metric("exact_match", discontinuous=True)(lambda items: np.zeros(len(items)))
    with pytest.raises(KeyError, match="'zero_shot' is registered twice"):
        prompt_method(type("Again", (PromptMethod,), {"name": "zero_shot"}))
    assert METRICS["exact_match"].discontinuous  # the first registration stands
