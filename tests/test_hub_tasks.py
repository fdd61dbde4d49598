"""Hub benchmark tasks from a hand-laid Hugging Face cache (offline), and the TriviaQA answer scorer.

Every row below is made up here in the datasets' formats; no real benchmark text is used.
"""

from __future__ import annotations

import hashlib
import io
import json
import os

import pandas as pd
import pytest

from emergence.hub_tasks import (
    HubTaskError,
    fetch,
    gsm8k_items,
    hub_patterns,
    mmlu_items,
    trivia_qa_items,
)
from emergence.scoring.answers import normalise_text, token_f1

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "fedcba9876543210fedcba9876543210fedcba98"


def lay_out(cache, repo, files, sha=SHA):
    """Write `files` (path -> DataFrame) as huggingface_hub caches dataset `repo` at commit `sha` on main."""
    root = cache / f"datasets--{repo.replace('/', '--')}"
    for name, frame in files.items():
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        blob = root / "blobs" / hashlib.sha256(buffer.getvalue()).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(buffer.getvalue())
        link = root / "snapshots" / sha / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(sha)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty HF cache in tmp_path, offline; constants are read at import, so patch them too."""
    from huggingface_hub import constants

    root = tmp_path / "hf"
    root.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return root


def word_problem(i, total):
    return {
        "question": f"A shop packs {i + 2} boxes of {total} beads each and sells one box. How many beads are left?",
        "answer": f"It packs {i + 2} boxes.\nOne box is sold, so {i + 1} remain: "
        f"{i + 1}*{total} = <<{i + 1}*{total}={(i + 1) * total}>>.\n#### {(i + 1) * total:,}",
    }


GSM8K_TEST = pd.DataFrame([word_problem(i, 1234) for i in range(6)])
GSM8K_TRAIN = pd.DataFrame([word_problem(i, 7) for i in range(4)])


def mmlu_row(i, answer):
    return {
        "question": f"Which made-up group has order {i + 3}?",
        "subject": "abstract_algebra",
        "choices": [f"G{i}", f"H{i}", f"K{i}", f"L{i}"],
        "answer": answer,
    }


def trivia_row(i, value, aliases):
    return {
        "question": f"Which invented river flows through town number {i}?",
        "question_id": f"tq_{i:03d}",
        "question_source": "made-up",
        "answer": {
            "value": value,
            "aliases": aliases,
            "normalized_value": value.lower(),
            "normalized_aliases": [a.lower() for a in aliases],
        },
    }


@pytest.fixture
def hub(cache):
    lay_out(
        cache,
        "openai/gsm8k",
        {"main/test-00000-of-00001.parquet": GSM8K_TEST, "main/train-00000-of-00001.parquet": GSM8K_TRAIN},
    )
    lay_out(
        cache,
        "cais/mmlu",
        {
            "abstract_algebra/test-00000-of-00001.parquet": pd.DataFrame([mmlu_row(i, i % 4) for i in range(8)]),
            "abstract_algebra/dev-00000-of-00001.parquet": pd.DataFrame(
                [mmlu_row(10 + i, 3 - i % 4) for i in range(5)]
            ),
        },
    )
    lay_out(
        cache,
        "mandarjoshi/trivia_qa",
        {
            "rc.nocontext/validation-00000-of-00001.parquet": pd.DataFrame(
                [
                    trivia_row(0, "The Glimmer", ["Glimmer River", "the glimmer"]),
                    trivia_row(1, "Ostra-Vel", ["Ostra Vel!"]),
                ]
            ),
            "rc.nocontext/train-00000-of-00001.parquet": pd.DataFrame(
                [trivia_row(5 + i, f"River {i}", [f"R{i}"]) for i in range(3)]
            ),
        },
    )
    return cache


def test_gsm8k_loads_offline_with_exact_targets(hub):
    folder = fetch("openai/gsm8k", "main", hub_patterns("gsm8k"))
    assert folder == hub / "datasets--openai--gsm8k" / "snapshots" / SHA
    assert fetch("openai/gsm8k", SHA, hub_patterns("gsm8k")) == folder
    items = gsm8k_items(folder, seed=0, n_test=None, n_train=2)
    assert list(items.columns) == ["item_id", "split", "input", "target", "digits", "metadata"]
    assert str(items["digits"].dtype) == "int32" and set(items["digits"]) == {0}
    test = items[items["split"] == "test"]
    assert list(test["target"]) == ["1234", "2468", "3702", "4936", "6170", "7404"]
    assert list(test["item_id"]) == [f"test-{i:05d}" for i in range(6)] and list(test["input"]) == list(
        GSM8K_TEST["question"]
    )
    meta = json.loads(test["metadata"].iloc[0])
    assert meta["answer_line"] == "#### 1,234" and meta["rationale"].endswith("<<1*1234=1234>>.")
    assert (items["split"] == "train").sum() == 2
    first, again = (gsm8k_items(folder, seed=3, n_test=3, n_train=2) for _ in range(2))
    pd.testing.assert_frame_equal(first, again)
    assert list(first["item_id"][:3]) == sorted(first["item_id"][:3])  # file order kept
    assert any(not gsm8k_items(folder, seed=s, n_test=3, n_train=2).equals(first) for s in range(4, 8))


def test_mmlu_targets_are_letters_and_the_pool_is_dev(hub):
    folder = fetch("cais/mmlu", "main", hub_patterns("mmlu", "abstract_algebra"))
    items = mmlu_items(folder, "abstract_algebra", seed=0, n_test=None, n_train=None)
    test, train = items[items["split"] == "test"], items[items["split"] == "train"]
    assert list(test["target"]) == list("ABCDABCD") and list(train["target"]) == list("DCBAD")
    meta = json.loads(test["metadata"].iloc[2])
    assert meta == {"choices": ["G2", "H2", "K2", "L2"], "answer_index": 2, "subject": "abstract_algebra"}
    assert train["item_id"].iloc[0] == "abstract_algebra-train-00000" and len(train) == 5


def test_trivia_qa_keeps_the_value_and_normalised_aliases(hub):
    folder = fetch("mandarjoshi/trivia_qa", "main", hub_patterns("trivia_qa"))
    items = trivia_qa_items(folder, seed=0, n_test=None, n_train=1)
    test = items[items["split"] == "test"]
    assert list(test["target"]) == ["The Glimmer", "Ostra-Vel"] and list(test["item_id"]) == [
        "test-tq_000",
        "test-tq_001",
    ]
    assert [json.loads(m)["aliases"] for m in test["metadata"]] == [
        ["glimmer", "glimmer river"],
        ["ostravel", "ostra vel"],
    ]
    assert (items["split"] == "train").sum() == 1


@pytest.mark.parametrize("revision", [OTHER_SHA, "v2"])
def test_a_revision_not_in_the_cache_fails_with_one_line(hub, revision):
    with pytest.raises(HubTaskError) as err:
        fetch("openai/gsm8k", revision, hub_patterns("gsm8k"))
    assert (
        str(err.value)
        == f"dataset openai/gsm8k at revision {revision}: not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    )


def test_a_snapshot_without_the_files_fails(hub):
    with pytest.raises(
        HubTaskError,
        match=r"^dataset cais/mmlu at revision main: no file matches astronomy/test-\*\.parquet in the snapshot$",
    ):
        fetch("cais/mmlu", "main", hub_patterns("mmlu", "astronomy"))


def test_malformed_files_fail_naming_dataset_file_and_field(cache):
    bad = GSM8K_TEST.copy()
    bad.loc[1, "answer"] = "The answer is 12."
    lay_out(
        cache,
        "openai/gsm8k",
        {"main/test-00000-of-00001.parquet": bad, "main/train-00000-of-00001.parquet": GSM8K_TRAIN},
    )
    with pytest.raises(
        HubTaskError,
        match=r"^dataset openai/gsm8k: main/test-00000-of-00001.parquet: row 1: "
        r"field 'answer' does not end in a '#### <number>' line$",
    ):
        gsm8k_items(fetch("openai/gsm8k", "main", hub_patterns("gsm8k")), seed=0, n_test=None, n_train=0)
    no_choices = pd.DataFrame([mmlu_row(0, 1)]).drop(columns="choices")
    lay_out(
        cache,
        "cais/mmlu",
        {"anatomy/test-00000-of-00001.parquet": no_choices, "anatomy/dev-00000-of-00001.parquet": no_choices},
    )
    with pytest.raises(
        HubTaskError, match=r"^dataset cais/mmlu: anatomy/test-00000-of-00001.parquet: missing column 'choices'$"
    ):
        mmlu_items(
            fetch("cais/mmlu", "main", hub_patterns("mmlu", "anatomy")), "anatomy", seed=0, n_test=None, n_train=None
        )


def test_normalise_text_drops_case_punctuation_and_articles():
    assert normalise_text("  The Eiffel   Tower!") == "eiffel tower"
    assert normalise_text("An apple, a day; THE end.") == "apple day end"
    assert normalise_text("Theory of a U.S.A. “thing”") == "theory of usa thing"
    assert normalise_text("the") == ""


def test_token_f1_scores_overlap_against_the_best_reference():
    assert token_f1("the Eiffel tower", ["Eiffel Tower."]) == 1.0
    assert token_f1("Eiffel Tower in Paris", ["Eiffel Tower"]) == pytest.approx(2 / 3)  # P 2/4, R 2/2
    assert token_f1("paris paris", ["Paris"]) == pytest.approx(2 / 3)  # a repeated token counts once
    assert token_f1("Paris France", ["London", "paris", "Paris, France"]) == 1.0
    assert token_f1("Paris France", ["London", "Paris"]) == pytest.approx(2 / 3)
    assert token_f1("new york city", ["York", "New York"]) == pytest.approx(0.8)  # P 2/3, R 2/2
    assert token_f1("", ["Paris"]) == 0.0 and token_f1("Paris", []) == 0.0
    assert token_f1("The", ["a"]) == 1.0  # both empty after normalisation


def test_mmlu_and_gsm8k_run_through_the_workflow(hub, tiny_checkpoints, tmp_path):
    """Offline from the laid-out cache: MMLU choices scored by the engine (grade, Brier), GSM8K by chain of thought.
    Snakemake builds what is checked (19 jobs; the other fits and figures and the report would be 14 more)."""
    from conftest import ONE_THREAD_INFERENCE, snakemake, sweep_config
    from emergence import io as stages

    tasks = {
        "mmlu": {
            "kind": "mmlu",
            "subject": "abstract_algebra",
            "revision": "main",
            "n_test": 4,
            "n_train": 2,
            "methods": ["zero_shot"],
        },
        "gsm8k": {"kind": "gsm8k", "revision": SHA, "n_test": 3, "n_train": 2},
    }
    methods = {"zero_shot": {"kind": "zero_shot"}, "cot": {"kind": "chain_of_thought", "k": 1, "max_tokens": 16}}
    metrics = [
        "exact_match",
        "flexible_exact_match",
        "multiple_choice_grade",
        "correct_choice_prob",
        "brier_multiclass",
        "target_logprob",
    ]
    config = sweep_config(tiny_checkpoints, tasks=tasks, methods=methods, metrics=metrics)
    config["figures"] = {"x": "n_params", "metric": "exact_match", "method": "zero_shot"}
    config["engine"]["max_model_len"] = 512  # a chain-of-thought exemplar of a word problem, byte by byte
    targets = [
        f"results/scores/{model}/{pair}.parquet"
        for model in tiny_checkpoints
        for pair in ("mmlu/zero_shot", "gsm8k/cot")
    ]
    result = snakemake(
        tmp_path / "run", config, *targets, "results/figures/multiple_choice/mmlu/zero_shot.png", *ONE_THREAD_INFERENCE
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "run"
    for model in tiny_checkpoints:
        generations = stages.read_table(run / f"results/generations/{model}/mmlu/zero_shot.parquet", "generations")
        assert all(len(c) == 4 for c in generations["choice_logprobs"]) and all(
            sum(s) == 1 for s in generations["choice_scores"]
        )
        scores = stages.read_table(run / f"results/scores/{model}/mmlu/zero_shot.parquet", "scores")
        grade = scores[scores["metric"] == "multiple_choice_grade"].set_index("item_id")["value"]
        chosen = {
            row.item_id: int(max(range(4), key=lambda i: row.choice_logprobs[i])) for row in generations.itertuples()
        }
        correct = {row.item_id: list(row.choice_scores).index(1.0) for row in generations.itertuples()}
        assert grade.to_dict() == {item: float(chosen[item] == correct[item]) for item in chosen}
        gsm = stages.read_table(run / f"results/scores/{model}/gsm8k/cot.parquet", "scores")
        assert {"exact_match", "flexible_exact_match"} <= set(gsm["metric"]) and "multiple_choice_grade" not in set(
            gsm["metric"]
        )
    cot = stages.read_table(run / "results/prompts/gsm8k/cot.parquet", "prompts")
    assert cot["prompt"].str.contains("#### ").sum() == 0 and cot["prompt"].str.contains("The answer is").all()
    assert (run / "results/figures/multiple_choice/mmlu/zero_shot.png").stat().st_size > 1000
