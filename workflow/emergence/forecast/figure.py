"""The forecast figure of one curve, drawn from its rows of the `forecasts` table alone.

Against training compute C = 6ND (log scale; against N when some model's D is unknown, as for a
sweep's checkpoints without `training_tokens`): the rungs' final values that the rollouts held out
(observed), the chosen method's rollout predictions with their intervals, its forecasts of the targets
with their 90 % intervals, and the targets' actual values where known. Drawn on an Agg canvas and saved
without date metadata (`plots.save`), so the same table gives the same bytes. `draw_all` draws every
curve of a table into one folder (rule forecast_figures_imported).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emergence.errors import InputError
from emergence.plots import COLOURS, DEFAULT_STYLE, new_figure, save_all


def draw_forecast(forecasts: pd.DataFrame, family: str, task: str, outs: list[Path], style: dict | None = None) -> None:
    """One figure (PNG and/or PDF, by suffix) of the `family` x `task` curve; InputError when the
    table has no chosen forecast for it."""
    rows = forecasts[(forecasts["family"] == family) & (forecasts["task"] == task) & forecasts["chosen"]]
    if rows.empty:
        raise InputError(f"forecast figure: no chosen forecast of {family} {task} in the table")
    fig, (ax,) = new_figure({**DEFAULT_STYLE, **(style or {})})
    compute = 6.0 * rows["n_params"] * rows["training_tokens"]
    by_compute = bool(compute.notna().all())
    rows = rows.assign(compute=compute if by_compute else rows["n_params"])
    observed = rows[rows["holdout"] > 0].drop_duplicates("target")
    ax.scatter(observed["compute"], observed["actual"], color="0.4", s=14, label="held-out rungs (observed)", zorder=3)
    rollout = rows[rows["holdout"] == 1]
    bars(ax, rollout, COLOURS[1], "o", f"rollout ({rows['method'].iloc[0]}, largest rung held out)", filled=False)
    targets = rows[rows["holdout"] == 0]
    bars(ax, targets, COLOURS[0], "s", f"forecast ({targets['method'].iloc[0]}, 90 % interval)", filled=True)
    known = targets.dropna(subset=["actual"])
    ax.scatter(known["compute"], known["actual"], marker="*", s=80, color="black", label="actual", zorder=4)
    for row in targets.itertuples():
        ax.annotate(str(row.target), (row.compute, row.lower), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.1)
    ax.set_xlabel(
        "training compute C = 6ND (FLOPs, log scale)" if by_compute else "non-embedding parameters N (log scale)"
    )
    ax.set_ylabel(f"{rows['metric'].iloc[0]}")
    verdict = rows["verdict"].iloc[0]
    ax.set_title(f"{family}: {task}" + ("" if verdict == "forecastable" else f" ({verdict}: unforecastable)"))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    save_all(fig, [Path(out) for out in outs])


def draw_all(forecasts: pd.DataFrame, out: Path, style: dict | None = None) -> list[Path]:
    """One figure per (family, task, prompting method) with a chosen forecast, as
    `out/{family}_{task}_{prompt_method}.png` and `.pdf`; returns the PNGs, in the table's sort order."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = []
    chosen = forecasts[forecasts["chosen"]]
    for (family, task, prompt_method), _ in chosen.groupby(["family", "task", "prompt_method"], sort=True):
        stem = out / f"{family}_{task}_{prompt_method}"
        rows = forecasts[forecasts["prompt_method"] == prompt_method]
        draw_forecast(rows, family, task, [stem.with_suffix(".png"), stem.with_suffix(".pdf")], style)
        drawn.append(stem.with_suffix(".png"))
    return drawn


def bars(ax, rows: pd.DataFrame, colour: str, marker: str, label: str, filled: bool) -> None:
    """Predictions with their intervals as error bars."""
    if rows.empty:
        return
    errors = np.vstack([rows["predicted"] - rows["lower"], rows["upper"] - rows["predicted"]]).clip(min=0)
    ax.errorbar(
        rows["compute"],
        rows["predicted"],
        yerr=errors,
        fmt=marker,
        color=colour,
        markerfacecolor=colour if filled else "none",
        capsize=3,
        label=label,
    )
