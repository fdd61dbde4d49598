"""Plain functions of each stage, without Snakemake or an engine: tasks, prompts, metrics, stage files."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from emergence import io
from emergence.methods import build_prompts
from emergence.scoring import score_generations
from emergence.tasks import TaskError, build_task

ADDITION = {"kind": "synthetic_arithmetic", "operation": "addition", "digits": [1, 2, 3], "n_test": 10, "n_train": 8}
SAMPLING = {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0, "stop": ["\n"]}


def test_arithmetic_items_are_correct_seeded_and_disjoint():
    items = build_task("addition", ADDITION, 0)
    assert len(items) == 3 * 18
    for row in items.itertuples():
        meta = json.loads(row.metadata)
        assert row.input == f"{meta['a']}+{meta['b']}=" and row.target == str(meta["a"] + meta["b"])
        assert len(str(meta["a"])) == len(str(meta["b"])) == row.digits
    test, train = items[items["split"] == "test"], items[items["split"] == "train"]
    assert not set(test["input"]) & set(train["input"])
    assert build_task("addition", ADDITION, 0).equals(items)
    assert not build_task("addition", ADDITION, 1).equals(items)
    product = build_task("m", {**ADDITION, "operation": "multiplication"}, 0).iloc[0]
    a, b = json.loads(product.metadata)["a"], json.loads(product.metadata)["b"]
    assert product.input == f"{a}*{b}=" and product.target == str(a * b)


def test_a_task_cannot_ask_for_more_items_than_exist():
    with pytest.raises(TaskError, match="30 test items asked for 1-digit operands, only 27 pairs exist"):
        build_task("addition", {**ADDITION, "digits": [1], "n_test": 30, "n_train": 20}, 0)


def test_few_shot_exemplars_are_seeded_same_digits_and_never_the_item():
    items = build_task("addition", ADDITION, 0)
    prompts = build_prompts("addition", items, "few_shot_3", {"kind": "few_shot", "k": 3}, SAMPLING, 0)
    train = items[items["split"] == "train"]
    solved = {f"{r.input}{r.target}": r.digits for r in train.itertuples()}
    test = items[items["split"] == "test"].set_index("item_id")
    for row in prompts.itertuples():
        *shots, question = row.prompt.split("\n")
        assert question == test.loc[row.item_id, "input"] and len(shots) == 3
        assert all(solved[shot] == test.loc[row.item_id, "digits"] for shot in shots)
        assert question not in [shot[: len(question)] for shot in shots]
    assert build_prompts("addition", items, "few_shot_3", {"kind": "few_shot", "k": 3}, SAMPLING, 0).equals(prompts)
    assert len(set(prompts["seed"])) == len(prompts)  # every request has its own sampling seed


def chars(texts: list[str]) -> list[list[str]]:
    """A batch tokenizer whose tokens are characters."""
    return [list(text) for text in texts]


def test_metrics_on_known_outputs():
    generations = pd.DataFrame(
        {
            "request_id": ["t/m/a", "t/m/b", "t/m/c"],
            "item_id": ["a", "b", "c"],
            "task": "t",
            "method": "m",
            "texts": [["123"], [" 129 "], ["9"]],
            "target": ["123", "123", "123"],
            "answer": ["123", "123", "123"],
            "answer_regex": "",
            "target_token_ids": [[1, 2, 3]] * 3,
            "target_logprobs": [[-0.1, -0.2, -0.3], [-1.0, -1.0, -1.0], [-3.0, -2.0, -1.0]],
        }
    )
    tasks = pd.DataFrame({"item_id": ["a", "b", "c"], "digits": [3, 3, 3]})
    model = {"model": "m1", "family": "f", "n_params": 1000, "training_flops": 6e9}
    scores = score_generations(
        generations, tasks, model, chars, ["exact_match", "token_edit_distance", "target_logprob", "per_token_prob"]
    )
    wide = scores.pivot(index="item_id", columns="metric", values="value")
    assert list(wide["exact_match"]) == [1.0, 0.0, 0.0]
    assert list(wide["token_edit_distance"]) == [0.0, 1.0, 3.0]  # "9" vs "123": one substitution, two insertions
    assert wide["target_logprob"].to_numpy() == pytest.approx([-0.6, -3.0, -6.0])
    assert wide["per_token_prob"].to_numpy() == pytest.approx(np.exp([-0.2, -1.0, -2.0]))
    assert (
        (scores["n_params"] == 1000).all()
        and (scores["target_tokens"] == 3).all()
        and (scores["training_flops"] == 6e9).all()
    )


def test_scratchpad_prompts_open_the_worked_format_and_score_the_answer_after_it():
    items = build_task("addition", ADDITION, 0)
    prompts = build_prompts("addition", items, "scratchpad_1", {"kind": "scratchpad", "k": 1}, SAMPLING, 0)
    row = prompts.iloc[-1]
    meta = json.loads(items.set_index("item_id").loc[row.item_id, "metadata"])
    shot, question = row.prompt.split("\n")
    assert shot.startswith("S:") and shot.count("[") == 1 and shot.count("]") == 1
    assert question == f"S:{meta['a']}+{meta['b']}=["
    assert "[" + row.target == meta["scratchpad"] and row.target.endswith("]" + row.answer)
    generations = prompts.assign(
        texts=[[t] for t in prompts["target"]],
        target_token_ids=[[0]] * len(prompts),
        target_logprobs=[[-0.5]] * len(prompts),
    )
    generations.loc[0, "texts"] = ["1+2=3]"]  # closed the scratchpad without an answer
    scores = score_generations(generations, items, {"model": "m", "family": "f", "n_params": 1}, chars, ["exact_match"])
    assert scores["value"].iloc[0] == 0.0 and (scores["value"].iloc[1:] == 1.0).all()


def test_scratchpad_traces_work_the_problem():
    from emergence.tasks.arithmetic import scratchpad

    assert scratchpad("addition", 58, 67) == "[8+7=15;5+6+1=12]125"
    assert scratchpad("subtraction", 52, 27) == "[2-7=-5+10=5;5-2-1=2]25"
    assert scratchpad("subtraction", 27, 52) == "[swap;2-7=-5+10=5;5-2-1=2]-25"
    assert scratchpad("multiplication", 12, 34) == "[12*4=48;12*30=360;48+360=408]408"


def test_stage_files_refuse_truncated_or_foreign_parquet(tmp_path):
    items = build_task("addition", ADDITION, 0)
    path = tmp_path / "items.parquet"
    io.write_table(items, path, "tasks", {"task": "addition"})
    pd.testing.assert_frame_equal(io.read_table(path, "tasks"), items, check_dtype=False)
    assert io.read_provenance(path)["task"] == "addition"
    with pytest.raises(io.StageFileError, match="do not match the prompts schema"):
        io.read_table(path, "prompts")
    with pytest.raises(io.StageFileError, match=r"prompts schema: missing request_id, .*; not in the schema: split, i"):
        io.read_table(path, "prompts")
    intact = path.read_bytes()
    flipped = bytearray(intact)
    flipped[len(flipped) // 3] ^= 0xFF  # inside a data page: the footer still reads, the page checksum fails
    path.write_bytes(bytes(flipped))
    assert io.unreadable_parquet(tmp_path) == []
    with pytest.raises(io.CorruptStageFile, match="corrupt or truncated Parquet file"):
        io.read_table(path, "tasks")
    with pytest.raises(io.CorruptStageFile, match="corrupt or truncated Parquet file"):
        list(io.iter_table(path, "tasks"))
    path.write_bytes(intact[:-100])
    assert io.unreadable_parquet(tmp_path) == [path]
    with pytest.raises(io.CorruptStageFile, match="corrupt or truncated Parquet file"):
        io.read_table(path, "tasks")
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_writes_are_byte_identical(tmp_path):
    items = build_task("addition", ADDITION, 0)
    io.write_table(items, tmp_path / "a.parquet", "tasks")
    io.write_table(items, tmp_path / "b.parquet", "tasks")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.parquet").stat().st_mode & 0o777 == 0o666 & ~umask  # not left private by mkstemp


def test_the_cli_reports_bad_input_in_one_line_and_lets_bugs_through(monkeypatch, capsys):
    from emergence import cli
    from emergence.errors import InputError

    def bad_input(args):
        raise InputError("thing.json: key: not usable")

    def bug(args):
        raise ValueError("a library bug")

    monkeypatch.setitem(cli.COMMANDS, "report", (bad_input, "", "--out"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "--out", "x"])
    assert exit_.value.code == 1 and capsys.readouterr().err == "error: thing.json: key: not usable\n"
    monkeypatch.setitem(cli.COMMANDS, "report", (bug, "", "--out"))
    with pytest.raises(
        ValueError, match="a library bug"
    ):  # not turned into a one-line error: a bug keeps its traceback
        cli.main(["report", "--out", "x"])


def test_a_schema_mismatch_says_which_column_differs_and_how():
    expected = io.SCHEMAS["imported"]
    value = expected.get_field_index("value")
    cases = {
        "value is string, not double": expected.set(value, pa.field("value", pa.string())),
        "missing value$": expected.remove(value),
        "not in the schema: extra$": expected.append(pa.field("extra", pa.int64())),
        "value may not hold nulls": expected.set(value, expected.field("value").with_nullable(False)),
        "in another order": pa.schema([*list(expected)[1:], expected.field(0)]),
    }
    for message, schema in cases.items():
        with pytest.raises(
            io.StageFileError, match=rf"^table\.parquet: columns do not match the imported schema: {message}"
        ):
            io.check_schema("table.parquet", schema, "imported")
    io.check_schema("table.parquet", expected.with_metadata({"a": "b"}), "imported")  # metadata aside, the same
