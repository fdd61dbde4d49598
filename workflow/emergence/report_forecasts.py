"""The report's "Forecasts" section: per task and target, the chosen forecast beside the naive one.

Read from the `forecasts` table (`io.SCHEMAS["forecasts"]`, `emergence.forecast`): the rows with
`holdout` 0 (fitted on every rung) and `chosen` give the forecast and its interval; `naive` (the
largest observed model's score, the baseline of issue 18) gives the number to beat. Scores are shown
in points (percentage points of a fraction-of-items metric).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from emergence.forecast.verdict import FORECASTABLE
from emergence.report import figure_html, table_html

CURVE = ["family", "task", "prompt_method", "metric"]


def forecasts_section(forecasts: pd.DataFrame | None, figures: list[Path]) -> list[str]:
    """The section's HTML parts: how to read it, the mean absolute errors per family, one row per task and
    target, then the forecast figures; nothing when no source was forecast."""
    if forecasts is None or forecasts.empty:
        return []
    rows = chosen_rows(forecasts)
    parts = [
        "<h2>Forecasts</h2>",
        f"<p>{html.escape(EXPLANATION)}</p>",
        table_html(errors_table(rows)),
        table_html(forecast_table(rows)),
    ]
    if figures:
        parts += [
            "<h3>Forecast figures</h3>",
            "<p>Against training compute C = 6ND: the rungs the rollouts held out, the chosen method's rollout"
            " predictions and its forecasts of the targets with their intervals, and the actual values.</p>",
            *[figure_html(p) for p in figures],
        ]
    return parts


def chosen_rows(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The chosen forecast of every curve's targets (holdout 0), with the naive forecast as `naive`."""
    targets = forecasts[forecasts["holdout"] == 0]
    chosen = targets[targets["chosen"]].set_index([*CURVE, "target"])
    naive = targets[targets["method"] == "naive"].set_index([*CURVE, "target"])["predicted"]
    return chosen.assign(naive=naive.reindex(chosen.index)).reset_index()


EXPLANATION = (
    "Each target model predicted from the smaller models of its family (declared in the config before the run;"
    " for the sweep's own models, by default each family's largest size):"
    " the method the selection rule chose, its forecast with its prediction interval (the source's"
    " forecast.level, 90 % by default), the actual score where the target was evaluated, the error (forecast"
    " minus actual), the method's backtest error (mean absolute error predicting the largest rungs from the"
    " smaller ones) and the verdict. A task judged flat or non-monotone is unforecastable: it shows the naive"
    " forecast, marked so. Naive: the largest observed model's score. In points: percentage points (README,"
    " Forecasts)."
)


def errors_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per family and prompting method: mean absolute error of the chosen forecasts and of the naive one
    over the targets with an actual value, and how many intervals held it."""
    known = rows[np.isfinite(rows["actual"].to_numpy(float))]
    summary = []
    for (family, prompt_method), group in known.groupby(["family", "prompt_method"], sort=True):
        unforecastable = group.loc[group["verdict"] != FORECASTABLE, "task"].nunique()
        summary.append(
            {
                "family": family,
                "prompt method": prompt_method,
                "tasks": group["task"].nunique(),
                "unforecastable tasks": unforecastable,
                "targets known": len(group),
                "mean |error|, chosen (points)": 100 * group["error"].abs().mean(),
                "mean |error|, naive (points)": 100 * (group["naive"] - group["actual"]).abs().mean(),
                "intervals holding the actual value": f"{int(group['covered'].sum())} of {len(group)}",
            }
        )
    return pd.DataFrame(summary)


def forecast_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per curve and target, in points."""
    points = rows[["predicted", "lower", "upper", "actual", "error", "backtest_error", "naive"]] * 100
    return pd.DataFrame(
        {
            "family": rows["family"],
            "task": rows["task"],
            "prompt method": rows["prompt_method"],
            "metric": rows["metric"],
            "target": rows["target"],
            "method": rows["method"],
            "forecast [interval]": [
                f"{p:.2f} [{lo:.2f}, {hi:.2f}]"
                for p, lo, hi in zip(points["predicted"], points["lower"], points["upper"])
            ],
            "actual": points["actual"],
            "error": points["error"],
            "backtest error": points["backtest_error"],
            "naive": points["naive"],
            "verdict": [v if v == FORECASTABLE else f"unforecastable ({v})" for v in rows["verdict"]],
        }
    )
