"""The forecast stage: results in, the `forecasts` table out (the `emergence forecast` subcommand calls `run`).

Results are the importers' long table (`importers.COLUMNS`), read from a results format (`--format` and
`--path`, e.g. `olmo_ladder` or `lm_eval_0.3`) or from a CSV that `emergence import-results` wrote.
Targets are model names of that table; the OLMo ladder's default targets are the models `final.json`
marks for evaluation; with `hold_out="largest"` (a sweep's own models, `forecast.sweep`) they are each
family's largest size, and a sweep none of whose families has enough sizes gets an empty table.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from emergence import io
from emergence.errors import InputError
from emergence.forecast.backtest import forecast_ladder
from emergence.forecast.ladder import DEFAULT_METRICS, Settings, build_ladders
from emergence.forecast.sweep import largest_models

log = logging.getLogger(__name__)

ORDER = ["family", "task", "prompt_method", "holdout", "target", "method"]


def load_results(fmt: str | None, path: str | Path | None, table: str | Path | None) -> tuple[pd.DataFrame, list]:
    """The long table and its default targets (empty unless the format names them). One source only:
    a table and a format given together would leave one of them unread."""
    from emergence.importers import import_results
    from emergence.importers.long_table import read_long_table

    if table is not None and (fmt is not None or path is not None):
        raise InputError("forecast: give either --table or --format and --path, not both")
    if table is not None:
        return read_long_table(Path(table)), []
    if fmt is None or path is None:
        raise InputError("forecast: give --table, or --format and --path")
    results = import_results(fmt, path)
    if fmt == "olmo_ladder":
        from emergence.importers.olmo_ladder import targets

        return results, targets(path)
    return results, []


def parse_planned(values: list[str] | None) -> list[tuple[str, float, float]]:
    """`--predict NAME:N:D` values (a model not trained: N non-embedding parameters, D tokens), N and D
    written and checked as the table importer reads sizes (`importers.columns.parse_count`: `3e10`,
    `30B`, `6T`; counts of at least 1)."""
    from emergence.importers.columns import parse_count

    planned: list[tuple[str, float, float]] = []
    for value in values or []:
        name, *numbers = value.split(":")
        if len(numbers) != 2:
            raise InputError(f"--predict {value!r}: expected NAME:N:D, e.g. 70B:70B:1.4T or 70B:7e10:1.4e12")
        where = f"--predict {value!r}"
        n, d = (parse_count(x, where, size) for x, size in zip(numbers, ("n_params_non_embedding", "training_tokens")))
        if not (name and n < math.inf and d < math.inf):  # NaN (empty) compares false too
            raise InputError(f"{where}: expected a name and finite N and D")
        if name in [p[0] for p in planned]:
            raise InputError(f"--predict {value!r}: a second model named {name}")
        planned.append((name, n, d))
    return planned


def run(
    results: pd.DataFrame,
    targets: list[str],
    settings: Settings,
    tasks: list[str] | None = None,
    prompt_method: str | None = None,
    planned: Sequence[tuple[str, float, float]] = (),
    hold_out: str | None = None,
) -> pd.DataFrame:
    """The `forecasts` table (io.SCHEMAS["forecasts"]) of every curve with a target, sorted. `hold_out`
    "largest": without `targets`, each family's largest size is the target (`sweep.largest_models`),
    and no curve to forecast gives an empty table (with a log line) instead of an InputError."""
    if hold_out not in (None, "largest"):
        raise InputError(f"forecast --hold-out: {hold_out!r} is not a choice (largest)")
    if hold_out and not targets:
        targets = largest_models(results)
    if not targets and not planned:
        raise InputError("forecast: no --targets (model names of the results) nor --predict NAME:N:D given")
    check_methods(settings.methods)
    both = sorted(set(targets) & {name for name, *_ in planned or []})
    if both:
        raise InputError(f"forecast: {', '.join(both)} is both a target and a model to --predict: rename the latter")
    taken = sorted({name for name, *_ in planned or []} & set(results["model"].astype(str)))
    if taken:
        raise InputError(
            f"forecast --predict: {', '.join(taken)} is a model of the results: give the new one another name"
        )
    check_filters(results, settings, tasks, prompt_method)
    if prompt_method is not None:
        results = results[results["method"] == prompt_method]
    ladders = build_ladders(results, targets, settings, tasks, planned)
    if not ladders and hold_out:
        log.info("forecast: no family has the sizes and metrics to forecast; the table is empty")
        return pd.DataFrame({f.name: pd.Series(dtype=object) for f in io.SCHEMAS["forecasts"]})
    if not ladders:
        raise InputError(f"forecast: no curve has the targets {', '.join(targets)} and a metric to forecast")
    table = pd.concat([forecast_ladder(ladder) for ladder in ladders], ignore_index=True)
    aside = table[(table["holdout"] == 0) & (table["status"] != "ok")].drop_duplicates(["target", "status"])
    for row in aside.itertuples():
        log.warning(f"forecast: target {row.target} (N = {row.n_params:.3g}) is {row.status}; see `status`")
    chosen = table[table["chosen"] & (table["holdout"] == 0)]
    for row in chosen.itertuples():
        log.info(
            f"forecast {row.family} {row.task} {row.target}: {row.method} {row.predicted:.3f}"
            f" [{row.lower:.3f}, {row.upper:.3f}] ({row.verdict})"
        )
    return table.sort_values(ORDER, kind="stable").reset_index(drop=True)


def check_methods(names: Sequence[str]) -> None:
    """InputError naming a forecast method that is not registered."""
    from emergence.forecast import FORECASTS

    unknown = sorted(set(names) - set(FORECASTS))
    if unknown:
        raise InputError(f"forecast methods: {', '.join(unknown)} unknown (known: {', '.join(sorted(FORECASTS))})")


def check_filters(
    results: pd.DataFrame, settings: Settings, tasks: list[str] | None, prompt_method: str | None
) -> None:
    """InputError naming a filter value that matches no row of the results, with the values it could
    be: a typo must not surface later as a target missing from an empty table or as no curve to forecast.
    Metrics given in the settings are an order of preference (the first a curve has wins), so they are
    refused only when the results have none of them; the default list spans several sources' names."""
    wanted = {"--prompt-method": ("method", [prompt_method] if prompt_method else []), "--tasks": ("task", tasks or [])}
    for flag, (column, values) in wanted.items():
        known = sorted(set(results[column].astype(str)))
        unknown = [v for v in values if v not in known]
        if unknown:
            raise InputError(
                f"forecast {flag}: {', '.join(map(repr, unknown))} matches no results (known: {', '.join(known)})"
            )
    metrics = sorted(set(results["metric"].astype(str)))
    if settings.metrics != DEFAULT_METRICS and not set(settings.metrics) & set(metrics):
        raise InputError(
            f"forecast --settings metrics: none of {', '.join(map(repr, settings.metrics))} is in the results"
            f" (known: {', '.join(metrics)})"
        )
