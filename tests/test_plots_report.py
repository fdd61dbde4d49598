"""The figure set and the report: every figure from fixture tables, deterministic files, notes for what is missing."""

from __future__ import annotations

import base64

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from emergence import io
from emergence.analysis import Settings, analyse_task_method
from emergence.fits import sigmoid_floor
from emergence.plan import figure_plan
from emergence.plots import DEFAULT_STYLE, render
from emergence.report import summarise_scores, write_report

MODELS = {
    "t-30k": (3e4, "tiny"),
    "t-160k": (1.6e5, "tiny"),
    "t-490k": (4.9e5, "tiny"),
    "t-1m": (1.1e6, "tiny"),
    "t-5m": (5e6, "tiny"),
    "big": (1.35e8, "other"),
}
MANIFESTS = [
    {
        "model": m,
        "family": f,
        "source": "local",
        "sha": "0123456789abcdef" * 4,
        "n_params": int(n),
        "training_flops": 6 * n * 4e6,
        "n_params_non_embedding": int(n) // 2,
        "path": f"/models/{m}",
    }
    for m, (n, f) in MODELS.items()
]


def synthetic_scores(method: str, shift: float) -> pd.DataFrame:
    """Exact match rising as a sigmoid of log N (later for longer operands), loss falling as a power law."""
    rng = np.random.default_rng(0)
    rows = []
    for model, (n, family) in MODELS.items():
        for digits in (1, 2, 3):
            for item in range(12):
                correct = float(rng.random() < sigmoid_floor(np.log10(n), 0.0, 5.8 + shift + 0.3 * digits, 4.0))
                common = {
                    "request_id": f"{model}-{digits}-{item}",
                    "item_id": f"{digits}-{item}",
                    "model": model,
                    "family": family,
                    "task": "addition",
                    "method": method,
                    "digits": digits,
                    "n_params": int(n),
                    "training_flops": 6 * n * 4e6,
                    "target_tokens": digits + 1,
                }
                rows += [
                    {**common, "metric": "exact_match", "value": correct},
                    {**common, "metric": "token_edit_distance", "value": (digits + 1) * (1 - correct) * rng.random()},
                    {
                        **common,
                        "metric": "target_logprob",
                        "value": -((1e7 / n) ** 0.3) * (digits + 1) + rng.normal(0, 0.1),
                    },
                ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    tables = {
        method: analyse_task_method(synthetic_scores(method, shift), Settings(bootstrap=30))[0]
        for method, shift in (("zero_shot", 0.6), ("scratchpad", 0.0))
    }
    shifted = synthetic_scores("zero_shot", 1.0).assign(task="addition_typos")  # a shifted variant: later to rise
    return {**tables, "typos": analyse_task_method(shifted, Settings(bootstrap=30))[0]}


FIGURES = {  # kind: (the tables it reads, its options, panels across)
    "loss": (["zero_shot"], {}, 2),
    "tasks": (["zero_shot"], {"metric": "exact_match", "x": "training_flops", "chance": {"addition": 0.0}}, 1),
    "methods": (["zero_shot", "scratchpad"], {"metric": "exact_match", "x": "n_params", "by": "method"}, 1),
    "robustness": (["zero_shot", "typos"], {"metric": "exact_match", "x": "n_params", "by": "task"}, 1),
    "metrics": (
        ["scratchpad"],
        {"metrics": ["exact_match", "token_edit_distance", "target_logprob"], "x": "n_params"},
        3,
    ),
    "extrapolation": (
        ["zero_shot"],
        {"metrics": {"exact_match": "sigmoid_floor", "target_nll": "power_law"}, "x": "n_params"},
        2,
    ),
}


@pytest.mark.parametrize("kind", sorted(FIGURES))
def test_every_figure_renders_deterministically(kind, tables, tmp_path):
    methods, options, panels = FIGURES[kind]
    for method in methods:  # the fixture tables as the fit stage's Parquet files, read back as a figure job does
        io.write_table(tables[method], tmp_path / "fits" / f"{method}.parquet", "fits")
    fits = pd.concat([io.read_table(tmp_path / "fits" / f"{m}.parquet", "fits") for m in methods], ignore_index=True)
    for folder in ("a", "b"):
        outs = [tmp_path / folder / f"{kind}.png", tmp_path / folder / f"{kind}.pdf"]
        assert render(kind, fits, MANIFESTS, options, f"{kind} figure", outs, {}) == ""
    for suffix in (".png", ".pdf"):
        assert (tmp_path / "a" / f"{kind}{suffix}").read_bytes() == (tmp_path / "b" / f"{kind}{suffix}").read_bytes()
    assert (tmp_path / "a" / f"{kind}.pdf").read_bytes().startswith(b"%PDF")
    image = matplotlib.image.imread(tmp_path / "a" / f"{kind}.png")
    width = round(DEFAULT_STYLE["panel_width"] * DEFAULT_STYLE["dpi"] * panels)
    assert image.shape[:2] == (round(DEFAULT_STYLE["panel_height"] * DEFAULT_STYLE["dpi"]), width)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_style_sets_the_size(tables, tmp_path):
    out = tmp_path / "loss.png"
    render("loss", tables["zero_shot"], MANIFESTS, {}, "loss", [out], {"dpi": 50, "panel_width": 4, "panel_height": 3})
    assert matplotlib.image.imread(out).shape[:2] == (150, 400)


def test_figure_with_missing_inputs_says_why(tables, tmp_path):
    out = tmp_path / "mc.png"
    reason = render(
        "multiple_choice",
        tables["zero_shot"],
        MANIFESTS,
        {"metrics": ["multiple_choice_grade", "brier_multiclass"], "x": "n_params"},
        "grade",
        [out],
        {},
    )
    assert reason == "none of ['multiple_choice_grade', 'brier_multiclass'] scored"
    assert out.stat().st_size > 1000


def sweep(**changes) -> dict:
    config = {
        "models": {m: {"family": f} for m, (_, f) in MODELS.items()},
        "tasks": {"addition": {"kind": "synthetic_arithmetic"}, "subtraction": {"kind": "synthetic_arithmetic"}},
        "methods": {"zero_shot": {}, "scratchpad": {}},
        "metrics": ["exact_match", "token_edit_distance", "target_logprob"],
        "fitting": {"min_models": 3, "extrapolate": 1},
        "figures": {"x": "n_params", "metric": "exact_match", "method": None, "style": {}},
    }
    return {**config, **changes}


def test_figure_plan_asks_for_what_the_sweep_can_draw():
    plan, notes = figure_plan(sweep())
    assert sorted(plan) == [
        "extrapolation/addition/scratchpad",
        "extrapolation/addition/zero_shot",
        "extrapolation/subtraction/scratchpad",
        "extrapolation/subtraction/zero_shot",
        "loss/addition",
        "loss/subtraction",
        "methods/addition",
        "methods/subtraction",
        "metrics/addition/scratchpad",
        "metrics/addition/zero_shot",
        "metrics/subtraction/scratchpad",
        "metrics/subtraction/zero_shot",
        "tasks/exact_match",
    ]
    assert plan["tasks/exact_match"]["tables"] == [("addition", "zero_shot"), ("subtraction", "zero_shot")]
    assert any(note.startswith("Multiple-choice grade next to Brier score: not drawn") for note in notes)
    assert any(note.startswith("Induced emergence: not drawn") for note in notes)
    induced, _ = figure_plan(sweep(metrics=["exact_match", "per_token_prob>=0.9", "token_edit_distance==0"]))
    assert induced["induced/addition"]["options"]["metrics"] == [
        "per_token_prob",
        "per_token_prob>=0.9",
        "token_edit_distance",
        "token_edit_distance==0",
    ]
    assert sorted(k for k in induced if k.startswith("induced/")) == ["induced/addition", "induced/subtraction"]
    few, notes = figure_plan(
        sweep(metrics=["exact_match"], methods={"zero_shot": {}}, fitting={"min_models": 5, "extrapolate": 1})
    )
    assert sorted(few) == ["metrics/addition/zero_shot", "metrics/subtraction/zero_shot", "tasks/exact_match"]
    assert "Loss against scale: not drawn, the sweep does not score target_logprob." in notes
    assert "Prompting methods against scale: not drawn, the sweep has one method." in notes
    assert "Extrapolation: not drawn, no family has 5 models besides the 1 held out." in notes
    tasks = {
        **sweep()["tasks"],
        "addition_typos": {"kind": "variant", "of": "addition"},
        "addition_words": {"kind": "variant", "of": "addition"},
    }
    shifted, notes = figure_plan(sweep(tasks=tasks))
    assert shifted["robustness/addition"]["tables"] == [
        ("addition", "zero_shot"),
        ("addition_typos", "zero_shot"),
        ("addition_words", "zero_shot"),
    ]
    assert not any(note.startswith("Robustness") for note in notes)


def test_summarise_scores():
    scores = synthetic_scores("zero_shot", 0.0)
    summary = summarise_scores(scores)
    assert len(summary) == len(MODELS) * 3 * 3 and (summary["items"] == 12).all()
    assert list(summary["n_params"]) == sorted(summary["n_params"])


def test_report_embeds_figures_measures_and_notes(tables, tmp_path):
    figures = []
    for kind in ("loss", "metrics"):
        methods, options, _ = FIGURES[kind]
        figures.append(tmp_path / "results" / "figures" / kind / "addition.png")
        render(kind, pd.concat([tables[m] for m in methods]), MANIFESTS, options, kind, [figures[-1]], {})
    fits = pd.concat(tables.values(), ignore_index=True)
    config = {"seed": 1, "note": "<b>escaped</b>", "fitting": {"x_axes": ["n_params"], "confidence_level": 0.9}}
    notes = ["Robustness: not drawn, the sweep has no shifted task variants."]
    scores = pd.concat([synthetic_scores("zero_shot", 0.6), synthetic_scores("scratchpad", 0.0)])
    arguments = (figures, fits, MANIFESTS, config, summarise_scores(scores), notes)
    first, second = tmp_path / "report.html", tmp_path / "again" / "report.html"
    write_report(first, *arguments)
    write_report(second, *arguments)
    assert first.read_bytes() == second.read_bytes()
    page = first.read_text()
    for figure in figures:
        assert base64.b64encode(figure.read_bytes()).decode() in page
    assert 'alt="loss / addition"' in page and "<h3>Loss against scale</h3>" in page
    assert "<h3>Figures not drawn</h3>" in page and "Robustness: not drawn" in page
    for model in MODELS:
        assert model in page
    assert "0123456789ab<" in page and "0123456789abc" not in page
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped" not in page
    breakthrough = fits[
        (fits["fit"] == "breakthroughness")
        & (fits["x"] == "n_params")
        & (fits["metric"] == "exact_match")
        & (fits["digits"] == "all")
        & (fits["method"] == "zero_shot")
        & (fits["family"] == "tiny")
    ].iloc[0]
    assert "<h2>Emergence measures</h2>" in page
    assert f"{breakthrough.value:.4g} [{breakthrough.ci_low:.4g}, {breakthrough.ci_high:.4g}]" in page


def test_report_opens_with_the_verdicts(tables, tmp_path):
    """Counts first, one line per reason a curve was not judged (not a row each), then every judged curve,
    its verdict linked to the figure drawn for its task x method; before the measures table."""
    figure = tmp_path / "results" / "figures" / "metrics" / "addition" / "zero_shot.png"
    methods, options, _ = FIGURES["metrics"]
    render("metrics", pd.concat([tables[m] for m in methods]), MANIFESTS, options, "metrics", [figure], {})
    curve = {"digits": "all", "metric": "exact_match", "twin": "answer_logprob", "confidence": "high"}
    rows = [("tiny", "addition", "zero_shot", "mirage", "A."), ("tiny", "addition", "scratchpad", "flat", "B.")]
    rows += [("smol", t, "zero_shot", "insufficient", "C.") for t in ("addition", "subtraction", "multiplication")]
    names = ("family", "task", "method", "verdict", "sentence")
    verdicts = pd.DataFrame([{**curve, **dict(zip(names, row))} for row in rows])
    fits = pd.concat(tables.values(), ignore_index=True)
    config = {"fitting": {"x_axes": ["n_params"]}}
    summary = summarise_scores(synthetic_scores("zero_shot", 0.6))
    write_report(tmp_path / "report.html", [figure], fits, MANIFESTS, config, summary, [], verdicts)
    page = (tmp_path / "report.html").read_text()
    assert page.index("<h2>Verdicts</h2>") < page.index("<h2>Emergence measures</h2>")
    assert '<a href="#figure-metrics/addition/zero_shot">mirage</a>' in page
    assert "<li>3 curves: C.</li>" in page and page.count("C.") == 1  # counted once, not a row each
    assert "Every curve below: family: tiny; digits: all; metric: exact_match; twin: answer_logprob." in page
    assert '<figure id="figure-metrics/addition/zero_shot">' in page
    assert "<td>addition · scratchpad</td>" in page and "<td>flat</td>" in page
