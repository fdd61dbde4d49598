"""The importers' long table read back from a file (`forecast --table`): import-results' CSV or
Parquet, an imported source's Parquet, or one a user edited or another program wrote, checked as the
importers check what they read, so that a bad cell is one line naming it and never a forecast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from emergence import io
from emergence.errors import InputError
from emergence.importers import LOSSES
from emergence.importers.columns import is_fraction

log = logging.getLogger(__name__)

REQUIRED = ("family", "model", "training_tokens", "task", "method", "metric", "value")
NAMES = ("family", "model", "task", "method", "metric")  # cells that may not be empty
# counts, where given: (least value, whole); D may be 0 (a step-0 checkpoint)
COUNTS = {
    "n_params": (1, False),
    "n_params_non_embedding": (1, False),
    "training_tokens": (0, False),
    "n_items": (1, True),
    "step": (0, True),
}
# one row per result: a checkpoint (model, revision, step, D) x task x method x metric, of the columns present
RESULT = ("family", "model", "revision", "step", "training_tokens", "task", "method", "metric")


def read_long_table(path: Path) -> pd.DataFrame:
    """The long table at `path`, checked (`checked`); N falls back to `n_params`. A `.parquet` name is
    read as Parquet (`read_parquet`), anything else as a CSV.

    The file is the user's (or a finished import job's) input, never this stage's output: one that cannot
    be read is an InputError and stays in place (a CorruptStageFile would have `emergence`'s main remove
    it). Not `importers.table.read_frame`: that reads every cell as text for its importer to parse."""
    parquet = path.suffix.lower() == ".parquet"
    try:
        table = read_parquet(path) if parquet else pd.read_csv(path)
    except (OSError, ValueError) as err:  # pandas' parser errors and a UnicodeDecodeError are ValueErrors
        why = str(err).removeprefix(f"{path}: ").splitlines()[0]
        raise InputError(f"{path}: cannot be read as a {'Parquet' if parquet else 'CSV'} table ({why})") from None
    if "n_params_non_embedding" not in table and "n_params" in table:
        table["n_params_non_embedding"] = table["n_params"]
    missing = [c for c in (*REQUIRED, "n_params_non_embedding") if c not in table]
    if missing:
        raise InputError(f"{path}: no column {', '.join(missing)} (write it with `emergence import-results`)")
    if "stderr" not in table:
        table["stderr"] = float("nan")
    return checked(table, path, *(("row", 1) if parquet else ("line", 2)))


def read_parquet(path: Path) -> pd.DataFrame:
    """A Parquet long table: import-results' or an imported source's (`io.SCHEMAS["imported"]`, its pages'
    checksums verified), else one another program wrote (pandas' `large_string`, `int64` columns) read
    column by column as a CSV is. OSError or ValueError when it is no Parquet file."""
    try:
        return io.read_table(path, "imported")
    except io.CorruptStageFile as err:
        raise ValueError(str(err)) from None
    except io.StageFileError:  # readable, in another schema: its columns are checked as a CSV's
        return pd.read_parquet(path)


def checked(table: pd.DataFrame, path: Path, unit: str, first: int) -> pd.DataFrame:
    """`table` with its numbers as floats, checked, naming the first bad cell by its `unit` (line or row,
    the first numbered `first`): an empty name (family, model, task, method, metric); a number column
    of dates or booleans; a number that is text or infinite, a fraction metric outside [0, 1], a loss or
    stderr below 0, N below 1, D below 0, n_items or step not whole; one result given twice; a model
    with two sizes. A result without a value (a missing cell the importer kept) is left out, with a
    warning."""

    def fail(i: int, why: str) -> NoReturn:
        raise InputError(f"{path}: {unit} {i + first}: {why}")

    for name in NAMES:
        blank = table[name].isna() | (table[name].astype(str).str.strip() == "")
        if blank.any():
            fail(int(np.flatnonzero(blank.to_numpy())[0]), f"empty {name!r}")
    numbers = {}
    for column in ("value", "stderr", *COUNTS):
        if column in table:
            if table[column].dtype.kind in "mMb":
                raise InputError(f"{path}: column {column!r} holds {table[column].dtype}, not numbers")
            numbers[column] = pd.to_numeric(table[column], errors="coerce")
    value, stderr = numbers["value"], numbers["stderr"]
    checks = [  # (bad rows, column, why); text first: a bad cell reads as NaN in every later check
        *(
            (number.isna() & table[c].notna() & (table[c].astype(str).str.strip() != ""), c, "is not a number")
            for c, number in numbers.items()
        ),
        (np.isinf(value), "value", "is not a finite number"),
        (
            table["metric"].map(is_fraction) & ~value.between(0, 1) & value.notna(),
            "value",
            "is not a fraction in [0, 1]",
        ),
        (table["metric"].isin(LOSSES) & (value < 0), "value", "is a loss below 0"),
        (~(stderr >= 0) & stderr.notna(), "stderr", "is not a number >= 0"),
        (np.isinf(stderr), "stderr", "is not a finite number"),
    ]
    for column, (least, whole) in COUNTS.items():
        if column in numbers:
            count = numbers[column]
            wrong = ~((count >= least) & np.isfinite(count) & (count.mod(1) == 0 if whole else True))
            kind = "a whole number" if whole else "a finite count"
            checks.append((wrong & count.notna(), column, f"is not {kind} >= {least}"))
    for bad, column, why in checks:
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            cell = table[column].iloc[i]
            shown = repr(float(cell)) if isinstance(cell, (int, float, np.number)) else repr(cell)
            row = table.iloc[i]
            fail(i, f"model {row['model']!r}, {row['task']} {row['metric']} {column} = {shown} {why}")
    table = table.assign(**numbers)
    refuse_second_results(table, fail)
    empty = table["value"].isna()
    if empty.any():
        models = ", ".join(sorted(set(table.loc[empty, "model"].astype(str))))
        log.warning(f"{path}: {int(empty.sum())} results without a value left out (models {models})")
    return table[~empty].reset_index(drop=True)


def refuse_second_results(table: pd.DataFrame, fail: Callable[[int, str], NoReturn]) -> None:
    """`fail(i, why)` on the second of two rows giving one result (a repeated or pasted row: the forecast
    would take either), and on the first row that gives a model a second N."""
    result = [c for c in RESULT if c in table]
    repeated = np.flatnonzero(table.duplicated(result).to_numpy())
    if len(repeated):
        i = int(repeated[0])
        row = table.iloc[i]
        fail(i, f"model {row['model']!r}, {row['task']} {row['method']} {row['metric']} given a second time; keep one")
    known = table[table["n_params_non_embedding"].notna()]
    first = known.groupby("model", sort=False)["n_params_non_embedding"].transform("first")
    second = np.flatnonzero(first.ne(known["n_params_non_embedding"]).to_numpy())
    if len(second):
        i = int(known.index[second[0]])
        n, before = table.loc[i, "n_params_non_embedding"], first.loc[i]
        fail(i, f"model {table.loc[i, 'model']!r} has N = {n:g} here and {before:g} above: one size per model")
