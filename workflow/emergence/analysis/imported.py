"""Results made elsewhere: a CSV of (model, scale, metric values) through the same curve analysis."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd

from emergence import analysis, fits
from emergence.analysis.curve import COLUMNS, TARGET_NLL, X_LABELS, Settings
from emergence.errors import InputError
from emergence.scoring.metrics import spec

log = logging.getLogger(__name__)


def analyse_csv(table: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The "fits" table for results made elsewhere: a CSV with a row per model (or per model and item).

    Columns: `model`; `n_params` and/or `training_flops`; optionally `family`, `task` and `item`
    (item ids: with them, intervals come from resampling items) or `n_items` (how many items each
    mean is over, for the resolution flag); every other column is a metric, named as in the
    config's metrics list, or `target_nll` for a per-token loss. With `training_tokens` (D) and
    `target_nll`, the Chinchilla form is fitted too, over all rows (point estimate only). `n_items`
    counts per (family, task): each curve's resolution flag uses its own task's smallest count.
    """
    if "model" not in table:
        raise InputError("CSV lacks a 'model' column")
    keys = [column for column in ("family", "task", "model", "item") if column in table]
    repeated = table[table.duplicated(keys, keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise InputError(
            f"CSV lists {' / '.join(f'{k} {first[k]!r}' for k in keys)} {len(repeated)} times (one row each)"
        )
    axes = tuple(axis for axis in settings.x_axes if axis in table)
    if not axes:
        raise InputError(f"CSV needs a scale column: {' or '.join(X_LABELS)}")
    ids = ["model", "family", "task", "item", "n_items", "training_tokens", *X_LABELS]
    metrics = [c for c in table.columns if c not in ids and c != "target_tokens"]
    for metric in metrics:
        if metric != TARGET_NLL:
            spec(metric)
    if not metrics:
        raise InputError("CSV has no metric column")
    wide = table.assign(
        family=table.get("family", "csv"),
        task=table.get("task", "csv"),
        item_id=table["item"].astype(str) if "item" in table else "mean",
        n_params=table.get("n_params", np.nan),
        training_flops=table.get("training_flops", np.nan),
        target_tokens=table.get("target_tokens", 1),
    )
    scores = wide.melt(
        id_vars=["model", "family", "task", "item_id", "n_params", "training_flops", "target_tokens"],
        value_vars=metrics,
        var_name="metric",
    )
    settings = replace(settings, x_axes=axes, bootstrap=settings.bootstrap if "item" in table else 0)
    rows = []
    for (family, task), curve in scores.groupby(["family", "task"], sort=True, dropna=False):
        rows += analysis.analyse_curve(
            curve,
            {"family": family, "task": task, "method": "", "digits": "all"},
            *resolution(table, wide, family, task, settings),
        )[0]
    if {"n_params", "training_tokens", TARGET_NLL} <= set(table.columns):
        rows += chinchilla_rows(table, settings)
    return pd.DataFrame(rows, columns=COLUMNS)


def resolution(
    table: pd.DataFrame, wide: pd.DataFrame, family: str, task: str, settings: Settings
) -> tuple[Settings, int | None]:
    """A curve's settings and how many items each of its means is over: the smallest `n_items` of its
    own rows (one task's), not of the whole file; a mean over an unknown number of items gets no
    resolution flag (resolution_items NaN)."""
    if "item" in table:
        return settings, None
    if "n_items" in table:
        items = table.loc[(wide["family"] == family) & (wide["task"] == task), "n_items"].min()
        if np.isfinite(items):
            return settings, int(items)
    return replace(settings, resolution_items=np.nan), None


SIZE_CURVE = ["family", "task", "method", "model", "n_params", "training_flops", "training_tokens"]


def analyse_imported(long: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The "fits" table of an imported long table (`emergence.importers.COLUMNS`): one curve over sizes
    per (family, task, method), from each model's final checkpoint, through `analyse_csv` one curve at
    a time (so `n_items` is the task's own). Metrics without a project definition (`acc_norm`) stay in
    the table but are not fitted: the analysis needs to know whether a metric is all-or-nothing."""
    final = long[long["final_checkpoint"].astype(bool)]
    metrics = sorted(final["metric"].unique())
    known = [m for m in metrics if is_project_metric(m)]
    for metric in sorted(set(metrics) - set(known)):
        log.warning(f"{metric}: kept in the table, not fitted (no project metric of that name)")
    final = final[final["metric"].isin(known)]
    item = ["item"] if "item" in final else []
    out = []
    for (_, _, method), part in final.groupby(["family", "task", "method"], sort=True):
        part = part.drop(columns=[c for c in SIZE_CURVE[4:] if part[c].isna().all()])  # a scale no model has
        index = [c for c in [*SIZE_CURVE, *item] if c in part and c != "method"]
        table = part.set_index([*index, "metric"])["value"].unstack("metric").reset_index()
        if np.isfinite(part["n_items"].min()):
            table = table.assign(n_items=part["n_items"].min())
        out.append(analyse_csv(table, settings).assign(method=method))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=COLUMNS)


def refuse_nothing_to_fit(long: pd.DataFrame, source: object) -> None:
    """InputError naming the metrics when none of `long` (from `source`) can be fitted: `analyse_imported`
    would write an empty fits table, which looks like a finished analysis."""
    metrics = sorted(long["metric"].unique())
    if metrics and not any(map(is_project_metric, metrics)):
        raise InputError(
            f"{source}: nothing to fit: no project metric is named {', '.join(map(repr, metrics))}"
            " (a metric without a project definition is kept in the imported table, not fitted)"
        )


def verdicts_imported(long: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The "verdicts" table of an imported long table: one verdict per (family, task, method) and
    discontinuous metric, judged from the final checkpoints' means, stderr and n_items."""
    from emergence.analysis.verdicts import imported_verdicts
    from emergence.verdicts import VerdictSettings

    return imported_verdicts(long, settings.x_axes, VerdictSettings(min_models=settings.min_models)).astype(
        {"n_models": "int32", "n_items": "int32"}
    )


def is_project_metric(name: str) -> bool:
    """Whether the analysis knows the metric (a registered or sampled metric, or `target_nll`)."""
    try:
        return name == TARGET_NLL or bool(spec(name))
    except InputError:
        return False


ID_COLUMNS = ("model", "family", "task", "item")  # names, kept as written ("null" and "NA" included)


def read_results_csv(path: str) -> pd.DataFrame:
    """A CSV of results made elsewhere, for `analyse_csv`: names kept exactly as written, numbers parsed.

    pandas would read `NA`, `nan`, `null` or an empty cell as missing, and rows with a missing family or
    task would then vanish from grouped results; here a name is never missing: an empty `family` or
    `task` gets the default ("csv"), an empty `model` is an error naming the line. In other columns an
    empty or NA cell is a missing number (reported as not fittable, never dropped); any other text that
    is not a number is an error naming the column and line.
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in table.columns:
        cells = table[column].str.strip()
        if column in ID_COLUMNS:
            if column == "model" and (cells == "").any():
                raise InputError(f"{path}: line {int((cells == '').to_numpy().argmax()) + 2}: empty 'model'")
            table[column] = table[column].where(cells != "", "csv")
            continue
        missing = cells.str.lower().isin(["", "na", "nan", "n/a", "null", "none"])
        numbers = pd.to_numeric(cells.where(~missing), errors="coerce")
        bad = numbers.isna() & ~missing
        if bad.any():
            line = int(bad.to_numpy().argmax())
            raise InputError(
                f"{path}: column {column!r}, line {line + 2}: {table[column].iloc[line]!r} is not a number"
            )
        table[column] = numbers.astype(float)
    return table


def chinchilla_rows(table: pd.DataFrame, settings: Settings) -> list[dict]:
    """L(N, D) = E + A/N^alpha + B/D^beta over every (N, D, loss) row of a CSV."""
    points = table.groupby(["model", "n_params", "training_tokens"], as_index=False)[TARGET_NLL].mean()
    key = {
        "family": "all",
        "task": "all",
        "method": "",
        "digits": "all",
        "metric": TARGET_NLL,
        "x": "n_params,training_tokens",
        "fit": "chinchilla",
        "model": "",
        "scale": np.nan,
        "versus": "",
        "ci_low": np.nan,
        "ci_high": np.nan,
        "n_models": len(points),
        "n_items": 1,
    }
    if len(points) < 5:
        return [
            {
                **key,
                "parameter": "",
                "value": np.nan,
                "status": f"not fittable: too few (N, D) points ({len(points)} < 5)",
            }
        ]
    fitted = fits.fit_chinchilla(
        points["n_params"].to_numpy(float),
        points["training_tokens"].to_numpy(float),
        points[TARGET_NLL].to_numpy(float),
        settings.huber_delta,
    )
    return [{**key, "parameter": name, "value": value, "status": "ok"} for name, value in fitted.items()]
