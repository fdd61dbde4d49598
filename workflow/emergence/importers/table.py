"""Tables of results (CSV, Parquet), long or wide, as the importers' long table (`importers.COLUMNS`).

Papers, model suites and leaderboards publish results as tables written for people: `Model` rather
than `model`, sizes as `1.4B`, accuracies as percentages, a column per benchmark, and columns no
analysis needs (BLEU, an average). This importer reads them as they are. Its shape is told by the
columns (and logged):

- long: `metric` and `value` columns, a row per model x task x metric (optionally `stderr`, `n_items`);
- one column per metric (`acc`, `acc_norm`, `em`, ...; `<metric>_stderr` beside), a row per model,
  or per model and task with a `task` column;
- one column per benchmark (`PIQA`, or `arc_easy/acc_norm` to name the metric), a row per model; a
  benchmark column's values are accuracies (`acc`) unless its header names the metric.

Headers are matched to the aliases of `importers.columns` (the README's alias table).
`acc` is the project's `multiple_choice_grade`, or `exact_match` for the generation tasks
lm-evaluation-harness scores by greedy match (as `lm_eval_0.3`). Sizes and token counts may carry
K/M/B/T (`0.56B`, `1,400M`). A model without a size in the table gets its scale from the model
registry (`importers.metadata`). Every skipped column is one logged line; every bad cell is one
error line naming the file, column, line and model.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from emergence.errors import InputError
from emergence.importers import (
    COLUMNS,
    ResultsImporter,
    method_of,
    refuse_empty,
    refuse_impossible,
    refuse_percentages,
    results_importer,
)
from emergence.importers.columns import (
    ALIASES,
    METRIC_LOOKUP,
    MISSING,
    PERCENT,
    SIZE_COLUMNS,
    Columns,
    is_fraction,
    metric_of,
    normalise,
    parse_count,
    parse_number,
    percent_of,
)
from emergence.importers.metadata import REGISTRY, registry

log = logging.getLogger(__name__)
SMALLEST_SIZE = 10_000  # a size column with a smaller value is warned about: no language model is that small


def read_frame(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """A CSV (every cell as written: `NA` stays a name) or a Parquet file, as a frame of objects, and
    where each row is (`line 2` of a CSV, `row 1` of a Parquet file). A file separated by tabs or
    semicolons is refused as such (not as a table without a model column). A CSV header that repeats a
    name, or a row with more or fewer fields than the header, is refused naming it: pandas would
    rename the repeat (`acc.1`) or shift the row's cells into other columns."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path).astype(object)
            return frame.where(frame.notna(), ""), [f"row {i + 1}" for i in range(len(frame))]
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            lines, spans, start = [], [], 1
            for row in reader:
                if row:
                    lines.append((start, row))
                    spans.append(reader.line_num)
                start = reader.line_num + 1
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path}: cannot be read as a table ({str(err).splitlines()[0]})") from None
    if not lines:
        raise InputError(f"{path}: empty file (no header)")
    header = lines[0][1]
    other = [name for mark, name in (("\t", "tabs"), (";", "semicolons")) if len(header) == 1 and mark in header[0]]
    if other:  # a decimal comma (0,5) would read as 05 if the file were split anyway
        raise InputError(f"{path}: not comma-separated (its header is one field with {other[0]}); save it as CSV")
    repeated = [name for name in dict.fromkeys(header) if header.count(name) > 1]
    if repeated:
        raise InputError(f"{path}: the header names column {repeated[0]!r} {header.count(repeated[0])} times; keep one")
    for (line, row), end in zip(lines, spans):
        if end != line or any("\n" in cell or "\r" in cell for cell in row):  # an open quote reads on to the end
            raise InputError(f"{path}: line {line}: a quoted field runs on to line {end} (a quote left open?)")
    for line, row in lines[1:]:
        if len(row) != len(header):
            raise InputError(f"{path}: line {line} has {len(row)} fields, the header {len(header)}")
    frame = pd.DataFrame([row for _, row in lines[1:]], columns=header, dtype=object)
    return frame, [f"line {line}" for line, _ in lines[1:]]


def id_values(frame: pd.DataFrame, columns: Columns, where: list[str], default: str) -> pd.DataFrame:
    """Per row: where it is, the model as written, family, task, item, revision, num_fewshot, and the
    sizes and `n_items` as numbers (NaN where not given)."""
    header = columns.ids
    if "model" not in header:
        raise InputError(
            f"{columns.path}: no model column (name it one of: {', '.join(ALIASES['model'])});"
            f" its columns are {', '.join(map(str, frame.columns))}"
        )
    text = {n: frame[h].astype(str).str.strip().to_numpy() for n, h in header.items()}
    empty = np.flatnonzero(text["model"] == "")
    if len(empty):
        raise InputError(f"{columns.path}: {where[empty[0]]}: empty {header['model']!r}")
    blank = np.full(len(frame), "", dtype=object)
    ids = pd.DataFrame({"where": where, "source_model": text["model"], "item": text.get("item", blank)})
    for name in ("family", "task"):
        ids[name] = np.where(text.get(name, blank) == "", default, text.get(name, blank))
    revision, step, step_column = text.get("revision", blank), text.get("step", blank), header.get("step")
    ids["revision"] = [
        r or (f"step{int(parse_count(s, f'{columns.path}: column {step_column!r}, {w}', 'step'))}" if s else "")
        for r, s, w in zip(revision, step, where)
    ]
    for name in (*SIZE_COLUMNS, "n_items", "num_fewshot"):
        cells = frame[header[name]] if name in header else blank
        unit = columns.units.get(name, "")
        ids[name] = [
            parse_count(cell, f"{columns.path}: model {m!r}, column {header.get(name)!r}, {w}", name, unit)
            for cell, w, m in zip(cells, where, ids["source_model"])
        ]
        smallest = ids[name].min()
        if name in SIZE_COLUMNS and smallest < SMALLEST_SIZE:  # NaN (no such column) compares false
            log.warning(
                f"{columns.path}: column {header[name]!r}: the smallest {name} is {smallest:g}, a count in other"
                f" units? (write 1.4B, or give the column its unit: '{header[name]} (B)')"
            )
    return ids


def skip_text_columns(frame: pd.DataFrame, columns: Columns) -> None:
    """In a table of benchmark columns, a column without a single number (a licence, a link, notes) is
    no benchmark: skipped, said so. A column with some numbers keeps them, and its text is an error."""
    if columns.shape != "one column per benchmark":
        return
    for header in list(columns.results):
        cells = pd.Series(frame[header], dtype=object).astype(str).str.strip().str.rstrip("%")
        filled = cells[~cells.str.lower().isin(MISSING)]
        if len(filled) and pd.to_numeric(filled.str.replace(",", ""), errors="coerce").isna().all():
            columns.skipped[header] = "text, not numbers"
            del columns.results[header]


def result_cells(frame: pd.DataFrame, columns: Columns, ids: pd.DataFrame) -> pd.DataFrame:
    """One row per result cell: `row` (of the table), task, source_metric, `column` (its header), and
    the raw `value`, `stderr` and per-benchmark `n_items` cells (None where the table has none)."""
    parts = []
    if columns.shape == "long":
        keys = [METRIC_LOOKUP.get(normalise(m)) for m in frame[columns.ids["metric"]]]
        named = frame[columns.ids["metric"]].astype(str).str.strip()
        for name in sorted(set(named[[k is None for k in keys]])):
            count = int((named == name).sum())
            log.warning(f"{columns.path}: metric {name!r} ({count} rows) has no project metric; skipped")
            columns.unknown.append(f"metric {name!r}")
        stderr = frame[columns.ids["stderr"]] if "stderr" in columns.ids else None
        parts.append(
            pd.DataFrame(
                {
                    "row": range(len(frame)),
                    "task": ids["task"],
                    "source_metric": keys,
                    "column": columns.ids["value"],
                    "value": frame[columns.ids["value"]],
                    "stderr": stderr,
                    "n_items": None,
                }
            ).dropna(subset=["source_metric"])
        )
    else:
        by_field = {(task, key, field): header for header, (task, key, field) in columns.results.items()}
        for (task, key, field), header in by_field.items():
            if field != "value":
                continue
            stderr, items = by_field.get((task, key, "stderr")), by_field.get((task, "", "n_items"))
            parts.append(
                pd.DataFrame(
                    {
                        "row": range(len(frame)),
                        "task": ids["task"] if task is None else task,
                        "source_metric": key,
                        "column": header,
                        "value": frame[header],
                        "stderr": frame[stderr] if stderr else None,
                        "n_items": frame[items] if items else None,
                    }
                )
            )
    if not parts:
        raise InputError(
            f"{columns.path}: no result column (a metric such as acc, or a benchmark); see the README's alias table"
        )
    return pd.concat(parts, ignore_index=True)


def parsed(cells: pd.DataFrame, ids: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The cells as numbers in the project metric's units (`ppl` -> ln ppl, its stderr by the delta
    method), `percent_cell` where a value was written with %. InputError for a cell that is no number."""
    where = [
        f"{path}: model {ids['source_model'].iloc[r]!r}, column {c!r}, {ids['where'].iloc[r]}"
        for r, c in zip(cells["row"], cells["column"])
    ]
    values = [parse_number(v, w) for v, w in zip(cells["value"], where)]
    stderr = [
        parse_number(v, f"{w}, its stderr")[0] if v is not None else math.nan for v, w in zip(cells["stderr"], where)
    ]
    items = [parse_count(v, w, "n_items") if v is not None else math.nan for v, w in zip(cells["n_items"], where)]
    out = cells.assign(
        where=where,
        value=[v for v, _ in values],
        percent_cell=[p for _, p in values],
        stderr=stderr,
        n_items=items,
        source_value=[float(Decimal(repr(v)) * 100) if p else v for v, p in values],  # as written: 12.5 for 12.5%
    )
    out["metric"] = [metric_of(t, k) for t, k in zip(out["task"], out["source_metric"])]
    ppl = (out["source_metric"] == "ppl").to_numpy()
    if (out.loc[ppl, "value"] <= 0).any():
        raise InputError(f"{out['where'][ppl & (out['value'] <= 0).to_numpy()].iloc[0]}: a perplexity must be positive")
    out.loc[ppl, "stderr"] = out.loc[ppl, "stderr"] / out.loc[ppl, "value"]
    out.loc[ppl, "value"] = np.log(out.loc[ppl, "value"].astype(float))
    return out


def convert_percentages(cells: pd.DataFrame, path: Path, percent: str) -> pd.DataFrame:
    """Fraction metrics written as percentages, divided by 100, one logged line per column.

    `auto` decides per file: no fraction column above 1, fractions; every fraction column with a
    value above 1 (columns of zeros aside), percentages; some columns above 1 and others in (0, 1],
    refused (a column of small percentages and one of fractions look alike), as is a column with
    cells written with % and others at most 1 without. `yes`/`no` say it."""
    fraction = cells["metric"].map(is_fraction)
    fractions = cells[fraction & ~cells["percent_cell"]]
    top = fractions.groupby("column", sort=True)["value"].max()
    above, below = top[top > 1], top[(top > 0) & (top <= 1)]
    marked = below.index.intersection(cells.loc[fraction & cells["percent_cell"], "column"].unique())
    if percent == "auto" and len(marked):  # `59%` beside `0.7`: 70 % or 0.7 %?
        column = marked[0]
        written = cells[(cells["column"] == column) & cells["percent_cell"]].iloc[0]
        raise InputError(
            f"{written['where']}: {written['source_value']:g}% beside cells of the column without % (at most"
            f" {below[column]:g}): fractions or percentages? Write them alike, or say --percent yes or no"
        )
    if percent == "auto" and len(above) and len(below):
        raise InputError(
            f"{path}: column {above.index[0]!r} looks like percentages (up to {above.iloc[0]:g}) but column"
            f" {below.index[0]!r} like fractions (at most {below.iloc[0]:g}); say which: --percent yes or no"
        )
    convert = list(top.index) if percent == "yes" or (percent == "auto" and len(above)) else []
    for column in convert:
        log.warning(f"{path}: column {column!r} read as percentages (values up to {top[column]:g}), divided by 100")
    scale = cells["column"].isin(convert) & cells["metric"].map(is_fraction) & ~cells["percent_cell"]
    for name in ("value", "stderr"):
        cells.loc[scale, name] = cells.loc[scale, name].map(percent_of)
    bad = cells[cells["metric"].map(is_fraction) & ~cells["value"].between(0, 1) & cells["value"].notna()]
    if len(bad):
        row = bad.iloc[0]
        written = f"{row['source_value']:g}{'%' if row['percent_cell'] else ''}"  # as in the table: 120%
        raise InputError(f"{row['where']}: {written} is not a fraction in [0, 1] nor a percentage in [0, 100]")
    return cells


def read_one(path: Path, percent: str) -> tuple[pd.DataFrame, str]:
    """One file's rows (COLUMNS without the scale columns, plus `line` and `item`, and the table's own
    sizes) and a line saying its shape; each skipped header is logged once with why."""
    frame, where = read_frame(path)
    columns = Columns(path, frame.columns)
    ids = id_values(frame, columns, where, path.suffix.lower().lstrip(".") or "table")
    skip_text_columns(frame, columns)
    for header, why in columns.skipped.items():
        log.warning(f"{path}: column {header!r} skipped: {why}")
    cells = convert_percentages(parsed(result_cells(frame, columns, ids), ids, path), path, percent)
    refuse_empty(cells.dropna(subset=["value"]), f"{path} ({len(frame)} rows)", [*columns.skipped, *columns.unknown])
    for header, part in cells[cells["value"].isna()].groupby("column", sort=True):
        models = ", ".join(dict.fromkeys(ids["source_model"].iloc[part["row"]]))
        log.warning(
            f"{path}: column {header!r} has no value for {models}: a missing result, kept; a curve"
            " over sizes that needs it is reported not fittable"
        )
    table = cells.merge(
        ids.drop(columns=["task", "n_items"]).rename(columns={"where": "line"}), left_on="row", right_index=True
    )
    items = ids["n_items"].to_numpy()[table["row"].to_numpy()]
    table["n_items"] = np.where(np.isnan(table["n_items"].astype(float)), items, table["n_items"])
    table["file"] = str(path)
    note = f"{path}: {columns.shape}, {len(frame)} rows" + (
        f", {len(columns.results)} result columns" * (columns.shape != "long")
    )
    return table.drop(columns=["row", "column", "percent_cell"]), note


@results_importer
class Table(ResultsImporter):
    name = "table"
    pattern = "*.csv, *.parquet"

    def rows(self, path: Path, percent: str = "auto") -> tuple[list[dict], set[str]]:
        table, _ = read_one(path, percent)
        return table.to_dict("records"), set()

    def read(self, path: Path, models: Path = REGISTRY, percent: str = "auto") -> pd.DataFrame:
        """The long table of one table file, or of every CSV and Parquet file under a folder (sorted)."""
        if percent not in PERCENT:
            raise InputError(f"--percent: {percent!r} is not one of {', '.join(PERCENT)}")
        suffixes = (".csv", ".parquet")
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files = [p for p in found if p.suffix.lower() in suffixes or path.is_file()]
        others = [str(p.relative_to(path)) for p in found if p not in files]
        if others:
            log.warning(f"{path}: skipped {len(others)} files that are not .csv or .parquet: {', '.join(others[:5])}")
        if not files:
            raise InputError(f"{path}: no .csv or .parquet tables found")
        tables, notes = zip(*(read_one(file, percent) for file in files))
        table = pd.concat(tables, ignore_index=True)
        refuse_repeats(table)
        scaled = with_scale(table, Path(models))
        for note in notes:
            log.info(note)
        return scaled


def read_tables(path: str | Path, models: str | Path = REGISTRY, percent: str = "auto") -> pd.DataFrame:
    """`import_results("table", ...)` with the `--percent` choice (auto, yes or no): `fit-csv`'s reader."""
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or folder")
    return Table().read(Path(path), Path(models), percent)


def refuse_repeats(table: pd.DataFrame) -> None:
    """The same model, checkpoint, shots, task and metric (and item) twice is refused, naming both rows:
    keeping either silently would make the result depend on the row order."""
    keys = ["source_model", "revision", "num_fewshot", "task", "source_metric", "item"]
    filled = table[keys].fillna({"num_fewshot": -1})
    repeated = filled[filled.duplicated(keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        same = table.loc[repeated.index[(repeated == first).all(axis=1)]]
        places = [
            line if file == same["file"].iloc[0] else f"{file} {line}" for file, line in zip(same["file"], same["line"])
        ]
        at = f" at {first['revision']}" if first["revision"] else ""
        raise InputError(
            f"{same['file'].iloc[0]}: lists model {first['source_model']!r}{at} {len(same)} times for task"
            f" {first['task']!r}, {first['source_metric']} ({' and '.join(places)}); keep one row"
        )


def with_scale(table: pd.DataFrame, models: Path) -> pd.DataFrame:
    """The table with N, D and C: the table's own sizes, each empty one filled from the model registry
    where it knows the model; a row with neither N nor C is an error naming the model and the column."""
    refuse_impossible(table)
    refuse_percentages(table.assign(value=table["value"].where(table["metric"].map(is_fraction))))
    known = registry(models)
    checkpoints = table[["source_model", "revision"]].drop_duplicates()
    scales = {}
    for name, revision in checkpoints.itertuples(index=False):
        model = known.canonical(name)
        if any(model in family.models for family in known.families):
            scales[name, revision] = known.scale(name, revision or None)
    key = list(zip(table["source_model"], table["revision"]))
    scale = [scales.get(k) for k in key]
    for column in SIZE_COLUMNS:
        own = table[column].astype(float)
        table[column] = own.where(own.notna(), [getattr(s, column) if s else np.nan for s in scale])
    flops = 6 * table["n_params_non_embedding"] * table["training_tokens"]
    table["training_flops"] = table["training_flops"].where(table["training_flops"].notna(), flops)
    sizeless = table[table["n_params"].isna() & table["training_flops"].isna()]
    if len(sizeless):
        row = sizeless.iloc[0]
        raise InputError(
            f"{row['file']}: {row['line']}: model {row['source_model']!r} has no size: add a column"
            f" n_params (as 410M or 1.4B), or the model to the model registry {models}"
        )
    table["model"] = [s.model if s else name for s, name in zip(scale, table["source_model"])]
    table["family"] = [s.family if s and f in ("csv", "parquet") else f for s, f in zip(scale, table["family"])]
    table["step"] = pd.array([s.step if s else step_of(r) for s, r in zip(scale, table["revision"])], dtype="Int64")
    last = table.groupby("source_model")["step"].transform("max")
    table["final_checkpoint"] = [
        s.final if s else (step is pd.NA or step == top) for s, step, top in zip(scale, table["step"], last)
    ]
    table["num_fewshot"] = pd.array([None if math.isnan(k) else int(k) for k in table["num_fewshot"]], dtype="Int64")
    table["method"] = ["" if k is pd.NA else method_of(int(k)) for k in table["num_fewshot"]]
    extra = ["item"] if (table["item"] != "").any() else []
    return table[COLUMNS + extra].reset_index(drop=True)


def step_of(revision: str) -> int | None:
    """The step a revision names (`step1000`), None for any other revision of a model the registry lacks."""
    match = re.fullmatch(r"step(\d+)", revision)
    return int(match.group(1)) if match else None
