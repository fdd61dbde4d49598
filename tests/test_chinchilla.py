"""The Chinchilla approach-3 fitter reproduces Epoch AI's published refit of Hoffmann et al.'s data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emergence.fits import fit_chinchilla

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_svg_extracted.csv"
# Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt", Table 1 (their refit)
PUBLISHED = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}


@pytest.mark.skipif(not DATA.exists(), reason="shared/data/chinchilla_svg_extracted.csv is not beside the repository")
def test_fit_reproduces_the_published_refit():
    points = pd.read_csv(DATA).nsmallest(240, "loss")  # the 5 highest-loss points are dropped
    n, flops = points["Model Size"].to_numpy(), points["Training FLOP"].to_numpy()
    fitted = fit_chinchilla(n, flops / (6 * n), points["loss"].to_numpy())
    for name in ("E", "alpha", "beta"):
        assert fitted[name] == pytest.approx(PUBLISHED[name], rel=0.01), name
    for name in ("A", "B"):
        assert fitted[name] == pytest.approx(PUBLISHED[name], rel=0.10), name


def test_fit_recovers_known_parameters():
    rng = np.random.default_rng(0)
    n = 10 ** rng.uniform(7, 10, 120)
    d = 10 ** rng.uniform(9, 12, 120)
    truth = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.28}
    loss = truth["E"] + truth["A"] / n ** truth["alpha"] + truth["B"] / d ** truth["beta"]
    fitted = fit_chinchilla(n, d, loss * np.exp(rng.normal(0, 1e-4, 120)))
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=0.02), name
