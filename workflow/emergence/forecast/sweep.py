"""A sweep's own models as the forecast stage's input: the importers' long table of per-model means.

The scoring stage leaves one scores file per model, task and prompting method (one row per item and
metric, `io.SCHEMAS["scores"]`); the forecast stage reads the long table results made elsewhere are
imported into (`importers.COLUMNS`, `io.SCHEMAS["imported"]`). `sweep_results` makes the one from the
other: per (model, task, method, metric) the mean over the items scored, its standard error (sample
standard deviation over items / sqrt(items)) and the item count, and the task loss `target_nll`
(-log P(target) / target tokens, nats per token: `analysis.curve.per_token_nll`, the per-token loss the
fits table reports), averaged over items like every metric. N (non-embedding parameters), D (training
tokens) and C come from the model manifests; a model without a known D gets them missing (null), and
the forecast methods that read D do not apply to its family. Each model is one final checkpoint
(`step` null). `largest_models` names the default targets of a sweep's forecast: each family's
largest size (rule `forecast`, README "Forecasts of the sweep's own models").
"""

from __future__ import annotations

import pandas as pd

from emergence.analysis.curve import TARGET_NLL, per_token_nll
from emergence.errors import InputError
from emergence.importers import COLUMNS

KEYS = ["model", "task", "method", "metric"]


def sweep_results(scores: pd.DataFrame, manifests: list[dict], methods: dict[str, dict]) -> pd.DataFrame:
    """The long table (`importers.COLUMNS`, one row per model x task x method x metric, sorted by family,
    model, task, method, metric) of the scores rows of a sweep (`io.SCHEMAS["scores"]` plus `file`,
    the scores file each row was read from). `manifests` are the models' manifests (model, family,
    sha, n_params, n_params_non_embedding, training_tokens, training_flops); `methods` the sweep's
    expanded prompting methods (their `k` is `num_fewshot`, 0 when they have none). NaN values (a
    sampled metric beyond an item's samples) are left out of a mean. InputError for no scores, or a
    model without a manifest."""
    if scores.empty:
        raise InputError("sweep-results: no scores rows")
    by_model = {m["model"]: m for m in manifests}
    unknown = sorted(set(scores["model"]) - set(by_model))
    if unknown:
        raise InputError(f"sweep-results: no manifest for {', '.join(unknown)} (models: {sorted(by_model)})")
    logprob = scores[scores["metric"] == "target_logprob"]
    nll = logprob.assign(metric=TARGET_NLL, value=per_token_nll(logprob["value"], logprob["target_tokens"]))
    rows = pd.concat([scores, nll], ignore_index=True).dropna(subset=["value"])
    grouped = rows.groupby(KEYS, sort=True)
    table = grouped["value"].agg(value="mean", stderr="sem", n_items="count").reset_index()
    table["file"] = grouped["file"].first().to_numpy()
    models = pd.DataFrame(
        [
            {
                "model": name,
                "family": m["family"],
                "revision": m["sha"],
                "n_params": m["n_params"],
                "n_params_non_embedding": m["n_params_non_embedding"],
                "training_tokens": m.get("training_tokens"),
                "training_flops": m.get("training_flops"),
            }
            for name, m in by_model.items()
        ]
    )
    table = table.merge(models, on="model", how="left")
    unknown_methods = sorted(set(table["method"]) - set(methods))
    if unknown_methods:
        raise InputError(f"sweep-results: prompting methods {', '.join(unknown_methods)} not among --methods")
    table = table.assign(
        source_model=table["model"],
        step=pd.array([pd.NA] * len(table), dtype="Int64"),
        final_checkpoint=True,
        num_fewshot=table["method"].map(lambda m: int(methods[m].get("k", 0))).astype("int32"),
        source_metric=table["metric"],
        source_value=table["value"],
        n_items=table["n_items"].astype(float),
        training_tokens=pd.array(table["training_tokens"].astype(float), dtype="Int64"),
        training_flops=table["training_flops"].astype(float),
    )
    return table.sort_values(["family", *KEYS], kind="stable", ignore_index=True)[COLUMNS]


def largest_models(table: pd.DataFrame) -> list[str]:
    """Each family's models at its largest size N (`n_params_non_embedding`) in a long table, sorted:
    the default targets of a sweep's forecast (a one-model family's only model: that family has no
    rungs left and `ladder.build_ladders` skips it with a log line)."""
    n = table["n_params_non_embedding"].astype(float)
    largest = n == n.groupby(table["family"]).transform("max")
    return sorted(set(table.loc[largest, "model"]))
