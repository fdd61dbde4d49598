"""Metric-versus-scale figures, one line per digit count (the shape of Schaeffer et al. 2023, Fig. 3).

The same scores drawn under exact match and under token edit distance show whether a jump
with scale belongs to the model or to the metric. Figures are drawn on an Agg canvas without
pyplot (no global figure state) and saved without version or date metadata, so the same data
always gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from emergence.io import write_atomically

METRIC_LABELS = {
    "exact_match": "Exact match accuracy",
    "token_edit_distance": "Token edit distance",
    "target_logprob": "Target log-probability",
    "per_token_prob": "Per-token probability of target",
}
# Distinct markers as well as colours, so lines stay apart in greyscale.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
SAVE_METADATA = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None}}


def plot_metric_vs_params(scores: pd.DataFrame, metric: str, out: Path, title: str) -> None:
    """Mean `metric` per model against N (log x), error bars one standard error over items.

    The family with the most models is drawn as one line per digit count; models of other families
    are crosses in the same colours, not joined to it.
    """
    out = Path(out)
    if out.suffix not in SAVE_METADATA:
        raise ValueError(f"{out}: figures are written as {sorted(SAVE_METADATA)}")
    points = (
        scores[scores["metric"] == metric]
        .groupby(["family", "digits", "n_params", "model"], as_index=False)["value"]
        .agg(["mean", "sem"])
        .sort_values(["family", "digits", "n_params", "model"])
    )
    sizes = points.groupby("family")["model"].nunique()
    main = sizes.sort_index().idxmax() if len(sizes) else None
    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    digit_counts = sorted(points["digits"].unique())
    for index, digits in enumerate(digit_counts):
        line = points[(points["family"] == main) & (points["digits"] == digits)]
        ax.errorbar(
            line["n_params"], line["mean"], yerr=line["sem"].fillna(0.0), capsize=3,
            marker=MARKERS[index % len(MARKERS)], color=COLOURS[index % len(COLOURS)],
            label=f"{digits} digit" + ("" if digits == 1 else "s"),
        )
    # Other families are not on the main family's curve: their models are crosses, unjoined.
    for family, others in points[points["family"] != main].groupby("family"):
        colours = [COLOURS[digit_counts.index(d) % len(COLOURS)] for d in others["digits"]]
        ax.scatter(others["n_params"], others["mean"], c=colours, marker="x", s=50, zorder=3)
        ax.scatter([], [], c="black", marker="x", label=f"{family} (other family)")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks collide on short log ranges
    ax.set_xlabel("Parameters N (log scale)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize()))
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if len(points):
        ax.legend(title=f"{main}: operand length", fontsize="small", loc="best")
    fig.tight_layout()
    write_atomically(out, lambda tmp: fig.savefig(tmp, format=out.suffix[1:], metadata=SAVE_METADATA[out.suffix]))
