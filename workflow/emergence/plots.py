"""The figure set of the emergence literature, drawn from the fit stage's tables and the models' manifests.

Every figure reads per-model means with their bootstrap intervals and the fitted curves with their
bands from `results/fits/`, and the models' scales (parameters N, training compute C = 6ND) from
their manifests. Figures are drawn on an Agg canvas without pyplot (no global state) and saved
without version or date metadata, so the same inputs always give the same bytes. Lines differ in
marker and dash as well as colour, so they stay apart in greyscale.

A figure whose inputs are absent raises `MissingInputs`; the workflow does not ask for such figures
and the report says why (see `applicable_figures`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, NullFormatter

from emergence.io import write_atomically
from emergence.plan import label
from emergence.registry import Registry

X_LABELS = {"n_params": "Parameters N", "training_flops": "Training compute C = 6ND (FLOPs)"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
SAVE_METADATA = {".png": {"Software": None}, ".pdf": {"CreationDate": None, "Producer": None}}
DEFAULT_STYLE = {"dpi": 120, "panel_width": 4.6, "panel_height": 3.6, "font_size": 9}


class MissingInputs(ValueError):
    """The sweep holds nothing this figure could show."""


def scales(manifests: list[dict]) -> pd.DataFrame:
    """Each model's family, parameters and training compute (NaN when D is unknown)."""
    rows = [
        {
            "model": m["model"],
            "family": m["family"],
            "n_params": float(m["n_params"]),
            "training_flops": float(m["training_flops"]) if m.get("training_flops") else np.nan,
        }
        for m in manifests
    ]
    return pd.DataFrame(rows, columns=["model", "family", "n_params", "training_flops"])


def model_means(fits: pd.DataFrame, models: pd.DataFrame, metric: str, digits: str = "all") -> pd.DataFrame:
    """Per-model means of `metric` with their intervals and scales, smallest model first."""
    rows = fits[
        (fits["fit"] == "mean") & (fits["metric"] == metric) & (fits["digits"] == digits) & (fits["status"] == "ok")
    ]
    means = rows[["family", "task", "method", "model", "value", "ci_low", "ci_high"]]
    return means.merge(models.drop(columns="family"), on="model").sort_values(
        ["family", "n_params", "model"], ignore_index=True
    )


def fitted_curve(fits: pd.DataFrame, metric: str, x: str, fit: str, digits: str = "all") -> pd.DataFrame:
    """A stored fitted curve (`{fit}_curve` rows) as scale, value and band, per family."""
    rows = fits[
        (fits["fit"] == f"{fit}_curve") & (fits["metric"] == metric) & (fits["x"] == x) & (fits["digits"] == digits)
    ]
    return rows.sort_values(["family", "scale"], ignore_index=True)


def log_y(ax) -> None:
    """A log y axis labelled in plain numbers, minor ticks too where the data span less than a decade."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter())
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))


def require_scale(means: pd.DataFrame, x: str) -> None:
    if means[x].isna().all():
        raise MissingInputs(f"{X_LABELS[x]} unknown for every model (no manifest gives training tokens D)")


def main_family(means: pd.DataFrame) -> str | None:
    """The family with the most models (the name first on ties): the one drawn as curves."""
    sizes = means.groupby("family")["model"].nunique()
    return sizes.sort_index().idxmax() if len(sizes) else None


def new_figure(style: dict, panels: int = 1, columns: int | None = None) -> tuple[Figure, list]:
    """A figure of `panels` panels, `columns` to a row, each panel the style's size."""
    columns = columns or panels
    rows = -(-panels // columns)
    fig = Figure(figsize=(style["panel_width"] * columns, style["panel_height"] * rows), dpi=style["dpi"])
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(rows, columns, i + 1) for i in range(panels)]


def log_axis(ax, x: str) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks collide on short log ranges
    ax.set_xlabel(f"{X_LABELS[x]} (log scale)")
    ax.grid(True, which="major", alpha=0.3)


def draw_series(ax, points: pd.DataFrame, x: str, index: int, name: str, joined: bool = True) -> None:
    """Means with their interval as error bars; joined by a line unless the models are of another family."""
    points = points.dropna(subset=[x]).sort_values(x, kind="stable")  # a line joins models along this axis
    if points.empty:  # e.g. a model without a known D on the compute axis: no legend entry either
        return
    errors = np.vstack([points["value"] - points["ci_low"], points["ci_high"] - points["value"]]).clip(min=0)
    ax.errorbar(
        points[x],
        points["value"],
        yerr=np.nan_to_num(errors),
        capsize=3,
        marker=MARKERS[index % len(MARKERS)],
        color=COLOURS[index % len(COLOURS)],
        linestyle=DASHES[index % len(DASHES)] if joined else "none",
        label=name,
    )


def draw_band(ax, curve: pd.DataFrame, index: int, name: str) -> None:
    """A fitted curve and its bootstrap band, in the colour of the series it belongs to."""
    if curve.empty:
        return
    colour = COLOURS[index % len(COLOURS)]
    ax.plot(curve["scale"], curve["value"], color=colour, linewidth=1, linestyle=(0, (2, 2)), label=name)
    ax.fill_between(curve["scale"], curve["ci_low"], curve["ci_high"], color=colour, alpha=0.15, linewidth=0)


def save(fig: Figure, out: Path) -> None:
    out = Path(out)
    if out.suffix not in SAVE_METADATA:
        raise ValueError(f"{out}: figures are written as {sorted(SAVE_METADATA)}")
    fig.tight_layout()
    write_atomically(out, lambda tmp: fig.savefig(tmp, format=out.suffix[1:], metadata=SAVE_METADATA[out.suffix]))


def save_all(fig: Figure, outs: list[Path]) -> None:
    for out in outs:
        save(fig, out)


def legend(ax, title: str | None = None) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(title=title, fontsize="small", title_fontsize="small", loc="best", framealpha=0.8)


# --- the figures ----------------------------------------------------------------------------------


def loss_figure(fits: pd.DataFrame, models: pd.DataFrame, title: str, outs: list[Path], style: dict) -> None:
    """Per-token loss against N and against C, log-log, each family with its power law and band
    (Wei et al. 2022, Fig. 1)."""
    means = model_means(fits, models, "target_nll")
    if means.empty:
        raise MissingInputs("no target_nll means (score target_logprob)")
    known = [x for x in X_LABELS if means[x].notna().any()]  # C only where a manifest gives D
    fig, axes = new_figure(style, len(known))
    for ax, x in zip(axes, known):
        for index, (family, points) in enumerate(means.groupby("family", sort=True)):
            draw_series(ax, points, x, index, family)
            draw_band(
                ax,
                fitted_curve(fits[fits["family"] == family], "target_nll", x, "power_law"),
                index,
                f"{family}: (N_c/x)^α",
            )
        log_axis(ax, x)
        log_y(ax)
        ax.set_ylabel(label("target_nll"))
        legend(ax, "family")
    fig.suptitle(title)
    save_all(fig, outs)


def task_grid_figure(
    fits: pd.DataFrame,
    models: pd.DataFrame,
    metric: str,
    x: str,
    chance: dict[str, float],
    title: str,
    outs: list[Path],
    style: dict,
) -> None:
    """One panel per task: `metric` against scale, a line per family, chance dashed (Wei et al. 2022, Fig. 2)."""
    means = model_means(fits, models, metric)
    tasks = sorted(means["task"].unique())
    if not tasks:
        raise MissingInputs(f"no {metric} means")
    require_scale(means, x)
    columns = min(3, len(tasks))
    fig, axes = new_figure(style, len(tasks), columns)
    for ax, task in zip(axes, tasks):
        for index, (family, points) in enumerate(means[means["task"] == task].groupby("family", sort=True)):
            draw_series(ax, points, x, index, family, joined=points["model"].nunique() > 1)
        ax.axhline(chance.get(task, 0.0), color="grey", linestyle="--", linewidth=1, label="chance")
        log_axis(ax, x)
        ax.set_title(task)
        ax.set_ylabel(label(metric))
    legend(axes[0], "family")
    fig.suptitle(title)
    save_all(fig, outs)


def comparison_figure(
    fits: pd.DataFrame, models: pd.DataFrame, metric: str, x: str, by: str, title: str, outs: list[Path], style: dict
) -> None:
    """`metric` against scale for the main family, one line per method (Wei et al. 2022, Fig. 3) or per task variant.

    `by` is "method" (where augmented prompting starts to help) or "task" (clean against shifted inputs,
    Wei et al. 2022, Figs. 5-6).
    """
    means = model_means(fits, models, metric)
    family = main_family(means)
    if family is None:
        raise MissingInputs(f"no {metric} means")
    require_scale(means, x)
    fig, (ax,) = new_figure(style)
    for index, (name, points) in enumerate(means[means["family"] == family].groupby(by, sort=False)):
        draw_series(ax, points, x, index, name.replace("_", "-"))
    log_axis(ax, x)
    ax.set_ylabel(label(metric))
    ax.set_title(f"{title} ({family} family)")
    legend(ax, by)
    save_all(fig, outs)


def metrics_figure(
    fits: pd.DataFrame, models: pd.DataFrame, metrics: list[str], x: str, title: str, outs: list[Path], style: dict
) -> None:
    """The same outputs under each metric, a line per digit count (Wei et al. 2022, Fig. 7;
    Schaeffer et al. 2023, Fig. 3).

    The family with the most models is drawn as lines; models of other families as unjoined crosses.
    """
    present = [m for m in metrics if not model_means(fits, models, m).empty]
    if not present:
        raise MissingInputs(f"none of {metrics} scored")
    require_scale(model_means(fits, models, present[0]), x)
    fig, axes = new_figure(style, len(present))
    family = main_family(model_means(fits, models, present[0]))
    digit_counts = sorted((d for d in fits["digits"].unique() if d != "all"), key=int)
    for ax, metric in zip(axes, present):
        for index, digits in enumerate(digit_counts):
            means = model_means(fits, models, metric, digits)
            draw_series(
                ax, means[means["family"] == family], x, index, f"{digits} digit" + ("" if digits == "1" else "s")
            )
            others = means[means["family"] != family].dropna(subset=[x])
            ax.scatter(others[x], others["value"], color=COLOURS[index % len(COLOURS)], marker="x", s=40, zorder=3)
        log_axis(ax, x)
        ax.set_ylabel(label(metric))
    others = sorted(set(model_means(fits, models, present[0])["family"]) - {family})
    if others:
        axes[0].scatter([], [], color="black", marker="x", label=f"other family: {', '.join(others)}")
    legend(axes[0], f"{family}: operand length")
    fig.suptitle(title)
    save_all(fig, outs)


def extrapolation_figure(
    fits: pd.DataFrame, models: pd.DataFrame, metrics: dict[str, str], x: str, title: str, outs: list[Path], style: dict
) -> None:
    """Fit on the smaller models, the predicted curve with its band, and the observed held-out models."""
    panels = [(m, fit) for m, fit in metrics.items() if not fitted_curve(fits, m, x, "extrapolation").empty]
    if not panels:
        raise MissingInputs("no extrapolation was fitted (too few models, or curves not fittable)")
    fig, axes = new_figure(style, len(panels))
    for ax, (metric, fit) in zip(axes, panels):
        curve = fitted_curve(fits, metric, x, "extrapolation")
        family = sorted(curve["family"].unique())[0]
        means = model_means(fits[fits["family"] == family], models, metric)
        held_out = fits[
            (fits["fit"] == "extrapolation")
            & (fits["metric"] == metric)
            & (fits["x"] == x)
            & (fits["family"] == family)
            & (fits["digits"] == "all")
            & (fits["parameter"] == "predicted")
        ]["model"]
        fitted_on, predicted = means[~means["model"].isin(held_out)], means[means["model"].isin(held_out)]
        draw_band(ax, curve[curve["family"] == family], 0, f"{fit.replace('_', ' ')}, fitted on the smaller models")
        draw_series(ax, fitted_on, x, 0, "fitted on", joined=False)
        draw_series(ax, predicted, x, 1, "held out (observed)", joined=False)
        log_axis(ax, x)
        if metric == "target_nll":
            log_y(ax)
        ax.set_ylabel(label(metric))
        ax.set_title(family)
        legend(ax)
    fig.suptitle(title)
    save_all(fig, outs)


def not_drawn_figure(reason: str, title: str, outs: list[Path], style: dict) -> None:
    """What a requested figure shows when the finished sweep holds nothing it could draw."""
    fig, (ax,) = new_figure(style)
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"Not drawn:\n{reason}", ha="center", va="center", wrap=True)
    fig.suptitle(title)
    save_all(fig, outs)


FIGURES: Registry[Callable[..., None]] = Registry("figure kind")
FIGURES.add("loss", loss_figure)
FIGURES.add("tasks", task_grid_figure)
FIGURES.add("methods", comparison_figure)
FIGURES.add("robustness", comparison_figure)
FIGURES.add("metrics", metrics_figure)
FIGURES.add("multiple_choice", metrics_figure)
FIGURES.add("induced", metrics_figure)  # a continuous metric, then itself thresholded (Schaeffer et al. 2023, sec. 5)
FIGURES.add("extrapolation", extrapolation_figure)


def render(
    kind: str, fits: pd.DataFrame, manifests: list[dict], options: dict, title: str, outs: list[Path], style: dict
) -> str:
    """Draw one figure of the set into every path of `outs` (PNG, PDF); returns "" or why it shows nothing."""
    import matplotlib

    style = {**DEFAULT_STYLE, **(style or {})}
    with matplotlib.rc_context({"font.size": style["font_size"], "svg.hashsalt": "emergence"}):
        try:
            FIGURES.find(kind, "figure")(fits, scales(manifests), **options, title=title, outs=outs, style=style)
            return ""
        except MissingInputs as missing:
            not_drawn_figure(str(missing), title, outs, style)
            return str(missing)
