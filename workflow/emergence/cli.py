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
from emergence.cli_imported import (
    cmd_figures_forecast,
    cmd_figures_imported,
    cmd_fit_csv,
    cmd_fit_imported,
    cmd_forecast,
    cmd_import_items,
    cmd_import_results,
    cmd_import_source,
    cmd_sweep_results,
    cmd_verdicts_imported,
    log_verdicts,
    read_manifests,
    report_not_fittable,
    settings_help,
)
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
    """Every (task, method) of one model in one process: the tokenizer loads once per model, as the
    engine does in `infer` (`--generations`, `--tasks` and `--out` are parallel lists)."""
    from transformers import AutoTokenizer

    from emergence.scoring import score_file
    from emergence.scoring.items import batch_tokenizer

    if not len(args.generations) == len(args.tasks) == len(args.out):
        raise InputError(
            f"score: {len(args.generations)} --generations, {len(args.tasks)} --tasks and {len(args.out)} --out"
            " files: give one task items file and one output per generations file"
        )
    manifest = json.loads(Path(args.manifest).read_text())
    tokenize = batch_tokenizer(AutoTokenizer.from_pretrained(manifest["path"]))
    metrics = json.loads(args.metrics)
    tasks: dict[str, pd.DataFrame] = {}
    for generations, task_items, out in zip(args.generations, args.tasks, args.out):
        if task_items not in tasks:
            tasks[task_items] = io.read_table(task_items, "tasks")
        meta = {"model": args.model, "model_sha": manifest["sha"]}
        rows = score_file(generations, tasks[task_items], manifest, tokenize, metrics, out, meta)
        log.info(f"scores {args.model} {Path(generations).parent.name}/{Path(generations).stem}: {rows} rows")


def cmd_fit(args) -> None:
    from emergence.analysis import Settings, analyse_stage

    scores = pd.concat([io.read_table(p, "scores") for p in args.scores], ignore_index=True)
    analysed = analyse_stage(scores, Settings.from_config(json.loads(args.settings), args.seed))
    io.write_table(analysed.fits, args.out, "fits")
    io.write_table(analysed.calibration, args.calibration, "calibration")
    io.write_table(analysed.verdicts, args.verdicts, "verdicts")
    report_not_fittable(analysed.fits)
    log_verdicts(analysed.verdicts)


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
        "score one model's generations for every task x method (one tokenizer load)",
        "--model --manifest --generations+ --tasks+ --metrics --out+",
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
        "results made elsewhere (--format lm_eval_0.3, lm_eval_0.4, olmo_ladder, table) as one long table, CSV"
        " or Parquet by --out's suffix; --fits: fits over sizes too;"
        " --samples-out: lm-eval 0.4's per-item scores and rescored ones (--tokenizer: for token edit distances)",
        "--format --path --out --fits? --settings? --seed?:int --models? --samples-out? --tokenizer?",
    ),
    "forecast": (
        cmd_forecast,
        "predict larger models' scores with intervals from a ladder of smaller ones, backtested",
        "--format? --path? --table? --targets+? --predict+? --tasks+? --prompt-method? --hold-out? --settings?"
        " --seed?:int --out",
    ),
    "sweep-results": (
        cmd_sweep_results,
        "a sweep's scores files as the long table of per-model means the forecast stage reads (--table)",
        "--scores+ --manifests+ --methods --out",
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
        "--out": "the fits table to write, Parquet for a .parquet name, else CSV (default: CSV on standard output)",
        "--table": "also write the imported long table (as --out): what was read, with N, D and C (default: not"
        " written)",
        "--models": "the model registry giving N, D and C of models without a size column"
        " (default: config/model_families.yaml)",
        "--percent": "accuracies written as percentages: auto (default: a file whose accuracy columns all exceed 1"
        " is divided by 100, a file mixing both is refused), yes or no",
    },
    "import-results": {
        "--format": "the results' format: lm_eval_0.3, lm_eval_0.4, olmo_ladder or table",
        "--path": "a results file, or a folder: every file of the format under it",
        "--out": "the long table to write: Parquet (schema imported) for a .parquet name, else CSV",
        "--fits": "also fit curves over sizes and write the fits table (CSV or Parquet by its name)",
        "--settings": "fitting settings for --fits as a JSON object, e.g. '{\"bootstrap\": 500}' (see fit-csv --help)",
        "--seed": "seed of the fits' bootstrap resampling (default 0)",
        "--models": "the model registry giving N, D and C (default: config/model_families.yaml)",
        "--samples-out": "lm_eval_0.4 only: also write the per-item scores (Parquet, schema imported_scores)",
        "--tokenizer": "with --samples-out: the tokenizer (a hub name or folder) for token edit distances",
    },
    "forecast": {
        "--format": "read results made elsewhere: lm_eval_0.3, lm_eval_0.4, olmo_ladder or table (with --path)",
        "--path": "the results file or folder of --format",
        "--table": "or a long table: import-results' CSV or Parquet (not with --format)",
        "--targets": "models of the results to predict from the smaller models of their family (olmo_ladder: its"
        " targets by default)",
        "--predict": "models not trained, as NAME:N:D (N non-embedding parameters, D tokens), e.g. 30B:3e10:6T",
        "--tasks": "only these tasks (default: every task but the settings' loss_task)",
        "--prompt-method": "only this prompting method, e.g. zero_shot (default: every one)",
        "--hold-out": "largest: without --targets, predict each family's largest size from its smaller ones",
        "--settings": 'forecast settings as a JSON object, e.g. \'{"window": 1, "replicates": 500}\''
        " (keys: forecast.ladder.Settings, the README's Forecasts section)",
        "--seed": "seed of the bootstrap and noise draws (default 0)",
        "--out": "the forecasts table to write: Parquet for a .parquet name, else CSV",
    },
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
                type=count if kind == "int" else str,
                help=OPTION_HELP.get(name, {}).get(flag.rstrip("?+*")),
            )
        command.set_defaults(func=handler)
    return top


def count(text: str) -> int:
    """An `:int` option's value: every one is a count or a seed, a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is below 0 (a count or a seed)")
    return value


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
