"""Per task x method: per-model means, scaling fits and emergence measures, each with a bootstrap interval.

A curve is one family's models on one task x method x digit count (or all digits). Its items are
resampled with replacement, the same draw for every model and metric (the items are shared, so a
hard item is hard for all sizes), and every mean, fit and measure is recomputed on each replicate;
intervals are percentiles of the replicates. Row 0 of every replicate array is the point estimate.
Everything ends up in the long "fits" table, one row per (metric, x axis, fit, parameter), with a
status that says why a row holds no number.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from emergence import fits, measures
from emergence.errors import InputError
from emergence.io import stable_hash
from emergence.scoring.metrics import spec

X_LABELS = {"n_params": "parameters", "training_flops": "training FLOPs"}
TARGET_NLL = "target_nll"  # per-token loss, -log P(target) / target tokens: what power laws fit
CALIBRATION_METRICS = ("confidence", "brier_binary")  # about the model's certainty, not its performance
BOUNDED = ("per_token_prob", "correct_choice_prob")  # continuous, in [0, 1], higher is better: a sigmoid can fit them
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
            raise InputError(
                f"fitting: unknown setting {', '.join(map(repr, unknown))}"
                f" (known: {', '.join(f for f in cls.__dataclass_fields__ if f != 'seed')})"
            )
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in fitting.items()}
        return cls(**values, seed=seed)


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
        wide = scores.pivot_table(
            index="item_id", columns=["metric", "model"], values="value", aggfunc="first", dropna=False
        )
        tokens = scores[scores["metric"] == "target_logprob"].pivot_table(
            index="item_id", columns="model", values="target_tokens", aggfunc="first"
        )
        self.nan = {
            m: sorted(scores.loc[(scores["metric"] == m) & scores["value"].isna(), "model"].unique())
            for m in scores["metric"].unique()
        }
        self.values = {
            m: wide[m].reindex(columns=self.models).to_numpy(float) for m in wide.columns.get_level_values(0).unique()
        }
        if "target_logprob" in self.values:
            self.tokens = tokens.reindex(index=wide.index, columns=self.models).to_numpy(float)
            self.values[TARGET_NLL] = -self.values["target_logprob"] / np.maximum(self.tokens, 1.0)
            self.nan[TARGET_NLL] = self.nan["target_logprob"]
        # keep the items every model has under every usable metric (a metric with NaN scores is not used)
        usable = [v for m, v in self.values.items() if not self.nan[m]]
        complete = ~np.isnan(np.stack(usable)).any(axis=(0, 2)) if usable else np.ones(len(wide), bool)
        self.values = {m: v[complete] for m, v in self.values.items()}
        if "target_logprob" in self.values:
            self.tokens = self.tokens[complete]
        self.n_items = len(next(iter(self.values.values()))) if self.values else 0
        self.items_per_model = items_per_model or self.n_items  # what a mean is taken over: its resolution
        rng = np.random.default_rng([settings.seed, int(stable_hash(key)[:12], 16)])
        resampled = rng.multinomial(
            self.n_items, np.full(self.n_items, 1.0 / max(self.n_items, 1)), size=settings.bootstrap
        )
        self.weights = np.vstack([np.ones((1, self.n_items)), resampled]).astype(float)  # (1 + B) x items

    def means(self, metric: str) -> np.ndarray:
        """(1 + B) x models: the point estimate, then every bootstrap replicate."""
        return self.weights @ self.values[metric] / self.n_items

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
        if np.ptp(self.means(metric)[0]) == 0:
            return f"not fittable: {metric} is {self.means(metric)[0, 0]:g} for every model"
        return ""


def interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of the bootstrap replicates (row 0, the point estimate, excluded)."""
    replicates = np.asarray(samples, float)[1:]
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) == 0:
        return np.nan, np.nan
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return float(low), float(high)


class Rows:
    """Collects rows of one curve in the "fits" layout."""

    def __init__(self, curve: Curve):
        self.curve = curve
        self.rows: list[dict] = []

    def add(self, metric: str, x: str, fit: str, parameter: str, samples, status: str = "ok") -> None:
        samples = np.atleast_1d(np.asarray(samples, float))
        low, high = interval(samples, self.curve.settings.confidence_level)
        self.rows.append(
            {
                **self.curve.key,
                "metric": metric,
                "x": x,
                "fit": fit,
                "parameter": parameter,
                "value": samples[0],
                "ci_low": low,
                "ci_high": high,
                "n_models": len(self.curve.models),
                "n_items": self.curve.n_items,
                "status": status,
            }
        )

    def not_fittable(self, metric: str, x: str, fit: str, status: str) -> None:
        self.add(metric, x, fit, "", [np.nan], status)


def fit_curve(fit: str, x: np.ndarray, y: np.ndarray, delta: float, start: dict | None = None) -> dict:
    if fit == "sigmoid_floor":
        return fits.fit_sigmoid_floor(np.log10(x), y, start)
    return fits.fit_power_law(x, y, delta, start)


def predict(fit: str, params: dict, x: np.ndarray) -> np.ndarray:
    if fit == "sigmoid_floor":
        return fits.sigmoid_floor(np.log10(x), params["floor"], params["midpoint"], params["slope"])
    return (params["N_c"] / x) ** params["alpha"]


def fit_replicates(fit: str, x: np.ndarray, means: np.ndarray, delta: float) -> list[dict | None]:
    """The fit on the point estimate (multi-start), then on each replicate from it; None where a fit fails."""
    point = fit_curve(fit, x, means[0], delta)
    out: list[dict | None] = [point]
    for y in means[1:]:
        try:
            out.append(fit_curve(fit, x, y, delta, point))
        except ValueError:
            out.append(None)
    return out


def add_fit(rows: Rows, metric: str, axis: str, fit: str) -> None:
    """A scaling fit with intervals on its parameters, and its extrapolation to the held-out largest models."""
    curve, settings = rows.curve, rows.curve.settings
    problem = curve.problem(metric, axis)
    order = np.argsort(curve.x[axis], kind="stable")
    x, means = curve.x[axis][order], curve.means(metric)[:, order]
    replicates: list[dict | None] = []
    if not problem:
        try:
            replicates = fit_replicates(fit, x, means, settings.huber_delta)
        except ValueError as err:
            problem = f"not fittable: {fit} fit failed ({err})"
    if problem:
        rows.not_fittable(metric, axis, fit, problem)
        return
    for name in replicates[0] or {}:  # the point fit: never None (a failed one raised above)
        rows.add(metric, axis, fit, name, [r[name] if r else np.nan for r in replicates])
    add_curve(rows, metric, axis, f"{fit}_curve", fit, replicates, x)
    small = len(x) - settings.extrapolate
    if settings.extrapolate < 1 or small < settings.min_models:
        return
    try:
        held = fit_replicates(fit, x[:small], means[:, :small], settings.huber_delta)
    except ValueError as err:
        rows.not_fittable(
            metric, axis, "extrapolation", f"not fittable: {fit} fit on the smaller models failed ({err})"
        )
        return
    add_curve(rows, metric, axis, "extrapolation_curve", fit, held, x)
    predicted = np.array([predict(fit, p, x[small:]) if p else np.full(len(x) - small, np.nan) for p in held])
    for i, model in enumerate(np.array(curve.models)[order][small:]):
        observed = means[:, small + i]
        rows.add(metric, axis, "extrapolation", f"{model}: predicted", predicted[:, i])
        rows.add(metric, axis, "extrapolation", f"{model}: observed", observed)
        rows.add(metric, axis, "extrapolation", f"{model}: error", predicted[:, i] - observed)


def add_curve(
    rows: Rows, metric: str, axis: str, name: str, fit: str, replicates: list[dict | None], x: np.ndarray
) -> None:
    """The fitted curve at CURVE_POINTS log-spaced scales across `x`, with its bootstrap band (parameter: the scale)."""
    grid = np.geomspace(x.min(), x.max(), CURVE_POINTS)
    predicted = np.array([predict(fit, p, grid) if p else np.full(len(grid), np.nan) for p in replicates])
    for i, scale in enumerate(grid):
        rows.add(metric, axis, name, f"{scale:.6g}", predicted[:, i])


def add_breakthroughness(rows: Rows, metric: str, axis: str) -> np.ndarray | None:
    """BIG-bench breakthroughness along one x axis (higher-is-better orientation); its replicates, or None."""
    curve = rows.curve
    problem = curve.problem(metric, axis)
    if problem:
        rows.not_fittable(metric, axis, "breakthroughness", problem)
        return None
    sign = -1.0 if metric == TARGET_NLL or spec(metric).lower_is_better else 1.0
    samples = measures.breakthroughness(sign * curve.means(metric)[:, np.argsort(curve.x[axis], kind="stable")])
    rows.add(metric, axis, "breakthroughness", "breakthroughness", samples)
    return samples


def add_flags(rows: Rows, metrics: list[str], breakthrough: dict[tuple[str, str], np.ndarray]) -> None:
    """Resolution-limited and metric-disagreement flags (1 raised, 0 not), thresholds from the settings."""
    curve, settings = rows.curve, rows.curve.settings
    for metric in metrics:
        if discontinuous(metric) and not curve.problem(metric) and np.isfinite(settings.resolution_items):
            limited = measures.resolution_limited(
                curve.means(metric)[0], curve.items_per_model, settings.resolution_items
            )
            rows.add(metric, "", "flag", "resolution_limited", [float(limited)])
    for (metric, axis), jump in breakthrough.items():
        if not discontinuous(metric):
            continue
        for (other, other_axis), smooth in breakthrough.items():
            if other_axis != axis or discontinuous(other) or other in CALIBRATION_METRICS:
                continue
            disagree = (
                jump[0] >= settings.emergent_breakthroughness and abs(smooth[0]) <= settings.smooth_breakthroughness
            )
            rows.add(metric, axis, "flag", f"metric_disagreement: {other}", [float(disagree)])


def add_mirage(rows: Rows) -> None:
    """Observed exact match next to the p^L prediction from per-token probability, per model."""
    curve = rows.curve
    if "exact_match" not in curve.values or "target_logprob" not in curve.values:
        return
    problem = curve.data_problem("exact_match") or curve.data_problem("target_logprob")
    if problem:
        rows.not_fittable("exact_match", "", "mirage", problem)
        return
    predicted = measures.mirage_prediction(curve.values["target_logprob"], curve.tokens, curve.weights)
    observed = curve.means("exact_match")
    for i, model in enumerate(curve.models):
        rows.add("exact_match", "", "mirage", f"{model}: predicted p^L", predicted[:, i])
        rows.add("exact_match", "", "mirage", f"{model}: observed", observed[:, i])


def add_calibration(rows: Rows) -> list[dict]:
    """Expected calibration error per model with its interval; returns the reliability table's rows."""
    curve, settings = rows.curve, rows.curve.settings
    target = "multiple_choice_grade" if "multiple_choice_grade" in curve.values else "exact_match"
    if "confidence" not in curve.values or target not in curve.values:
        return []
    problem = curve.data_problem("confidence") or curve.data_problem(target)
    if problem:
        rows.not_fittable("confidence", "", "calibration", problem)
        return []
    table = []
    for i, model in enumerate(curve.models):
        confidence, correct = curve.values["confidence"][:, i], curve.values[target][:, i]
        ece = measures.expected_calibration_error(confidence, correct, curve.weights, settings.calibration_bins)
        rows.add("confidence", "", "calibration", f"{model}: ECE", ece)
        for row in measures.reliability_table(confidence, correct, settings.calibration_bins):
            table.append({**curve.key, "model": model, "n_params": int(curve.x["n_params"][i]), **row})
    return table


def analyse_curve(
    scores: pd.DataFrame, key: dict, settings: Settings, items_per_model: int | None = None
) -> tuple[list[dict], list[dict]]:
    """Every row of one curve: means, fits, breakthroughness, flags, Mirage relation, calibration."""
    curve = Curve(scores, key, settings, items_per_model)
    rows = Rows(curve)
    metrics = sorted(curve.values)
    breakthrough = {}
    for metric in metrics:
        if curve.data_problem(metric):
            rows.not_fittable(metric, "", "mean", curve.data_problem(metric))
        else:
            for i, model in enumerate(curve.models):
                rows.add(metric, "", "mean", model, curve.means(metric)[:, i])
        for axis in settings.x_axes:
            samples = add_breakthroughness(rows, metric, axis)
            if samples is not None:
                breakthrough[metric, axis] = samples
            if sigmoid_applies(metric, settings):
                add_fit(rows, metric, axis, "sigmoid_floor")
            if metric == TARGET_NLL:
                add_fit(rows, metric, axis, "power_law")
    add_flags(rows, metrics, breakthrough)
    add_mirage(rows)
    return rows.rows, add_calibration(rows)


def analyse_task_method(scores: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The "fits" and "calibration" tables of one task x method: every family, per digit count and over all."""
    rows, calibration = [], []
    for (family, task, method), group in scores.groupby(["family", "task", "method"], sort=True):
        subsets = [(str(d), part) for d, part in group.groupby("digits", sort=True)] + [("all", group)]
        for digits, subset in subsets:
            key = {"family": family, "task": task, "method": method, "digits": digits}
            curve_rows, curve_calibration = analyse_curve(subset, key, settings)
            rows += curve_rows
            calibration += curve_calibration
    fitted = pd.DataFrame(rows, columns=COLUMNS).astype({"value": "float64", "n_models": "int32", "n_items": "int32"})
    return fitted, pd.DataFrame(calibration, columns=CALIBRATION_COLUMNS)


def analyse_csv(table: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The "fits" table for results made elsewhere: a CSV with a row per model (or per model and item).

    Columns: `model`; `n_params` and/or `training_flops`; optionally `family`, `task` and `item`
    (item ids: with them, intervals come from resampling items) or `n_items` (how many items each
    mean is over, for the resolution flag); every other column is a metric, named as in the
    config's metrics list, or `target_nll` for a per-token loss. With `training_tokens` (D) and
    `target_nll`, the Chinchilla form is fitted too, over all rows (point estimate only).
    """
    if "model" not in table:
        raise InputError("CSV lacks a 'model' column")
    keys = [column for column in ("family", "task", "model", "item") if column in table]
    repeated = table[table.duplicated(keys, keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise InputError(
            f"CSV lists {' / '.join(f'{k} {first[k]!r}' for k in keys)} {len(repeated)} times (one row each)"
        )
    axes = tuple(axis for axis in settings.x_axes if axis in table)
    if not axes:
        raise InputError(f"CSV needs a scale column: {' or '.join(X_LABELS)}")
    ids = ["model", "family", "task", "item", "n_items", "training_tokens", *X_LABELS]
    metrics = [c for c in table.columns if c not in ids and c != "target_tokens"]
    for metric in metrics:
        if metric != TARGET_NLL:
            spec(metric)
    if not metrics:
        raise InputError("CSV has no metric column")
    wide = table.assign(
        family=table.get("family", "csv"),
        task=table.get("task", "csv"),
        item_id=table["item"].astype(str) if "item" in table else "mean",
        n_params=table.get("n_params", np.nan),
        training_flops=table.get("training_flops", np.nan),
        target_tokens=table.get("target_tokens", 1),
    )
    scores = wide.melt(
        id_vars=["model", "family", "task", "item_id", "n_params", "training_flops", "target_tokens"],
        value_vars=metrics,
        var_name="metric",
    )
    settings = replace(settings, x_axes=axes, bootstrap=settings.bootstrap if "item" in table else 0)
    items_per_model = int(table["n_items"].min()) if "n_items" in table else None
    if "item" not in table and items_per_model is None:
        settings = replace(settings, resolution_items=np.nan)  # a mean over an unknown number of items
    rows = []
    for (family, task), curve in scores.groupby(["family", "task"], sort=True, dropna=False):
        rows += analyse_curve(
            curve, {"family": family, "task": task, "method": "", "digits": "all"}, settings, items_per_model
        )[0]
    if {"n_params", "training_tokens", TARGET_NLL} <= set(table.columns):
        rows += chinchilla_rows(table, settings)
    return pd.DataFrame(rows, columns=COLUMNS)


ID_COLUMNS = ("model", "family", "task", "item")  # names, kept as written ("null" and "NA" included)


def read_results_csv(path: str) -> pd.DataFrame:
    """A CSV of results made elsewhere, for `analyse_csv`: names kept exactly as written, numbers parsed.

    pandas would read `NA`, `nan`, `null` or an empty cell as missing, and rows with a missing family or
    task would then vanish from grouped results; here a name is never missing: an empty `family` or
    `task` gets the default ("csv"), an empty `model` is an error naming the line. In other columns an
    empty or NA cell is a missing number (reported as not fittable, never dropped); any other text that
    is not a number is an error naming the column and line.
    """
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in table.columns:
        cells = table[column].str.strip()
        if column in ID_COLUMNS:
            if column == "model" and (cells == "").any():
                raise InputError(f"{path}: line {int((cells == '').to_numpy().argmax()) + 2}: empty 'model'")
            table[column] = table[column].where(cells != "", "csv")
            continue
        missing = cells.str.lower().isin(["", "na", "nan", "n/a", "null", "none"])
        numbers = pd.to_numeric(cells.where(~missing), errors="coerce")
        bad = numbers.isna() & ~missing
        if bad.any():
            line = int(bad.to_numpy().argmax())
            raise InputError(
                f"{path}: column {column!r}, line {line + 2}: {table[column].iloc[line]!r} is not a number"
            )
        table[column] = numbers.astype(float)
    return table


def chinchilla_rows(table: pd.DataFrame, settings: Settings) -> list[dict]:
    """L(N, D) = E + A/N^alpha + B/D^beta over every (N, D, loss) row of a CSV."""
    points = table.groupby(["model", "n_params", "training_tokens"], as_index=False)[TARGET_NLL].mean()
    key = {
        "family": "all",
        "task": "all",
        "method": "",
        "digits": "all",
        "metric": TARGET_NLL,
        "x": "n_params,training_tokens",
        "fit": "chinchilla",
        "ci_low": np.nan,
        "ci_high": np.nan,
        "n_models": len(points),
        "n_items": 1,
    }
    if len(points) < 5:
        return [
            {
                **key,
                "parameter": "",
                "value": np.nan,
                "status": f"not fittable: too few (N, D) points ({len(points)} < 5)",
            }
        ]
    fitted = fits.fit_chinchilla(
        points["n_params"].to_numpy(float),
        points["training_tokens"].to_numpy(float),
        points[TARGET_NLL].to_numpy(float),
        settings.huber_delta,
    )
    return [{**key, "parameter": name, "value": value, "status": "ok"} for name, value in fitted.items()]
