"""Prompting methods beyond few-shot (chain of thought, self-consistency, complexity-based); shifted task variants."""

from __future__ import annotations

import json
import random

import pytest

from emergence.methods import STRICT_ANSWER_REGEX, build_prompts
from emergence.methods.chain_of_thought import reasoning_steps
from emergence.plan import expand_methods
from emergence.scoring.answers import extract_answer
from emergence.tasks import build_task
from emergence.tasks.variant import number_in_words, shifted_items, typos

SAMPLING = {"max_tokens": 12, "temperature": 0.0, "top_p": 1.0, "stop": ["\n"]}
MULTIPLICATION = {
    "kind": "synthetic_arithmetic",
    "operation": "multiplication",
    "digits": [2, 3],
    "n_test": 4,
    "n_train": 12,
}


@pytest.fixture(scope="module")
def items():
    return build_task("multiplication", MULTIPLICATION, 0)


def test_chain_of_thought_prompt_and_its_answer(items):
    prompts = build_prompts("multiplication", items, "cot", {"kind": "chain_of_thought", "k": 2}, SAMPLING, 0)
    test = items[items["split"] == "test"].set_index("item_id")
    for row in prompts.itertuples():
        blocks = row.prompt.split("\n\n")
        assert len(blocks) == 3 and blocks[-1] == f"Q: {test.loc[row.item_id, 'input']}\nA:"
        for shot in blocks[:2]:
            question, answer = shot.split("\nA: ")
            assert question != f"Q: {test.loc[row.item_id, 'input']}"  # never the test item
            assert (
                answer.endswith(".")
                and extract_answer(answer, STRICT_ANSWER_REGEX) == answer.split("The answer is ")[1][:-1]
            )
        assert (
            row.target.endswith(f"The answer is {row.answer}.")
            and extract_answer(row.target, STRICT_ANSWER_REGEX) == row.answer
        )
        assert row.stop == ["\n\n", "\nQ:"] and row.answer_regex == STRICT_ANSWER_REGEX and row.n == 1


def test_self_consistency_asks_for_n_samples_in_one_request(items):
    spec = {"kind": "self_consistency", "k": 1, "n": 5, "temperature": 0.7}
    prompts = build_prompts("multiplication", items, "sc", spec, SAMPLING, 0)
    assert len(prompts) == (items["split"] == "test").sum()  # one request per item ...
    assert (prompts["n"] == 5).all() and (prompts["temperature"] == 0.7).all()  # ... carrying its n samples
    cot = build_prompts("multiplication", items, "sc", {"kind": "chain_of_thought", "k": 1}, SAMPLING, 0)
    assert list(prompts["prompt"]) == list(cot["prompt"])  # the chain-of-thought prompt, sampled


def test_complexity_based_picks_the_exemplars_with_most_steps(items):
    prompts = build_prompts(
        "multiplication",
        items,
        "complex",
        {"kind": "complexity_based", "k": 2, "n": 3, "temperature": 0.7},
        SAMPLING,
        0,
    )
    train = items[items["split"] == "train"]
    steps = {row.input: len(reasoning_steps(row)) for row in train.itertuples()}
    test = items[items["split"] == "test"].set_index("item_id")
    for row in prompts.itertuples():
        digits = test.loc[row.item_id, "digits"]
        pool = sorted((steps[r.input] for r in train[train["digits"] == digits].itertuples()), reverse=True)
        chosen = [block.split("\nA: ")[0].removeprefix("Q: ") for block in row.prompt.split("\n\n")[:-1]]
        assert sorted((steps[q] for q in chosen), reverse=True) == pool[:2]


def test_k_as_a_list_is_the_in_context_learning_curve():
    methods = expand_methods({"few": {"kind": "few_shot", "k": [0, 1, 4]}, "zero": {"kind": "zero_shot"}})
    assert methods == {
        "few_k0": {"kind": "few_shot", "k": 0},
        "few_k1": {"kind": "few_shot", "k": 1},
        "few_k4": {"kind": "few_shot", "k": 4},
        "zero": {"kind": "zero_shot"},
    }


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (15, "fifteen"),
        (40, "forty"),
        (58, "fifty-eight"),
        (100, "one hundred"),
        (125, "one hundred twenty-five"),
        (-17, "minus seventeen"),
        (3004, "three thousand four"),
        (1_200_000, "one million two hundred thousand"),
    ],
)
def test_numbers_in_words(n, words):
    assert number_in_words(n) == words


def test_typos_are_seeded_and_follow_the_rate():
    text = "What is 58 plus 67 in total?" * 20
    assert typos(text, 0.0, random.Random(1)) == text
    noisy = typos(text, 0.1, random.Random(1))
    assert noisy == typos(text, 0.1, random.Random(1)) and noisy != typos(text, 0.1, random.Random(2))
    assert noisy != text and abs(len(noisy) - len(text)) < 0.1 * len(text)


@pytest.mark.parametrize("shift", ["typos", "distractors", "number_words"])
def test_shifted_variant_keeps_items_and_changes_only_test_inputs(items, shift):
    variant = shifted_items(items, "multiplication_shifted", shift, 0.3, 0)
    assert list(variant["item_id"]) == list(items["item_id"]) and list(variant["target"]) == list(items["target"])
    train = items["split"] == "train"
    assert list(variant.loc[train, "input"]) == list(items.loc[train, "input"])  # exemplars stay clean
    changed = (variant.loc[~train, "input"] != items.loc[~train, "input"]).mean()
    assert changed == 1.0 if shift != "typos" else changed > 0.5
    meta = json.loads(variant.loc[~train, "metadata"].iloc[0])
    assert meta["shift"] == shift and meta["clean_input"] == items.loc[~train, "input"].iloc[0]
    assert shifted_items(items, "multiplication_shifted", shift, 0.3, 0).equals(variant)


def test_tasks_can_run_a_subset_of_methods():
    from emergence.plan import sweep_pairs

    config = {
        "methods": {
            "zero": {"kind": "zero_shot"},
            "few": {"kind": "few_shot", "k": [1, 2]},
            "cot": {"kind": "chain_of_thought"},
        },
        "tasks": {
            "a": {"kind": "synthetic_arithmetic"},
            "b": {"kind": "bigbench", "methods": ["zero", "few"]},
            "b_typos": {"kind": "variant", "of": "b"},
            "c": {"kind": "variant", "of": "a", "methods": ["cot"]},
        },
    }
    assert sweep_pairs(config) == [
        ("a", "zero"),
        ("a", "few_k1"),
        ("a", "few_k2"),
        ("a", "cot"),
        ("b", "zero"),
        ("b", "few_k1"),
        ("b", "few_k2"),
        ("b_typos", "zero"),
        ("b_typos", "few_k1"),
        ("b_typos", "few_k2"),
        ("c", "cot"),
    ]
