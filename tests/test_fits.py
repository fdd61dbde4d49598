"""The curve fitters recover known parameters."""

from __future__ import annotations

import numpy as np
import pytest

from emergence.fits import (
    fit_curves,
    fit_power_law,
    fit_replicates,
    fit_sigmoid_floor,
    huber,
    sigmoid_floor,
    sigmoid_terms,
)
from emergence.solver import minimise_batch

LOG_N = np.linspace(5.0, 9.0, 8)  # 8 log-spaced model sizes, 1e5 .. 1e9 parameters
N_C, ALPHA = 1e13, 0.076  # Kaplan et al. 2020, non-embedding parameters


# (floor, midpoint, slope, ceiling)
EXACT = [(0.1, 7.0, 3.0, 1.0), (0.1, 7.0, 3.0, 0.6), (0.0, 6.5, 2.0, 0.6), (0.25, 8.0, 5.0, 0.9)]
SAMPLED = [(0.1, 7.0, 2.0, 0.9), (0.2, 6.5, 3.0, 0.6), (0.05, 7.5, 1.5, 1.0), (0.0, 7.0, 2.5, 0.75)]


@pytest.mark.parametrize("truth", EXACT)
def test_sigmoid_floor_recovers_parameters(truth):
    """Noise-free: (floor, midpoint, slope, ceiling) back to 1e-6, a ceiling on its bound 1 included."""
    floor, midpoint, slope, ceiling = truth
    fit = fit_sigmoid_floor(LOG_N, sigmoid_floor(LOG_N, *truth))
    assert [fit["floor"], fit["ceiling"], fit["midpoint"]] == pytest.approx([floor, ceiling, midpoint], abs=1e-6)
    assert fit["slope"] == pytest.approx(slope, rel=1e-6)
    assert fit["rmse"] < 1e-9


def test_sigmoid_floor_recovers_parameters_from_noisy_data():
    """50 seeded datasets, 1,000 items per size: no bias (medians of the errors near 0) and no fit far off.

    Measured standard deviations: floor 0.008, ceiling 0.011, midpoint 0.044, slope 10 %.
    """
    floor, midpoint, slope, ceiling = truth = (0.1, 7.0, 2.5, 0.7)
    errors = []
    for seed in range(50):
        y = np.random.default_rng(seed).binomial(1000, sigmoid_floor(LOG_N, *truth)) / 1000
        fit = fit_sigmoid_floor(LOG_N, y)
        errors.append(
            [fit["floor"] - floor, fit["ceiling"] - ceiling, fit["midpoint"] - midpoint, fit["slope"] / slope - 1]
        )
    errors = np.array(errors)
    assert np.all(np.abs(np.median(errors, axis=0)) < [0.005, 0.005, 0.02, 0.05])
    assert np.all(np.abs(errors).max(axis=0) < [0.04, 0.05, 0.2, 0.5])


def test_a_curve_that_levels_off_gets_its_own_ceiling():
    """Accuracy that saturates at 0.6 (500 items per size): the ceiling is 0.6, not forced to 1."""
    truth = (0.02, 6.5, 3.0, 0.6)
    for seed in range(5):
        y = np.random.default_rng(seed).binomial(500, sigmoid_floor(LOG_N, *truth)) / 500
        fit = fit_sigmoid_floor(LOG_N, y)
        assert fit["ceiling"] == pytest.approx(0.6, abs=0.02)
        assert fit["midpoint"] == pytest.approx(6.5, abs=0.1)
        assert fit["rmse"] < 0.025  # with the ceiling at 1 the rise would have to pass 0.6 and miss it


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


# Bootstrap replicates, all at once (fit_replicates) against one scipy fit per replicate from the point fit


def one_at_a_time(fit: str, x: np.ndarray, means: np.ndarray, delta: float = 1e-3) -> list[dict | None]:
    """The fit stage's loop before the batched solver: the point fit, then each replicate alone from it."""

    def one(y: np.ndarray, start: dict | None = None) -> dict:
        if fit == "sigmoid_floor":
            return fit_sigmoid_floor(np.log10(x), y, start)
        return fit_power_law(x, y, delta, start)

    point = one(means[0])
    out: list[dict | None] = [point]
    for y in means[1:]:
        try:
            out.append(one(y, point))
        except ValueError:
            out.append(None)
    return out


def resampled(rng: np.random.Generator, values: np.ndarray, replicates: int) -> np.ndarray:
    """(1 + B) x models: the means of `values` (items x models), then of item resamples, as analysis.Curve draws."""
    items = len(values)
    weights = np.vstack([np.ones(items), rng.multinomial(items, np.full(items, 1 / items), size=replicates)])
    return weights @ values / items


def fitted(x: np.ndarray, fit: dict) -> np.ndarray:
    return sigmoid_floor(np.log10(x), fit["floor"], fit["midpoint"], fit["slope"], fit["ceiling"])


def half_squares(x: np.ndarray, y: np.ndarray, fit: dict) -> float:
    return 0.5 * float(np.sum((fitted(x, fit) - y) ** 2))


def huber_loss(x: np.ndarray, loss: np.ndarray, fit: dict, delta: float = 1e-3) -> float:
    return float(huber(fit["alpha"] * (np.log(fit["N_c"]) - np.log(x)) - np.log(loss), delta)[0])


def params(found: list[dict | None], keys: tuple[str, ...]) -> np.ndarray:
    return np.array([[f[k] for k in keys] for f in found if f is not None])


SIGMOID_KEYS = ("floor", "ceiling", "midpoint", "slope", "rmse")
SIZES = np.logspace(5, 9, 7)


@pytest.mark.parametrize("truth", SAMPLED)
def test_sigmoid_replicates_match_one_fit_each(truth):
    """Well-determined replicates (2,000 items): the same parameters as one scipy fit each, to 1e-6 relative.

    Measured: up to 6e-7 (a floor near its bound 0), 3e-8 (slope), 2e-9 (ceiling), 7e-10 (midpoint).
    """
    rng = np.random.default_rng(int(truth[2] * 10))
    accuracy = sigmoid_floor(np.log10(SIZES), *truth)
    means = resampled(rng, (rng.random((2000, len(SIZES))) < accuracy).astype(float), 50)
    batched, alone = fit_replicates("sigmoid_floor", SIZES, means, 1e-3), one_at_a_time("sigmoid_floor", SIZES, means)
    assert batched[0] == alone[0]  # the point fit: the multi-start fit, bit for bit
    np.testing.assert_allclose(params(batched[1:], SIGMOID_KEYS), params(alone[1:], SIGMOID_KEYS), rtol=1e-6, atol=1e-9)


def test_sigmoid_replicates_on_noisy_and_flat_curves():
    """Few items: noisy replicates (floors on their bound, runaway slopes) and flat ones (every model alike).

    Parameters need not be unique there, so a fit is judged by its cost: never above one scipy fit's,
    or else below 1e-7 (half squares: an rmse of 1.7e-4, a 200th of one item in 30), and a flat
    replicate is fitted flat. A step between the two largest sizes has no best fit (the slope runs off
    to infinity, the cost to 0): the batch stops after 200 iterations at half squares up to 6e-8, where
    scipy (tolerances 1e-12) went on to 1e-20; elsewhere the batch's cost is at most scipy's.
    """
    rng = np.random.default_rng(7)
    accuracy = sigmoid_floor(np.log10(SIZES), 0.05, 7.5, 3.0)
    noisy = resampled(rng, (rng.random((30, len(SIZES))) < accuracy).astype(float), 100)
    # 5 of 20 items right at every size, one only at the largest: a third of the replicates are flat
    items = np.vstack([np.ones((5, len(SIZES))), np.eye(len(SIZES))[-1], np.zeros((14, len(SIZES)))])
    nearly_flat = resampled(rng, items, 60)
    for means in (noisy, nearly_flat):
        batched = fit_replicates("sigmoid_floor", SIZES, means, 1e-3)
        alone = one_at_a_time("sigmoid_floor", SIZES, means)
        assert batched[0] == alone[0]
        for y, new, old in zip(means[1:], batched[1:], alone[1:]):
            assert new is not None and old is not None
            assert half_squares(SIZES, y, new) <= max(half_squares(SIZES, y, old) * (1 + 1e-9), 1e-7)
            if np.ptp(y) == 0:
                np.testing.assert_allclose(fitted(SIZES, new), y, atol=1e-6)
    assert sum(np.ptp(y) == 0 for y in nearly_flat[1:]) > 10


def test_sigmoid_replicates_recover_exact_curves_and_respect_bounds():
    """Noise-free replicates far from the point fit are recovered, their ceilings too; a floor below 0 in
    the data stops at 0, a ceiling above 1 at 1."""
    log_n = np.log10(SIZES)
    truths = [(0.1, 7.0, 3.0, 1.0), (0.3, 6.0, 1.0, 0.8), (0.0, 8.5, 6.0, 1.0), (0.05, 7.5, 0.5, 0.5)]
    means = np.array([sigmoid_floor(log_n, *truth) for truth in truths])
    below = sigmoid_floor(log_n, 0.0, 7.0, 2.0) - 0.05  # the best floor would be negative
    above = sigmoid_floor(log_n, 0.1, 7.0, 2.0, 1.0) + 0.05  # the best ceiling would be above 1
    found = fit_replicates("sigmoid_floor", SIZES, np.vstack([means, below, above]), 1e-3)
    for truth, fit in zip(truths[1:], found[1:-2]):
        assert fit is not None
        assert [fit["floor"], fit["midpoint"], fit["slope"], fit["ceiling"]] == pytest.approx(truth, rel=1e-6, abs=1e-8)
        assert fit["rmse"] < 1e-9
    for fit, bound in ((found[-2], "floor"), (found[-1], "ceiling")):
        assert fit is not None and fit[bound] == (0.0 if bound == "floor" else 1.0)
    for y, fit in ((below, found[-2]), (above, found[-1])):
        assert half_squares(SIZES, y, fit) <= half_squares(SIZES, y, fit_sigmoid_floor(log_n, y)) + 1e-12


def test_power_law_replicates_are_the_least_squares_line_within_delta():
    """With every residual within delta the Huber fit is ordinary least squares: the batch gives that line to
    1e-9; one scipy L-BFGS fit per replicate (gradient tolerance 1e-5) came within 4e-5 of its alpha."""
    rng = np.random.default_rng(3)
    loss = (1e4 / SIZES) ** 0.1 * rng.lognormal(0, 3e-4, (50, len(SIZES)))
    means = resampled(rng, loss, 40)
    batched, alone = fit_replicates("power_law", SIZES, means, 1e-3), one_at_a_time("power_law", SIZES, means)
    assert batched[0] == alone[0]
    for y, new, old in zip(means[1:], batched[1:], alone[1:]):
        assert new is not None and old is not None
        slope, intercept = np.polyfit(np.log(SIZES), np.log(y), 1)
        assert new["alpha"] == pytest.approx(-slope, rel=1e-9)
        assert np.log(new["N_c"]) == pytest.approx(intercept / -slope, rel=1e-9)
        assert new["alpha"] == pytest.approx(old["alpha"], rel=2e-4)


def test_power_law_replicates_on_noisy_curves():
    """Residuals far beyond delta: the loss is then nearly least absolute deviations, its minimum flat or a
    segment of lines (sizes evenly spaced), so alpha is judged by the loss, never above one scipy fit's.

    Measured: scipy's loss up to 2.3 % higher (it stops at a gradient of 1e-5), alpha up to 7 % apart.
    """
    rng = np.random.default_rng(4)
    for sizes in (SIZES, np.sort(10 ** rng.uniform(5, 9, 5))):
        loss = (1e4 / sizes) ** 0.1 * rng.lognormal(0, 0.3, (40, len(sizes)))
        means = resampled(rng, loss, 60)
        batched, alone = fit_replicates("power_law", sizes, means, 1e-3), one_at_a_time("power_law", sizes, means)
        assert batched[0] == alone[0]
        for y, new, old in zip(means[1:], batched[1:], alone[1:]):
            assert new is not None and old is not None
            assert huber_loss(sizes, y, new) <= huber_loss(sizes, y, old) * (1 + 1e-9)


def test_failed_replicates_are_none():
    """A replicate that cannot be fitted gives None, as one fit raising ValueError did; the others are fitted."""
    log_n = np.log10(SIZES)
    curve = sigmoid_floor(log_n, 0.1, 7.0, 3.0)
    found = fit_replicates("sigmoid_floor", SIZES, np.vstack([curve, curve, np.where(log_n > 8, np.nan, curve)]), 1e-3)
    assert found[1] is not None and found[1]["midpoint"] == pytest.approx(7.0)
    assert found[2] is None
    loss = (N_C / SIZES) ** ALPHA
    rows = np.vstack([loss, loss, np.where(log_n > 8, 0.0, loss), loss[::-1], np.full(len(SIZES), np.inf)])
    found = fit_replicates("power_law", SIZES, rows, 1e-3)
    assert found[1] is not None and found[1]["alpha"] == pytest.approx(ALPHA, rel=1e-9)
    assert found[2:] == [None, None, None]  # a loss of 0; one that rises with N; one not finite
    with pytest.raises(ValueError, match="does not fall"):
        fit_replicates("power_law", SIZES, rows[3:4], 1e-3)


# Many curves at once (fit_curves): what the fit stage does with every curve of a task x method


def test_many_curves_at_once_give_each_curve_its_own_fits():
    """Curves of different sizes, scales and fits in one call: each gets exactly what `fit_replicates` gives
    it alone (sigmoids bit for bit; power laws to 1e-12, BLAS rounding its products by the batch's size), and a
    curve whose point fit fails gets its error without stopping the others."""
    rng = np.random.default_rng(11)
    small, other = SIZES[:5], np.logspace(6, 10, 6)
    sigmoids = [
        (x, resampled(rng, (rng.random((300, len(x))) < sigmoid_floor(np.log10(x), *truth)).astype(float), 30))
        for x, truth in [(SIZES, SAMPLED[0]), (small, SAMPLED[1]), (other, SAMPLED[2]), (SIZES, SAMPLED[3])]
    ]
    broken = (SIZES, np.vstack([np.full(len(SIZES), np.nan), sigmoids[0][1][1:]]))  # a point fit that must fail
    found = fit_curves("sigmoid_floor", [*sigmoids, broken], 1e-3)
    for (x, means), fits in zip(sigmoids, found):
        assert fits == fit_replicates("sigmoid_floor", x, means, 1e-3)
    assert isinstance(found[-1], ValueError) and "no start reached a finite fit" in str(found[-1])
    # residuals within delta (least squares: one minimum, so the batch's rounding cannot move it far)
    losses = [
        (x, resampled(rng, (1e4 / x) ** 0.1 * rng.lognormal(0, 3e-4, (60, len(x))), 30)) for x in (SIZES, small, SIZES)
    ]
    rising = (small, np.tile(np.linspace(1.0, 2.0, len(small)), (31, 1)))
    found = fit_curves("power_law", [*losses, rising], 1e-3)
    for (x, means), fits in zip(losses, found):
        alone = fit_replicates("power_law", x, means, 1e-3)
        assert not isinstance(fits, ValueError) and fits[0] == alone[0]
        keys = ("N_c", "alpha", "rmse")
        np.testing.assert_allclose(params(fits[1:], keys), params(alone[1:], keys), rtol=1e-12)
    assert isinstance(found[-1], ValueError) and "does not fall" in str(found[-1])


def test_point_fits_found_before_are_taken_as_they_are():
    """`fit_curves(..., points=)`, as the fit stage calls it (point fits first, then the replicates): the
    same fits as in one call, a failed point fit's error passed through."""
    rng = np.random.default_rng(12)
    sigmoids = [
        (
            SIZES,
            resampled(rng, (rng.random((300, len(SIZES))) < sigmoid_floor(np.log10(SIZES), *truth)).astype(float), 20),
        )
        for truth in SAMPLED[:2]
    ]
    losses = [(SIZES, resampled(rng, (1e4 / SIZES) ** 0.1 * rng.lognormal(0, 3e-4, (60, len(SIZES))), 20))]
    broken = (SIZES, np.vstack([np.full(len(SIZES), np.nan), sigmoids[0][1][1:]]))
    for fit, curves in (("sigmoid_floor", [*sigmoids, broken]), ("power_law", losses)):
        alone = fit_curves(fit, curves, 1e-3)
        points = [
            f if isinstance(f, ValueError) else f[0] for f in fit_curves(fit, [(x, m[:1]) for x, m in curves], 1e-3)
        ]
        given = fit_curves(fit, curves, 1e-3, points)
        assert [str(f) if isinstance(f, ValueError) else f for f in given] == [
            str(f) if isinstance(f, ValueError) else f for f in alone
        ]


def test_per_problem_bounds_are_each_problems_own():
    """minimise_batch with bounds per problem (B x k) solves each problem as it is solved alone under its bounds."""
    log_n = np.log10(SIZES)
    y = np.vstack([sigmoid_floor(log_n, 0.1, 7.0, 3.0, 0.9), sigmoid_floor(log_n, 0.0, 6.0, 2.0) - 0.05])
    starts = np.array([[0.2, 7.5, 1.0, 0.5], [0.1, 6.5, 1.0, 0.5]])
    lower = np.array([[0.0, 4.0, 1e-6, 0.0], [0.05, 4.0, 1e-6, 0.0]])  # the second floor may not go below 0.05
    upper = np.array([[1.0, 10.0, np.inf, 0.5], [1.0, 10.0, np.inf, 1.0]])  # the first share not above 0.5
    data = np.hstack([np.tile(log_n, (2, 1)), y])
    together, ok = minimise_batch(sigmoid_terms, starts, data, lower, upper)
    for i in range(2):
        alone, good = minimise_batch(sigmoid_terms, starts[i : i + 1], data[i : i + 1], lower[i], upper[i])
        assert ok[i] and good[0] and (together[i] == alone[0]).all()
    assert together[0, 3] == 0.5 and together[1, 0] == 0.05  # each on its own bound, not the other's
