"""A curve's data: its models in order, item x model matrices per metric, and the bootstrap weights.

The items are resampled with replacement, the same draw for every model and metric (the items are
shared, so a hard item is hard for all sizes). Row 0 of every replicate array is the point estimate.
`Rows` collects a curve's rows of the "fits" table (io.SCHEMAS["fits"]): typed columns, so a reader
selects by column and never parses a string.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from emergence import measures
from emergence.errors import InputError
from emergence.io import stable_hash
from emergence.scoring.metrics import BOUNDED, check_sigmoid_metrics, spec

X_LABELS = {"n_params": "parameters", "training_flops": "training FLOPs"}
TARGET_NLL = "target_nll"  # per-token loss, -log P(target) / target tokens: what power laws fit
# log-probabilities whose per-item token counts a curve keeps: of the whole target, and of the answer in it
LOGPROB_METRICS = ("target_logprob", "answer_logprob")
CALIBRATION_METRICS = ("confidence", "brier_binary")  # about the model's certainty, not its performance
CURVE_POINTS = 60  # points of each fitted curve stored for figures
COLUMNS = [
    "family",
    "task",
    "method",
    "digits",
    "metric",
    "x",
    "fit",
    "parameter",
    "model",
    "scale",
    "versus",
    "value",
    "ci_low",
    "ci_high",
    "n_models",
    "n_items",
    "status",
]
CALIBRATION_COLUMNS = [
    "family",
    "task",
    "method",
    "digits",
    "model",
    "n_params",
    "bin",
    "lower",
    "upper",
    "count",
    "confidence",
    "accuracy",
]


@dataclass(frozen=True)
class Settings:
    """The `fitting` block of the config (see config/schema.yaml for each key)."""

    min_models: int = 3
    x_axes: tuple[str, ...] = ("n_params", "training_flops")
    sigmoid_metrics: tuple[str, ...] = ("exact_match",)
    bootstrap: int = 200
    confidence_level: float = 0.9
    huber_delta: float = 1e-3
    extrapolate: int = 1
    resolution_items: float = 3.0
    emergent_breakthroughness: float = 10.0
    smooth_breakthroughness: float = 5.0
    calibration_bins: int = 10
    seed: int = 0

    @classmethod
    def from_config(cls, fitting: dict, seed: int) -> Settings:
        """Settings from a `fitting` block; a key this class does not know is an error, never ignored."""
        unknown = sorted(set(fitting) - set(cls.__dataclass_fields__) | ({"seed"} & set(fitting)))
        if unknown:
            known = [f for f in cls.__dataclass_fields__ if f != "seed"]
            close = difflib.get_close_matches(unknown[0], known, n=1)
            raise InputError(
                f"fitting: unknown setting {', '.join(map(repr, unknown))} (known: {', '.join(known)})"
                + (f"; did you mean {close[0]!r}?" if close else "")
            )
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in fitting.items()}
        check_sigmoid_metrics(values.get("sigmoid_metrics", ()))
        return cls(**values, seed=seed)


def per_token_nll(logprob: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """`target_nll` of each item: -log P(target) / its tokens (nats per token; an empty target counts as
    one token), from `target_logprob` (natural log) and the scores' `target_tokens`; any shape, elementwise."""
    return -np.asarray(logprob, float) / np.maximum(np.asarray(tokens, float), 1.0)


def discontinuous(metric: str) -> bool:
    return metric != TARGET_NLL and spec(metric).discontinuous


def sigmoid_applies(metric: str, settings: Settings) -> bool:
    """Sigmoids are fitted to the configured metrics (each refit on every bootstrap replicate: the costly part)."""
    return metric in settings.sigmoid_metrics and (discontinuous(metric) or metric in BOUNDED)


class Curve:
    """One curve's item x model matrices per metric and its bootstrap weights."""

    def __init__(self, scores: pd.DataFrame, key: dict, settings: Settings, items_per_model: int | None = None):
        self.key, self.settings = key, settings
        # smallest first along the curve's own axis: the first configured axis known for every model
        models = scores.drop_duplicates("model")
        known = [axis for axis in settings.x_axes if models[axis].notna().all()]
        models = models.sort_values([*known, *[a for a in X_LABELS if a not in known], "model"], na_position="last")
        self.models = list(models["model"])
        self.x = {axis: models[axis].to_numpy(float) for axis in X_LABELS}
        # per metric: the items' values, and the tokens each value covers
        items, metrics, (values, tokens) = item_cube(scores, ("value", "target_tokens"), self.models)
        self.nan: dict[str, list[str]] = {m: [] for m in pd.unique(scores["metric"])}
        missing = scores.loc[scores["value"].isna().to_numpy(), ["metric", "model"]]
        for metric, part in missing.groupby("metric", sort=False):
            self.nan[metric] = sorted(part["model"].unique())
        self.values = {m: values[i] for i, m in enumerate(metrics)}
        self.tokens = {m: tokens[metrics.get_loc(m)] for m in LOGPROB_METRICS if m in self.values}
        if "target_logprob" in self.values:
            self.values[TARGET_NLL] = per_token_nll(self.values["target_logprob"], self.tokens["target_logprob"])
            self.nan[TARGET_NLL] = self.nan["target_logprob"]
        # keep the items every model has under every usable metric (a metric with NaN scores is not used)
        usable = [v for m, v in self.values.items() if not self.nan[m]]
        complete = ~np.isnan(np.stack(usable)).any(axis=(0, 2)) if usable else np.ones(len(items), bool)
        self.values = {m: v[complete] for m, v in self.values.items()}
        self.tokens = {m: t[complete] for m, t in self.tokens.items()}
        self.n_items = len(next(iter(self.values.values()))) if self.values else 0
        self.items_per_model = items_per_model or self.n_items  # what a mean is taken over: its resolution
        rng = np.random.default_rng([settings.seed, int(stable_hash(key)[:12], 16)])
        resampled = rng.multinomial(
            self.n_items, np.full(self.n_items, 1.0 / max(self.n_items, 1)), size=settings.bootstrap
        )
        self.weights = np.vstack([np.ones((1, self.n_items)), resampled]).astype(float)  # (1 + B) x items
        # (metric, axis, fit, models fitted) -> the fits (analysis.scaling.prefit), or why the point fit failed
        self.fitted: dict[tuple[str, str, str, int], list[dict | None] | ValueError] = {}
        self._means: dict[str, np.ndarray] = {}
        self._mirage: dict[str, np.ndarray] = {}

    def means(self, metric: str) -> np.ndarray:
        """(1 + B) x models: the point estimate, then every bootstrap replicate (computed once, read-only)."""
        if metric not in self._means:
            means = self.weights @ self.values[metric] / self.n_items
            means.flags.writeable = False
            self._means[metric] = means
        return self._means[metric]

    def mirage_prediction(self, logprob: str) -> np.ndarray:
        """(1 + B) x models: `measures.mirage_prediction` from `logprob` (a LOGPROB_METRICS entry) and its
        tokens, computed once (the flags and the verdicts' twin both use it), read-only."""
        if logprob not in self._mirage:
            predicted = measures.mirage_prediction(self.values[logprob], self.tokens[logprob], self.weights)
            predicted.flags.writeable = False
            self._mirage[logprob] = predicted
        return self._mirage[logprob]

    def data_problem(self, metric: str) -> str:
        """Why this metric's values cannot be used at all, or ""."""
        if self.nan.get(metric):
            return f"not fittable: NaN {metric} values for {', '.join(self.nan[metric])}"
        if self.n_items == 0:
            return "not fittable: no item scored for every model"
        return ""

    def problem(self, metric: str, axis: str | None = None) -> str:
        """Why this metric cannot be fitted or measured across scale (on this x axis), or ""."""
        if len(self.models) < self.settings.min_models:
            return f"not fittable: too few models ({len(self.models)} < {self.settings.min_models})"
        if self.data_problem(metric):
            return self.data_problem(metric)
        if axis and np.isnan(self.x[axis]).any():
            unknown = [m for m, v in zip(self.models, self.x[axis]) if np.isnan(v)]
            return f"not fittable: {X_LABELS[axis]} unknown for {', '.join(unknown)}"
        if axis and len(np.unique(self.x[axis])) < self.settings.min_models:  # one size (or two): no curve
            sizes = len(np.unique(self.x[axis]))
            counted = f"{sizes} size{'s' * (sizes != 1)} in {X_LABELS[axis]}"
            return f"not fittable: {len(self.models)} models at {counted} (< {self.settings.min_models})"
        if np.ptp(self.means(metric)[0]) == 0:
            return f"not fittable: {metric} is {self.means(metric)[0, 0]:g} for every model"
        return ""


def item_cube(
    scores: pd.DataFrame, columns: tuple[str, ...], models: list[str]
) -> tuple[pd.Index, pd.Index, list[np.ndarray]]:
    """(items sorted, metrics sorted, per column of `columns` `scores[column]` as metrics x items x
    `models`): each cell the first non-null value of its rows in table order, NaN where it has none;
    every item and metric of the table, those of pandas' `pivot_table(index="item_id", columns=["metric",
    "model"], aggfunc="first", dropna=False)`, without its per-group Python."""
    item, items = pd.factorize(scores["item_id"], sort=True)
    metric, metrics = pd.factorize(scores["metric"], sort=True)
    model = pd.Index(models).get_indexer(scores["model"])
    shape = (len(metrics), len(items), len(models))
    cubes = []
    for column in columns:
        values = scores[column].to_numpy(dtype=float, na_value=np.nan)
        known = ~np.isnan(values)
        cells = np.ravel_multi_index((metric[known], item[known], model[known]), shape)
        cube = np.full(int(np.prod(shape)), np.nan)
        where, first = np.unique(cells, return_index=True)  # the first row of every cell with a value
        cube[where] = values[known][first]
        cubes.append(cube.reshape(shape))
    return pd.Index(items), pd.Index(metrics), cubes


def intervals(replicates: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals of rows of bootstrap replicates (rows x B, the point estimates left out),
    each over its finite values; NaN where a row has none. One call for many rows: a curve has thousands.

    The numbers of `np.nanpercentile(..., axis=1)` (linear interpolation between order statistics),
    which loops over rows in Python: rows with every replicate finite go to `np.percentile` at once,
    the others in groups of as many finite values, each row's finite values first (sorted)."""
    finite = np.isfinite(replicates)
    tail = 100 * (1 - level) / 2
    low, high = np.full(len(replicates), np.nan), np.full(len(replicates), np.nan)
    counts = finite.sum(axis=1)
    for count in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == count)
        values = replicates[rows]
        if count < replicates.shape[1]:  # the finite values first: NaN sorts last, +-inf made NaN
            values = np.sort(np.where(finite[rows], values, np.nan), axis=1)[:, :count]
        low[rows], high[rows] = np.percentile(values, [tail, 100 - tail], axis=1)
    return low, high


class Rows:
    """Collects rows of one curve in the "fits" layout."""

    def __init__(self, curve: Curve):
        self.curve = curve
        self.rows: list[dict] = []
        self.samples: list[np.ndarray] = []  # per row: the point estimate, then the replicates

    def add(
        self,
        metric: str,
        x: str,
        fit: str,
        parameter: str,
        samples,
        status: str = "ok",
        *,
        model: str = "",
        scale: float = np.nan,
        versus: str = "",
    ) -> None:
        """One row: `samples` is the point estimate then the replicates; `model` names the model a row is
        about, `scale` the x value of a fitted-curve point, `versus` the continuous metric a flag compares."""
        samples = np.atleast_1d(np.asarray(samples, float))
        self.samples.append(samples)
        self.rows.append(
            {
                **self.curve.key,
                "metric": metric,
                "x": x,
                "fit": fit,
                "parameter": parameter,
                "model": model,
                "scale": scale,
                "versus": versus,
                "value": samples[0],
                "n_models": len(self.curve.models),
                "n_items": self.curve.items_per_model,
                "status": status,
            }
        )

    def finished(self) -> list[dict]:
        """The rows with their intervals, computed for all rows with as many replicates at once."""
        level = self.curve.settings.confidence_level
        by_length: dict[int, list[int]] = {}
        for index, samples in enumerate(self.samples):
            by_length.setdefault(len(samples), []).append(index)
        for indices in by_length.values():
            low, high = intervals(np.stack([self.samples[i][1:] for i in indices]), level)
            for i, lo, hi in zip(indices, low.tolist(), high.tolist()):
                self.rows[i]["ci_low"], self.rows[i]["ci_high"] = lo, hi
        return self.rows

    def not_fittable(self, metric: str, x: str, fit: str, status: str) -> None:
        self.add(metric, x, fit, "", [np.nan], status)
