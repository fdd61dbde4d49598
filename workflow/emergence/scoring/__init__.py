"""Scoring: stored generations become the "scores" stage table, one row per item and metric.

`answers` reads and compares answers, `items` builds the table the metrics read, `metrics` holds the
registered metrics; this module streams a generations file through them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emergence.scoring.items import Items, remembering
from emergence.scoring.metrics import expand_metrics, spec


def score_generations(
    generations: pd.DataFrame | pa.Table, tasks: pd.DataFrame, model: dict, tokenize, metrics: list[str]
) -> pd.DataFrame:
    """Score every generation under each named metric, in the long format of the "scores" stage.

    `generations` is a table of the generations stage (pandas or Arrow) and `model` the model's
    manifest (model, family, n_params, training_flops). Metrics that need multiple-choice columns
    are skipped for items without them; sampled metrics give rows only for k up to the samples an
    item has.
    """
    items = Items(generations, tokenize, tasks)
    generations, n = items.table, len(items)
    names = expand_metrics(metrics, int(items.n_samples.max()) if n else 1)
    for name in names:
        spec(name)  # unknown names fail before any work
    codes, ids = pd.factorize(generations["item_id"].to_numpy())
    flops = model.get("training_flops")
    common = {  # the columns every metric's rows share, built once
        "request_id": generations["request_id"],
        "item_id": generations["item_id"],
        "model": pa.repeat(model["model"], n),
        "family": pa.repeat(model["family"], n),
        "task": generations["task"],
        "method": generations["method"],
        "digits": pd.Series(ids).map(tasks.set_index("item_id")["digits"]).astype("int32").to_numpy()[codes],
        "n_params": np.full(n, model["n_params"], np.int64),
        "training_flops": np.full(n, float(flops) if flops else np.nan),
        "target_tokens": items["target_tokens"].to_numpy().astype("int32"),
    }
    tables = []
    for name in names:
        if spec(name).choices and "choice_logprobs" not in items:
            continue
        metric = spec(name)
        values = np.asarray(metric.fn(items), dtype=float)
        tokens = {"target_tokens": metric.tokens(items).astype("int32")} if metric.tokens else {}
        table = pa.table({**common, **tokens, "metric": pa.repeat(name, n), "value": values})
        tables.append(table.filter(~np.isnan(values)) if "@" in name else table)
    # strings stay Arrow strings (no conversion on the way to Parquet), one chunk per metric as concatenated
    # per-metric frames had: the Parquet bytes stay the same
    return pa.concat_tables(tables).to_pandas(types_mapper={pa.string(): pd.ArrowDtype(pa.string())}.get)


def score_file(
    generations: str, tasks: pd.DataFrame, model: dict, tokenize, metrics: list[str], out: str, provenance: dict
) -> int:
    """Score a generations file into a scores file, one Parquet row group at a time; returns the rows written.

    Memory holds one batch of generations and its scores, whatever the file's size.
    """
    from emergence import io

    tokenize = remembering(tokenize)
    batches = (score_generations(batch, tasks, model, tokenize, metrics) for batch in generation_batches(generations))
    with ThreadPoolExecutor(1) as pool:
        return io.write_table_stream(ahead(batches, pool), out, "scores", provenance)


def ahead(frames: Iterator, pool: ThreadPoolExecutor) -> Iterator:
    """The items of `frames`, each next one made in `pool` while the caller handles this one: scoring overlaps writing.

    Holds one item more than plain iteration. The Parquet writer and the tokenizer release the GIL.
    """
    future = pool.submit(next, frames, None)
    while (frame := future.result()) is not None:
        future = pool.submit(next, frames, None)
        yield frame


def generation_batches(path: str, batch_rows: int = 65536) -> Iterator[pa.Table]:
    """The columns scoring reads from a generations file, as Arrow tables, checked and batched as `io.iter_table` does.

    Arrow, not pandas: turning the list columns into Python objects took longer than scoring them.
    The same batches as `io.iter_table` give the scores file the same row groups.
    """
    from emergence import io

    try:
        source = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20, page_checksum_verification=True)
    except FileNotFoundError:
        raise io.StageFileError(f"{path}: missing") from None
    except (pa.ArrowInvalid, OSError) as err:
        raise io.CorruptStageFile(path, err) from None
    io.check_schema(path, source.schema_arrow, "generations")
    try:
        for batch in source.iter_batches(batch_size=batch_rows, columns=list(Items.READS)):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, OSError) as err:
        raise io.CorruptStageFile(path, err) from None
