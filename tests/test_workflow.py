"""The whole DAG, end to end, through real Snakemake and the real vLLM engine on tiny local models."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ONE_THREAD_INFERENCE, SWEEP_METRICS, engine_stats, snakemake, sweep_config
from emergence import io

FIGURES = [
    "loss/addition",
    "metrics/addition/zero_shot",
    "tasks/exact_match",
]  # one method, one family of three: no extrapolation
STAGE_FILES = {
    "tasks": "results/tasks/addition.parquet",
    "prompts": "results/prompts/addition/zero_shot.parquet",
}


def test_every_stage_writes_files_that_follow_their_schema(finished_sweep, tiny_checkpoints):
    workdir, _ = finished_sweep
    tasks = io.read_table(workdir / STAGE_FILES["tasks"], "tasks")
    assert (tasks["split"] == "test").sum() == 18  # 6 test items x 3 digit counts
    prompts = io.read_table(workdir / STAGE_FILES["prompts"], "prompts")
    assert list(prompts["prompt"]) == list(tasks.loc[tasks["split"] == "test", "input"])
    sizes = {}
    for model in tiny_checkpoints:
        manifest = json.loads((workdir / f"results/models/{model}/manifest.json").read_text())
        assert manifest["path"] == str(tiny_checkpoints[model].resolve())
        assert len(manifest["sha"]) == 64 and "model.safetensors" in manifest["file_sha256"]
        sizes[model] = manifest["n_params"]
        generations = io.read_table(workdir / f"results/generations/{model}/addition/zero_shot.parquet", "generations")
        assert len(generations) == 18 and set(generations["engine"]) == {"vllm"}
        assert (
            io.read_provenance(workdir / f"results/generations/{model}/addition/zero_shot.parquet")["model_sha"]
            == manifest["sha"]
        )
        for row in generations.itertuples():
            assert len(row.token_ids[0]) == len(row.token_logprobs[0]) <= 6
            assert len(row.target_token_ids) == len(row.target_logprobs) == len(row.target)  # byte tokenizer
            assert all(lp <= 0 for lp in row.target_logprobs)
        scores = io.read_table(workdir / f"results/scores/{model}/addition/zero_shot.parquet", "scores")
        assert set(scores["metric"]) == {*SWEEP_METRICS, "maj@1"} - {"maj@k"}  # greedy: one sample
        wide = scores.pivot(index="item_id", columns="metric", values="value")
        logprob_sums = generations.set_index("item_id")["target_logprobs"].map(sum)
        assert wide["target_logprob"].to_numpy() == pytest.approx(logprob_sums.loc[wide.index].to_numpy())
    assert sizes["tiny-a"] < sizes["tiny-b"] < sizes["tiny-c"]
    fits = io.read_table(workdir / "results/fits/addition/zero_shot.parquet", "fits")
    assert {"mean", "sigmoid_floor", "power_law", "breakthroughness", "mirage", "calibration"} <= set(fits["fit"]) and (
        fits["n_models"] == 3
    ).all()
    means = fits[(fits["fit"] == "mean") & (fits["digits"] == "all")].set_index(["metric", "model"])["value"]
    for model in tiny_checkpoints:
        scores = io.read_table(workdir / f"results/scores/{model}/addition/zero_shot.parquet", "scores")
        assert means["exact_match", model] == pytest.approx(
            scores.loc[scores["metric"] == "exact_match", "value"].mean()
        )
    calibration = io.read_table(workdir / "results/calibration/addition/zero_shot.parquet", "calibration")
    counts = calibration.groupby(["digits", "model"])["count"].sum().to_dict()
    assert counts == {(d, m): 18 if d == "all" else 6 for d in ("1", "2", "3", "all") for m in tiny_checkpoints}
    for stem in FIGURES:
        assert (workdir / f"results/figures/{stem}.png").stat().st_size > 1000
        assert (workdir / f"results/figures/{stem}.pdf").read_bytes().startswith(b"%PDF")
    report = (workdir / "results/report.html").read_text()
    assert all(model in report for model in tiny_checkpoints) and report.count("data:image/png;base64") == len(FIGURES)
    assert "Extrapolation: not drawn, no family has 3 models besides the 1 held out." in report


def test_same_config_and_seed_give_byte_identical_files(finished_sweep, tiny_checkpoints, tmp_path):
    workdir, config = finished_sweep
    result = snakemake(tmp_path, config, *ONE_THREAD_INFERENCE)  # as the fixture ran it
    assert result.returncode == 0, result.stderr[-3000:]
    produced = sorted(
        p.relative_to(workdir)
        for p in (workdir / "results").rglob("*")
        if p.suffix in {".parquet", ".png", ".pdf", ".html"} and "cache" not in p.parts
    )
    assert (
        len(produced) == 1 + 1 + 3 + 3 + 3 + 2 * len(FIGURES) + 1
    )  # tasks, prompts, generations, scores, fits + calibration + verdicts, figures, report
    for relative in produced:
        assert (tmp_path / relative).read_bytes() == (workdir / relative).read_bytes(), relative


def test_second_run_has_nothing_to_do(finished_sweep):
    workdir, config = finished_sweep
    result = snakemake(workdir, config, "--dry-run")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_snakemake_builds_its_own_report_from_the_figures(finished_sweep, tmp_path):
    """`snakemake --report` on a finished sweep: every figure with its caption, the workflow description."""
    import zipfile

    workdir, config = finished_sweep
    archive = tmp_path / "report.zip"
    result = snakemake(workdir, config, "--report", str(archive))
    assert result.returncode == 0, result.stderr[-3000:]
    with zipfile.ZipFile(archive) as report:
        names = report.namelist()
        assert any(name.endswith("report.html") for name in names)
        assert sorted(name.rsplit("/", 1)[-1] for name in names if name.endswith(".png")) == sorted(
            f.rsplit("/", 1)[-1] + ".png" for f in FIGURES
        )
        text = "\n".join(
            report.read(name).decode("utf-8", "replace") for name in names if name.endswith((".html", ".js"))
        )
    assert "Per-model means with 90 % bootstrap intervals" in text and "Per-token loss, addition, zero_shot" in text
    assert "Emergence Lab: one family of language models per curve" in text


def test_changing_figure_style_reruns_only_figures_and_report(finished_sweep, tiny_checkpoints):
    workdir, config = finished_sweep
    restyled = {**config, "figures": {**config["figures"], "style": {"font_size": 12}}}
    result = snakemake(workdir, restyled, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE))
    assert jobs == {"figure": str(len(FIGURES)), "report": "1", "all": "1", "total": str(len(FIGURES) + 2)}, (
        result.stdout[-2000:]
    )


def test_new_task_and_method_send_only_new_requests(finished_sweep, tiny_checkpoints):
    """The sweep grown by a task, a variant and two methods: one inference job per model sends only the new
    requests. Snakemake builds what is checked here (each model's generations, the self-consistency
    scores, the robustness and methods figures), 31 jobs, not the grown sweep's 68 up to the report: the
    other figure kinds and the report are tested from fixture tables in test_plots_report.py."""
    workdir, config = finished_sweep
    before = {model: len(engine_stats(workdir, model)) for model in tiny_checkpoints}
    tasks = {
        **config["tasks"],
        "subtraction": {
            "kind": "synthetic_arithmetic",
            "operation": "subtraction",
            "digits": [2],
            "n_test": 5,
            "n_train": 4,
        },
        "addition_words": {"kind": "variant", "of": "addition", "shift": "number_words"},
    }
    methods = {
        **config["methods"],
        "few_shot_2": {"kind": "few_shot", "k": 2},
        "self_consistency": {"kind": "self_consistency", "k": 1, "n": 3, "temperature": 0.8, "max_tokens": 10},
    }
    targets = [f"results/scores/{model}/addition/self_consistency.parquet" for model in tiny_checkpoints]
    targets += [f"results/figures/{kind}/addition.png" for kind in ("robustness", "methods")]
    grown = sweep_config(tiny_checkpoints, tasks=tasks, methods=methods)
    result = snakemake(workdir, grown, *targets, *ONE_THREAD_INFERENCE)
    assert result.returncode == 0, result.stderr[-3000:]
    for model in tiny_checkpoints:
        runs = engine_stats(workdir, model)
        assert len(runs) == before[model] + 1  # one inference job per model
        latest = runs[-1]
        # old: addition/zero_shot (18); new: addition x 2 new methods (18 + 18), subtraction x 3 methods (5 x 3),
        # addition_words x 3 methods (18 x 3); self-consistency is one request per item, n samples each
        assert latest["requests"] == 18 + 36 + 15 + 54
        assert latest["cached"] == 18 and latest["sent"] == 105 and latest["engine_loads"] == 1
        sampled = io.read_table(
            workdir / f"results/generations/{model}/addition/self_consistency.parquet", "generations"
        )
        assert len(sampled) == 18 and all(len(texts) == 3 for texts in sampled["texts"])
        scores = io.read_table(workdir / f"results/scores/{model}/addition/self_consistency.parquet", "scores")
        assert {"maj@1", "maj@2", "maj@3"} <= set(scores["metric"])  # every k <= n, from the same samples
    assert (workdir / "results/figures/robustness/addition.png").stat().st_size > 1000
    assert (workdir / "results/figures/methods/addition.png").stat().st_size > 1000


def test_generations_match_a_direct_engine_run(finished_sweep, tiny_checkpoints):
    """The cached, chunked pipeline gives exactly what one direct engine call gives."""
    from emergence.engines import load_engine
    from emergence.inference import _request

    workdir, config = finished_sweep
    prompts = io.read_table(workdir / STAGE_FILES["prompts"], "prompts")
    engine = load_engine("vllm", str(tiny_checkpoints["tiny-b"]), {**config["engine"], "seed": 0})
    direct = engine.run([_request(row) for row in prompts.to_dict("records")])
    stored = io.read_table(workdir / "results/generations/tiny-b/addition/zero_shot.parquet", "generations")
    assert [d.token_ids for d in direct] == [list(map(list, t)) for t in stored["token_ids"]]
    assert [d.target_logprobs for d in direct] == [list(t) for t in stored["target_logprobs"]]
