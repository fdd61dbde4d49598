"""Parquet and JSON files between stages: one schema per stage, atomic writes, provenance.

Every stage file is written to a temporary name in the same folder and renamed into place, so a
killed job never leaves a file that looks complete. Every Parquet file carries its stage name and
provenance (package version, and the model and its SHA where one applies) in its schema metadata, and
readers check the columns against the stage's schema before trusting a file. Pages carry CRC
checksums that readers verify, so a file damaged after it was written is refused, never read as valid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emergence import __version__
from emergence.errors import EmergenceError, InputError

# The statistics a verdict rests on (emergence.verdicts.judge), each a float column of the verdicts table.
VERDICT_STATISTICS = (
    "chi2_constant",
    "p_constant",
    "chi2_isotonic",
    "p_monotone",
    "drop",
    "chi2_line",
    "chi2_power",
    "chi2_sigmoid",
    "overdispersion",
    "sharpness",
    "midpoint",
    "width_decades",
    "floor_fraction",
    "twin_chi2_power_law",
    "twin_jump",
    "twin_width_decades",
    "prediction_chi2",
    "prediction_p",
    "prediction_max_error",
    "range_decades",
    "top",
)

# One schema per stage. Columns are the contract users script against: add, never rename.
SCHEMAS: dict[str, pa.Schema] = {
    "tasks": pa.schema(
        [
            ("item_id", pa.string()),
            ("split", pa.string()),  # "test" items are evaluated, "train" items feed exemplars
            ("input", pa.string()),
            ("target", pa.string()),
            ("digits", pa.int32()),
            ("metadata", pa.string()),  # JSON object with task-specific fields
        ]
    ),
    "prompts": pa.schema(
        [
            ("request_id", pa.string()),
            ("item_id", pa.string()),
            ("task", pa.string()),
            ("method", pa.string()),
            ("prompt", pa.string()),
            ("target", pa.string()),  # the continuation scored by teacher forcing
            ("answer", pa.string()),  # what the extracted answer must equal
            ("answer_regex", pa.string()),  # group 1 is the answer within the output; "" = whole output
            ("max_tokens", pa.int32()),
            ("temperature", pa.float64()),
            ("top_p", pa.float64()),
            ("n", pa.int32()),
            ("seed", pa.int64()),
            ("stop", pa.list_(pa.string())),
            ("choices", pa.list_(pa.string())),  # multiple choice: continuations scored after the prompt; [] otherwise
            ("choice_scores", pa.list_(pa.float64())),  # their target scores; the best marks the correct ones
            ("answers", pa.list_(pa.string())),  # every accepted answer, `answer` first (BIG-bench lists several)
        ]
    ),
    "generations": pa.schema(
        [
            ("request_id", pa.string()),
            ("item_id", pa.string()),
            ("task", pa.string()),
            ("method", pa.string()),
            ("target", pa.string()),
            ("answer", pa.string()),
            ("answer_regex", pa.string()),
            ("texts", pa.list_(pa.string())),
            ("token_ids", pa.list_(pa.list_(pa.int32()))),
            ("token_logprobs", pa.list_(pa.list_(pa.float64()))),
            ("finish_reasons", pa.list_(pa.string())),
            ("target_token_ids", pa.list_(pa.int32())),
            ("target_logprobs", pa.list_(pa.float64())),
            ("prompt_tokens", pa.int32()),
            ("engine", pa.string()),
            ("engine_version", pa.string()),
            ("seed", pa.int64()),
            ("choice_scores", pa.list_(pa.float64())),
            ("choice_logprobs", pa.list_(pa.float64())),  # log P(choice | prompt) per choice; [] when none
            ("prompt_tokens_dropped", pa.int32()),  # cut from the prompt's left to fit (engine.long_prompts: truncate)
            ("answers", pa.list_(pa.string())),  # every accepted answer, `answer` first
        ]
    ),
    "scores": pa.schema(
        [
            ("request_id", pa.string()),
            ("item_id", pa.string()),
            ("model", pa.string()),
            ("family", pa.string()),
            ("task", pa.string()),
            ("method", pa.string()),
            ("digits", pa.int32()),
            ("n_params", pa.int64()),
            ("training_flops", pa.float64()),  # C = 6ND; NaN when D is unknown
            ("target_tokens", pa.int32()),
            ("metric", pa.string()),
            ("value", pa.float64()),
        ]
    ),
    "fits": pa.schema(
        [
            ("family", pa.string()),
            ("task", pa.string()),
            ("method", pa.string()),
            ("digits", pa.string()),  # a digit count, or "all"
            ("metric", pa.string()),  # a scored metric, or target_nll (-log P(target) per token)
            ("x", pa.string()),  # the scale axis (n_params or training_flops); "" when none applies
            # mean, sigmoid_floor, power_law, <fit>_curve, extrapolation, extrapolation_curve, breakthroughness,
            # flag, mirage, calibration, chinchilla
            ("fit", pa.string()),
            # a fit's parameter (floor, ceiling, midpoint, slope, rmse, sharpness, N_c, alpha, ...), or what a row
            # holds: mean, fitted (a curve point), predicted / observed / error, breakthroughness, ECE, a flag's name
            ("parameter", pa.string()),
            ("model", pa.string()),  # the model a row is about (means, extrapolation, Mirage, ECE); "" otherwise
            ("scale", pa.float64()),  # the x value of a fitted-curve point; NaN otherwise
            ("versus", pa.string()),  # the continuous metric a metric_disagreement flag compares with; "" otherwise
            ("value", pa.float64()),
            ("ci_low", pa.float64()),  # bootstrap percentile interval over items
            ("ci_high", pa.float64()),
            ("n_models", pa.int32()),
            ("n_items", pa.int32()),
            ("status", pa.string()),  # "ok", or why the fit was not made
        ]
    ),
    "verdicts": pa.schema(  # one row per curve and discontinuous metric (emergence.verdicts, README "Verdicts")
        [
            ("family", pa.string()),
            ("task", pa.string()),
            ("method", pa.string()),
            ("digits", pa.string()),
            ("metric", pa.string()),  # the discontinuous metric judged
            ("x", pa.string()),  # the scale axis (n_params or training_flops)
            ("twin", pa.string()),  # its continuous twin (per_token_prob, target_logprob), "" when none
            ("verdict", pa.string()),  # emergent, mirage, smooth, flat, saturated, non_monotone, insufficient
            ("confidence", pa.string()),  # high, medium, low
            ("sentence", pa.string()),
            *[(name, pa.float64()) for name in VERDICT_STATISTICS],  # NaN where a check was not reached
            ("breakthroughness", pa.float64()),  # descriptive only (grows with the number of models)
            ("n_models", pa.int32()),
            ("n_items", pa.int32()),
        ]
    ),
    "forecasts": pa.schema(  # one row per (curve, method, target); emergence.forecast
        [
            ("family", pa.string()),
            ("task", pa.string()),
            ("prompt_method", pa.string()),  # the prompting method (zero_shot, few_shot_5, ...)
            ("metric", pa.string()),
            ("target", pa.string()),  # the model predicted: a target, or a held-out run in a rollout
            ("holdout", pa.int32()),  # 0: fitted on every rung; k: the k largest rungs held out (rollout backtest)
            ("n_params", pa.float64()),  # N, non-embedding parameters
            ("training_tokens", pa.float64()),  # D
            ("method", pa.string()),  # forecast method (two_step, loss_based, direct, naive)
            ("chosen", pa.bool_()),  # the method the selection rule picks for this curve
            ("predicted", pa.float64()),
            ("lower", pa.float64()),  # prediction interval (Settings.level, 90 % by default)
            ("upper", pa.float64()),
            ("actual", pa.float64()),  # NaN when the target is not known
            ("error", pa.float64()),  # predicted - actual
            ("covered", pa.bool_()),  # actual within [lower, upper]; null when unknown
            ("backtest_error", pa.float64()),  # the method's mean absolute rollout error on this curve
            ("verdict", pa.string()),  # forecastable, flat, non_monotone, ... (forecast.verdict)
            ("replicates", pa.int32()),  # bootstrap replicates behind the interval
            ("status", pa.string()),  # ok, or why the row is no forecast (a target within or below the ladder)
        ]
    ),
    "imported": pa.schema(  # results made elsewhere, one row per checkpoint x task x method x metric
        [
            ("family", pa.string()),
            ("model", pa.string()),  # the model registry's name (config/model_families.yaml)
            ("source_model", pa.string()),  # as the results file names it
            ("revision", pa.string()),
            ("step", pa.int64()),  # training step of the checkpoint; null for a final-only model
            ("final_checkpoint", pa.bool_()),
            ("task", pa.string()),
            ("num_fewshot", pa.int32()),
            ("method", pa.string()),  # zero_shot or few_shot_<k>
            ("metric", pa.string()),  # the project's metric name
            ("source_metric", pa.string()),  # the key the file used
            ("value", pa.float64()),
            ("stderr", pa.float64()),
            ("source_value", pa.float64()),
            ("n_items", pa.float64()),  # NaN where the file does not tell
            ("n_params", pa.int64()),
            ("n_params_non_embedding", pa.int64()),
            ("training_tokens", pa.int64()),  # D of the checkpoint
            ("training_flops", pa.float64()),  # C = 6ND, N non-embedding
            ("file", pa.string()),
        ]
    ),
    "calibration": pa.schema(  # reliability table: one row per model and non-empty confidence bin
        [
            ("family", pa.string()),
            ("task", pa.string()),
            ("method", pa.string()),
            ("digits", pa.string()),
            ("model", pa.string()),
            ("n_params", pa.int64()),
            ("bin", pa.int32()),
            ("lower", pa.float64()),
            ("upper", pa.float64()),
            ("count", pa.int64()),
            ("confidence", pa.float64()),  # mean confidence of the bin's items
            ("accuracy", pa.float64()),  # their mean correctness
        ]
    ),
}
# Per-item scores of results made elsewhere (importers.lm_eval_samples): the scores columns, then which
# checkpoint, shots and lm-eval filter a row is about, and whose score it is.
SCHEMAS["imported_scores"] = pa.schema(
    [
        *SCHEMAS["scores"],
        ("revision", pa.string()),
        ("num_fewshot", pa.int32()),
        ("filter", pa.string()),  # lm-eval's filter of the response ("none", "strict-match", ...)
        ("source", pa.string()),  # "lm_eval": lm-eval's own per-item value; "rescored": a project metric's
        ("source_metric", pa.string()),  # lm-eval's key ("acc,none"), or the project metric rescored
        ("file", pa.string()),  # the samples file
    ]
)


class StageFileError(EmergenceError, RuntimeError):
    """A stage file is missing, truncated, or does not follow its stage's schema."""


class CorruptStageFile(StageFileError):
    """A stage file whose bytes are damaged (truncated, or a page failing its checksum)."""

    def __init__(self, path: str | Path, err: Exception):
        self.path = Path(path)
        super().__init__(f"{path}: corrupt or truncated Parquet file ({err})")


def stable_hash(obj: Any) -> str:
    """SHA-256 of a JSON-serialisable object, independent of key order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_path(path: str | Path):
    """A temporary path beside `path`; the caller writes it, then `os.replace`s it into place. InputError
    for a path that is a folder, or whose folder cannot be made (a file in the way)."""
    path = Path(path)
    if not path.name or path.is_dir():
        raise InputError(f"{path}: is a folder, not a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"{path}: cannot make its folder {path.parent} (a file of that name is in the way)") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; results are shared like any other file
    return Path(tmp)


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call `write` on a temporary file beside `path`, flush it to disk, then rename it into place
    (`write_together` of one file: its rules for devices, links, folders and errors)."""
    write_together([(path, write)])


def write_together(files: Iterable[tuple[str | Path, Callable[[Path], object]]]) -> None:
    """Write every (path, write) pair or none: each `write` fills a temporary file beside its path,
    flushed to disk, and only when all are written are they renamed into place; on any failure the
    temporary files, and the folders made for them, are removed and every path is as it was.

    A path that is, or links to, no regular file (`/dev/null`, `/dev/stdout`, a pipe) is written directly,
    after the others are written and before they are renamed; a symbolic link to a file is followed to its
    target: a rename would replace the device or the link with a file. InputError naming the path when a
    file cannot be written (no such folder in `/proc`, a full disk), not a traceback."""
    staged: list[tuple[Path, Path]] = []  # (temporary file, its target)
    direct: list[tuple[Path, Callable[[Path], object]]] = []
    made: list[Path] = []  # folders this call made, outermost first
    current = Path()
    try:
        for path, write in files:
            current = Path(path)
            if current.exists() and not current.is_file() and not current.is_dir():  # exists() follows links
                direct.append((current, write))
                continue
            target = Path(os.path.realpath(current)) if current.is_symlink() else current
            made += [p for p in reversed(target.parents) if not p.exists()]
            staged.append((atomic_path(target), target))
            write(staged[-1][0])
            with open(staged[-1][0], "rb+") as handle:
                os.fsync(handle.fileno())
        for current, write in direct:
            write(current)
        for tmp, current in staged:
            os.replace(tmp, current)
    except OSError as err:
        raise InputError(f"{current}: cannot be written ({err.strerror or err})") from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(made):  # emptied again when their files were not written
            with contextlib.suppress(OSError):
                folder.rmdir()


def write_table(df: pd.DataFrame, path: str | Path, stage: str, provenance: dict | None = None) -> None:
    """Write `df` as the Parquet file of `stage`, atomically, with provenance in its metadata."""
    write_table_stream([df], path, stage, provenance)


def repeating_columns(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding: all but request ids (one per row) and measured numbers
    (floats), whose dictionaries only cost time: a third of writing a scores file, and 50 % more bytes."""
    return [
        f.name
        for f in schema
        if f.name != "request_id" and not pa.types.is_floating(getattr(f.type, "value_type", f.type))
    ]


def write_table_stream(
    frames: Iterable[pd.DataFrame], path: str | Path, stage: str, provenance: dict | None = None
) -> int:
    """Write frames one row group at a time as the Parquet file of `stage`, atomically; returns the rows written.

    Memory holds one frame at a time, so a stage can stream a file of any size.
    """
    schema = SCHEMAS[stage]
    meta = {"stage": stage, "emergence_version": __version__, **(provenance or {})}
    schema = schema.with_metadata({"emergence": json.dumps(meta, sort_keys=True)})
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        with pq.ParquetWriter(
            tmp, schema, compression="zstd", write_page_checksum=True, use_dictionary=repeating_columns(schema)
        ) as writer:
            for df in frames:
                missing = [name for name in schema.names if name not in df.columns]
                if missing:
                    raise StageFileError(f"{path}: {stage} table lacks columns {missing}")
                writer.write_table(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False))
                rows += len(df)

    write_atomically(path, write)
    return rows


def iter_table(path: str | Path, stage: str, batch_rows: int = 65536) -> Iterator[pd.DataFrame]:
    """A stage's Parquet file as pandas frames of at most `batch_rows` rows, checked like `read_table`."""
    try:
        # without pre-buffering, memory holds one batch; pre-buffered column chunks stay until the file closes
        source = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20, page_checksum_verification=True)
    except FileNotFoundError:
        raise StageFileError(f"{path}: missing") from None
    except (pa.ArrowInvalid, OSError) as err:
        raise CorruptStageFile(path, err) from None
    check_schema(path, source.schema_arrow, stage)
    try:
        for batch in source.iter_batches(batch_size=batch_rows):
            yield batch.to_pandas()
    except (pa.ArrowInvalid, OSError) as err:
        raise CorruptStageFile(path, err) from None


def check_schema(path: str | Path, schema: pa.Schema, stage: str) -> None:
    """StageFileError naming what differs (missing or extra columns, a column's type, the order) when
    `schema` is not the `stage`'s."""
    expected = SCHEMAS[stage]
    if schema.remove_metadata().equals(expected):
        return
    differences = [
        f"{label} {', '.join(names)}"
        for label, names in (
            ("missing", [n for n in expected.names if n not in schema.names]),
            ("not in the schema:", [n for n in schema.names if n not in expected.names]),
        )
        if names
    ]
    for field in schema:
        want = expected.field(field.name) if field.name in expected.names else field
        if field.type != want.type:
            differences.append(f"{field.name} is {field.type}, not {want.type}")
        elif field.nullable != want.nullable:
            differences.append(f"{field.name} {'may' if field.nullable else 'may not'} hold nulls")
    detail = "; ".join(differences) or f"in another order ({', '.join(schema.names)})"
    raise StageFileError(f"{path}: columns do not match the {stage} schema: {detail}")


def read_table(path: str | Path, stage: str) -> pd.DataFrame:
    """Read a stage's Parquet file, refusing one that is truncated or has the wrong columns."""
    try:
        table = pq.read_table(path, page_checksum_verification=True)
    except FileNotFoundError:
        raise StageFileError(f"{path}: missing") from None
    except (pa.ArrowInvalid, OSError) as err:
        raise CorruptStageFile(path, err) from None
    check_schema(path, table.schema, stage)
    return table.to_pandas()


def unreadable_parquet(root: str | Path) -> list[Path]:
    """Parquet files under `root` whose footer cannot be read: truncated or overwritten by an earlier
    run. Only footers are read, so checking a whole sweep takes a fraction of a second."""
    broken = []
    for path in sorted(Path(root).rglob("*.parquet")):
        try:
            pq.read_metadata(path)
        except (pa.ArrowInvalid, OSError):
            broken.append(path)
    return broken


def read_provenance(path: str | Path) -> dict:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"emergence", b"{}"))


def write_json(obj: Any, path: str | Path) -> None:
    write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", path)


def write_text(text: str, path: str | Path) -> None:
    write_atomically(path, lambda tmp: tmp.write_text(text))
