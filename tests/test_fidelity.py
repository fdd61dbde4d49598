"""Fidelity: tasks, answers and caches exactly as their sources define them; nothing silently dropped.

Each case of the fidelity issue has its right value here, and each kind of fault a test of its own:
BIG-bench's prompt format on real task files, every metric against several accepted targets,
multiple-choice continuations, output regexes, numbers equal as numbers, empty teacher-forcing
contexts, curves ordered by their own axis, results CSVs read without losing a row, and model identity.
"""

from __future__ import annotations

import gc
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import infer_command, run_cli
from emergence.bigbench import BigBenchError, extract_tasks, load_task_file, task_items
from emergence.engines import EmptyContext, Request, load_engine
from emergence.methods import STRICT_ANSWER_REGEX, build_prompts
from emergence.scoring import score_generations
from emergence.scoring.answers import extract_answer, last_number, normalise
from emergence.tasks.bigbench import bigbench_task

SAMPLING = {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0, "stop": ["\n"]}
SETTINGS = {"dtype": "float32", "max_model_len": 256, "memory_fraction": 0.3, "tensor_parallel_size": 1, "seed": 0}


@pytest.fixture(autouse=True)
def release_engines():
    yield
    gc.collect()


def chars(texts: list[str]) -> list[list[str]]:
    return [list(text) for text in texts]


def scored(texts: list[list[str]], answers: list[list[str]], metrics: list[str], regex: str = "") -> pd.DataFrame:
    """Score generations whose items accept `answers` (the first is `answer`); item x metric."""
    n = len(texts)
    generations = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "item_id": [f"i{i}" for i in range(n)],
            "task": "t",
            "method": "m",
            "texts": texts,
            "answer": [a[0] for a in answers],
            "answers": answers,
            "answer_regex": regex,
            "target_token_ids": [[0]] * n,
            "target_logprobs": [[-1.0]] * n,
            "token_logprobs": [[[-0.5]] * len(t) for t in texts],
        }
    )
    tasks = pd.DataFrame({"item_id": generations["item_id"], "digits": 0})
    scores = score_generations(generations, tasks, {"model": "m", "family": "f", "n_params": 1}, chars, metrics)
    return scores.pivot(index="item_id", columns="metric", values="value").loc[generations["item_id"]]


# --- case 1: several accepted targets --------------------------------------------------------------


def test_an_output_equal_to_any_listed_target_is_right(tmp_path):
    """The issue's example, from a task.json through items and prompts to scores."""
    path = tmp_path / "task.json"
    path.write_text(
        json.dumps(
            {
                "name": "animals",
                "examples": [{"input": "I have a cat and a dog. How many animals do I have?", "target": ["2", "two"]}],
            }
        )
    )
    items = task_items([("animals", load_task_file(path, "animals/task.json"))], seed=0, n_test=None, n_train=0)
    prompts = build_prompts("animals", items, "zero", {"kind": "zero_shot"}, SAMPLING, 0)
    assert list(prompts["answers"][0]) == ["2", "two"] and prompts["answer"][0] == "2"
    wide = scored(
        [[" two"]], [list(prompts["answers"][0])], ["exact_match", "exact_string_match", "normalized_exact_match"]
    )
    assert wide.iloc[0].tolist() == [1.0, 1.0, 1.0]


def test_every_metric_that_compares_to_the_answer_takes_the_best_target():
    """Each item's output matches a target other than its first: a metric reading only the first would be wrong."""
    # per item: " two" vs (2, two); "The answer is 17" vs (12, 17); two samples "fourty" vs (forty, fourty, 40)
    expected = {
        "exact_match": [1, 0, 1],
        "flexible_exact_match": [0, 1, 0],
        "exact_string_match": [1, 0, 1],
        "normalized_exact_match": [1, 0, 1],
        "token_f1": [1, 0.5, 1],  # "answer is 17" vs "17": 2 * (1/3) * 1 / (1/3 + 1)
        "token_edit_distance": [0, 14, 0],
        "normalized_token_edit_distance": [0, 7, 0],
        "char_edit_distance": [0, 14, 0],
        "maj@1": [1, 0, 1],
        "maj@2": [np.nan, np.nan, 1],
        "pass@1": [1, 0, 1],
        "cmaj@1": [1, 0, 1],
    }
    wide = scored(
        [[" two"], ["The answer is 17"], ["fourty", "fourty"]],
        [["2", "two"], ["12", "17"], ["forty", "fourty", "40"]],
        list(expected),
    )
    for metric, values in expected.items():
        assert wide[metric].tolist() == pytest.approx(values, nan_ok=True), metric
    # the nearest target wins, not the first
    assert scored([["fourt"]], [["forty", "fourty"]], ["char_edit_distance"])["char_edit_distance"].tolist() == [1.0]
    assert scored([["fourt"]], [["forty"]], ["char_edit_distance"])["char_edit_distance"].tolist() == [2.0]


# --- case 2: BIG-bench's prompt format on real task files -------------------------------------------


@pytest.fixture(scope="module")
def real_tasks(task_archive, tmp_path_factory):
    names = [
        "arithmetic/1_digit_addition",
        "modified_arithmetic/three_digit_addition_plus_one",
        "simple_arithmetic_json_multiple_choice",
        "simple_arithmetic_multiple_targets_json",
        "penguins_in_a_table",
        "periodic_elements/subtask_1",
        "physics_questions",
    ]
    out = tmp_path_factory.mktemp("bigbench-real")
    files = extract_tasks(task_archive, names, out)
    return {f.parent.relative_to(out).as_posix(): load_task_file(f, f.relative_to(out).as_posix()) for f in files}


def first_prompt(task: dict, subtask: str, method: dict, index: int = 0, n_train: int = 0) -> tuple[str, pd.Series]:
    """The prompt of the example at `index` of the file, under `method` (exemplars from a train pool of n_train)."""
    items = task_items([(subtask, task)], seed=0, n_test=None, n_train=n_train)
    prompts = build_prompts(subtask, items, "m", method, SAMPLING, 0).set_index("item_id")
    row = prompts.loc[f"{subtask}/{index}"]
    return row["prompt"], row


def test_generative_task_with_target_scores_appends_its_choices(real_tasks):
    """arithmetic/1_digit_addition: no append_choices_to_input key, so the choices follow the question,
    sorted ("0", "1", "2", "859", "banana", "house") then permuted as RandomState(42) permutes 6 items."""
    prompt, row = first_prompt(
        real_tasks["arithmetic/1_digit_addition"], "arithmetic/1_digit_addition", {"kind": "zero_shot"}
    )
    assert prompt == (
        "\nQ: What is 0 plus 0?\n  choice: 0\n  choice: 1\n  choice: house\n"
        "  choice: 2\n  choice: banana\n  choice: 859\nA: "
    )
    assert row["answer"] == "0" and row["answer_regex"] == r"[-+]?\d+"


def test_custom_prefixes_and_separator_in_few_shot(real_tasks):
    """modified_arithmetic: input prefix "", output prefix " ", separator "\\n\\n" between exemplars."""
    name = "modified_arithmetic/three_digit_addition_plus_one"
    task = real_tasks[name]
    prompt, _ = first_prompt(task, name, {"kind": "few_shot", "k": 1}, index=0, n_train=3)
    items = task_items([(name, task)], seed=0, n_test=None, n_train=3)
    shot = items[items["split"] == "train"]
    shots = {row.input + row.target + "\n\n" for row in shot.itertuples()}
    query = task["examples"][0]["input"] + " "
    assert prompt.endswith(query) and prompt[: -len(query)] in shots
    assert prompt.startswith("In the following lines, the symbol -> represents a simple mathematical operation.\n")
    assert query.endswith("466 + 214 -> ")


def test_multiple_choice_task_with_its_own_choice_prefix(real_tasks):
    """simple_arithmetic_json_multiple_choice: choice prefix " option: ", four choices in the order
    RandomState(42) permutes 4 items: 1 3 0 2."""
    name = "simple_arithmetic_json_multiple_choice"
    prompt, _ = first_prompt(real_tasks[name], name, {"kind": "zero_shot"})
    assert prompt == "\nQ: 1 + 4 = option: 4 option: 6 option: 3 option: 5\nA: "


def test_choices_not_appended_task_prefix_and_stop_string(real_tasks):
    """penguins_in_a_table: append_choices_to_input false, a task prefix once before the few-shot
    context, input prefix "\\n", output prefix " Answer: ", stop string "\\n"."""
    task = real_tasks["penguins_in_a_table"]
    prompt, row = first_prompt(task, "penguins_in_a_table", {"kind": "few_shot", "k": 2}, index=0, n_train=4)
    assert prompt.startswith(task["task_prefix"]) and prompt.count("Here is a table") == 1
    assert prompt.endswith("\nWhat animals are listed in the table? Answer: ")
    assert "choice" not in prompt and prompt.count(" Answer: ") == 3
    assert list(row["stop"]) == ["\n"] and row["answer_regex"] == r"[\w]+"


def test_several_targets_and_a_custom_output_prefix(real_tasks):
    """simple_arithmetic_multiple_targets_json: output prefix " " after the input's own trailing space."""
    name = "simple_arithmetic_multiple_targets_json"
    prompt, row = first_prompt(real_tasks[name], name, {"kind": "zero_shot"})
    assert prompt == "\nQ: 1 + 4 =  " and list(row["answers"]) == ["five", "5"]
    assert row["answer_regex"] == r"[^\.\?\!\;\n]+"  # no output_regex or stop_string: BIG-bench's default applies


def test_every_file_the_default_sweep_uses_builds_and_its_choices_match_the_file(task_archive, tmp_path):
    """The default sweep's BIG-bench tasks as the task stage builds them: every item's prompt lists its choices."""
    spec = {"kind": "bigbench", "tasks": ["arithmetic", "modified_arithmetic"], "n_test": 3, "n_train": 2}
    items = bigbench_task("bb", spec, 0, task_archive)
    arithmetic = items[items["item_id"].str.startswith("arithmetic/")]
    for row in arithmetic.itertuples():
        meta = json.loads(row.metadata)
        listed = row.input.split("\n  choice: ")[1:]
        listed[-1] = listed[-1].removesuffix("\nA: ")
        assert sorted(listed) == sorted(meta["target_scores"]) and row.input.startswith(f"\nQ: {meta['question']}")
    modified = items[items["item_id"].str.startswith("modified_arithmetic/")]
    assert not modified["input"].str.contains("choice").any() and modified["input"].str.endswith(" ").all()


# --- case 3: multiple-choice continuations ----------------------------------------------------------


def test_the_correct_choice_is_the_same_continuation_as_the_target(task_archive, tiny_checkpoints, tmp_path):
    """A prompt ending in "A: ": the choice "6" is scored as the text after the prompt, like the target."""
    spec = {
        "kind": "bigbench",
        "tasks": ["arithmetic/1_digit_addition"],
        "n_test": 4,
        "n_train": 0,
        "multiple_choice": True,
    }
    items = bigbench_task("bb", spec, 0, task_archive)
    prompts = build_prompts("bb", items, "zero", {"kind": "zero_shot"}, SAMPLING, 0)
    assert all(prompt.endswith("\nA: ") for prompt in prompts["prompt"])
    assert all(not choice.startswith(" ") for choices in prompts["choices"] for choice in choices)
    batch = [
        Request(
            prompt=r.prompt,
            target=r.target,
            max_tokens=2,
            temperature=0.0,
            top_p=1.0,
            n=1,
            seed=0,
            stop=("\n",),
            choices=tuple(r.choices),
        )
        for r in prompts.itertuples()
    ]
    for name in ("vllm", "hf"):
        results = load_engine(name, str(tiny_checkpoints["tiny-b"]), SETTINGS).run(batch)
        for request, result in zip(batch, results):
            correct = request.choices.index(request.target)
            assert result.choice_logprobs[correct] == pytest.approx(sum(result.target_logprobs), abs=1e-5), name


# --- case 4: output_regex -------------------------------------------------------------------------------


def test_an_inline_flag_regex_extracts_case_insensitively(real_tasks):
    task = real_tasks["periodic_elements/subtask_1"]
    _, row = first_prompt(task, "periodic_elements/subtask_1", {"kind": "zero_shot"})
    assert row["answer_regex"].startswith("(?i)hydrogen|")
    assert extract_answer("I think it is Helium, or neon.", row["answer_regex"]) == "Helium"
    wide = scored([["HELIUM!"], ["xenon"]], [["helium"], ["helium"]], ["exact_match"], regex=row["answer_regex"])
    assert wide["exact_match"].tolist() == [
        0.0,
        0.0,
    ]  # extracted "HELIUM" and "xenon": exact match stays case-sensitive
    assert scored([["it is helium"]], [["helium"]], ["exact_match"], regex=row["answer_regex"])[
        "exact_match"
    ].tolist() == [1.0]


def test_groups_and_whole_matches():
    assert extract_answer("= 42. 7*7 = 49", r"\d+") == "42"  # BIG-bench's own example: the first match
    assert extract_answer("[1+2=3]3", r"\](-?\d+)$") == "3"  # a group: its text
    assert extract_answer("no digits", r"\d+") == ""


def test_an_invalid_output_regex_is_refused_at_load(tmp_path):
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"name": "t", "output_regex": "yes|(no", "examples": [{"input": "q", "target": "yes"}]}))
    with pytest.raises(BigBenchError) as error:
        load_task_file(path, "bad/task.json")
    assert str(error.value).startswith(
        "bad/task.json: output_regex: not a valid regular expression"
    ) and "\n" not in str(error.value)


# --- case 5: numbers equal as numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "right"),
    [
        ("The answer is $29.00.", "29", 1.0),
        ("The answer is 18.0", "18", 1.0),
        ("The answer is $1,200.00", "1200", 1.0),
        ("The answer is -7.50.", "-7.5", 1.0),
        ("The answer is 29.01", "29", 0.0),
        ("The answer is 9{,}500.", "9500", 1.0),
        ("The answer is 9\\,500", "9500", 1.0),
        ("The answer is 9{,}500", "9", 0.0),
        ("The answer is 9{,}500", "500", 0.0),
        ("The answer is 0.50", ".5", 0.0),
        ("The answer is -0", "0", 1.0),
    ],
)
def test_numbers_equal_as_numbers(text, answer, right):
    wide = scored([[text]], [[answer]], ["exact_match", "flexible_exact_match"], regex=STRICT_ANSWER_REGEX)
    assert wide["exact_match"].tolist() == [right]
    assert wide["flexible_exact_match"].tolist() == [right]


def test_number_reading():
    assert normalise("$1,200.00") == "1200" and normalise("18.0") == "18" and normalise("-7.50") == "-7.5"
    assert last_number("from 9{,}500 to 9\\,600") == "9600" and last_number("a 1,2 b") == "2"
    assert normalise("12,34") == "12,34"  # not a thousands grouping: kept as written, never 1234


# --- case 6: empty teacher-forcing context ------------------------------------------------------------


def with_bos(checkpoint: Path, out: Path) -> Path:
    """A copy of a tiny checkpoint whose tokenizer puts <bos> before every encoding."""
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    shutil.copytree(checkpoint, out)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    bos = tokenizer.token_to_id("<bos>")
    tokenizer.post_processor = TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", bos)])
    tokenizer.save(str(out / "tokenizer.json"))
    return out


def test_an_empty_prompt_is_scored_after_bos_or_refused(tiny_checkpoints, tmp_path):
    from emergence.engines import fit_to_context

    empty = Request(prompt="", target="12", max_tokens=2, temperature=0.0, top_p=1.0, n=1, seed=0, stop=("\n",))
    spaced = Request(prompt="  ", target="12", max_tokens=2, temperature=0.0, top_p=1.0, n=1, seed=0, stop=("\n",))
    bos = str(with_bos(tiny_checkpoints["tiny-b"], tmp_path / "bos"))
    results = {name: load_engine(name, bos, SETTINGS).run([empty, spaced]) for name in ("vllm", "hf")}
    for ours, reference in zip(*results.values()):
        assert ours.target_token_ids == reference.target_token_ids  # "12", or "  12" after the moved spaces
        assert ours.target_logprobs == pytest.approx(reference.target_logprobs, abs=1e-4)
        assert ours.texts == reference.texts
    engine = load_engine("hf", str(tiny_checkpoints["tiny-b"]), SETTINGS)  # no BOS: nothing to score after
    with pytest.raises(EmptyContext):
        engine.run([empty])
    with pytest.raises(EmptyContext) as error:
        fit_to_context(engine.tokenizer, empty, 256, False, "bb/zero/item-7")
    assert str(error.value).startswith("request bb/zero/item-7: its prompt is empty") and "\n" not in str(error.value)


def test_an_empty_prompt_fails_the_inference_job_with_one_line(tiny_checkpoints, tmp_path, capsys, root_logging):
    from emergence import io

    items = pd.DataFrame({"item_id": ["0", "1"], "split": "test", "input": ["1+1=", ""], "target": "2", "digits": 1,
                          "metadata": "{}"})  # fmt: skip
    io.write_table(
        build_prompts("e", items, "z", {"kind": "zero_shot"}, SAMPLING, 0), tmp_path / "prompts.parquet", "prompts"
    )
    out = tmp_path / "generations.parquet"
    command = infer_command(
        tmp_path, {"sha": "s", "path": str(tiny_checkpoints["tiny-a"])}, tmp_path / "prompts.parquet", out
    )
    status, stdout, stderr = run_cli([*command, json.dumps({**SETTINGS, "chunk_size": 8})], capsys)
    assert status == 1 and not out.exists(), stdout + stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("error: request e/z/e/z/1: its prompt is empty")
    assert "Traceback" not in stdout + stderr


# --- cases 7, 8 and 10: results CSVs ------------------------------------------------------------------


def fit_csv(tmp_path: Path, table: pd.DataFrame | str) -> tuple[pd.DataFrame, subprocess.CompletedProcess]:
    csv = tmp_path / "in.csv"
    csv.write_text(table if isinstance(table, str) else table.to_csv(index=False))
    done = subprocess.run(
        [sys.executable, "-m", "emergence", "fit-csv", "--csv", str(csv), "--out", str(tmp_path / "fits.csv")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return pd.read_csv(tmp_path / "fits.csv", keep_default_na=False, na_values=[""]), done


def test_a_curve_is_ordered_by_its_own_axis(tmp_path):
    table = pd.DataFrame(
        {
            "model": ["alpha-big", "beta-small", "gamma-mid", "delta-large"],
            "training_flops": [1e21, 1e18, 1e19, 1e20],
            "exact_match": [0.60, 0.05, 0.05, 0.05],
            "n_items": 20,
        }
    )
    by_flops, _ = fit_csv(tmp_path, table)
    flag = by_flops[(by_flops["fit"] == "flag") & (by_flops["parameter"] == "resolution_limited")]
    assert flag["value"].tolist() == [1.0]
    by_params, _ = fit_csv(tmp_path, table.rename(columns={"training_flops": "n_params"}))
    assert by_params.loc[
        (by_params["fit"] == "flag") & (by_params["parameter"] == "resolution_limited"), "value"
    ].tolist() == [1.0]
    means = by_flops[by_flops["fit"] == "mean"]
    assert means["model"].tolist() == ["beta-small", "gamma-mid", "delta-large", "alpha-big"]


def test_no_row_of_a_results_csv_vanishes(tmp_path):
    text = (
        "model,family,n_params,exact_match,n_items\n"
        "a,,1e6,0.1,50\nb,NA,1e7,0.2,50\nc,nan,1e8,0.5,50\nnull,null,1e6,0.0,50\nNA,null,1e7,0.1,50\nNone,null,1e8,0.2,50\n"
    )
    fits, done = fit_csv(tmp_path, text)
    means = fits[(fits["fit"] == "mean") & (fits["metric"] == "exact_match")]
    assert len(means) == 6  # one mean row per input row
    assert sorted(zip(means["family"], means["model"])) == sorted(
        [("csv", "a"), ("NA", "b"), ("nan", "c"), ("null", "null"), ("null", "NA"), ("null", "None")]
    )
    assert "numbers" in done.stderr


def test_a_bad_results_csv_gets_one_line(tmp_path):
    csv = tmp_path / "in.csv"
    for text, message in [
        ("model,n_params,exact_match\n,1e6,0.1\n", "line 2: empty 'model'"),
        ("model,n_params,exact_match\na,1e6,high\n", "column 'exact_match', line 2: 'high' is not a number"),
        ("model,n_params,exact_match\na,1e6,0.1\na,1e6,0.2\n", "lists model 'a' 2 times"),
    ]:
        csv.write_text(text)
        done = subprocess.run(
            [sys.executable, "-m", "emergence", "fit-csv", "--csv", str(csv)], capture_output=True, text=True
        )
        assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1, (
            done.stdout + done.stderr
        )


def test_a_misspelled_fitting_setting_is_refused(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text("model,n_params,exact_match\na,1e6,0.1\nb,1e7,0.2\nc,1e8,0.3\n")
    done = subprocess.run(
        [sys.executable, "-m", "emergence", "fit-csv", "--csv", str(csv), "--settings", '{"bootsrap": 10}'],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stderr.startswith(
        "error: fitting: unknown setting 'bootsrap' (known: min_models, "
    )


def test_the_summary_counts_only_numbers_that_have_an_interval(tmp_path):
    per_model = pd.DataFrame(
        {"model": ["a", "b", "c", "d"], "n_params": [1e6, 1e7, 1e8, 1e9], "exact_match": [0.0, 0.1, 0.4, 0.9]}
    )
    fits, done = fit_csv(tmp_path, per_model)  # means only: no item resampling, so no interval
    ok = (fits["status"] == "ok").sum()
    assert f"fits: {ok} numbers, 0 of them with intervals" in done.stderr
    rng = np.random.default_rng(0)
    per_item = pd.DataFrame(
        [
            {"model": m, "n_params": n, "item": i, "exact_match": float(rng.random() < p)}
            for m, n, p in [("a", 1e6, 0.1), ("b", 1e7, 0.3), ("c", 1e8, 0.6), ("d", 1e9, 0.9)]
            for i in range(30)
        ]
    )
    fits, done = fit_csv(tmp_path, per_item)
    with_interval = ((fits["status"] == "ok") & fits["ci_low"].notna()).sum()
    assert with_interval > 0 and f"{with_interval} of them with intervals" in done.stderr


# --- case 9: model identity and the request cache --------------------------------------------------------


def test_every_file_the_engine_reads_is_part_of_the_model_identity(tiny_checkpoints, tmp_path):
    from emergence.inference import request_key
    from emergence.models import materialise, model_identity

    local = shutil.copytree(tiny_checkpoints["tiny-a"], tmp_path / "local")
    manifest = materialise("m", {"source": "local", "path": str(local)}, tmp_path / "manifest.json", 0)
    row = {
        "prompt": "1+1=",
        "target": "2",
        "max_tokens": 4,
        "temperature": 0.0,
        "top_p": 1.0,
        "n": 1,
        "seed": 3,
        "stop": ["\n"],
    }
    before = model_identity(manifest)
    key = request_key(before, "vllm", SETTINGS, row)
    for name in ("tokenizer.json", "config.json", "generation_config.json", "chat_template.jinja"):
        path = local / name
        original = path.read_bytes() if path.exists() else None
        path.write_bytes((original or b"") + b" ")
        changed = materialise("m", {"source": "local", "path": str(local)}, tmp_path / "manifest.json", 0)
        assert changed["sha"] == manifest["sha"]  # the weights did not change...
        assert (
            model_identity(manifest) != before and request_key(model_identity(changed), "vllm", SETTINGS, row) != key
        ), name  # ...the answers may
        path.write_bytes(original) if original is not None else path.unlink()
        assert model_identity(manifest) == before
    (local / "README.md").write_text("notes")  # a file no engine reads
    assert model_identity(manifest) == before


def test_a_truncated_answer_is_never_served_to_a_run_that_refuses_long_prompts(tiny_checkpoints, tmp_path):
    from emergence import io
    from emergence.inference import InferenceJob, run_inference

    items = pd.DataFrame(
        {
            "item_id": ["0", "1"],
            "split": "test",
            "input": ["1+1=", "7+8=15\n" * 20 + "2+2="],
            "target": ["2", "4"],
            "digits": 1,
            "metadata": "{}",
        }
    )
    prompts = build_prompts("t", items, "z", {"kind": "zero_shot"}, SAMPLING, 0)
    io.write_table(prompts, tmp_path / "prompts.parquet", "prompts")
    manifest = {"sha": "s", "path": str(tiny_checkpoints["tiny-a"])}
    settings = {**SETTINGS, "max_model_len": 64}
    files = ([str(tmp_path / "prompts.parquet")], [str(tmp_path / "generations.parquet")])
    truncating = {**settings, "long_prompts": "truncate"}
    job = InferenceJob("tiny-a", manifest, "vllm", truncating, tmp_path / "cache", 8, tmp_path / "stats.jsonl")
    first = run_inference(job, *files)
    assert first["sent"] == 2 and first["truncated"] == 1
    again = run_inference(job, *files)
    assert again["cached"] == 2 and again["sent"] == 0  # both answers found under truncation
    with pytest.raises(ValueError, match=r"needs .* context positions"):
        run_inference(replace(job, settings={**settings, "long_prompts": "error"}), *files)


def test_a_figure_joins_models_along_its_own_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emergence.plots import draw_series

    points = pd.DataFrame({"n_params": [1e6, 1e7, 1e8], "training_flops": [1e20, 1e18, 1e19], "value": [0.3, 0.1, 0.2]})
    points = points.assign(ci_low=points["value"], ci_high=points["value"])
    figure, ax = plt.subplots()
    draw_series(ax, points, "training_flops", 0, "f")
    assert list(ax.lines[0].get_xdata()) == [1e18, 1e19, 1e20] and list(ax.lines[0].get_ydata()) == [0.1, 0.2, 0.3]
    plt.close(figure)
