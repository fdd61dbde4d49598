"""Inference: one engine load per model serves every pending request, through a request cache.

Each prompt row becomes a request keyed by a content hash of (model SHA, engine and its
output-relevant settings, prompt, target, sampling parameters, seed). Answers are appended to the
model's request cache in chunks, each chunk its own atomically written Parquet file, so a killed job
loses at most the chunk in flight and a restarted job sends only what is not cached. The cache lives
outside the rule's declared outputs, because Snakemake deletes the outputs of a failed job.

A job that runs out of engine memory ends with one line; Snakemake retries it with settings scaled
down by attempt (`attempt_settings`), and the retry sends only what the failed attempt left undone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emergence.engines import OPTIONAL_OUTPUTS, Engine, Request, engine_version, fit_to_context, load_engine
from emergence.errors import EmergenceError
from emergence.io import SCHEMAS, StageFileError, read_table, stable_hash, write_atomically, write_table

log = logging.getLogger(__name__)

# Settings that change what an engine computes; memory and batching settings do not.
OUTPUT_SETTINGS = ("dtype", "max_model_len", "tensor_parallel_size", "trust_remote_code")
ANSWER_FIELDS = [
    "texts",
    "token_ids",
    "token_logprobs",
    "finish_reasons",
    "target_token_ids",
    "target_logprobs",
    "prompt_tokens",
    "choice_logprobs",
]
CACHE_SCHEMA = pa.schema(
    [("key", pa.string())]
    + [SCHEMAS["generations"].field(f) for f in [*ANSWER_FIELDS, "prompt_tokens_dropped", "engine", "engine_version"]]
)
# Columns added to the cache after it was first written, and their value in older chunks.
LATER_COLUMNS = {"choice_logprobs": [], "prompt_tokens_dropped": 0}
OUT_OF_MEMORY = ("out of memory", "outofmemory", "no available memory", "kv cache", "cannot allocate memory")


class EngineOutOfMemory(EmergenceError, RuntimeError):
    """The engine ran out of (GPU or host) memory; a retry with smaller settings may succeed."""


def attempt_settings(settings: dict, attempt: int) -> dict:
    """Engine settings for Snakemake's `attempt` (1, 2, ...) of a job: each retry after a failure
    halves the concurrent sequences and takes 15 % less of the accelerator's memory.

    The context length (max_model_len) is kept: shortening it would change the answers of long
    requests and the keys of every cached request, so a retried sweep would no longer equal an
    uninterrupted one.
    """
    if attempt <= 1:
        return settings
    return {
        **settings,
        "max_num_seqs": max(1, settings.get("max_num_seqs", 256) >> (attempt - 1)),
        "memory_fraction": round(settings["memory_fraction"] * 0.85 ** (attempt - 1), 4),
    }


def is_out_of_memory(err: BaseException) -> bool:
    return (
        isinstance(err, MemoryError)
        or type(err).__name__ == "OutOfMemoryError"
        or any(phrase in str(err).lower() for phrase in OUT_OF_MEMORY)
    )


def request_key(model_identity: str, engine: str, settings: dict, row: dict) -> str:
    """The cache key of a request: model identity (`models.model_identity`), engine, output settings, request."""
    return stable_hash(
        {
            "model_sha": model_identity,
            "engine": engine_version(engine),
            "settings": {k: settings.get(k) for k in OUTPUT_SETTINGS},
            # answers lacking an optional output are kept apart; full ones keep the keys they had
            **{output: False for output in OPTIONAL_OUTPUTS if settings.get(output) is False},
            # a request without choices keeps the key it had before choices existed
            "request": {k: v for k, v in asdict(_request(row)).items() if k != "choices" or v},
        }
    )


class RequestCache:
    """A folder of Parquet chunks of answered requests for one model."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def chunks(self) -> list[Path]:
        return sorted(self.folder.glob("chunk-*.parquet"))

    def load(self) -> pd.DataFrame:
        """Every cached answer; a chunk that cannot be read is removed (its requests are re-sent)."""
        tables = []
        for chunk in self.chunks():
            try:
                table = pq.read_table(chunk, page_checksum_verification=True)
                for name, value in LATER_COLUMNS.items():
                    if name not in table.column_names:
                        field = CACHE_SCHEMA.field(name)
                        table = table.add_column(
                            CACHE_SCHEMA.names.index(name), field, pa.array([value] * len(table), field.type)
                        )
                if not table.schema.remove_metadata().equals(CACHE_SCHEMA):
                    raise ValueError("wrong columns")
                tables.append(table)
            except (pa.ArrowInvalid, OSError, ValueError) as err:
                log.warning(f"request cache: dropping unreadable chunk {chunk} ({err})")
                chunk.unlink()
        if not tables:
            return CACHE_SCHEMA.empty_table().to_pandas()
        return pa.concat_tables(tables).to_pandas().drop_duplicates("key", keep="first")

    def append(self, answers: pd.DataFrame) -> None:
        existing = self.chunks()
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        path = self.folder / f"chunk-{number:06d}.parquet"
        table = pa.Table.from_pandas(answers[CACHE_SCHEMA.names], schema=CACHE_SCHEMA, preserve_index=False)
        write_atomically(path, lambda tmp: pq.write_table(table, tmp, write_page_checksum=True))


@dataclass(frozen=True)
class InferenceJob:
    """One model's inference: what the `infer` rule passes (engine settings as `plan.engine_settings` makes them)."""

    model: str
    manifest: dict  # the model's manifest: path, sha, trust_remote_code
    engine: str  # a registered engine name
    settings: dict
    cache_dir: Path
    chunk_size: int  # requests per engine call; the cache is appended after each
    stats_file: Path  # one JSON line of counts per run
    attempt: int = 1  # Snakemake's attempt: each retry after running out of memory asks for less
    engine_factory: Callable[[str, str, dict], Engine] = load_engine

    def log(self, message: str) -> None:
        log.info(f"inference {self.model}: {message}")


def run_inference(job: InferenceJob, prompt_files: list[str], output_files: list[str]) -> dict:
    """Answer every prompt of every task x method for one model, loading its engine at most once.

    Writes one generations file per prompts file and returns the run's counts (requests, cached, sent,
    engine loads). Raises EngineOutOfMemory (a retry sends the rest) and whatever the engine raises.
    """
    from emergence.models import model_identity

    settings = {**job.settings, "trust_remote_code": job.manifest.get("trust_remote_code", False)}
    identity = model_identity(job.manifest)
    per_file = [read_table(p, "prompts") for p in prompt_files]
    for frame in per_file:
        frame["key"] = [request_key(identity, job.engine, settings, row) for row in frame.to_dict("records")]
    truncate = settings.get("long_prompts", "error") == "truncate"
    cache = RequestCache(job.cache_dir)
    cached = set(cache.load()["key"])
    per_file = [_resolve_truncated(frame, cached, truncate) for frame in per_file]
    prompts = pd.concat(per_file, ignore_index=True)
    pending = prompts[~prompts["key"].isin(cached)].drop_duplicates("key")
    stats = {"model": job.model, "requests": len(prompts), "cached": len(prompts) - len(pending), "sent": 0}
    stats |= {"engine_loads": 0, "attempt": job.attempt}
    job.log(f"{len(prompts)} requests, {stats['cached']} cached, {len(pending)} to run")
    if len(pending):
        _answer_pending_or_explain(job, pending, attempt_settings(settings, job.attempt), cache, stats)
    answered = cache.load().set_index("key")
    per_file = [_resolve_truncated(frame, set(answered.index), truncate) for frame in per_file]
    provenance = {"model": job.model, "model_sha": job.manifest["sha"]}
    for frame, out in zip(per_file, output_files):
        write_table(_generations(frame, answered), out, "generations", provenance)
    _append_stats(job.stats_file, stats)
    return stats


def _answer_pending_or_explain(job: InferenceJob, pending, settings: dict, cache, stats: dict) -> None:
    """`_answer_pending`, with running out of memory said in one line (the answers so far stay cached)."""
    try:
        _answer_pending(job, pending, settings, cache, stats)
    except Exception as err:
        if is_out_of_memory(err):
            first_line = (str(err).splitlines() or [""])[0][:200]
            raise EngineOutOfMemory(
                f"model {job.model} ran out of memory on attempt {job.attempt} ({type(err).__name__}: {first_line});"
                f" {stats['sent']} answers are cached, a retry sends the rest with smaller settings"
            ) from None
        raise


def _answer_pending(job: InferenceJob, pending, settings: dict, cache, stats: dict) -> None:
    """Load the engine once, fit every pending request to its context, answer them chunk by chunk."""
    started = time.perf_counter()
    engine = job.engine_factory(job.engine, job.manifest["path"], settings)
    stats["engine_loads"] = 1
    stats["load_seconds"] = round(time.perf_counter() - started, 3)
    truncate = settings.get("long_prompts", "error") == "truncate"
    fitted = [
        fit_to_context(
            engine.tokenizer,
            _request(row),
            settings["max_model_len"],
            truncate,
            f"{row['task']}/{row['method']}/{row['request_id']}",
        )
        for row in pending.to_dict("records")
    ]
    stats["truncated"] = sum(dropped > 0 for _, dropped in fitted)
    keys = [truncated_key(key) if dropped else key for key, (_, dropped) in zip(pending["key"], fitted)]
    total = stats["cached"] + len(pending)
    chunk_size = job.chunk_size
    for start in range(0, len(pending), chunk_size):
        chunk = fitted[start : start + chunk_size]
        job.log(f"sending {len(chunk)} requests")
        answers = _answers_frame(pd.Series(keys[start : start + chunk_size]), engine.run([r for r, _ in chunk]), engine)
        answers["prompt_tokens_dropped"] = [dropped for _, dropped in chunk]
        cache.append(answers)
        stats["sent"] += len(chunk)
        job.log(f"{stats['cached'] + stats['sent']}/{total} requests answered")


def truncated_key(key: str) -> str:
    """The key a request's answer is cached under when its prompt was cut to fit (engine.long_prompts:
    truncate): never the key of the whole prompt, so switching back to `error` never serves it."""
    return stable_hash({"key": key, "long_prompts": "truncate"})


def _resolve_truncated(frame: pd.DataFrame, cached: set[str], truncate: bool) -> pd.DataFrame:
    """Under `truncate`, point each request whose answer is cached as truncated at that answer's key."""
    if not truncate:
        return frame
    alternative = frame["key"].map(truncated_key)
    use = ~frame["key"].isin(cached) & alternative.isin(cached)
    return frame.assign(key=frame["key"].where(~use, alternative))


def _request(row: dict) -> Request:
    return Request(
        prompt=row["prompt"],
        target=row["target"],
        max_tokens=int(row["max_tokens"]),
        temperature=float(row["temperature"]),
        top_p=float(row["top_p"]),
        n=int(row["n"]),
        seed=int(row["seed"]),
        stop=tuple(row["stop"]),
        choices=tuple(row.get("choices", ())),
    )


def _answers_frame(keys: pd.Series, answers: list, engine: Engine) -> pd.DataFrame:
    frame = pd.DataFrame([{f: getattr(a, f) for f in ANSWER_FIELDS} for a in answers])
    frame.insert(0, "key", list(keys))
    frame["engine"], frame["engine_version"] = engine.name, engine.version
    return frame


def _generations(rows: pd.DataFrame, answered: pd.DataFrame) -> pd.DataFrame:
    missing = rows.loc[~rows["key"].isin(answered.index), "request_id"]
    if len(missing):
        raise StageFileError(f"request cache lacks {len(missing)} answers, e.g. {missing.iloc[0]}")
    return rows.join(answered, on="key").reset_index(drop=True)


def _append_stats(path: str | Path, stats: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(stats, sort_keys=True) + "\n")
