"""BIG-bench JSON tasks: extraction from the real bigbench==1.0.0 archive, validation, items."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import ARCHIVE
from emergence.bigbench import BigBenchError, extract_tasks, load_task_file, task_items

PREFIX = "bigbench-1.0.0/bigbench/benchmark_tasks/"
METADATA_KEYS = {
    "subtask",
    "targets",
    "target_scores",
    "question",
    "append_choices",
    "input_prefix",
    "output_prefix",
    "separator",
    "task_prefix",
    "choice_prefix",
    "output_regex",
    "stop_string",
}


@pytest.fixture(scope="session")
def arithmetic(bigbench_files) -> tuple[Path, list[Path], list[tuple[str, dict]]]:
    """The arithmetic and modified_arithmetic files as extracted from the real archive (with the other
    tasks of conftest's BIGBENCH_TASKS, in the same read)."""
    out, files = bigbench_files
    paths = [path for path in files if path.relative_to(out).parts[0] in ("arithmetic", "modified_arithmetic")]
    tasks = []
    for path in paths:
        label = path.relative_to(out).as_posix()
        tasks.append((label.removesuffix("/task.json"), load_task_file(path, label)))
    return out, paths, tasks


def test_real_arithmetic_files(arithmetic):
    out, paths, tasks = arithmetic
    names = [name for name, _ in tasks]
    assert len(paths) == 26  # 20 arithmetic subtasks (1-5 digits x 4 operations), 6 modified_arithmetic ones
    assert (
        names[0] == "arithmetic/1_digit_addition"
        and names[-1] == "modified_arithmetic/two_digit_multiplication_plus_one"
    )
    assert (out / "arithmetic" / "task.json").is_file()  # the metadata-only parent is extracted, not returned
    assert not list(out.rglob("*.py"))  # arithmetic/generate_examples.py stays in the archive
    task = dict(tasks)
    counts = {name: len(t["examples"]) for name, t in task.items()}
    assert counts["arithmetic/1_digit_addition"] == 100
    assert counts["arithmetic/1_digit_division"] == 23
    assert counts["arithmetic/3_digit_division"] == 500
    assert counts["arithmetic/5_digit_multiplication"] == 1000
    assert counts["modified_arithmetic/three_digit_addition_plus_one"] == 1000
    example = task["arithmetic/1_digit_addition"]["examples"][17]
    assert example["input"] == "What is 1 plus 7?" and example["targets"] == ["8"]
    assert example["target_scores"]["8"] == 1.0 and example["target_scores"]["banana"] == 0.0
    plus_one = task["modified_arithmetic/three_digit_addition_plus_one"]
    assert plus_one["examples"][0]["input"].endswith("466 + 214 ->") and plus_one["examples"][0]["targets"] == ["681"]
    assert plus_one["examples"][0]["target_scores"] is None
    # arithmetic leaves the prompt fields out (BIG-bench defaults); modified_arithmetic sets its own
    assert (
        task["arithmetic/2_digit_addition"]["input_prefix"],
        task["arithmetic/2_digit_addition"]["output_prefix"],
    ) == ("\nQ: ", "\nA: ")
    assert task["arithmetic/2_digit_addition"]["separator"] == "\n"
    assert (plus_one["input_prefix"], plus_one["output_prefix"], plus_one["separator"]) == ("", " ", "\n\n")
    assert all(t["output_regex"] == r"[-+]?\d+" and t["stop_string"] is None for t in task.values())


def test_real_task_items_split(arithmetic):
    _, _, tasks = arithmetic
    items = task_items(tasks, seed=0, n_test=20, n_train=5)
    assert list(items.columns) == ["item_id", "split", "input", "target", "digits", "metadata"]
    assert not items["item_id"].duplicated().any()
    per = (
        items.assign(subtask=items["item_id"].str.rsplit("/", n=1).str[0])
        .groupby(["subtask", "split"])
        .size()
        .unstack()
    )
    assert (per["train"] == 5).all()
    assert per.loc["arithmetic/1_digit_division", "test"] == 18  # 23 examples: what is left after 5 train
    assert (per["test"].drop("arithmetic/1_digit_division") == 20).all()
    train, test = (set(items.loc[items["split"] == s, "input"]) for s in ("train", "test"))
    assert not train & test
    assert dict(zip(items["item_id"].str.rsplit("/", n=1).str[0], items["digits"]))["arithmetic/4_digit_division"] == 4
    assert set(items.loc[items["item_id"].str.startswith("modified_arithmetic/two_digit"), "digits"]) == {2}
    row = items.iloc[0]
    metadata = json.loads(row["metadata"])
    assert set(metadata) == METADATA_KEYS and row["target"] == metadata["targets"][0]
    pd.testing.assert_frame_equal(items, task_items(tasks, seed=0, n_test=20, n_train=5))
    other = task_items(tasks, seed=1, n_test=20, n_train=5)
    assert set(other["item_id"]) != set(items["item_id"])
    everything = task_items(tasks, seed=0, n_test=None, n_train=5)
    assert (everything["split"] == "test").sum() == sum(len(t["examples"]) for _, t in tasks) - 5 * len(tasks)


def write_archive(path: Path, files: dict[str, str], links: tuple[str, ...] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(PREFIX + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in links:
            info = tarfile.TarInfo(PREFIX + name)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


def task_json(*examples: dict, **fields) -> str:
    return json.dumps({"name": "t", **fields, "examples": list(examples or [{"input": "1+1=", "target": "2"}])})


@pytest.fixture
def tiny_archive(tmp_path) -> Path:
    return write_archive(
        tmp_path / ARCHIVE,
        {
            "alpha/task.json": task_json(),
            "beta/task.json": json.dumps({"name": "beta"}),
            "beta/one/task.json": task_json(),
            "beta/two/task.json": task_json(),
            "beta/README.md": "not a task",
        },
    )


def test_extract_selects_tasks_and_subtasks(tiny_archive, tmp_path):
    out = tmp_path / "out"
    assert extract_tasks(tiny_archive, ["alpha", "beta/one"], out) == [
        out / "alpha/task.json",
        out / "beta/one/task.json",
    ]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "alpha/task.json",
        "beta/one/task.json",
    ]
    assert extract_tasks(tiny_archive, ["beta"], out) == [out / "beta/one/task.json", out / "beta/two/task.json"]
    assert (out / "beta/task.json").is_file() and not (out / "beta/README.md").exists()


@pytest.mark.parametrize("names", [["alpha", "gamma"], ["beta/three"]])
def test_extract_unknown_task(tiny_archive, tmp_path, names):
    with pytest.raises(BigBenchError) as error:
        extract_tasks(tiny_archive, names, tmp_path / "out")
    message = str(error.value)
    assert names[-1] in message and ARCHIVE in message and "\n" not in message


def test_extract_refuses_unsafe(tmp_path):
    with pytest.raises(BigBenchError, match="not a task name"):
        extract_tasks(
            write_archive(tmp_path / ARCHIVE, {"alpha/task.json": task_json()}), ["../alpha"], tmp_path / "out"
        )
    linked = write_archive(tmp_path / "linked.tar.gz", {}, links=("evil/task.json",))
    with pytest.raises(BigBenchError, match="refusing a link"):
        extract_tasks(linked, ["evil"], tmp_path / "out")
    assert not (tmp_path / "out" / "evil").exists()


GOOD = {"input": "1+1=", "target": "2"}
MALFORMED = {
    "bad json": ('{"examples": [', "(file)"),
    "not an object": ("[1, 2]", "(file)"),
    "no examples": (json.dumps({"name": "t"}), "examples"),
    "empty examples": (json.dumps({"name": "t", "examples": []}), "examples"),
    "target a number": (task_json(GOOD, {"input": "2+2=", "target": 4}), "examples[1].target"),
    "target list with a number": (task_json({"input": "q", "target": ["a", 1]}), "examples[0].target"),
    "score not a number": (
        task_json({"input": "q", "target_scores": {"a": "high", "b": 0}}),
        "examples[0].target_scores",
    ),
    "scores not a dict": (task_json({"input": "q", "target_scores": ["a", "b"]}), "examples[0].target_scores"),
    "no correct choice": (task_json({"input": "q", "target_scores": {"a": 0, "b": 0}}), "examples[0].target_scores"),
    "no input": (task_json(GOOD, GOOD, {"target": "2"}), "examples[2].input"),
    "no target at all": (task_json({"input": "q"}), "examples[0]"),
    "prefix not a string": (task_json(example_input_prefix=3), "example_input_prefix"),
}


@pytest.mark.parametrize("text, field", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_task_file(tmp_path, text, field):
    path = tmp_path / "task.json"
    path.write_text(text)
    label = "demo/sub_task/task.json"
    with pytest.raises(BigBenchError) as error:
        load_task_file(path, label)
    message = str(error.value)
    assert message.startswith(f"{label}: {field}: ") and "\n" not in message


def test_defaults_multiple_choice_and_duplicates(tmp_path):
    path = tmp_path / "task.json"
    choice = {"input": "Pick", "target_scores": {"low": 0, "high": 1, "mid": 0.5}}
    path.write_text(task_json(choice, {"input": "Both", "target": ["x", "y"]}, choice, contributors=["someone"]))
    task = load_task_file(path, "demo/task.json")
    assert task["name"] == "t" and (task["input_prefix"], task["output_prefix"], task["separator"]) == (
        "\nQ: ",
        "\nA: ",
        "\n",
    )
    assert task["examples"][0] == {
        "input": "Pick",
        "targets": [],
        "target_scores": {"low": 0.0, "high": 1.0, "mid": 0.5},
    }
    items = task_items([("demo", task)], seed=3, n_test=None, n_train=0)
    assert sorted(items["item_id"]) == ["demo/0", "demo/1"]  # the repeated example 2 is dropped
    assert dict(zip(items["input"], items["target"])) == {
        "\nQ: Pick\n  choice: high\n  choice: low\n  choice: mid\nA: ": "high",
        "\nQ: Both\nA: ": "x",
    }
    assert (items["digits"] == 0).all()
    with pytest.raises(BigBenchError, match="demo: no test items"):
        task_items([("demo", task)], seed=3, n_test=None, n_train=2)


def test_bigbench_arithmetic_runs_through_the_workflow(task_archive, tiny_checkpoints, tmp_path):
    """A BIG-bench task and its shifted variant, zero-shot and chain-of-thought, through Snakemake and vLLM
    (the archive holds only the tests' task files, taken unchanged from the real one)."""
    from conftest import ONE_THREAD_INFERENCE, snakemake, sweep_config
    from emergence import io as stages

    downloads = tmp_path / "resources" / "downloads"
    downloads.mkdir(parents=True)
    (downloads / task_archive.name).symlink_to(task_archive)  # where rule download_bigbench puts the archive
    tasks = {
        "bb": {
            "kind": "bigbench",
            "tasks": ["arithmetic/2_digit_addition", "arithmetic/1_digit_multiplication"],
            "n_test": 3,
            "n_train": 2,
        },
        "bb_typos": {"kind": "variant", "of": "bb", "shift": "typos", "rate": 0.2},
    }
    methods = {"zero_shot": {"kind": "zero_shot"}, "cot": {"kind": "chain_of_thought", "k": 1, "max_tokens": 24}}
    result = snakemake(tmp_path, sweep_config(tiny_checkpoints, tasks=tasks, methods=methods), *ONE_THREAD_INFERENCE)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    items = stages.read_table(tmp_path / "results/tasks/bb.parquet", "tasks")
    test = items[items["split"] == "test"]
    assert (
        len(test) == 6
        and test["input"].str.fullmatch(r"\nQ: What is \d+ (plus|times) \d+\?(\n  choice: [^\n]+)+\nA: ").all()
    )
    cot = stages.read_table(tmp_path / "results/prompts/bb/cot.parquet", "prompts")
    assert cot["prompt"].str.endswith("?\nA:").all() and cot["target"].str.contains("\nThe answer is ").all()
    for model in tiny_checkpoints:
        for task in tasks:
            for method in methods:
                scores = stages.read_table(tmp_path / f"results/scores/{model}/{task}/{method}.parquet", "scores")
                assert len(scores[scores["metric"] == "exact_match"]) == 6
    report = (tmp_path / "results/report.html").read_text()
    assert 'alt="robustness / bb"' in report and 'alt="methods / bb"' in report
