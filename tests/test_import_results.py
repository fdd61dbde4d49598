"""Results made elsewhere: the Pythia suite's lm-evaluation-harness 0.3 outputs imported, scaled, fitted.

Values below were read by hand from the JSON files in ../shared/data/pythia_evals (Biderman et al.
2023, github.com/EleutherAI/pythia evals/pythia-v1/), not through the importer. The tests that read
those files are skipped when `shared/` is not beside the repository.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import run_cli
from emergence import cli
from emergence.analysis import Settings, analyse_imported
from emergence.analysis.scaling import NOT_PREFERRED
from emergence.errors import InputError
from emergence.importers import import_results
from emergence.importers.metadata import REGISTRY, scale_of

REPO = Path(__file__).resolve().parents[1]
PYTHIA = REPO.parent / "shared" / "data" / "pythia_evals"
needs_data = pytest.mark.skipif(
    not PYTHIA.is_dir(), reason=f"the Pythia evaluations are not at {PYTHIA} (shared/ beside the repository)"
)
FINAL_12B = "pythia-v1/pythia-12b/zero-shot/12b_step143000.json"


@pytest.fixture(scope="module")
def pythia() -> pd.DataFrame:
    return import_results("lm_eval_0.3", PYTHIA)


def row(table: pd.DataFrame, model: str, step: int, method: str, task: str, key: str) -> pd.Series:
    found = table[
        (table["model"] == model)
        & (table["step"] == step)
        & (table["method"] == method)
        & (table["task"] == task)
        & (table["source_metric"] == key)
    ]
    assert len(found) == 1, (model, step, method, task, key)
    return found.iloc[0]


def counted_keys(file: Path) -> int:
    """Every acc, acc_norm and ppl of every task of a file: one row each."""
    results = json.loads(file.read_text())["results"]
    return sum(key in ("acc", "acc_norm", "ppl") for metrics in results.values() for key in metrics)


@needs_data
def test_every_file_imports_and_no_row_is_dropped(pythia):
    files = sorted(PYTHIA.rglob("*.json"))
    assert len(files) == 630  # 15 models x (27 zero-shot + 15 five-shot checkpoints)
    assert pythia["file"].nunique() == 630
    assert len(pythia) == sum(counted_keys(file) for file in files) == 80640
    assert pythia["metric"].value_counts().to_dict() == {
        "multiple_choice_grade": 40320,
        "acc_norm": 39060,
        "exact_match": 630,  # lambada_openai's acc: the greedy continuation is the target word
        "target_logprob": 630,  # -ln(lambada_openai's ppl)
    }
    assert pythia.groupby("method")["file"].nunique().to_dict() == {"zero_shot": 405, "few_shot_5": 225}
    assert pythia.groupby("family")["model"].nunique().to_dict() == {"pythia": 7, "pythia-deduped": 8}
    assert not pythia[["family", "n_params", "training_tokens", "training_flops", "value"]].isna().any().any()


# (model, step, method, task, key, value as written in the file)
HAND_READ = [
    ("pythia-12b", 143000, "zero_shot", "lambada_openai", "acc", 0.7046380749078207),
    ("pythia-12b", 143000, "zero_shot", "arc_easy", "acc", 0.7024410774410774),
    ("pythia-12b", 143000, "zero_shot", "arc_easy", "acc_norm", 0.6359427609427609),
    ("pythia-410m", 33000, "zero_shot", "piqa", "acc", 0.6490750816104461),
    ("pythia-410m", 33000, "zero_shot", "piqa", "acc_norm", 0.6605005440696409),
    ("pythia-70m-deduped", 143000, "few_shot_5", "hendrycksTest-nutrition", "acc", 0.27124183006535946),
    ("pythia-1b-deduped", 13000, "zero_shot", "winogrande", "acc", 0.5217048145224941),
    ("pythia-6.9b", 83000, "few_shot_5", "sciq", "acc", 0.936),
    ("pythia-6.9b", 83000, "few_shot_5", "sciq", "acc_norm", 0.947),
    ("pythia-2.8b-deduped", 0, "zero_shot", "lambada_openai", "acc", 0.0),
    ("pythia-160m", 512, "zero_shot", "wsc", "acc", 0.5576923076923077),
]


@needs_data
@pytest.mark.parametrize(("model", "step", "method", "task", "key", "value"), HAND_READ)
def test_values_read_by_hand_are_imported_exactly(pythia, model, step, method, task, key, value):
    found = row(pythia, model, step, method, task, key)
    assert found["value"] == value
    assert found["source_value"] == value
    expected_metric = {"acc": "multiple_choice_grade", "acc_norm": "acc_norm"}[key]
    assert found["metric"] == ("exact_match" if task == "lambada_openai" else expected_metric)


@needs_data
def test_perplexity_becomes_mean_target_logprob_and_stderrs_items_are_kept(pythia):
    ppl = row(pythia, "pythia-12b", 143000, "zero_shot", "lambada_openai", "ppl")
    assert ppl["source_value"] == 3.9236415916124625
    assert ppl["value"] == -math.log(3.9236415916124625)  # ppl = exp(-mean log P(target))
    assert ppl["stderr"] == 0.08363088465874972 / 3.9236415916124625
    acc = row(pythia, "pythia-12b", 143000, "zero_shot", "lambada_openai", "acc")
    assert acc["stderr"] == 0.006355831587333142
    # n = p(1 - p) / stderr^2 + 1: LAMBADA (OpenAI) has 5153 items, ARC-Easy's test split 2376, WSC 104
    assert acc["n_items"] == 5153
    assert row(pythia, "pythia-12b", 143000, "zero_shot", "arc_easy", "acc")["n_items"] == 2376
    assert row(pythia, "pythia-160m", 512, "zero_shot", "wsc", "acc")["n_items"] == 104
    assert math.isnan(row(pythia, "pythia-2.8b-deduped", 0, "zero_shot", "lambada_openai", "acc")["n_items"])


def test_scale_of_checkpoints_by_hand():
    # D = 33,000 steps x 2,097,152 tokens; C = 6 x 302,311,424 non-embedding parameters x D
    mid = scale_of("EleutherAI/pythia-410m", "step33000")
    assert (mid.model, mid.family, mid.step, mid.final) == ("pythia-410m", "pythia", 33000, False)
    assert (mid.n_params, mid.n_params_non_embedding) == (405334016, 302311424)
    assert mid.training_tokens == 69_206_016_000
    assert mid.training_flops == float(125_530_615_477_960_704_000)
    # the old name of the same weights, at the final step (= main): D = 299,892,736,000
    final = scale_of("EleutherAI/pythia-v1.1-12b-deduped", "step143000")
    assert (final.model, final.family, final.final) == ("pythia-12b-deduped", "pythia-deduped", True)
    assert final.training_tokens == 299_892_736_000 == scale_of("pythia-12b-deduped").training_tokens
    assert final.training_flops == float(20_381_359_066_526_515_200_000)
    qwen = scale_of("Qwen/Qwen2.5-7B", "main")
    assert (qwen.n_params, qwen.training_tokens, qwen.step) == (7_610_000_000, 18_000_000_000_000, None)


@needs_data
def test_imported_rows_carry_the_checkpoints_scale(pythia):
    found = row(pythia, "pythia-410m", 33000, "zero_shot", "piqa", "acc")
    assert (found["n_params"], found["n_params_non_embedding"]) == (405334016, 302311424)
    assert found["training_tokens"] == 69_206_016_000
    assert found["training_flops"] == float(125_530_615_477_960_704_000)
    assert found["revision"] == "step33000" and not found["final_checkpoint"]


def test_registry_agrees_with_the_sweep_configs():
    """The registry and the production sweeps state the same model-card numbers (one source of truth)."""
    for sweep in ("pythia", "qwen2.5"):
        models = yaml.safe_load((REPO / "config" / "sweeps" / f"{sweep}.yaml").read_text())["models"]
        for entry in models.values():
            scale = scale_of(entry["repo"])
            assert (scale.n_params, scale.n_params_non_embedding, scale.training_tokens, scale.family) == (
                entry["parameters"],
                entry["non_embedding_parameters"],
                entry["training_tokens"],
                entry["family"],
            )


def test_unknown_model_is_one_line_naming_it_and_the_keys():
    with pytest.raises(InputError) as err:
        scale_of("EleutherAI/gpt-j-6b", "main")
    message = str(err.value)
    assert "\n" not in message and "'EleutherAI/gpt-j-6b'" in message
    assert "n_params" in message and "training_tokens" in message and str(REGISTRY) in message
    with pytest.raises(InputError, match="revision 'v2' names no training step"):
        scale_of("pythia-70m", "v2")
    with pytest.raises(InputError, match=r"qwen2\.5 lists no tokens_per_step"):
        scale_of("Qwen/Qwen2.5-7B", "step1000")


def results_file(folder: Path, name: str = "run.json", model: str = "EleutherAI/pythia-70m", **results) -> Path:
    """A results file shaped like the harness's, for the error cases."""
    data = {
        "results": results or {"piqa": {"acc": 0.6, "acc_stderr": 0.01}},
        "versions": {"piqa": 0},
        "config": {"model": "hf-causal", "model_args": f"pretrained={model},revision=step1000", "num_fewshot": 0},
    }
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def test_unknown_model_in_a_file_ends_the_cli_with_one_error_line(tmp_path, capsys, root_logging):
    path = results_file(tmp_path, model="EleutherAI/gpt-neo-125m")
    with pytest.raises(SystemExit) as exited:
        cli.main(["import-results", "--format", "lm_eval_0.3", "--path", str(path), "--out", str(tmp_path / "t.csv")])
    assert exited.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith(f"error: {path}: model 'EleutherAI/gpt-neo-125m' is not in the model registry")
    assert not (tmp_path / "t.csv").exists()
    results_file(
        tmp_path, name="second.json", model="EleutherAI/gpt-neo-125m", arc_easy={"acc": 0.5, "acc_stderr": 0.01}
    )
    with pytest.raises(SystemExit):  # the folder: the first file named, and how many more
        cli.main(
            ["import-results", "--format", "lm_eval_0.3", "--path", str(tmp_path), "--out", str(tmp_path / "t.csv")]
        )
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "is not in the model registry" in last and last.endswith("(and 1 more files)")


def test_malformed_files_are_one_line_naming_file_and_key(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"results": {"piqa": {"acc": 0.6,')
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON \(line 1"):
        import_results("lm_eval_0.3", broken)
    path = results_file(tmp_path)
    data = json.loads(path.read_text())
    del data["config"]["model_args"]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"run\.json: no 'config\.model_args' key"):
        import_results("lm_eval_0.3", path)
    text = results_file(tmp_path, piqa={"acc": "0.6"})
    with pytest.raises(InputError, match=r"run\.json: results\.piqa\.acc is not a number"):
        import_results("lm_eval_0.3", text)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no \*\.json results files"):
        import_results("lm_eval_0.3", tmp_path / "empty")


def test_percentages_are_refused_naming_file_and_key(tmp_path):
    path = results_file(tmp_path, piqa={"acc": 70.46, "acc_stderr": 1.1})
    with pytest.raises(InputError, match=r"run\.json: piqa acc = 70\.46 is not a fraction in \[0, 1\]"):
        import_results("lm_eval_0.3", path)


def test_the_same_result_twice_is_refused(tmp_path):
    first = results_file(tmp_path, "a.json")
    shutil.copy(first, tmp_path / "b.json")
    with pytest.raises(
        InputError,
        match=r"pythia-70m step1000, task piqa, 0-shot acc is given more than once \(in .*/a\.json, .*/b\.json\)",
    ):
        import_results("lm_eval_0.3", tmp_path)


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ({}, "run.json: no results to import"),
        ({"piqa": {"bleu": 12.5}}, r"run.json: no results to import \(skipped: bleu\)"),
    ],
)
def test_a_file_without_a_result_to_import_is_one_line_and_no_output(tmp_path, capsys, root_logging, results, message):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**json.loads(results_file(tmp_path).read_text()), "results": results}))
    status, _, err = run_cli(
        ["import-results", "--format", "lm_eval_0.3", "--path", str(path), "--out", str(tmp_path / "t.csv")], capsys
    )
    assert status == 1
    assert re.fullmatch(f"error: .*{message}", err.strip().splitlines()[-1])
    assert "Traceback" not in err and not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"acc": math.nan, "acc_stderr": 0.01}, r"results\.piqa\.acc is nan, not a finite number"),
        ({"acc": math.inf, "acc_stderr": 0.01}, r"results\.piqa\.acc is inf, not a finite number"),
        ({"acc": 0.6, "acc_stderr": math.nan}, r"results\.piqa\.acc_stderr is nan, not a finite number"),
        ({"acc": 0.6, "acc_stderr": -0.2}, r"results\.piqa\.acc_stderr = -0\.2: a standard error cannot be negative"),
    ],
)
def test_non_finite_values_and_negative_stderrs_are_refused_naming_file_task_and_key(tmp_path, metrics, message):
    path = results_file(tmp_path, piqa=metrics)  # json writes NaN and Infinity, as the harness does
    with pytest.raises(InputError, match=rf"run\.json: {message}$"):
        import_results("lm_eval_0.3", path)


def ladder(folder: Path, run: str) -> Path:
    """An OLMo ladder folder: final.json naming one run, and that run's CSV."""
    (folder / "ladder-runs").mkdir(parents=True)
    (folder / "final.json").write_text(json.dumps({"1B": {"paths": ["x/1B-1xC.csv"], "n": 10**9, "mode": "train"}}))
    (folder / "ladder-runs" / "1B-1xC.csv").write_text(run)
    return folder


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ("_step,throughput/total_tokens\n1,100\n", r"1B-1xC\.csv: no results to import"),
        (
            "_step,throughput/total_tokens,eval/downstream/piqa_rc_0shot_acc\n1,100,inf\n",
            r"1B-1xC\.csv: model '1B-1xC', piqa eval/downstream/piqa_rc_0shot_acc value = inf is not a finite number",
        ),
        (
            "_step,throughput/total_tokens,eval/c4-validation/CrossEntropyLoss\n1,100,-2.5\n",
            r"model '1B-1xC', c4 eval/c4-validation/CrossEntropyLoss value = -2\.5 is a loss below 0",
        ),
    ],
)
def test_a_ladder_run_with_no_or_impossible_results_is_refused(tmp_path, run, message):
    with pytest.raises(InputError, match=message):
        import_results("olmo_ladder", ladder(tmp_path, run))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("families: [1,2\n", r"badreg\.yaml: the model registry is not valid YAML \(line 2, column 1: expected ','"),
        ("- pythia\n", r"badreg\.yaml: the registry must be a mapping of names, not list \['pythia'\]"),
        ("families:\n  pythia: 3\n", r"badreg\.yaml: family pythia must be a mapping of names, not int 3"),
        (
            "families:\n  p:\n    training_tokens: 1\n    source: x\n    models:\n      p-1: 5\n",
            r"family p, model p-1 must be a mapping",
        ),
    ],
)
def test_a_malformed_model_registry_is_one_line_naming_file_line_and_problem(
    tmp_path, capsys, root_logging, text, message
):
    (tmp_path / "badreg.yaml").write_text(text)
    path = results_file(tmp_path)
    status, _, err = run_cli(
        [
            "import-results",
            "--format",
            "lm_eval_0.3",
            "--path",
            str(path),
            "--out",
            str(tmp_path / "t.csv"),
            "--models",
            str(tmp_path / "badreg.yaml"),
        ],
        capsys,
    )
    assert status == 1 and "Traceback" not in err
    assert re.fullmatch(f"error: .*{message}.*", err.strip().splitlines()[-1])
    assert "^" not in err  # no caret diagram on lines of its own


def test_unknown_metric_keys_are_reported_once_and_skipped(tmp_path, logged):
    metrics = {"acc": 0.6, "acc_stderr": 0.01, "bleu": 12.5, "bleu_stderr": 0.3}
    results_file(tmp_path, "a.json", piqa=metrics)
    results_file(tmp_path, "b.json", model="EleutherAI/pythia-160m", piqa=metrics)
    table = import_results("lm_eval_0.3", tmp_path)
    assert table["source_metric"].tolist() == ["acc", "acc"]
    assert table["training_tokens"].tolist() == [1000 * 2_097_152] * 2
    skipped = [m for m in logged if "bleu" in m]
    assert skipped == ["lm_eval_0.3: metric 'bleu' has no project name; skipped in 2 files"]


@needs_data
def test_fits_over_sizes_from_final_checkpoints(pythia):
    fits = analyse_imported(pythia, Settings())
    lambada = fits[(fits["task"] == "lambada_openai") & (fits["method"] == "zero_shot") & (fits["x"] == "n_params")]
    for family, n_models in (("pythia", 7), ("pythia-deduped", 8)):
        curve = lambada[(lambada["family"] == family) & (lambada["metric"] == "exact_match")]
        sigmoid = curve[curve["fit"] == "sigmoid_floor"].set_index("parameter")
        assert set(sigmoid.index) == {"floor", "ceiling", "midpoint", "slope", "rmse", "sharpness"}
        assert sigmoid["value"].notna().all()
        # a saturating rise (0.18 -> 0.70) that a monotone curve fits as well: fitted, but not preferred
        assert (sigmoid.drop(index="sharpness")["status"] == NOT_PREFERRED).all()
        assert sigmoid.loc["ceiling", "value"] == pytest.approx(0.69 if family == "pythia" else 0.70, abs=0.005)
        assert (curve["n_models"] == n_models).all()
        breakthrough = curve[curve["fit"] == "breakthroughness"]
        assert len(breakthrough) == 1 and breakthrough["status"].iloc[0] == "ok"
    means = fits[(fits["fit"] == "mean") & (fits["task"] == "lambada_openai") & (fits["method"] == "zero_shot")]
    twelve = means[(means["model"] == "pythia-12b") & (means["metric"] == "exact_match")]
    assert twelve["value"].tolist() == [0.7046380749078207]  # the final checkpoint's value, not another step's
    assert "acc_norm" not in set(fits["metric"])  # no project metric: kept in the table, not fitted
    # every row of the curve is over LAMBADA's 5153 items (read from acc_stderr), as the table says; not 1 mean
    assert set(pythia.loc[pythia["task"] == "lambada_openai", "n_items"].dropna()) == {5153}
    assert set(fits.loc[(fits["task"] == "lambada_openai") & (fits["method"] == "zero_shot"), "n_items"]) == {5153}


@needs_data
def test_cli_writes_the_table_and_the_fits(tmp_path, root_logging):
    folder = tmp_path / "final"
    folder.mkdir()
    for file in sorted(PYTHIA.glob("pythia-v1/*-deduped/zero-shot/*_step143000.json")):
        shutil.copy(file, folder / file.name)
    out, fits = tmp_path / "table.csv", tmp_path / "fits.csv"
    cli.main(
        ["import-results", "--format", "lm_eval_0.3", "--path", str(folder), "--out", str(out), "--fits", str(fits)]
    )
    table = pd.read_csv(out)
    assert len(table) == sum(counted_keys(file) for file in folder.iterdir()) > 8 * 60
    found = table[
        (table["model"] == "pythia-12b-deduped") & (table["task"] == "piqa") & (table["source_metric"] == "acc")
    ]
    source = json.loads((folder / "12b-deduped_step143000.json").read_text())["results"]["piqa"]["acc"]
    assert found["value"].tolist() == [source]  # written at full precision
    written = pd.read_csv(fits)
    assert {"pythia-deduped"} == set(written["family"]) and {"zero_shot"} == set(written["method"])
    assert (written.loc[written["fit"] == "sigmoid_floor", "status"] == "ok").any()
