"""Figures and the report are deterministic files: same inputs, same bytes."""

from __future__ import annotations

import base64

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from emergence.analysis import Settings, analyse_task_method
from emergence.plots import plot_metric_vs_params
from emergence.report import summarise_scores, write_report

MODELS = {"tiny-1m": 10**6, "small-30m": 3 * 10**7, "mid-1b": 10**9}


@pytest.fixture
def scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for model, n in MODELS.items():
        for digits in (1, 2, 3):
            for item in range(4):
                common = {"request_id": f"{model}-{digits}-{item}", "item_id": f"{digits}-{item}", "model": model, "family": "f",
                          "task": "addition", "method": "few_shot", "digits": digits, "n_params": n,
                          "training_flops": 6.0 * n * 1e9, "target_tokens": digits + 1}
                rows += [{**common, "metric": "exact_match", "value": float(rng.random() < np.log10(n) / 10)},
                         {**common, "metric": "token_edit_distance", "value": float(rng.integers(0, digits + 2))},
                         {**common, "metric": "target_logprob", "value": -rng.random() * (digits + 1) * 12 / np.log10(n)}]
    return pd.DataFrame(rows)


def test_plot_is_deterministic_png(scores, tmp_path):
    first, second = tmp_path / "a" / "em.png", tmp_path / "b" / "em.png"
    for out in (first, second):
        plot_metric_vs_params(scores, "exact_match", out, "Addition, few-shot")
    assert first.read_bytes() == second.read_bytes()
    image = matplotlib.image.imread(first)
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert not list(first.parent.glob(".*.tmp"))


def test_pdf_is_deterministic(scores, tmp_path):
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    for out in (first, second):
        plot_metric_vs_params(scores, "token_edit_distance", out, "Addition")
    assert first.read_bytes() == second.read_bytes()


def test_summarise_scores(scores):
    summary = summarise_scores(scores)
    assert len(summary) == len(MODELS) * 3 * 3
    assert (summary["items"] == 4).all()
    assert list(summary["n_params"]) == sorted(summary["n_params"])


def test_report_embeds_figures_and_models(scores, tmp_path):
    folder = tmp_path / "addition" / "zero_shot"
    folder.mkdir(parents=True)
    figures = [folder / "exact_match.png", folder / "token_edit_distance.png"]
    for figure in figures:
        plot_metric_vs_params(scores, figure.stem, figure, figure.stem)
    manifests = [{"model": m, "source": "tiny_random", "sha": "0123456789abcdef" * 4, "n_params": n,
                  "n_params_non_embedding": n // 2, "path": f"/models/{m}"} for m, n in MODELS.items()]
    config = {"models": sorted(MODELS), "seed": 1, "note": "<b>escaped</b>", "fitting": {"min_models": 3}}
    fits, _ = analyse_task_method(scores, Settings(bootstrap=20))
    arguments = (figures, fits, manifests, config, summarise_scores(scores))
    first, second = tmp_path / "report.html", tmp_path / "again" / "report.html"
    write_report(first, *arguments)
    write_report(second, *arguments)
    assert first.read_bytes() == second.read_bytes()
    page = first.read_text()
    for figure in figures:
        assert base64.b64encode(figure.read_bytes()).decode() in page
        assert f'alt="addition / zero_shot / {figure.stem}"' in page
    for model in MODELS:
        assert model in page
    assert "0123456789ab<" in page and "0123456789abc" not in page
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped" not in page
    breakthrough = fits[(fits["fit"] == "breakthroughness") & (fits["x"] == "n_params") & (fits["metric"] == "exact_match") & (fits["digits"] == "all")].iloc[0]
    assert "<h2>Emergence measures</h2>" in page
    assert f"{breakthrough.value:.4g} [{breakthrough.ci_low:.4g}, {breakthrough.ci_high:.4g}]" in page
