"""The OLMo model ladder folder (Bhagia et al. 2024, github.com/allenai/OLMo-ladder `src/scripts/paper/`).

A ladder folder holds `final.json` (the paper's main configuration: per size its runs, the
non-embedding parameter count `n`, and `mode`: "train" for the ladder's rungs, "eval" for the targets)
and `ladder-runs/*.csv`, one row per evaluated checkpoint of a run. Only the runs `final.json` names
are read; the other files (0.5xC runs, 3B, reruns, longer target series) are reported and skipped.

Columns become rows of the long table: `eval/downstream/<task>_rc_<k>shot_len_norm` is `acc_norm`
(accuracy with the choice's log-likelihood per character), `..._acc` is `multiple_choice_grade`,
`eval/downstream_bpb/<task>_rc_<k>shot_bpb` is `bits_per_byte` (the task loss: bits per byte of the
correct continuation), and `eval/<set>-validation/CrossEntropyLoss` is `target_nll` (nats per token)
of the task `<set>`. D of a checkpoint is `throughput/total_tokens`, else `_step` x
`batch_size_in_tokens`. MMLU is also given as `mmlu_avg_test`: the four test subsets weighted by
their share of the test items, as the repository's `WEIGHT_BY_KEY` does.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from emergence.errors import InputError
from emergence.importers import (
    COLUMNS,
    ResultsImporter,
    method_of,
    refuse_duplicates,
    refuse_empty,
    refuse_impossible,
    refuse_percentages,
    results_importer,
)
from emergence.importers.metadata import REGISTRY

log = logging.getLogger(__name__)

FAMILY = "olmo-ladder"
DOWNSTREAM = re.compile(r"eval/downstream(?:_bpb)?/(?P<task>.+)_rc_(?P<shots>\d+)shot_(?P<kind>len_norm|acc|bpb)$")
LM_LOSS = re.compile(r"eval/(?P<task>.+)-validation/CrossEntropyLoss$")
KINDS = {"len_norm": "acc_norm", "acc": "multiple_choice_grade", "bpb": "bits_per_byte"}
# MMLU test subsets' shares of the 14,042 test items (OLMo-ladder src/scaling/task_utils.py, WEIGHT_BY_KEY)
MMLU_WEIGHTS = {"mmlu_stem_test": 0.215, "mmlu_humanities_test": 0.335, "mmlu_social_sciences_test": 0.219}
MMLU_WEIGHTS["mmlu_other_test"] = 0.231


@results_importer
class OlmoLadder(ResultsImporter):
    name = "olmo_ladder"
    pattern = "final.json"
    columns: ClassVar[tuple[str, ...]] = ("_step", "throughput/total_tokens", "batch_size_in_tokens")

    def read(self, path: Path, models: Path = REGISTRY) -> pd.DataFrame:
        """The long table of every run `final.json` names; N comes from `final.json`, not the registry."""
        config = read_config(path)
        frames, used = [], set()
        for label, entry in config.items():
            for run_path in entry["paths"]:
                file = path / "ladder-runs" / Path(run_path).name
                used.add(file.name)
                frames.append(run_rows(file, label, int(entry["n"])))
                refuse_empty(frames[-1], file)
        unused = sorted(p.name for p in (path / "ladder-runs").glob("*.csv") if p.name not in used)
        if unused:
            log.info(f"olmo_ladder: {len(unused)} files not in final.json skipped: {', '.join(unused)}")
        refuse_empty(frames, path)
        table = pd.concat(frames, ignore_index=True)
        refuse_impossible(table)
        refuse_percentages(table)
        refuse_duplicates(table)
        log.info(f"olmo_ladder: {len(used)} runs, {len(table)} rows")
        return table[COLUMNS]


def targets(path: str | Path) -> list[str]:
    """The models `final.json` marks `"mode": "eval"`: the ladder's targets (7B-4T, 13B-5T)."""
    return [label for label, entry in read_config(Path(path)).items() if entry["mode"] == "eval"]


def read_config(path: Path) -> dict:
    file = path / "final.json" if path.is_dir() else path
    try:
        config = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{file}: cannot read the ladder configuration ({err})") from None
    for label, entry in config.items():
        if not isinstance(entry, dict) or not {"paths", "n", "mode"} <= set(entry):
            raise InputError(f"{file}: entry {label!r} needs paths, n and mode")
    return config


def run_rows(file: Path, label: str, n: int) -> pd.DataFrame:
    """One run's checkpoints as long-table rows (see the module docstring for the names)."""
    try:
        wide = pd.read_csv(file)
    except (OSError, pd.errors.ParserError) as err:
        raise InputError(f"{file}: cannot read the run ({err})") from None
    tokens = checkpoint_tokens(file, wide)
    multiple = file.stem.split("-")[1] if re.match(r"\d", file.stem) else ""
    model = f"{label}-{multiple}" if multiple else label
    steps = wide["_step"].astype("Int64") if "_step" in wide else pd.array([pd.NA] * len(wide), dtype="Int64")
    values = wide[[c for c in wide.columns if measured(c)]]
    scale = pd.DataFrame({"step": steps, "training_tokens": tokens})
    long = pd.concat([scale, values], axis=1).melt(id_vars=["step", "training_tokens"])
    long = pd.concat([long, mmlu_rows(wide, tokens, steps)], ignore_index=True)
    keys = long["variable"].map(parse_key)
    long = long.assign(task=[k[0] for k in keys], num_fewshot=[k[1] for k in keys], metric=[k[2] for k in keys]).dropna(
        subset=["value"]
    )
    last = long["training_tokens"] == tokens.max()
    return long.assign(
        family=FAMILY,
        model=model,
        source_model=file.stem,
        revision=["" if pd.isna(s) else f"step{s}" for s in long["step"]],
        final_checkpoint=last,
        method=long["num_fewshot"].map(method_of),
        source_metric=long["variable"],
        stderr=np.nan,
        source_value=long["value"],
        n_items=np.nan,
        n_params=n,
        n_params_non_embedding=n,
        training_flops=6.0 * n * long["training_tokens"],
        file=str(file),
    )


def measured(column: str) -> bool:
    return bool(DOWNSTREAM.match(column) or LM_LOSS.match(column))


def parse_key(key: str) -> tuple[str, int, str]:
    """(task, shots, metric) of a column name."""
    match = DOWNSTREAM.match(key)
    if match:
        return match["task"], int(match["shots"]), KINDS[match["kind"]]
    match = LM_LOSS.match(key)
    assert match is not None  # only measured columns are melted
    return match["task"], 0, "target_nll"


def checkpoint_tokens(file: Path, wide: pd.DataFrame) -> pd.Series:
    """D of each checkpoint: tokens seen, or steps x tokens per batch."""
    if "throughput/total_tokens" in wide:
        return wide["throughput/total_tokens"].astype(float)
    if {"_step", "batch_size_in_tokens"} <= set(wide):
        return wide["_step"].astype(float) * wide["batch_size_in_tokens"].astype(float)
    raise InputError(f"{file}: no throughput/total_tokens nor _step and batch_size_in_tokens column (D unknown)")


def mmlu_rows(wide: pd.DataFrame, tokens: pd.Series, steps: pd.Series) -> pd.DataFrame:
    """`mmlu_avg_test` rows: the test subsets' item-weighted mean of each kind the run has."""
    frames = []
    for kind, suffix in (("len_norm", "downstream"), ("bpb", "downstream_bpb")):
        columns = [f"eval/{suffix}/{task}_rc_5shot_{kind}" for task in MMLU_WEIGHTS]
        if set(columns) <= set(wide.columns):
            value = wide[columns].to_numpy() @ np.array(list(MMLU_WEIGHTS.values())) / sum(MMLU_WEIGHTS.values())
            variable = f"eval/{suffix}/mmlu_avg_test_rc_5shot_{kind}"
            frames.append(
                pd.DataFrame({"step": steps, "training_tokens": tokens, "variable": variable, "value": value})
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
