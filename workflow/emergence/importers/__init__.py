"""Importers: results made elsewhere (evaluation-harness outputs, published tables) as one long table.

Each format is one class in one module of this package, registered by name (`--format`). An
importer reads a file, or every matching file under a folder, into rows of (model, checkpoint, task,
method, metric, value, stderr); this module adds each checkpoint's scale from the model registry
(`importers.metadata`) and checks what every format must satisfy. Metric names are the project's
(`scoring.metrics`) where a project metric computes the same quantity; `source_metric` keeps the name
the file used. Unknown metric keys are reported once each and skipped; a malformed file stops with one
line naming the file and the key.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sized
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from emergence.errors import InputError
from emergence.importers.metadata import REGISTRY, scale_of
from emergence.registry import Registry, load_package

log = logging.getLogger(__name__)

# One row per (file, model, checkpoint, task, num_fewshot, metric); `file` names where it came from.
COLUMNS = [
    "family",
    "model",
    "source_model",
    "revision",
    "step",
    "final_checkpoint",
    "task",
    "num_fewshot",
    "method",
    "metric",
    "source_metric",
    "value",
    "stderr",
    "source_value",
    "n_items",
    "n_params",
    "n_params_non_embedding",
    "training_tokens",
    "training_flops",
    "file",
]


class ResultsImporter:
    """One results format. Subclasses set `name` and `pattern` (the files of a folder it reads) and
    override `rows`: one file's rows (COLUMNS up to `file`, without the scale columns) and the metric
    keys it skipped."""

    name: ClassVar[str]
    pattern: ClassVar[str]
    # the per-item files beside the results (lm-eval's samples), for a format whose `items` works; known
    # from the format alone, so a sweep's DAG can name the per-item table at parse time
    item_pattern: ClassVar[str | None] = None

    def rows(self, path: Path) -> tuple[list[dict], set[str]]:
        raise NotImplementedError

    def files(self, path: Path) -> list[Path]:
        """A file, or every file matching `pattern` under a folder (sorted); InputError for none."""
        files = [path] if path.is_file() else sorted(p for p in path.rglob(self.pattern) if p.is_file())
        if not files:
            raise InputError(f"{path}: no {self.pattern} results files ({self.name}) found")
        return files

    def read(self, path: Path, models: Path = REGISTRY) -> pd.DataFrame:
        """The long table of a file, or of every file matching `pattern` under a folder (sorted)."""
        files = self.files(path)
        rows: list[dict] = []
        skipped: Counter[str] = Counter()
        for file in files:
            file_rows, unknown = self.rows(file)
            refuse_empty(file_rows, file, unknown)
            rows += file_rows
            skipped.update(unknown)
        for key, count in sorted(skipped.items()):
            log.warning(f"{self.name}: metric {key!r} has no project name; skipped in {count} files")
        table = pd.DataFrame(rows)
        log.info(f"{self.name}: {len(files)} files, {len(table)} rows")
        return finish(table, models)

    def items(self, path: Path, models: Path = REGISTRY, tokenizer: str | None = None) -> pd.DataFrame:
        """Per-item scores (io.SCHEMAS["imported_scores"]), for formats that keep items."""
        raise InputError(f"--samples-out: the {self.name} format has no per-item results")


def finish(table: pd.DataFrame, models: Path) -> pd.DataFrame:
    """The long table with each checkpoint's scale (N, D, C) and family, checked for percentages."""
    refuse_impossible(table)
    refuse_percentages(table)
    refuse_duplicates(table)
    checkpoints = table[["source_model", "revision"]].drop_duplicates()
    scales = []
    for model, revision in checkpoints.itertuples(index=False):
        try:
            scales.append(scale_of(model, revision or None, models))
        except InputError as err:  # named with a file of the model: a folder may hold hundreds
            files = table.loc[table["source_model"] == model, "file"]
            raise InputError(
                f"{files.iloc[0]}: {err}" + (f" (and {len(set(files)) - 1} more files)" if len(set(files)) > 1 else "")
            ) from None
    scale = checkpoints.assign(
        family=[s.family for s in scales],
        model=[s.model for s in scales],
        step=pd.array([s.step for s in scales], dtype="Int64"),
        final_checkpoint=[s.final for s in scales],
        n_params=[s.n_params for s in scales],
        n_params_non_embedding=[s.n_params_non_embedding for s in scales],
        training_tokens=[s.training_tokens for s in scales],
        training_flops=[s.training_flops for s in scales],
    )
    merged = table.merge(scale, on=["source_model", "revision"], how="left", validate="many_to_one")
    return merged[COLUMNS]


def refuse_empty(rows: Sized, source: object, skipped: Iterable[str] = ()) -> None:
    """A file that yields no rows is refused, naming the metrics it skipped: an empty import would
    pass every later check and end in an empty fits table that looks like a finished one."""
    if not len(rows):
        names = ", ".join(sorted(skipped))
        raise InputError(f"{source}: no results to import" + (f" (skipped: {names})" if names else ""))


# Metrics that are losses (nats or bits of the target): a negative value is impossible.
LOSSES = ("target_nll", "bits_per_byte")


def refuse_impossible(table: pd.DataFrame) -> None:
    """An infinite value, an infinite or negative standard error, or a negative loss is refused,
    naming the file, task and key: each is a failed or mistyped measurement, never a result to fit."""
    value, stderr = table["value"].astype(float), table["stderr"].astype(float)
    checks = (
        (np.isinf(value), "value", "is not a finite number"),
        (np.isinf(stderr) | (stderr < 0), "stderr", "is not a finite number >= 0"),
        (table["metric"].isin(LOSSES) & (value < 0), "value", "is a loss below 0"),
    )
    for bad, column, why in checks:
        if bad.any():
            row = table[bad.to_numpy()].iloc[0]
            place = f"{row['line']}: " if "line" in row else ""
            raise InputError(
                f"{row['file']}: {place}model {row['source_model']!r}, {row['task']} {row['source_metric']}"
                f" {column} = {float(row[column])!r} {why}"
            )


def refuse_percentages(table: pd.DataFrame) -> None:
    """A fraction metric above 1 was written as a percentage: refused, naming the file, task and key
    (fitting 70.5 as if it were a fraction would give nonsense without any error)."""
    from emergence.importers.columns import is_fraction  # a module that imports this package's importers

    bad = table[table["metric"].map(is_fraction) & ~table["value"].between(0.0, 1.0) & table["value"].notna()]
    if len(bad):
        row = bad.iloc[0]
        raise InputError(
            f"{row['file']}: {row['task']} {row['source_metric']} = {float(row['value'])!r} is not a fraction in [0, 1]"
            " (a percentage? give accuracies as fractions)"
        )


def refuse_duplicates(table: pd.DataFrame) -> None:
    """The same checkpoint, task, method and metric twice (two files of one run) is refused: keeping
    either silently would make the result depend on the order the files were read in."""
    keys = ["source_model", "revision", "task", "num_fewshot", "source_metric"]
    repeated = table[table.duplicated(keys, keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        files = sorted(set(repeated.loc[(repeated[keys] == first[keys]).all(axis=1), "file"]))
        raise InputError(
            f"{first['source_model']} {first['revision'] or 'main'}, task {first['task']},"
            f" {first['num_fewshot']}-shot {first['source_metric']} is given more than once (in {', '.join(files)})"
        )


def method_of(num_fewshot: int) -> str:
    """The project's method name of a number of in-context examples (`zero_shot`, `few_shot_5`)."""
    return "zero_shot" if num_fewshot == 0 else f"few_shot_{num_fewshot}"


def items_from_stderr(fraction: float, stderr: float | None) -> float:
    """How many items a mean of 0/1 scores is over, from its standard error: lm-evaluation-harness
    writes the sample standard deviation over sqrt(n), so stderr^2 = p(1 - p) / (n - 1) and
    n = p(1 - p) / stderr^2 + 1. NaN where that is not a whole number (another stderr) or p is 0 or 1."""
    if stderr is None or not stderr > 0 or not 0 < fraction < 1:
        return np.nan
    n = fraction * (1 - fraction) / stderr**2 + 1
    return float(round(n)) if abs(n - round(n)) < 0.01 else np.nan


IMPORTERS: Registry[ResultsImporter] = Registry("results format")
results_importer = IMPORTERS.register_class


def import_results(fmt: str, path: str | Path, models: str | Path = REGISTRY) -> pd.DataFrame:
    """The long table of results in a registered format (see COLUMNS)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    return IMPORTERS.find(fmt, "--format").read(path, Path(models))


def import_items(
    fmt: str, path: str | Path, models: str | Path = REGISTRY, tokenizer: str | None = None
) -> pd.DataFrame:
    """The per-item scores of results in a registered format that keeps items (lm-eval 0.4 samples)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    return IMPORTERS.find(fmt, "--format").items(path, Path(models), tokenizer)


load_package(__name__, __path__)
