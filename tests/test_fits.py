"""Scaling fits recover known parameters and follow the "fits" stage schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emergence import io
from emergence.fits import fit_power_law, fit_sigmoid_floor, fit_task_method, sigmoid_floor

LOG_N = np.linspace(5.0, 9.0, 8)  # 8 log-spaced model sizes, 1e5 .. 1e9 parameters
N_C, ALPHA = 1e13, 0.076  # Kaplan et al. 2020, non-embedding parameters


def synthetic_scores(log_n: np.ndarray = LOG_N, digits: tuple[int, ...] = (1, 2)) -> pd.DataFrame:
    """Scores whose per-model means follow the sigmoid (0.1, 7, 3) and the power law exactly."""
    rows = []
    for i, n in enumerate(np.round(10**log_n).astype(np.int64)):  # N is an integer count
        accuracy = sigmoid_floor(np.log10(n), 0.1, 7.0, 3.0)
        nll = (N_C / n) ** ALPHA
        for d in digits:
            for item, tokens in enumerate((2, 5)):
                common = {"request_id": f"r{i}-{d}-{item}", "item_id": f"i{d}-{item}", "model": f"m{i}", "family": "f",
                          "task": "addition", "method": "zero_shot", "digits": d, "n_params": int(n),
                          "target_tokens": tokens}
                rows += [{**common, "metric": "exact_match", "value": accuracy},
                         {**common, "metric": "target_logprob", "value": -nll * tokens}]
    return pd.DataFrame(rows)


def test_sigmoid_floor_recovers_parameters():
    fit = fit_sigmoid_floor(LOG_N, sigmoid_floor(LOG_N, 0.1, 7.0, 3.0))
    assert fit["floor"] == pytest.approx(0.1, abs=1e-6)
    assert fit["midpoint"] == pytest.approx(7.0, abs=1e-6)
    assert fit["slope"] == pytest.approx(3.0, rel=1e-5)
    assert fit["rmse"] < 1e-8


def test_power_law_recovers_parameters():
    n = np.logspace(6, 11, 8)
    fit = fit_power_law(n, (N_C / n) ** ALPHA)
    assert fit["N_c"] == pytest.approx(N_C, rel=1e-6)
    assert fit["alpha"] == pytest.approx(ALPHA, rel=1e-9)
    assert fit["rmse"] < 1e-12


def test_power_law_refuses_rising_loss():
    with pytest.raises(ValueError, match="does not fall"):
        fit_power_law(np.array([1e6, 1e7, 1e8]), np.array([1.0, 2.0, 3.0]))


def test_fit_task_method_rows_and_schema(tmp_path):
    fits = fit_task_method(synthetic_scores())
    assert list(fits.columns) == io.SCHEMAS["fits"].names
    assert (fits["status"] == "ok").all() and (fits["n_models"] == 8).all()
    assert list(fits["digits"].unique()) == ["1", "2", "all"]
    values = fits.set_index(["digits", "fit", "parameter"])["value"]
    for digits in ("1", "2", "all"):
        assert values[digits, "sigmoid_floor", "floor"] == pytest.approx(0.1, abs=1e-5)
        assert values[digits, "sigmoid_floor", "midpoint"] == pytest.approx(7.0, abs=1e-5)
        assert values[digits, "sigmoid_floor", "slope"] == pytest.approx(3.0, rel=1e-4)
        assert values[digits, "power_law", "N_c"] == pytest.approx(N_C, rel=1e-6)
        assert values[digits, "power_law", "alpha"] == pytest.approx(ALPHA, rel=1e-9)
    path = tmp_path / "fits.parquet"
    io.write_table(fits, path, "fits")
    pd.testing.assert_frame_equal(io.read_table(path, "fits"), fits, check_dtype=False)
    assert fit_task_method(synthetic_scores()).equals(fits)


def test_too_few_models_gives_status_row(tmp_path):
    fits = fit_task_method(synthetic_scores(LOG_N[:2], digits=(3,)))
    assert len(fits) == 4  # two fits, for digits "3" and "all"
    assert (fits["status"] == "too few models (2 < 3)").all()
    assert (fits["parameter"] == "").all() and fits["value"].isna().all()
    assert (fits["n_models"] == 2).all()
    io.write_table(fits, tmp_path / "fits.parquet", "fits")
    assert len(io.read_table(tmp_path / "fits.parquet", "fits")) == 4
