"""The curve fitters recover known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from emergence.fits import fit_power_law, fit_sigmoid_floor, sigmoid_floor

LOG_N = np.linspace(5.0, 9.0, 8)  # 8 log-spaced model sizes, 1e5 .. 1e9 parameters
N_C, ALPHA = 1e13, 0.076  # Kaplan et al. 2020, non-embedding parameters


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


def test_power_law_fit_is_robust_to_one_outlier():
    n = np.logspace(6, 11, 8)
    loss = (N_C / n) ** ALPHA
    loss[3] *= 1.5  # Huber loss with a small delta all but ignores it; least squares would not
    fit = fit_power_law(n, loss)
    assert fit["alpha"] == pytest.approx(ALPHA, rel=1e-3)


def test_power_law_refuses_rising_loss():
    with pytest.raises(ValueError, match="does not fall"):
        fit_power_law(np.array([1e6, 1e7, 1e8]), np.array([1.0, 2.0, 3.0]))
