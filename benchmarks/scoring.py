"""Score millions of stored generations the way the score stage does: rows per second and peak memory.

    .venv/bin/python benchmarks/scoring.py                      # 10 million generations, four metrics
    .venv/bin/python benchmarks/scoring.py --rows 1000000 --metrics exact_match,char_edit_distance

Writes a generations file of synthetic arithmetic answers (half of them right; byte tokenizer),
then scores it in a fresh process through `emergence.scoring.score_file`, the function behind
`emergence score`, which streams Parquet row groups. Prints generations/s, score rows/s, the
scoring's CPU seconds (steadier than wall time on a shared machine) and the scoring process's peak
resident memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from emergence.io import SCHEMAS

CHUNK = 500_000
TASK_ITEMS = 1000


def lists(values: pa.Array, lengths: np.ndarray) -> pa.ListArray:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def generations_chunk(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    """n generations of one sample each: the answer, or a wrong number, with made-up log-probabilities."""
    answers = rng.integers(0, 10_000, n).astype(str)
    outputs = np.where(rng.random(n) < 0.5, answers, rng.integers(0, 10_000, n).astype(str))
    answer_len, output_len = np.char.str_len(answers), np.char.str_len(outputs)
    ones = np.ones(n, np.int64)
    items = (np.arange(start, start + n) % TASK_ITEMS).astype(str)
    columns = {
        "request_id": pa.array(np.char.add("r", np.arange(start, start + n).astype(str))),
        "item_id": pa.array(np.char.add("i", items)),
        "task": pa.array(np.full(n, "addition")),
        "method": pa.array(np.full(n, "zero_shot")),
        "target": pa.array(answers),
        "answer": pa.array(answers),
        "answer_regex": pa.array(np.full(n, "")),
        "texts": lists(pa.array(outputs), ones),
        "token_ids": lists(lists(pa.array(np.zeros(output_len.sum(), np.int32)), output_len), ones),
        "token_logprobs": lists(lists(pa.array(-rng.random(output_len.sum())), output_len), ones),
        "finish_reasons": lists(pa.array(np.full(n, "stop")), ones),
        "target_token_ids": lists(pa.array(np.zeros(answer_len.sum(), np.int32)), answer_len),
        "target_logprobs": lists(pa.array(-rng.random(answer_len.sum())), answer_len),
        "prompt_tokens": pa.array(np.full(n, 12, np.int32)),
        "engine": pa.array(np.full(n, "vllm")),
        "engine_version": pa.array(np.full(n, "benchmark")),
        "seed": pa.array(np.arange(start, start + n, dtype=np.int64)),
        "choice_scores": lists(pa.array(np.zeros(0)), np.zeros(n, np.int64)),  # not multiple choice
        "choice_logprobs": lists(pa.array(np.zeros(0)), np.zeros(n, np.int64)),
        "prompt_tokens_dropped": pa.array(np.zeros(n, np.int32)),
        "answers": lists(pa.array(answers), ones),
    }
    return pa.table(columns, schema=SCHEMAS["generations"])


def write_inputs(folder: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(folder / "generations.parquet", SCHEMAS["generations"], compression="zstd") as writer:
        for start in range(0, rows, CHUNK):
            writer.write_table(generations_chunk(rng, start, min(CHUNK, rows - start)))
    from emergence.models import build_byte_tokenizer

    build_byte_tokenizer(folder)


SCORER = """
import json, resource, sys, time
from pathlib import Path
import pandas as pd
from transformers import PreTrainedTokenizerFast
from emergence.scoring import score_file
from emergence.scoring.items import batch_tokenizer
folder, metrics = Path(sys.argv[1]), json.loads(sys.argv[2])
tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
tokenize = batch_tokenizer(tokenizer)
tasks = pd.DataFrame({"item_id": [f"i{i}" for i in range(TASK_ITEMS)], "digits": 4})
model = {"model": "bench", "family": "bench", "n_params": 1000, "training_flops": 6e9}
started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
rows = score_file(str(folder / "generations.parquet"), tasks, model, tokenize, metrics, str(folder / "scores.parquet"), {})
seconds, usage = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
cpu_seconds = usage.ru_utime + usage.ru_stime - cpu.ru_utime - cpu.ru_stime
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "score_rows": rows, "peak_rss_mb": usage.ru_maxrss / 1024}))
""".replace("TASK_ITEMS", str(TASK_ITEMS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--metrics", default="exact_match,token_edit_distance,target_logprob,per_token_prob")
    args = parser.parse_args()
    metrics = args.metrics.split(",")
    with tempfile.TemporaryDirectory(prefix="emergence-scoring-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        write_inputs(folder, args.rows)
        print(
            f"wrote {args.rows:,} generations in {time.perf_counter() - started:.0f} s "
            f"({(folder / 'generations.parquet').stat().st_size / 1e6:.0f} MB)",
            flush=True,
        )
        env_path = str(Path(__file__).resolve().parents[1] / "workflow")
        result = subprocess.run(
            [sys.executable, "-c", SCORER, str(folder), json.dumps(metrics)],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": env_path, "PATH": ""},
            check=False,
        )
        if result.returncode:
            sys.exit(result.stderr[-2000:])
        figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"metrics: {', '.join(metrics)}")
    print(
        f"scored {args.rows:,} generations in {figures['seconds']:.1f} s: {args.rows / figures['seconds']:,.0f} generations/s, "
        f"{figures['score_rows'] / figures['seconds']:,.0f} score rows/s"
    )
    print(
        f"CPU time (all threads): {figures['cpu_seconds']:.1f} s, {figures['score_rows'] / figures['cpu_seconds']:,.0f} score rows per CPU second "
        "(wall time depends on what else the machine runs)"
    )
    print(f"peak memory of the scoring process: {figures['peak_rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
