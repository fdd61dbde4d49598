"""Imported results as a sweep: selection, curves over training, checkpoint manifests and a summary.

An imported long table (`emergence.importers.COLUMNS`) holds every checkpoint a suite published. Two
kinds of curve come out of it: over sizes (each family's final checkpoints, `analyse_imported`) and
over training (one model's checkpoints in order of training tokens D, `analyse_training`). A curve
over training is fitted along C = 6ND, which for one model is D times a constant: breakthroughness
depends only on the order of the points and a sigmoid's slope is per decade of x, so both are the same
along C and along D; a midpoint is log10 C, so its D is 10^midpoint / 6N (N non-embedding).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from typing import TypeVar

import numpy as np
import pandas as pd

from emergence.analysis.curve import COLUMNS, Settings
from emergence.analysis.imported import analyse_csv, is_project_metric
from emergence.errors import InputError

log = logging.getLogger(__name__)
T = TypeVar("T")

CURVES = ("sizes", "training")  # the two kinds of curve an imported table gives
SUMMARY_COLUMNS = ["family", "model", "n_params", "task", "method", "digits", "metric", "mean", "sem", "items"]


def select(long: pd.DataFrame, filters: dict) -> pd.DataFrame:
    """The rows a `results:` entry keeps: `families`, `tasks`, `num_fewshot` (lists) and `checkpoints`
    (`all`, or `final`: each model's final checkpoint only). An empty selection is an error naming the
    filter, not an empty sweep."""
    kept = long
    for key, column in (("families", "family"), ("tasks", "task"), ("num_fewshot", "num_fewshot")):
        if filters.get(key) is not None:
            wanted = list(filters[key])
            unknown = sorted(set(map(str, wanted)) - set(map(str, kept[column].unique())))
            if unknown:
                log.warning(f"{key}: {', '.join(unknown)} not in the imported results; nothing kept for them")
            kept = kept[kept[column].isin(wanted)]
            if kept.empty:
                raise InputError(f"{key}: {wanted} keeps no imported result (the results hold {known(long, column)})")
    if filters.get("checkpoints", "all") == "final":
        kept = kept[kept["final_checkpoint"].astype(bool)]
    return kept.reset_index(drop=True)


def known(table: pd.DataFrame, column: str) -> str:
    values = sorted(map(str, table[column].unique()))
    return ", ".join(values[:12]) + (f" and {len(values) - 12} more" if len(values) > 12 else "")


def checkpoint_name(model: str, step: object) -> str:
    """A checkpoint's name in the fits table: `pythia-410m@step33000`, or the model for its only checkpoint."""
    return model if pd.isna(step) else f"{model}@step{int(step)}"  # type: ignore[call-overload]


def point_name(model: str, step: object, final: object) -> str:
    """A checkpoint's name in fits and manifests: the final one is the model itself (as in curves over sizes)."""
    return model if bool(final) else checkpoint_name(model, step)


def analyse_training(long: pd.DataFrame, settings: Settings, workers: int = 1) -> pd.DataFrame:
    """The "fits" table of curves over training: per (model, task, method), every checkpoint with D > 0
    in order of D, along C = 6ND (see the module docstring). The curve's `family` is the model, each
    point's `model` its checkpoint (`checkpoint_name`). Step 0 (D = 0) has no place on a log axis and is
    left out, with a line saying so; a model with one checkpoint has no curve over training. The curves
    are fitted in `workers` processes."""
    table = long[long["metric"].map(is_project_metric)]
    untrained = table["training_tokens"] <= 0
    if untrained.any():
        log.info(
            f"{table.loc[untrained, ['model', 'step']].drop_duplicates().shape[0]} checkpoints at D = 0 (step 0)"
            " left out of curves over training: no place on a log axis"
        )
    table = table[~untrained]
    table = table.assign(
        checkpoint=[point_name(*row) for row in table[["model", "step", "final_checkpoint"]].itertuples(index=False)]
    )
    wide = (
        table.set_index(["model", "checkpoint", "task", "method", "training_flops", "training_tokens", "metric"])[
            "value"
        ]
        .unstack("metric")
        .reset_index()
    )
    wide = plain_strings(wide)
    items = table.groupby(["model", "task", "method"])["n_items"].min()
    along = replace(settings, x_axes=("training_flops",))
    curves = []
    for (model, task, method), curve in wide.groupby(["model", "task", "method"], sort=True):
        if len(curve) < 2:
            continue
        points = curve.drop(columns=["model", "method"]).rename(columns={"checkpoint": "model"}).assign(family=model)
        points = points.dropna(axis=1, how="all")
        if np.isfinite(items[model, task, method]):
            points = points.assign(n_items=items[model, task, method])
        curves.append((points, along, method))
    if not curves:
        log.info("no model has two checkpoints with D > 0: no curves over training")
    out = in_processes(analyse_points, curves, workers)
    return pd.concat(out, ignore_index=True)[COLUMNS] if out else pd.DataFrame(columns=COLUMNS)


def plain_strings(table: pd.DataFrame) -> pd.DataFrame:
    """String columns as Python objects: pandas' Arrow strings make each of a thousand small pivots and
    groupings 40 % slower (same values, measured on the Pythia curves over training)."""
    return table.astype({c: object for c in table.columns if pd.api.types.is_string_dtype(table[c])})


def analyse_points(points: pd.DataFrame, settings: Settings, method: str) -> pd.DataFrame:
    return analyse_csv(points, settings).assign(method=method)


def in_processes(function: Callable[..., T], calls: list[tuple], workers: int = 1) -> list[T]:
    """`function(*args)` for every args of `calls`, in order, over `workers` processes (one: in this one).
    Each call is independent and seeded by its own key, so the results do not depend on `workers`."""
    if workers <= 1 or len(calls) < 2:
        return [function(*args) for args in calls]
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        return list(pool.map(function, *zip(*calls), chunksize=max(1, len(calls) // (4 * workers))))


def checkpoint_manifests(long: pd.DataFrame, source: str) -> list[dict]:
    """One manifest per checkpoint (the fields figures and the report read from a model's manifest):
    the final checkpoint under the model's name, the others as `checkpoint_name`, with their N, D, C."""
    columns = ["family", "model", "step", "final_checkpoint", "n_params", "n_params_non_embedding",
               "training_tokens", "training_flops", "source_model"]  # fmt: skip
    checkpoints = long[columns].drop_duplicates(["model", "step"]).sort_values(["family", "n_params", "model", "step"])
    manifests = []
    for row in checkpoints.itertuples(index=False):
        final = bool(row.final_checkpoint)
        manifests.append(
            {
                "model": point_name(row.model, row.step, final),
                "family": row.family,
                "source": f"imported: {source}",
                "sha": "",
                "path": row.source_model,
                "step": None if pd.isna(row.step) else int(row.step),
                "final_checkpoint": final,
                "n_params": int(row.n_params),
                "n_params_non_embedding": int(row.n_params_non_embedding),
                "training_tokens": int(row.training_tokens),
                "training_flops": float(row.training_flops),
            }
        )
    return manifests


def summary_of(long: pd.DataFrame) -> pd.DataFrame:
    """The report's per-model means of imported results: each model's final checkpoint, the value the
    file gives (`mean`), its standard error (`sem`) and the items it is over, where known."""
    final = long[long["final_checkpoint"].astype(bool)]
    summary = final.assign(digits="all", mean=final["value"], sem=final["stderr"], items=final["n_items"])
    return summary[SUMMARY_COLUMNS].sort_values(["n_params", "family", "model", "task", "method", "metric"])
