"""The thin command line the Snakemake rules call: one subcommand per stage, no logic of its own.

Structured arguments (config entries) arrive as JSON strings. Progress goes through `logging` to stderr,
which every rule's log captures. Errors the user can fix (bad config entry, missing checkpoint, empty
task, unreadable stage file) end the command with one line, `error: ...`, and a non-zero exit status,
leaving no output behind.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tarfile
import zipfile
from pathlib import Path

import pandas as pd

from emergence import io
from emergence.errors import EmergenceError, InputError

log = logging.getLogger("emergence")


def named_paths(inputs: str | None) -> dict[str, Path]:
    """A rule's named single-file inputs, from the JSON `--inputs` (lists of files are only watched by the rule)."""
    return {key: Path(path) for key, path in json.loads(inputs or "{}").items() if isinstance(path, str)}


def cmd_model(args) -> None:
    from emergence.models import materialise

    lock = Path(args.revision_lock) if args.revision_lock else None
    manifest = materialise(args.name, json.loads(args.entry), Path(args.out), args.seed, named_paths(args.inputs), lock)
    log.info(f"model {args.name}: {manifest['n_params']:,} parameters at {manifest['path']}")


def cmd_train(args) -> None:
    from emergence.models import build_in_place
    from emergence.training import train_tiny_family_member

    build_in_place(
        Path(args.out),
        lambda tmp: train_tiny_family_member(tmp, json.loads(args.entry), json.loads(args.training), args.seed),
    )
    log.info(f"trained {args.name}: {args.out}")


def cmd_task(args) -> None:
    from emergence.tasks import build_task

    items = build_task(args.name, json.loads(args.spec), args.seed, named_paths(args.inputs))
    io.write_table(items, args.out, "tasks", {"task": args.name})
    log.info(
        f"task {args.name}: {(items['split'] == 'test').sum()} test items,"
        f" {(items['split'] == 'train').sum()} train items"
    )


def cmd_prompts(args) -> None:
    from emergence.methods import build_prompts

    items = io.read_table(args.items, "tasks")
    prompts = build_prompts(args.task, items, args.method, json.loads(args.spec), json.loads(args.sampling), args.seed)
    io.write_table(prompts, args.out, "prompts", {"task": args.task, "method": args.method})
    log.info(f"prompts {args.task}/{args.method}: {len(prompts)} requests")


def cmd_infer(args) -> None:
    from emergence.inference import InferenceJob, run_inference

    manifest = json.loads(Path(args.manifest).read_text())
    job = InferenceJob(
        args.model,
        manifest,
        args.engine,
        json.loads(args.settings),
        Path(args.cache_dir),
        args.chunk_size,
        Path(args.stats),
        attempt=args.attempt or 1,
    )
    run_inference(job, args.prompts, args.out)


def cmd_score(args) -> None:
    from transformers import AutoTokenizer

    from emergence.scoring import score_file
    from emergence.scoring.items import batch_tokenizer

    manifest = json.loads(Path(args.manifest).read_text())
    tokenizer = AutoTokenizer.from_pretrained(manifest["path"])
    tasks = io.read_table(args.tasks, "tasks")
    metrics = json.loads(args.metrics)
    rows = score_file(
        args.generations,
        tasks,
        manifest,
        batch_tokenizer(tokenizer),
        metrics,
        args.out,
        {"model": args.model, "model_sha": manifest["sha"]},
    )
    log.info(f"scores {args.model} {Path(args.generations).parent.name}/{Path(args.generations).stem}: {rows} rows")


def cmd_fit(args) -> None:
    from emergence.analysis import Settings, analyse_stage

    scores = pd.concat([io.read_table(p, "scores") for p in args.scores], ignore_index=True)
    analysed = analyse_stage(scores, Settings.from_config(json.loads(args.settings), args.seed))
    io.write_table(analysed.fits, args.out, "fits")
    io.write_table(analysed.calibration, args.calibration, "calibration")
    io.write_table(analysed.verdicts, args.verdicts, "verdicts")
    report_not_fittable(analysed.fits)
    log_verdicts(analysed.verdicts)


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
    from emergence.analysis import Settings, analyse_imported
    from emergence.importers.metadata import REGISTRY
    from emergence.importers.table import read_tables

    settings = Settings.from_config(settings_json(args.settings), args.seed or 0)
    table = read_tables(args.csv, args.models or REGISTRY, args.percent or "auto")
    if args.table:
        io.write_atomically(args.table, lambda tmp: table.to_csv(tmp, index=False))
    fits = analyse_imported(table, settings)
    if args.out:
        io.write_atomically(args.out, lambda tmp: fits.to_csv(tmp, index=False, float_format="%.6g"))
    else:
        fits.to_csv(sys.stdout, index=False, float_format="%.6g")
    report_not_fittable(fits)


def settings_json(text: str | None) -> dict:
    """`--settings` as a dict: a JSON object of `fitting` keys (none: the defaults)."""
    try:
        settings = json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise InputError(f"--settings is not JSON ({err.msg} at column {err.colno}): {text}") from None
    if not isinstance(settings, dict):
        raise InputError(f"--settings must be a JSON object of fitting keys, not {text}")
    return settings


def settings_help() -> str:
    """Every `fitting` key with its default and meaning, from config/schema.yaml (whose defaults a test
    checks against `analysis.Settings`), for `fit-csv --help`."""
    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parents[2] / "config" / "schema.yaml").read_text())
    keys = schema["properties"]["fitting"]["properties"]
    lines = [
        f"  {name} (default {json.dumps(key.get('default'))}): {key.get('description', '')}"
        for name, key in keys.items()
    ]
    return "settings keys (--settings, a JSON object; a misspelled key is an error):\n" + "\n".join(lines) + "\n"


def cmd_import_results(args) -> None:
    from emergence.analysis import Settings, analyse_imported
    from emergence.importers import import_items, import_results
    from emergence.importers.metadata import REGISTRY

    table = import_results(args.format, args.path, args.models or REGISTRY)
    settings = Settings.from_config(json.loads(args.settings) if args.settings else {}, args.seed or 0)
    if args.samples_out:  # read before anything is written: a bad samples file leaves no output
        items = import_items(args.format, args.path, args.models or REGISTRY, args.tokenizer)
        io.write_table(items, args.samples_out, "imported_scores", {"format": args.format})
        n_items = len(items[["task", "item_id"]].drop_duplicates())
        log.info(f"per-item scores: {len(items)} rows, {n_items} items -> {args.samples_out}")
    table.to_csv(args.out, index=False)
    log.info(
        f"imported {len(table)} rows: {table['model'].nunique()} models, {table['task'].nunique()} tasks,"
        f" {table[['model', 'revision']].drop_duplicates().shape[0]} checkpoints -> {args.out}"
    )
    if args.fits:
        fits = analyse_imported(table, settings)
        fits.to_csv(args.fits, index=False, float_format="%.6g")
        report_not_fittable(fits)


def cmd_forecast(args) -> None:
    from emergence.forecast.ladder import Settings
    from emergence.forecast.stage import load_results, parse_planned, run

    results, default_targets = load_results(args.format, args.path, args.table)
    settings = Settings.from_config(json.loads(args.settings) if args.settings else {}, args.seed or 0)
    targets = args.targets or default_targets
    forecasts = run(results, targets, settings, args.tasks, args.prompt_method, parse_planned(args.predict))
    io.write_table(forecasts, args.out, "forecasts")
    log.info(f"forecasts: {len(forecasts)} rows -> {args.out}")


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


def cmd_figure(args) -> None:
    from emergence.plots import render

    fits = pd.concat([io.read_table(p, "fits") for p in args.fits], ignore_index=True)
    manifests = read_manifests(args.manifests)
    missing = render(
        args.kind,
        fits,
        manifests,
        json.loads(args.options),
        args.title,
        [Path(p) for p in args.out],
        json.loads(args.style),
    )
    log.info(f"figure {args.out[0]}" + (f": not drawn, {missing}" if missing else ""))


def cmd_report(args) -> None:
    from emergence.analysis.checkpoints import summary_of
    from emergence.report import summarise_scores, write_report

    scores = [io.read_table(p, "scores") for p in args.scores or []]
    summaries = [summarise_scores(pd.concat(scores, ignore_index=True))] if scores else []
    summaries += [summary_of(io.read_table(p, "imported")) for p in args.imported or []]
    fits = pd.concat([io.read_table(p, "fits") for p in args.fits], ignore_index=True)
    verdicts = [io.read_table(p, "verdicts") for p in args.verdicts or []]
    training = [io.read_table(p, "fits") for p in args.training_fits or []]
    manifests = [m for m in read_manifests(args.manifests) if m.get("final_checkpoint", True)]
    figures = pngs(args.figures)
    forecasts = [io.read_table(p, "forecasts") for p in args.forecasts or []]
    write_report(
        Path(args.out),
        figures,
        fits,
        manifests,
        json.loads(args.config),
        pd.concat(summaries, ignore_index=True),
        json.loads(args.notes),
        pd.concat(verdicts, ignore_index=True) if verdicts else None,
        pd.concat(training, ignore_index=True) if training else None,
        pd.concat(forecasts, ignore_index=True) if forecasts else None,
        pngs(args.forecast_figures or []),
    )
    log.info(f"report: {args.out}")


def pngs(paths: list[str]) -> list[Path]:
    """Figure files: each path a PNG, or a folder of them (every PNG under it, sorted)."""
    return [f for p in map(Path, paths or []) for f in (sorted(p.rglob("*.png")) if p.is_dir() else [p])]


# subcommand: (handler, help, options); an option marked "?" is optional, "+" takes several values,
# "*" any number (none too; both may mark one option), ":int" is an integer. JSON options carry config entries.
COMMANDS = {
    "model": (
        cmd_model,
        "materialise a checkpoint and write its manifest",
        "--name --entry --seed:int --inputs? --revision-lock? --out",
    ),
    "train": (cmd_train, "train one member of the tiny model family", "--name --entry --training --seed:int --out"),
    "task": (cmd_task, "build a task's items", "--name --spec --seed:int --inputs? --out"),
    "prompts": (
        cmd_prompts,
        "turn a task's test items into requests under one method",
        "--task --items --method --spec --sampling --seed:int --out",
    ),
    "infer": (
        cmd_infer,
        "answer every request of one model (one engine load)",
        "--model --manifest --prompts+ --out+ --engine --settings --cache-dir --chunk-size:int --stats --attempt?:int",
    ),
    "score": (
        cmd_score,
        "score one model's generations for one task x method",
        "--model --manifest --generations --tasks --metrics --out",
    ),
    "fit": (
        cmd_fit,
        "fits and emergence measures for one task x method across models",
        "--scores+ --settings --seed:int --out --calibration --verdicts",
    ),
    "fit-csv": (
        cmd_fit_csv,
        "fits and emergence measures for a table of results (CSV or Parquet, long or wide)",
        "--csv --settings? --seed?:int --out? --table? --models? --percent?",
    ),
    "import-results": (
        cmd_import_results,
        "results made elsewhere (--format lm_eval_0.3, lm_eval_0.4) as one long table; --fits: fits over sizes too;"
        " --samples-out: lm-eval 0.4's per-item scores and rescored ones (--tokenizer: for token edit distances)",
        "--format --path --out --fits? --settings? --seed?:int --models? --samples-out? --tokenizer?",
    ),
    "forecast": (
        cmd_forecast,
        "predict larger models' scores with intervals from a ladder of smaller ones, backtested",
        "--format? --path? --table? --targets+? --predict+? --tasks+? --prompt-method? --settings? --seed?:int --out",
    ),
    "figures-forecast": (
        cmd_figures_forecast,
        "a forecasts table's figures, one per family, task and prompting method, into a folder",
        "--forecasts --style --out",
    ),
    "import-source": (
        cmd_import_source,
        "one `results:` entry of a sweep imported, filtered and scaled: its table and checkpoint manifests",
        "--entry --out --models",
    ),
    "import-items": (
        cmd_import_items,
        "the per-item scores of one `results:` entry (lm-eval 0.4 samples: its values and the rescored ones),"
        " kept to the checkpoints of its imported --table",
        "--entry --table --out",
    ),
    "fit-imported": (
        cmd_fit_imported,
        "fits and emergence measures of an imported table: curves over sizes or over training;"
        " --items: curves over sizes from per-item scores (intervals over items)",
        "--table --curves --metrics --settings --seed:int --out --threads?:int --items?",
    ),
    "verdicts-imported": (
        cmd_verdicts_imported,
        "one verdict per curve over sizes (final checkpoints) of an imported table; --items: from per-item scores",
        "--table --metrics --settings --seed:int --out --items?",
    ),
    "figures-imported": (
        cmd_figures_imported,
        "an imported source's figures (every task against N, or over training tokens) into a folder",
        "--fits --manifests+ --curves --metrics --source --style --out --threads?:int",
    ),
    "figure": (
        cmd_figure,
        "one figure of the set, as PNG and PDF",
        "--kind --fits+ --manifests+ --options --title --style --out+",
    ),
    "report": (
        cmd_report,
        "the HTML report",
        "--scores* --fits+ --verdicts* --forecasts* --forecast-figures* --figures* --manifests* --imported*"
        " --training-fits* --config --notes --out",
    ),
}


# What `--help` says of a subcommand's options (a subcommand listed here documents every option).
OPTION_HELP = {
    "fit-csv": {
        "--csv": "a table file (.csv or .parquet), or a folder: every table under it. Long (metric and value"
        " columns), one column per metric (acc, acc_norm, em, ...) or one column per benchmark (PIQA, or"
        " arc_easy/acc_norm); headers as in the README's alias table (Model, Params, accuracy, ...)",
        "--settings": "fitting settings as a JSON object, e.g. '{\"bootstrap\": 500}' (keys below; default: none)",
        "--seed": "seed of the bootstrap resampling (default 0); the same table and seed give the same fits",
        "--out": "the fits table (CSV) to write (default: standard output)",
        "--table": "also write the imported long table (CSV): what was read, with N, D and C (default: not written)",
        "--models": "the model registry giving N, D and C of models without a size column"
        " (default: config/model_families.yaml)",
        "--percent": "accuracies written as percentages: auto (default: a file whose accuracy columns all exceed 1"
        " is divided by 100, a file mixing both is refused), yes or no",
    }
}
EPILOGS = {"fit-csv": settings_help}


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line; the epilog of the subcommand `argv` names is built (only that one: it reads files)."""
    wanted = (sys.argv[1:] if argv is None else argv)[:1]
    top = argparse.ArgumentParser(prog="emergence", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    for name, (handler, help_text, options) in COMMANDS.items():
        epilog = EPILOGS[name]() if name in EPILOGS and name in wanted else None
        command = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for option in options.split():
            flag, _, kind = option.partition(":")
            marks = flag[len(flag.rstrip("?+*")) :]
            command.add_argument(
                flag.rstrip("?+*"),
                required=not ({"?", "*"} & set(marks)),
                nargs="+" if "+" in marks else "*" if "*" in marks else None,
                type=int if kind == "int" else str,
                help=OPTION_HELP.get(name, {}).get(flag.rstrip("?+*")),
            )
        command.set_defaults(func=handler)
    return top


def main(argv: list[str] | None = None) -> None:
    """Run one subcommand. Bad input (`EmergenceError`, or an archive that cannot be read) ends with one
    line `error: ...` on stderr and exit status 1; anything else is a bug and keeps its traceback."""
    args = parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    try:
        args.func(args)
    except io.CorruptStageFile as err:
        err.path.unlink(missing_ok=True)  # never read again as valid; the next run rebuilds it
        fail(f"{err}; removed it, run the workflow again to rebuild it")
    except (EmergenceError, zipfile.BadZipFile, tarfile.TarError) as err:
        fail(str(err))


def fail(message: str) -> None:
    log.error(f"error: {message}")
    sys.exit(1)


if __name__ == "__main__":
    main()
