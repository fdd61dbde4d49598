"""Figures of results made elsewhere: every task against size, and every task over training.

An imported source has too many tasks for a figure each (the Pythia evaluations: 65 tasks, 2 methods,
15 models, 27 checkpoints), so each figure is a grid with one small panel per task: against N, one
line per family for each method (Wei et al. 2022, Fig. 2); over training, one figure per family and
method with a line per size against training tokens D (log scale; step 0, D = 0, is left out).
A panel shows the task's first metric in the config's `metrics` order that it has means for. Drawn
with `plots`' colours, markers, bands and axes, saved without date or version (byte-stable).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.ticker import NullLocator

from emergence.analysis.checkpoints import in_processes
from emergence.io import write_atomically
from emergence.plan import label
from emergence.plots import (
    COLOURS,
    DASHES,
    DEFAULT_STYLE,
    MARKERS,
    SAVE_METADATA,
    draw_band,
    fitted_curve,
    legend,
    log_axis,
    new_figure,
)

COLUMNS = 6  # panels per row
SHRINK = 0.6  # a grid panel's size, as a share of the style's panel


def means_of(fits: pd.DataFrame, manifests: list[dict]) -> pd.DataFrame:
    """Every per-model mean, with the checkpoint's size family, N and D from its manifest."""
    scales = pd.DataFrame(manifests)[["model", "family", "n_params", "training_tokens"]]
    rows = fits[(fits["fit"] == "mean") & (fits["status"] == "ok") & (fits["digits"] == "all")]
    means = rows.rename(columns={"family": "curve"})[["curve", "task", "method", "metric", "model", "value"]]
    return means.merge(scales, on="model", validate="many_to_one")


def draw_line(ax, points: pd.DataFrame, x: str, index: int, name: str) -> None:
    """Means joined along `x`, in the marker, dash and colour of series `index` (as `plots.draw_series`,
    without error bars: the imported files give means, and bars of zero height cost a third of the drawing)."""
    points = points.dropna(subset=[x]).sort_values(x, kind="stable")
    if not points.empty:
        style = {"marker": MARKERS[index % len(MARKERS)], "linestyle": DASHES[index % len(DASHES)]}
        ax.plot(points[x], points["value"], color=COLOURS[index % len(COLOURS)], label=name, **style)


def panel_metrics(means: pd.DataFrame, metrics: list[str]) -> dict[str, str]:
    """Each task's metric: the first of the config's `metrics` it has means for."""
    order = {metric: i for i, metric in enumerate(metrics)}
    present = means[means["metric"].isin(order)].drop_duplicates(["task", "metric"])
    first = present.assign(rank=present["metric"].map(order)).sort_values(["task", "rank"]).drop_duplicates("task")
    return dict(zip(first["task"], first["metric"]))


def grid(style: dict, tasks: list[str], x: str):
    """A figure of one small panel per task, log x axes; x labelled on the bottom row only."""
    small = {**style, "panel_width": style["panel_width"] * SHRINK, "panel_height": style["panel_height"] * SHRINK}
    fig, axes = new_figure(small, len(tasks), min(COLUMNS, len(tasks)))
    for index, ax in enumerate(axes):
        log_axis(ax, "n_params")
        ax.xaxis.set_minor_locator(NullLocator())  # minor ticks of 78 log axes: most of the drawing time
        below = index + COLUMNS >= len(axes)
        ax.set_xlabel(x if below else "")
    return fig, axes


def save_grid(fig, outs: list[Path], style: dict, rows: int) -> None:
    """Saved as PNG and PDF with fixed margins: a tight layout of dozens of panels costs more than drawing them."""
    height = style["panel_height"] * SHRINK * rows
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.6 / height, top=1 - 1.1 / height, wspace=0.3, hspace=0.55)
    for out in outs:
        write_atomically(out, partial(save_as, fig, out.suffix))


def save_as(fig, suffix: str, tmp: Path) -> None:
    fig.savefig(tmp, format=suffix[1:], metadata=SAVE_METADATA[suffix])


def sizes_figure(fits: pd.DataFrame, means: pd.DataFrame, chosen: dict[str, str], title: str, outs, style) -> None:
    """Every task against N (final checkpoints): a line per family and method, fitted sigmoids dotted."""
    tasks = sorted(chosen)
    fig, axes = grid(style, tasks, "Parameters N (log scale)")
    for ax, task in zip(axes, tasks):
        metric = chosen[task]
        panel = means[(means["task"] == task) & (means["metric"] == metric)]
        for index, ((family, method), points) in enumerate(panel.groupby(["curve", "method"], sort=True)):
            draw_line(ax, points, "n_params", index, f"{family}, {method}")
            on_curve = fits[(fits["family"] == family) & (fits["task"] == task) & (fits["method"] == method)]
            draw_band(ax, fitted_curve(on_curve, metric, "n_params", "sigmoid_floor"), index, f"{family}: sigmoid")
        ax.set_title(f"{task}\n{label(metric)}", fontsize="small")
    legend(axes[0])
    fig.suptitle(title)
    save_grid(fig, outs, style, -(-len(tasks) // COLUMNS))


def training_figure(means: pd.DataFrame, chosen: dict[str, str], title: str, outs, style) -> None:
    """Every task over training tokens D: a line per model (size), smallest first."""
    tasks = sorted(chosen)
    fig, axes = grid(style, tasks, "Training tokens D (log scale)")
    for ax, task in zip(axes, tasks):
        panel = means[(means["task"] == task) & (means["metric"] == chosen[task])]
        order = panel.groupby("curve")["n_params"].first().sort_values(kind="stable").index
        for index, model in enumerate(order):
            draw_line(ax, panel[panel["curve"] == model], "training_tokens", index, model)
        ax.set_title(f"{task}\n{label(chosen[task])}", fontsize="small")
    legend(axes[0])
    fig.suptitle(title)
    save_grid(fig, outs, style, -(-len(tasks) // COLUMNS))


def draw_imported(
    curves: str,
    fits: pd.DataFrame,
    manifests: list[dict],
    metrics: list[str],
    source: str,
    style: dict,
    out: Path,
    workers: int = 1,
) -> list[Path]:
    """Draw a source's figures of one kind of curve (`sizes` or `training`) into the folder `out`, each
    as PNG and PDF, in `workers` processes; returns the PNGs. Sizes: one figure, a line per family and
    method; training: one figure per family and method, a line per size."""
    style = {**DEFAULT_STYLE, **(style or {})}
    out.mkdir(parents=True, exist_ok=True)
    means = means_of(fits, manifests)
    if curves == "sizes":
        calls = [("sizes", fits, means, panel_metrics(means, metrics), f"{source}: every task against size", "sizes")]
    else:
        calls = [
            ("training", None, part, panel_metrics(part, metrics), f"{source}: every task over training, {family},"
             f" {method}", f"{family}_{method}")
            for (family, method), part in means.groupby(["family", "method"], sort=True)
        ]  # fmt: skip
    jobs: list[tuple] = [(*call[:5], out / call[5], style) for call in calls]
    in_processes(draw_one, jobs, workers)
    return [out / f"{call[5]}.png" for call in calls]


def draw_one(
    curves: str, fits, means: pd.DataFrame, chosen: dict[str, str], title: str, stem: Path, style: dict
) -> None:
    """One figure, as `stem`.png and `stem`.pdf."""
    import matplotlib

    outs = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"]  # a family may be "qwen2.5"
    rc: Any = {"font.size": style["font_size"], "svg.hashsalt": "emergence"}
    rc |= {"lines.markersize": 3, "lines.linewidth": 1}  # dozens of small panels
    with matplotlib.rc_context(rc):
        if curves == "sizes":
            sizes_figure(fits, means, chosen, title, outs, style)
        else:
            training_figure(means, chosen, title, outs, style)
