"""Seeded simulated curves for calibrating verdicts: per-token outcomes drawn per item, so every item
has both its exact match (all L tokens right) and its continuous twin (the share of tokens right).

Designs (issue 17), sizes log-spaced over three decades, 1e7 to 1e10 parameters:
- `schaeffer`: per-token p = exp(-(N/c)^-alpha) from 0.05 to 0.95 (Schaeffer et al. 2023, eq. 1-2)
- `jump`: p = 0.1 for the smaller half of the sizes, 0.9 for the larger (a real emergent ability)
- `constant`: p = 0.25, one-token answers
- `linear`: one-token answers, accuracy linear in log N from 0.2 to 0.7
- `saturated`: one-token accuracies 0.30, 0.64, 0.97, then 1.0
- `non_monotone`: one-token accuracies rising to 0.8, then falling by 0.35
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np

from emergence.errors import InputError
from emergence.verdicts import Twin, VerdictSettings, judge

DESIGNS = ("schaeffer", "jump", "constant", "linear", "saturated", "non_monotone")
SMALLEST, LARGEST = 1e7, 1e10
FIXED = {
    "saturated": [0.30, 0.64, 0.97, 1.0, 1.0, 1.0, 1.0, 1.0],
    "non_monotone": [0.2, 0.4, 0.6, 0.8, 0.7, 0.6, 0.5, 0.45],
}


def token_probability(design: str, sizes: np.ndarray) -> np.ndarray:
    """Per-token probability of being right at each size (M,)."""
    m = len(sizes)
    if design == "schaeffer":
        alpha = np.log(-np.log(0.05) / -np.log(0.95)) / np.log(LARGEST / SMALLEST)
        c = SMALLEST * (-np.log(0.05)) ** (1 / alpha)
        return np.exp(-((sizes / c) ** -alpha))
    if design == "jump":
        return np.where(np.arange(m) < m // 2, 0.1, 0.9)
    if design == "constant":
        return np.full(m, 0.25)
    if design == "linear":
        return np.linspace(0.2, 0.7, m)
    if design in FIXED:
        if m != len(FIXED[design]):
            raise InputError(f"simulate: design {design!r} has {len(FIXED[design])} sizes, not {m}")
        return np.array(FIXED[design])
    raise InputError(f"simulate: unknown design {design!r} (known: {', '.join(DESIGNS)})")


def curves(
    design: str, n_models: int, tokens: int = 1, datasets: int = 200, n_items: int = 500, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray, Twin]]:
    """Per dataset: sizes (M,), exact match per model (M,), and the twin (per-token accuracy, its
    binomial stderr, L). Seeded by (seed, design, M, L): the same arguments give the same curves."""
    sizes = np.geomspace(SMALLEST, LARGEST, n_models)
    p = token_probability(design, sizes)
    rng = np.random.default_rng([seed, DESIGNS.index(design), n_models, tokens])
    for _ in range(datasets):
        right = rng.binomial(tokens, p[:, None], size=(n_models, n_items))  # tokens right per item
        exact = (right == tokens).mean(axis=1)
        share = right.sum(axis=1) / (n_items * tokens)
        stderr = np.sqrt(np.maximum(share * (1 - share), 0.5 / (n_items * tokens)) / (n_items * tokens))
        yield sizes, exact, Twin(share, stderr, float(tokens))


def rates(
    design: str,
    n_models: int,
    tokens: int = 1,
    datasets: int = 200,
    n_items: int = 500,
    seed: int = 0,
    settings: VerdictSettings | None = None,
) -> dict[str, float]:
    """Share of the simulated datasets getting each verdict."""
    counts = Counter(
        judge(sizes, exact, n_items, twin=twin, settings=settings).verdict
        for sizes, exact, twin in curves(design, n_models, tokens, datasets, n_items, seed)
    )
    return {verdict: count / datasets for verdict, count in sorted(counts.items())}
