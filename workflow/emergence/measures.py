"""Emergence measures of one curve (a metric's per-model means, models sorted by scale).

Every function takes values of shape (..., models), so one call measures the point estimate and
every bootstrap replicate at once.
"""

from __future__ import annotations

import numpy as np


def improvement(y: np.ndarray) -> np.ndarray:
    """I(y) = sign(argmax y - argmin y) * (max y - min y): the curve's overall change, signed by direction.

    Positive when the best score comes at a larger scale than the worst.
    """
    y = np.asarray(y, float)
    direction = np.sign(np.argmax(y, axis=-1) - np.argmin(y, axis=-1))
    return direction * (np.max(y, axis=-1) - np.min(y, axis=-1))


def breakthroughness(y: np.ndarray) -> np.ndarray:
    """BIG-bench's breakthroughness (Srivastava et al. 2022, Appendix B), over models sorted by scale.

    B = I(y) / RootMedianSquare(y_{i+1} - y_i): the overall change against the typical step
    between neighbouring sizes, large when most of the change happens in a few steps. Infinite
    when more than half the steps are flat and the curve still moves; NaN for a flat curve.
    BIG-bench's companion measure, linearity, is left out: its exact definition could not be
    checked against the paper, and a guess is not shipped under its name.
    """
    y = np.asarray(y, float)
    typical_step = np.sqrt(np.median(np.diff(y, axis=-1) ** 2, axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return improvement(y) / typical_step


def resolution_limited(means: np.ndarray, n_items: int, items: float = 3.0) -> bool:
    """True when every model but the largest scores below `items` correct items out of `n_items`.

    Below that resolution a task cannot tell "absent" from "rare", so a later rise looks like a
    jump whatever the model does (the resolution argument of Schaeffer et al. 2023).
    """
    return bool(np.all(np.asarray(means, float)[:-1] < items / n_items))


def mirage_prediction(target_logprob: np.ndarray, target_tokens: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact match predicted from per-token probability: mean over items of p^L (Schaeffer et al. 2023, section 2).

    `target_logprob` and `target_tokens` are (items, models); `weights` is (replicates, items), the item
    counts of each bootstrap replicate (ones for the point estimate). p is a model's geometric-mean
    per-token probability over all its items' target tokens, L each item's length in tokens.
    Returns (replicates, models).
    """
    logprob = weights[:, :, None] * target_logprob[None]  # replicates x items x models
    tokens = weights[:, :, None] * target_tokens[None]
    log_p = logprob.sum(axis=1) / tokens.sum(axis=1)  # replicates x models
    return (weights[:, :, None] * np.exp(log_p[:, None, :] * target_tokens[None])).sum(axis=1) / weights.sum(axis=1)[
        :, None
    ]


def calibration_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """The equal-width confidence bin of each item, 0 .. n_bins-1 (confidence 1.0 in the last)."""
    return np.minimum((np.asarray(confidence, float) * n_bins).astype(int), n_bins - 1)


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, weights: np.ndarray, n_bins: int
) -> np.ndarray:
    """ECE (Naeini et al. 2015; Guo et al. 2017): sum over bins of |accuracy - confidence|, weighted by share of items.

    `confidence` and `correct` are (items,); `weights` is (replicates, items), item counts of each
    bootstrap replicate (ones for the point estimate).
    """
    members = np.eye(n_bins)[calibration_bins(confidence, n_bins)]  # items x bins
    gaps = (weights * (np.asarray(correct, float) - confidence)) @ members  # replicates x bins
    return np.abs(gaps).sum(axis=-1) / weights.sum(axis=-1)


def reliability_table(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> list[dict]:
    """Items, mean confidence and accuracy per non-empty confidence bin: the reliability diagram's points."""
    bins = calibration_bins(confidence, n_bins)
    rows = []
    for b in np.unique(bins):
        inside = bins == b
        rows.append(
            {
                "bin": int(b),
                "lower": b / n_bins,
                "upper": (b + 1) / n_bins,
                "count": int(inside.sum()),
                "confidence": float(confidence[inside].mean()),
                "accuracy": float(np.asarray(correct, float)[inside].mean()),
            }
        )
    return rows
