"""Task items from benchmark datasets on the Hugging Face hub: GSM8K, MMLU and TriviaQA (no context).

The files come through `huggingface_hub.snapshot_download` at a pinned revision, so a run honours
`HF_HUB_OFFLINE` and the HF cache (`HF_HUB_CACHE`) like the model downloads do; the `datasets`
library is not needed because these repos store plain Parquet files. Builders return the task table
of `io.SCHEMAS["tasks"]`: "test" items are evaluated, "train" items are the few-shot exemplar pool.
"""

from __future__ import annotations

import json
import random
import re
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from emergence.errors import EmergenceError
from emergence.scoring.answers import normalise_text

# dataset -> (hub repo, split -> file pattern inside the snapshot); MMLU has one folder per subject.
HUB_FILES: dict[str, tuple[str, dict[str, str]]] = {
    "gsm8k": ("openai/gsm8k", {"test": "main/test-*.parquet", "train": "main/train-*.parquet"}),
    "mmlu": ("cais/mmlu", {"test": "{subject}/test-*.parquet", "train": "{subject}/dev-*.parquet"}),
    "trivia_qa": (
        "mandarjoshi/trivia_qa",
        {"test": "rc.nocontext/validation-*.parquet", "train": "rc.nocontext/train-*.parquet"},
    ),
}
COLUMNS = ["item_id", "split", "input", "target", "digits", "metadata"]
LETTERS = "ABCD"


class HubTaskError(EmergenceError, ValueError):
    """A hub dataset that is unavailable or whose files do not have the expected shape (one-line message)."""


def hub_patterns(dataset: str, subject: str = "") -> list[str]:
    """The file patterns `fetch` needs for one dataset (and MMLU subject), test split first."""
    return [pattern.format(subject=subject) for pattern in HUB_FILES[dataset][1].values()]


def fetch(repo: str, revision: str, patterns: list[str]) -> Path:
    """The snapshot folder of dataset `repo` at `revision` holding files matching `patterns`.

    Offline (or without network) only the local cache is used; every failure becomes one line naming
    the dataset and revision instead of huggingface_hub's multi-line messages.
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"dataset {repo} at revision {revision}"
    reach = "HF_HUB_OFFLINE is set" if constants.is_offline_mode() else "the hub cannot be reached"
    try:
        folder = Path(snapshot_download(repo_id=repo, repo_type="dataset", revision=revision, allow_patterns=patterns))
    except RevisionNotFoundError:
        raise HubTaskError(f"{where}: the revision does not exist on the hub") from None
    except RepositoryNotFoundError:
        raise HubTaskError(f"{where}: the repository does not exist on the hub (or is private or gated)") from None
    except IncompleteSnapshotError:
        raise HubTaskError(f"{where}: the cached snapshot is incomplete and {reach}") from None
    except LocalEntryNotFoundError:
        raise HubTaskError(f"{where}: not in the local Hugging Face cache and {reach}") from None
    except (HfHubHTTPError, HFValidationError) as err:
        raise HubTaskError(f"{where}: {str(err).strip().splitlines()[0]}") from None
    files = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    for pattern in patterns:
        if not any(fnmatch(name, pattern) for name in files):
            raise HubTaskError(f"{where}: no file matches {pattern} in the snapshot")
    return folder


def _read(dataset: str, folder: Path, pattern: str, columns: list[str]) -> pd.DataFrame:
    """All shards matching `pattern` (in name order) with `columns`, plus each row's `_file` and `_row`."""
    repo = HUB_FILES[dataset][0]
    shards = sorted(Path(folder).glob(pattern))
    if not shards:
        raise HubTaskError(f"dataset {repo}: no file matches {pattern} in {folder}")
    frames = []
    for shard in shards:
        name = f"{shard.parent.name}/{shard.name}"
        missing = [column for column in columns if column not in pq.read_schema(shard).names]
        if missing:
            raise HubTaskError(f"dataset {repo}: {name}: missing column {missing[0]!r}")
        frame = pd.read_parquet(shard, columns=columns)
        frames.append(frame.assign(_file=name, _row=range(len(frame))))
    return pd.concat(frames, ignore_index=True)


def _rows(
    dataset: str, folder: Path, split: str, subject: str, columns: list[str], rng: random.Random, count: int | None
):
    """(position, row, error prefix) for a seeded subset of `count` rows of one split (all when None), in file order."""
    pattern = HUB_FILES[dataset][1][split].format(subject=subject)
    frame = _read(dataset, folder, pattern, columns)
    if count is not None and count > len(frame):
        raise HubTaskError(
            f"dataset {HUB_FILES[dataset][0]}: {pattern}: {count} {split} items asked for, only {len(frame)} exist"
        )
    records = frame.to_dict("records")
    for i in range(len(frame)) if count is None else sorted(rng.sample(range(len(frame)), count)):
        yield i, records[i], f"dataset {HUB_FILES[dataset][0]}: {records[i]['_file']}: row {records[i]['_row']}: field"


def _item(item_id: str, split: str, question, target: str, metadata: dict) -> dict:
    return {
        "item_id": item_id,
        "split": split,
        "input": str(question),
        "target": target,
        "digits": 0,
        "metadata": json.dumps(metadata, sort_keys=True),
    }


def _table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS).astype({"digits": "int32"})


def gsm8k_items(folder: Path, seed: int, n_test: int | None = None, n_train: int | None = 0) -> pd.DataFrame:
    """Grade-school word problems; the target is the number on the final `#### ` line, without commas."""
    rng, rows = random.Random(f"{seed}/gsm8k"), []
    for split, count in (("test", n_test), ("train", n_train)):
        for i, row, where in _rows("gsm8k", folder, split, "", ["question", "answer"], rng, count):
            rationale, marker, final = str(row["answer"]).rpartition("####")
            target = final.strip().replace(",", "")
            if not marker or not re.fullmatch(r"-?\d+(\.\d+)?", target):
                raise HubTaskError(f"{where} 'answer' does not end in a '#### <number>' line")
            metadata = {"rationale": rationale.rstrip(), "answer_line": f"#### {final.strip()}"}
            rows.append(_item(f"{split}-{i:05d}", split, row["question"], target, metadata))
    return _table(rows)


def mmlu_items(
    folder: Path, subject: str, seed: int, n_test: int | None = None, n_train: int | None = None
) -> pd.DataFrame:
    """Four-choice questions of one MMLU subject; the target is the correct letter, the pool is `dev`."""
    rng, rows = random.Random(f"{seed}/mmlu/{subject}"), []
    for split, count in (("test", n_test), ("train", n_train)):
        for i, row, where in _rows(
            "mmlu", folder, split, subject, ["question", "subject", "choices", "answer"], rng, count
        ):
            choices, answer = [str(choice) for choice in row["choices"]], row["answer"]
            if len(choices) != len(LETTERS):
                raise HubTaskError(f"{where} 'choices' has {len(choices)} entries, not 4")
            if isinstance(answer, (bool, str, float)) or answer not in range(len(LETTERS)):
                raise HubTaskError(f"{where} 'answer' is {answer!r}, not an index 0-3")
            metadata = {"choices": choices, "answer_index": int(answer), "subject": str(row["subject"])}
            rows.append(_item(f"{subject}-{split}-{i:05d}", split, row["question"], LETTERS[int(answer)], metadata))
    return _table(rows)


def trivia_qa_items(folder: Path, seed: int, n_test: int | None = None, n_train: int | None = 0) -> pd.DataFrame:
    """Closed-book trivia questions; the target is the answer value, metadata the normalised aliases."""
    rng, rows = random.Random(f"{seed}/trivia_qa"), []
    for split, count in (("test", n_test), ("train", n_train)):
        for _, row, where in _rows("trivia_qa", folder, split, "", ["question", "question_id", "answer"], rng, count):
            answer = row["answer"]
            if not isinstance(answer, dict) or not answer.get("value") or answer.get("aliases") is None:
                raise HubTaskError(f"{where} 'answer' lacks a 'value' or 'aliases'")
            aliases = list(dict.fromkeys(normalise_text(a) for a in [answer["value"], *answer["aliases"]]))
            rows.append(
                _item(
                    f"{split}-{row['question_id']}", split, row["question"], str(answer["value"]), {"aliases": aliases}
                )
            )
    return _table(rows)
