"""Curves over sizes of results made elsewhere, from their per-item scores: intervals from resampling items.

A format that keeps items (lm-eval 0.4 with `--log_samples`; `importers.lm_eval_samples`) gives each
item's score twice: lm-eval's own per-item value (`source` "lm_eval") and the responses rescored under
this project's metrics (`source` "rescored": exact match after the project's normalisation, token and
character edit distance in the model's tokenizer, the metrics under which an emergent ability may be a
mirage, Schaeffer et al. 2023). Each source's final checkpoints are analysed as a sweep's own scores are
(`analyse_curve`: means with bootstrap intervals over items, fits, breakthroughness, flags, verdicts),
over all items (digit counts are not known for imported items). lm-eval's own metrics are written as
`lm_eval:<metric>` so the two sources never share a curve. A curve whose final checkpoints do not all
have items keeps the means route (`analyse_imported`, `verdicts_imported`), said in the log.
"""

from __future__ import annotations

import logging

import pandas as pd

from emergence.analysis import analyse_curve, verdict_table
from emergence.analysis.curve import COLUMNS, Settings
from emergence.analysis.imported import analyse_imported, verdicts_imported

log = logging.getLogger(__name__)

LM_EVAL = "lm_eval:"  # the prefix of lm-eval's own per-item metrics in fits and verdicts
SOURCES = ("rescored", "lm_eval")
CURVE = ["family", "task", "method"]
CHECKPOINT = ["model", "revision", "task", "num_fewshot"]


def item_fits(items: pd.DataFrame, long: pd.DataFrame, metrics: list[str], settings: Settings) -> pd.DataFrame:
    """The "fits" table over sizes (io.SCHEMAS["fits"]) of an imported source with per-item scores.

    `items`: io.SCHEMAS["imported_scores"]; `long`: the source's selected table (io.SCHEMAS["imported"]),
    whose final checkpoints, tasks and shots decide what is fitted; `metrics`: the config's metrics.
    """
    by_items, rest = split(items, long, metrics)
    frames = [analyse_imported(rest, settings)] if len(rest) else []
    for source, scores in per_source(by_items):
        rows = analyse_curves(scores, settings, None)
        frames.append(named(pd.DataFrame(rows, columns=COLUMNS), source, ["metric", "versus"]))
    fits = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return fits.astype({"scale": "float64", "value": "float64", "n_models": "int32", "n_items": "int32"})


def item_verdicts(items: pd.DataFrame, long: pd.DataFrame, metrics: list[str], settings: Settings) -> pd.DataFrame:
    """The "verdicts" table (io.SCHEMAS["verdicts"]) of the same curves as `item_fits`."""
    by_items, rest = split(items, long, metrics)
    frames = [verdicts_imported(rest, settings)] if len(rest) else []
    for source, scores in per_source(by_items):
        rows: list[dict] = []
        analyse_curves(scores, settings, rows)
        frames.append(named(verdict_table(rows), source, ["metric", "twin"]))
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else verdict_table([])


def analyse_curves(scores: pd.DataFrame, settings: Settings, verdicts: list[dict] | None) -> list[dict]:
    """Every curve's rows (family x task x method, over all items); verdict rows appended to `verdicts`."""
    rows: list[dict] = []
    for (family, task, method), group in scores.groupby(CURVE, sort=True):
        key = {"family": family, "task": task, "method": method, "digits": "all"}
        rows += analyse_curve(group, key, settings, verdicts=verdicts)[0]
    return rows


def split(items: pd.DataFrame, long: pd.DataFrame, metrics: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(The per-item rows of the curves whose final checkpoints all have items, the long table's rows of
    the other curves). Only the final checkpoints `long` keeps and the config's metrics count."""
    final = long[long["final_checkpoint"].astype(bool)]
    kept = items.merge(final[CHECKPOINT].drop_duplicates(), on=CHECKPOINT, how="inner")[items.columns]
    kept = kept[kept["metric"].isin(metrics)]
    need = final.groupby(CURVE)["model"].agg(frozenset)
    have = kept.groupby(CURVE)["model"].agg(frozenset)
    chosen = [key for key in need.index if have.get(key) == need[key]]
    for key in need.index:
        if key not in chosen:
            count = len(have.get(key, frozenset()))
            log.info(
                f"{' '.join(key)}: per-item scores for {count} of {len(need[key])} models;"
                " its curve over sizes is fitted from the means (intervals from their stderr)"
            )
    return kept[among(kept, chosen)], final[~among(final, chosen)]


def among(table: pd.DataFrame, curves: list[tuple]) -> pd.Series:
    """Whether each row's (family, task, method) is one of `curves`."""
    wanted = set(curves)
    keys = table[CURVE].itertuples(index=False, name=None)
    return pd.Series([key in wanted for key in keys], index=table.index, dtype=bool)


def per_source(items: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Each source's rows as the "scores" stage (`lm_eval_samples.as_scores`: one filter per task), every
    checkpoint final here and so named by its model, as in the manifests."""
    from emergence.importers.lm_eval_samples import as_scores

    final = items.assign(revision="main")
    found = [(source, as_scores(final, source)) for source in SOURCES]
    return [(source, scores) for source, scores in found if len(scores)]


def named(table: pd.DataFrame, source: str, columns: list[str]) -> pd.DataFrame:
    """lm-eval's own metrics as `lm_eval:<metric>` (in `columns` where not empty); the rescored as they are."""
    if source == "rescored":
        return table
    return table.assign(**{c: table[c].where(table[c] == "", LM_EVAL + table[c].astype(str)) for c in columns})
