"""Subcommands for results made elsewhere (import, fits, verdicts, figures, forecasts) and the logging
helpers the fit stage shares; `emergence.cli` lists them with the others. Thin, like every subcommand."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from emergence import io
from emergence.errors import EmergenceError, InputError

log = logging.getLogger("emergence")


def log_verdicts(verdicts: pd.DataFrame) -> None:
    """One line: how many curves got each verdict."""
    counts = verdicts["verdict"].value_counts().sort_index()
    log.info(f"verdicts: {', '.join(f'{n} {v}' for v, n in counts.items()) or 'none'}")


def report_not_fittable(fits: pd.DataFrame) -> None:
    """One line per distinct reason a fit or measure was not made, then a count of what was."""
    for status, count in fits.loc[fits["status"] != "ok", "status"].value_counts().sort_index().items():
        log.info(f"{count} rows {status}")
    ok, held = fits["status"] == "ok", fits["status"].str.startswith("not preferred")  # values kept, not preferred
    with_interval = ok & fits["ci_low"].notna() & fits["ci_high"].notna()
    log.info(
        f"fits: {ok.sum()} numbers, {with_interval.sum()} of them with intervals, {(~ok & ~held).sum()} rows not "
        f"fittable, {held.sum()} rows of sigmoids not preferred"
    )


def cmd_fit_csv(args) -> None:
    """`import-results --format table` and the fits over sizes, in one command (options: OPTION_HELP)."""
    from emergence.analysis import analyse_imported
    from emergence.analysis.imported import refuse_nothing_to_fit
    from emergence.importers.metadata import REGISTRY
    from emergence.importers.table import read_tables

    outputs = {"--out": args.out, "--table": args.table}
    check_outputs({"--csv": [args.csv], "--models": [args.models]}, outputs, read_whole=("--csv",))
    settings = fitting_settings(args.settings, args.seed or 0)
    table = read_tables(args.csv, args.models or REGISTRY, args.percent or "auto")
    refuse_nothing_to_fit(table, args.csv)
    fits = analyse_imported(table, settings)
    write_outputs([(args.table, table, "imported"), (args.out, fits, "fits")])
    if not args.out:
        fits.to_csv(sys.stdout, index=False, float_format="%.6g")
    report_not_fittable(fits)


def fitting_settings(text: str | None, seed: int):
    """`--settings` (a JSON object of `fitting` keys) as the analysis settings, each value checked against
    config/schema.yaml as a sweep's `fitting` block is: a wrong type or range is one line, not a traceback."""
    from emergence.analysis import Settings
    from emergence.config import SCHEMA, settings_problem

    values = settings_json(text)
    problem = settings_problem(values, "fitting", SCHEMA)
    if problem:
        raise InputError(f"--settings: {problem}")
    return Settings.from_config(values, seed)


def settings_json(text: str | None) -> dict:
    """`--settings` as a dict: a JSON object (none: the defaults)."""
    try:
        settings = json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise InputError(f"--settings is not JSON ({err.msg} at column {err.colno}): {text}") from None
    if not isinstance(settings, dict):
        raise InputError(f"--settings must be a JSON object of settings keys, not {text}")
    return settings


def settings_help() -> str:
    """Every `fitting` key with its default and meaning, from config/schema.yaml (whose defaults a test
    checks against `analysis.Settings`), for `fit-csv --help`."""
    import yaml

    from emergence.config import SCHEMA

    schema = yaml.safe_load(SCHEMA.read_text())
    keys = schema["properties"]["fitting"]["properties"]
    lines = [
        f"  {name} (default {json.dumps(key.get('default'))}): {key.get('description', '')}"
        for name, key in keys.items()
    ]
    return "settings keys (--settings, a JSON object; a misspelled key is an error):\n" + "\n".join(lines) + "\n"


def check_outputs(
    inputs: dict[str, list[str | None]], outputs: dict[str, str | None], read_whole: tuple[str, ...] = ()
) -> None:
    """Refuse, before anything is read or written, an output path that is empty or a folder, names the
    same file as another output, is an input, or lies inside an input folder whose every table is read
    (`read_whole`: the next run would read it back): a user's file is never overwritten by an output."""
    seen: dict[Path, str] = {}
    for flag, out in outputs.items():
        if out is None:
            continue
        path = Path(out).resolve()
        if not out or path.is_dir():
            raise InputError(f"{flag} {out!r}: give a file to write, not a folder")
        if path in seen:
            raise InputError(f"{flag} and {seen[path]} name the same file {out}")
        seen[path] = flag
        for given_flag, given in ((f, p) for f, paths in inputs.items() for p in paths if p):
            source = Path(given).resolve()
            if path == source or (given_flag in read_whole and source in path.parents):
                where = "is" if path == source else "lies inside"
                raise InputError(f"{flag} {out} {where} the input {given_flag} {given}: write it elsewhere")


def output_writer(table: pd.DataFrame, path: str, stage: str) -> Callable[[Path], object]:
    """What writes a command's `table` into a given file in the format `path` asks for: Parquet in the
    `stage` schema (io.SCHEMAS) for a .parquet name, so the stages and `forecast --table` read it back,
    else CSV (fits' numbers to 6 significant digits)."""
    if Path(path).suffix.lower() == ".parquet":
        counts = {"n_models": "int32", "n_items": "int32"} if stage == "fits" else {}
        return lambda file: io.write_table(table.astype(counts), file, stage)
    digits = "%.6g" if stage == "fits" else None
    return lambda file: table.to_csv(file, index=False, float_format=digits)


def write_output(table: pd.DataFrame, path: str, stage: str) -> None:
    """A command's table at `path` (`output_writer`), atomically, its folder made."""
    io.write_atomically(path, output_writer(table, path, stage))


def write_outputs(
    tables: list[tuple[str | None, pd.DataFrame | None, str]],
    others: Sequence[tuple[str | None, Callable[[Path], object]]] = (),
) -> None:
    """Each (path, table, stage) of `tables` (`output_writer`) and (path, write) of `others` that has a
    path, all or none (`io.write_together`): a command that fails leaves every output as it was."""
    files = [(path, output_writer(table, path, stage)) for path, table, stage in tables if path and table is not None]
    io.write_together([*files, *((path, write) for path, write in others if path)])


def cmd_import_results(args) -> None:
    from emergence.analysis import analyse_imported
    from emergence.analysis.imported import refuse_nothing_to_fit
    from emergence.importers import import_items, import_results
    from emergence.importers.metadata import REGISTRY

    outputs = {"--out": args.out, "--fits": args.fits, "--samples-out": args.samples_out}
    tables = ("--path",) if args.format == "table" else ()  # a folder of tables is read whole
    check_outputs({"--path": [args.path], "--models": [args.models]}, outputs, read_whole=tables)
    settings = fitting_settings(args.settings, args.seed or 0)  # checked before minutes of importing
    table = import_results(args.format, args.path, args.models or REGISTRY)
    if args.fits:
        refuse_nothing_to_fit(table, args.path)
    items = import_items(args.format, args.path, args.models or REGISTRY, args.tokenizer) if args.samples_out else None
    fits = analyse_imported(table, settings) if args.fits else None
    write_outputs(
        [(args.out, table, "imported"), (args.fits, fits, "fits")],
        [(args.samples_out, lambda file: io.write_table(items, file, "imported_scores", {"format": args.format}))],
    )
    if items is not None:
        n_items = len(items[["task", "item_id"]].drop_duplicates())
        log.info(f"per-item scores: {len(items)} rows, {n_items} items -> {args.samples_out}")
    log.info(
        f"imported {len(table)} rows: {table['model'].nunique()} models, {table['task'].nunique()} tasks,"
        f" {table[['model', 'revision']].drop_duplicates().shape[0]} checkpoints -> {args.out}"
    )
    if fits is not None:
        report_not_fittable(fits)


def cmd_forecast(args) -> None:
    from emergence.forecast.ladder import Settings
    from emergence.forecast.stage import load_results, parse_planned, run

    check_outputs({"--table": [args.table], "--path": [args.path]}, {"--out": args.out})
    settings = Settings.from_config(settings_json(args.settings), args.seed or 0)
    results, default_targets = load_results(args.format, args.path, args.table)
    targets = args.targets or default_targets
    planned = parse_planned(args.predict)
    forecasts = run(results, targets, settings, args.tasks, args.prompt_method, planned, args.hold_out)
    write_output(forecasts, args.out, "forecasts")
    log.info(f"forecasts: {len(forecasts)} rows -> {args.out}")


def cmd_sweep_results(args) -> None:
    from emergence.forecast.sweep import sweep_results

    scores = pd.concat([io.read_table(p, "scores").assign(file=p) for p in args.scores], ignore_index=True)
    table = sweep_results(scores, read_manifests(args.manifests), json.loads(args.methods))
    io.write_table(table, args.out, "imported", {"source": "sweep"})
    log.info(
        f"sweep results: {len(table)} rows, {table['model'].nunique()} models, {len(args.scores)} files -> {args.out}"
    )


def cmd_figures_forecast(args) -> None:
    from emergence.forecast.figure import draw_all

    forecasts = io.read_table(args.forecasts, "forecasts")
    drawn = draw_all(forecasts, Path(args.out), json.loads(args.style))
    log.info(f"forecast figures {args.out}: {len(drawn)} drawn")


def cmd_import_source(args) -> None:
    from emergence.analysis.checkpoints import checkpoint_manifests, select
    from emergence.importers import import_results
    from emergence.importers.metadata import REGISTRY

    entry = json.loads(args.entry)
    table = select(import_results(entry["format"], entry["path"], entry.get("models") or REGISTRY), entry)
    io.write_table(table, args.out, "imported", {"source": entry["name"], "format": entry["format"]})
    io.write_json(checkpoint_manifests(table, entry["name"]), args.models)
    log.info(
        f"{entry['name']}: {table['file'].nunique()} files, {len(table)} rows, {table['model'].nunique()} models,"
        f" {table[['model', 'step']].drop_duplicates().shape[0]} checkpoints, {table['task'].nunique()} tasks"
    )


def cmd_import_items(args) -> None:
    from emergence.analysis.items import CHECKPOINT
    from emergence.importers import import_items
    from emergence.importers.metadata import REGISTRY

    entry = json.loads(args.entry)
    items = import_items(entry["format"], entry["path"], entry.get("models") or REGISTRY, entry.get("tokenizer"))
    kept = io.read_table(args.table, "imported")[CHECKPOINT].drop_duplicates()  # the entry's selection
    selected = items.merge(kept, on=CHECKPOINT, how="inner")[items.columns].reset_index(drop=True)
    if len(selected) < len(items):
        log.info(f"{entry['name']}: {len(items) - len(selected)} per-item rows outside the entry's selection left out")
    items = selected
    io.write_table(items, args.out, "imported_scores", {"source": entry["name"], "format": entry["format"]})
    counts = items.groupby("source")["metric"].agg(lambda m: ", ".join(sorted(set(m))))
    metrics = "; ".join(f"{source}: {names}" for source, names in counts.items())
    log.info(f"{entry['name']}: {len(items)} per-item rows -> {args.out}; {metrics}")


def cmd_fit_imported(args) -> None:
    from emergence.analysis import Settings, analyse_imported
    from emergence.analysis.checkpoints import analyse_training
    from emergence.analysis.items import item_fits

    check_curves(args.curves)
    table = io.read_table(args.table, "imported")
    metrics = set(json.loads(args.metrics))
    for metric in sorted(set(table["metric"]) - metrics):
        log.info(f"{metric}: imported, not fitted (not among the config's metrics)")
    table = table[table["metric"].isin(metrics)]
    settings = Settings.from_config(json.loads(args.settings), args.seed)
    if args.curves == "sizes" and args.items:
        fits = item_fits(io.read_table(args.items, "imported_scores"), table, sorted(metrics), settings)
    elif args.curves == "sizes":
        fits = analyse_imported(table, settings)
    else:
        fits = analyse_training(table, settings, args.threads or 1)
    io.write_table(fits.astype({"n_models": "int32", "n_items": "int32"}), args.out, "fits")
    report_not_fittable(fits)


def cmd_verdicts_imported(args) -> None:
    from emergence.analysis import Settings, verdicts_imported
    from emergence.analysis.items import item_verdicts

    table = io.read_table(args.table, "imported")
    metrics = json.loads(args.metrics)
    table = table[table["metric"].isin(set(metrics))]
    settings = Settings.from_config(json.loads(args.settings), args.seed)
    if args.items:
        verdicts = item_verdicts(io.read_table(args.items, "imported_scores"), table, metrics, settings)
    else:
        verdicts = verdicts_imported(table, settings)
    io.write_table(verdicts, args.out, "verdicts")
    log_verdicts(verdicts)


def check_curves(name: str) -> None:
    from emergence.analysis.checkpoints import CURVES

    if name not in CURVES:
        raise EmergenceError(f"--curves: {name!r} is not a kind of curve ({', '.join(CURVES)})")


def cmd_figures_imported(args) -> None:
    from emergence.plots_imported import draw_imported

    check_curves(args.curves)
    fits = io.read_table(args.fits, "fits")
    drawn = draw_imported(
        args.curves, fits, read_manifests(args.manifests), json.loads(args.metrics), args.source,
        json.loads(args.style), Path(args.out), args.threads or 1,
    )  # fmt: skip
    log.info(f"figures {args.out}: {len(drawn)} drawn")


def read_manifests(paths: list[str]) -> list[dict]:
    """Model manifests: one per file, or a list per file (an imported source's checkpoints)."""
    manifests = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        manifests += data if isinstance(data, list) else [data]
    return manifests
