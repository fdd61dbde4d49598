"""Verdicts per curve: calibrated by seeded simulation (issue 17's table), right on Pythia, refused when
the data cannot tell, and the same every time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from emergence import io
from emergence.analysis import Settings, analyse_stage, verdicts_imported
from emergence.errors import InputError
from emergence.importers import import_results
from emergence.verdicts import Twin, VerdictSettings, chi_bar_squared_sf, judge
from emergence.verdicts.fits import smallest
from emergence.verdicts.simulate import curves, rates, token_probability

SIZES = (4, 8, 12)
PYTHIA = "/work/shared/data/pythia_evals"


@pytest.mark.parametrize("tokens", (3, 4, 5))
@pytest.mark.parametrize("n_models", SIZES)
def test_schaeffer_model_is_a_mirage(tokens, n_models):
    """Per-token p = exp(-(N/c)^-alpha) from 0.05 to 0.95, answers of L tokens: exact match jumps,
    the twin's loss is a power law and p^L explains the jump."""
    assert rates("schaeffer", n_models, tokens).get("mirage", 0) >= 0.9


@pytest.mark.parametrize("n_models", SIZES)
def test_real_jump_is_emergent(n_models):
    assert rates("jump", n_models, 3).get("emergent", 0) >= 0.9


@pytest.mark.parametrize("n_models", SIZES)
def test_constant_is_flat(n_models):
    found = rates("constant", n_models)
    assert found.get("flat", 0) >= 0.95
    assert found.get("emergent", 0) + found.get("mirage", 0) <= 0.02


@pytest.mark.parametrize("n_models", SIZES)
def test_linear_in_log_n_is_smooth(n_models):
    assert rates("linear", n_models).get("smooth", 0) >= 0.9


def test_saturating_curve_is_saturated():
    assert rates("saturated", 8).get("saturated", 0) >= 0.9


def test_rise_then_fall_is_non_monotone():
    assert rates("non_monotone", 8).get("non_monotone", 0) >= 0.9


def test_twin_with_an_irreducible_loss_is_still_smooth():
    """NLL = E + A N^-alpha (E = 0.1: p levels off at 0.89) bends the twin's power law; it is not a jump."""
    sizes = np.geomspace(1e7, 1e10, 8)
    alpha = np.log(2.2 / 0.02) / np.log(1000)
    p = np.exp(-(0.1 + 2.2 * (sizes / 1e7) ** -alpha))
    rng = np.random.default_rng(5)
    found = []
    for _ in range(100):
        right = rng.binomial(3, p[:, None], size=(8, 500))
        share = right.sum(axis=1) / 1500
        twin = Twin(share, np.sqrt(share * (1 - share) / 1500), 3.0)
        found.append(judge(sizes, (right == 3).mean(axis=1), 500, twin=twin).verdict)
    assert found.count("mirage") >= 90


def test_simulated_designs_are_what_the_issue_asks():
    """The designs themselves: Schaeffer's p spans 0.05 to 0.95, the jump steps between adjacent sizes."""
    sizes = np.geomspace(1e7, 1e10, 8)
    p = token_probability("schaeffer", sizes)
    assert p[0] == pytest.approx(0.05) and p[-1] == pytest.approx(0.95)
    assert np.allclose(np.log(-np.log(p)), np.polyval(np.polyfit(np.log(sizes), np.log(-np.log(p)), 1), np.log(sizes)))
    assert list(token_probability("jump", sizes)) == [0.1] * 4 + [0.9] * 4
    sizes, exact, twin = next(curves("schaeffer", 8, 3, datasets=1, n_items=20000))
    assert np.allclose(exact, p**3, atol=0.02) and np.allclose(twin.prob, p, atol=0.01)


@pytest.fixture(scope="module")
def long() -> pd.DataFrame:
    return import_results("lm_eval_0.3", PYTHIA)


@pytest.fixture(scope="module")
def pythia(long) -> pd.DataFrame:
    return verdicts_imported(long, Settings())


def test_pythia_deduped_zero_shot_is_neither_emergent_nor_mirage(pythia):
    chosen = pythia[
        (pythia["family"] == "pythia-deduped")
        & (pythia["method"] == "zero_shot")
        & ~pythia["task"].str.startswith("hendrycksTest")
    ].set_index("task")
    assert sorted(chosen.index) == sorted(
        ["arc_challenge", "arc_easy", "lambada_openai", "logiqa", "piqa", "sciq", "winogrande", "wsc"]
    )
    assert not chosen["verdict"].isin(["emergent", "mirage"]).any()
    assert chosen.loc["logiqa", "verdict"] == "flat"
    assert chosen.loc["lambada_openai", "twin"] == "target_logprob"  # judged with its twin: still smooth
    assert chosen.loc["lambada_openai", "verdict"] == "smooth"


def test_every_imported_pythia_curve_gets_a_verdict(pythia):
    assert len(pythia) == 2 * 2 * 65  # families x methods x (8 tasks + 57 MMLU subjects)
    assert pythia["verdict"].notna().all() and (pythia["sentence"] != "").all()
    assert pythia["confidence"].isin(["high", "medium", "low"]).all()


def test_logiqa_values_as_quoted(long):
    logiqa = long[
        (long["family"] == "pythia-deduped")
        & (long["task"] == "logiqa")
        & (long["method"] == "zero_shot")
        & long["final_checkpoint"].astype(bool)
        & (long["metric"] == "multiple_choice_grade")
    ].sort_values("n_params")
    assert np.round(logiqa["value"].to_numpy(), 3).tolist() == [0.235, 0.21, 0.209, 0.212, 0.221, 0.214, 0.215, 0.224]
    verdict = judge(logiqa["n_params"], logiqa["value"], logiqa["n_items"], stderr=logiqa["stderr"])
    assert verdict.verdict == "flat" and verdict.statistics["p_constant"] > 0.5


def test_sharp_curve_without_twin_is_not_called_emergent():
    sizes, exact, _ = next(curves("jump", 8, 3, datasets=1))
    verdict = judge(sizes, exact, 500)
    assert verdict.verdict == "insufficient"
    assert "without a continuous twin" in verdict.sentence
    assert verdict.statistics["sharpness"] > VerdictSettings().sharp_chi2


def test_twin_that_does_not_predict_the_curve_is_not_a_mirage():
    """A smooth twin whose p^L misses the observed curve (the answers are really 2 tokens, not 5)."""
    sizes, exact, twin = next(curves("schaeffer", 8, 2, datasets=1))
    wrong = Twin(twin.prob, twin.stderr, 5.0)
    verdict = judge(sizes, exact, 500, twin=wrong)
    assert verdict.verdict == "insufficient" and "misses the curve" in verdict.sentence
    assert verdict.statistics["prediction_p"] < 1e-6
    assert judge(sizes, exact, 500, twin=twin).verdict == "mirage"


@pytest.mark.parametrize(
    "scale, values, n_items, words",
    [
        ([1e8, 1e9], [0.1, 0.5], 500, "only 2 models (need 3)"),
        ([1e8, 1e9, 1e10], [0.1, 0.5, 0.9], 10, "only 10 items"),
        ([1e9, 1e9, 1e9], [0.1, 0.5, 0.9], 500, "same size"),
    ],
)
def test_too_little_data_is_insufficient(scale, values, n_items, words):
    verdict = judge(scale, values, n_items)
    assert verdict.verdict == "insufficient" and words in verdict.sentence and verdict.confidence == "high"


@pytest.mark.parametrize(
    "values, words",
    [([0.1, np.nan, 0.3], "NaN"), ([0.1, 0.2], "equally long"), ([0.1, 1.2, 0.3], "proportions")],
)
def test_bad_input_is_one_line_error(values, words):
    with pytest.raises(InputError, match=words):
        judge([1e8, 1e9, 1e10], values, 100)


def test_order_of_models_does_not_matter_and_results_repeat():
    sizes, exact, twin = next(curves("schaeffer", 8, 3, datasets=1))
    first = judge(sizes, exact, 500, twin=twin)
    order = np.random.default_rng(1).permutation(8)
    shuffled = Twin(twin.prob[order], twin.stderr[order], twin.tokens)
    second = judge(sizes[order], exact[order], 500, twin=shuffled)
    assert first.verdict == second.verdict == "mirage"
    assert first.statistics == second.statistics and first.sentence == second.sentence
    assert rates("schaeffer", 4, 3, datasets=20, seed=7) == rates("schaeffer", 4, 3, datasets=20, seed=7)


def test_lower_is_better_is_judged_on_its_complement():
    errors = 1 - np.array([0.30, 0.64, 0.97, 1.0, 1.0, 1.0])
    assert judge(np.geomspace(1e7, 1e10, 6), errors, 500, higher_is_better=False).verdict == "saturated"
    assert judge(np.geomspace(1e7, 1e10, 6), errors, 500).verdict == "non_monotone"


def test_concave_curve_with_many_items_is_not_a_jump():
    """Thousands of items make any curvature significant: a saturating rise stays smooth, and so does
    the top of a sigmoid whose floor lies below the sizes observed (a jump needs its floor in view:
    Wei et al. 2022), while the same sigmoid seen from near chance is a jump."""
    sizes = np.geomspace(1e7, 1e10, 8)
    concave = judge(sizes, 0.75 - 0.55 * (sizes / 1e7) ** -0.35, 5000)
    assert concave.verdict == "smooth" and concave.statistics["sharpness"] < VerdictSettings().sharp_chi2
    late = judge(sizes, 0.72 / (1 + np.exp(-2.5 * (np.log10(sizes) - 7.3))), 5000)
    assert late.verdict == "smooth" and "already 32% of the way up" in late.sentence
    assert late.statistics["sharpness"] > VerdictSettings().sharp_chi2
    seen = judge(sizes, 0.72 / (1 + np.exp(-2.5 * (np.log10(sizes) - 8.0))), 5000)
    assert seen.verdict == "insufficient" and seen.statistics["floor_fraction"] < 0.1


def test_chi_bar_squared_tail_matches_simulation():
    """The isotonic statistic under a constant: its tail probability, by seeded simulation."""
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(4000, 6))
    statistic = np.array([np.sum((row - optimize.isotonic_regression(row).x) ** 2) for row in draws])
    for threshold in (2.0, 5.0, 9.0):
        assert np.mean(statistic > threshold) == pytest.approx(chi_bar_squared_sf(threshold, 6), abs=0.015)


def project_scores(p: np.ndarray, tokens: int, n_items: int = 400, seed: int = 0) -> pd.DataFrame:
    """Item-level scores of Schaeffer's model: log P(target) = L ln p (+ item noise), exact match drawn
    with probability p^L."""
    rng = np.random.default_rng(seed)
    sizes = np.geomspace(1e7, 1e10, len(p))
    frames = []
    for j, (n, q) in enumerate(zip(sizes, p)):
        common = {
            "item_id": [f"i{i}" for i in range(n_items)],
            "model": f"m{j}",
            "family": "f",
            "task": "t",
            "method": "zero_shot",
            "digits": 1,
            "n_params": int(n),
            "training_flops": 6 * n * 1e9,
            "target_tokens": tokens,
        }
        logprob = tokens * np.log(q) + rng.normal(0, 0.05, n_items)
        exact = (rng.random(n_items) < q**tokens).astype(float)
        for metric, values in (("exact_match", exact), ("target_logprob", logprob)):
            frames.append(pd.DataFrame({**common, "request_id": common["item_id"], "metric": metric, "value": values}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("design, expected", [("schaeffer", "mirage"), ("jump", "emergent")])
def test_analysis_stage_writes_verdicts(tmp_path, design, expected):
    p = token_probability(design, np.geomspace(1e7, 1e10, 8))
    analysed = analyse_stage(project_scores(p, 3, n_items=300), Settings(bootstrap=10))
    verdicts = analysed.verdicts.set_index("digits")
    assert set(verdicts.index) == {"1", "all"}
    assert verdicts.loc["all", "verdict"] == expected
    assert verdicts.loc["all", "twin"] == "target_logprob" and verdicts.loc["all", "metric"] == "exact_match"
    io.write_table(analysed.verdicts, tmp_path / "verdicts.parquet", "verdicts")
    back = io.read_table(tmp_path / "verdicts.parquet", "verdicts")
    pd.testing.assert_frame_equal(back, analysed.verdicts, check_dtype=False)


def test_imported_verdicts_are_byte_identical_when_rerun(long, pythia, tmp_path):
    io.write_table(pythia, tmp_path / "first.parquet", "verdicts")
    io.write_table(verdicts_imported(long, Settings()), tmp_path / "second.parquet", "verdicts")
    assert (tmp_path / "first.parquet").read_bytes() == (tmp_path / "second.parquet").read_bytes()


def test_the_best_grid_shapes_are_those_of_a_stable_sort():
    """The sigmoid grid keeps its 8 best shapes without sorting thousands: the indices of a stable argsort,
    ties (equal chi-squares) and infinite entries included."""
    rng = np.random.default_rng(0)
    for _ in range(500):
        values = np.round(rng.normal(size=int(rng.integers(1, 60))), int(rng.integers(0, 3)))
        values[rng.random(len(values)) < 0.2] = np.inf
        count = int(rng.integers(1, 12))
        assert (smallest(values, count) == np.argsort(values, kind="stable")[:count]).all()
