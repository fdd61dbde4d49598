"""A ladder: one family's small models (rungs) on one task and metric, checkpoint by checkpoint, and the targets.

Built from the importers' long table (`importers.COLUMNS`). A rung is one model size N; a run is one
model (a size trained to one token budget D). N is the non-embedding parameter count (Kaplan et al.
2020; Bhagia et al. 2024 use it too). Each checkpoint carries the metric `y`, the task loss (the metric
`Settings.task_loss` on the same task: `bits_per_byte` of the correct continuation for imported results,
`target_nll` for a sweep's own models) and the language-modelling loss (`target_nll` of the held-out
set `Settings.loss_task`) where the table has them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from emergence.errors import InputError
from emergence.io import stable_hash

log = logging.getLogger(__name__)

TASK_LOSS, LM_LOSS = "bits_per_byte", "target_nll"
TARGET_COLUMNS = ["target", "n", "d", "actual"]
DEFAULT_METRICS = ("multiple_choice_grade", "exact_match", "acc_norm")
WITHIN_THE_LADDER = "within the ladder: an interpolation, not a forecast"
BELOW_THE_LADDER = "below the ladder: smaller than every rung, not a forecast"


@dataclass(frozen=True)
class Settings:
    """How ladders are read and forecasts made; defaults are Bhagia et al. (2024)'s where they have one."""

    window: int = 5  # a run's final value: mean of its last `window` checkpoints (Bhagia et al.: 5)
    skip: float = 0.1  # share of each run's first checkpoints left out of step 2 (Bhagia et al.: 10 %)
    smooth: int = 5  # moving average over a run's checkpoints in step 2 (Bhagia et al.: 5)
    replicates: int = 200  # bootstrap replicates for the intervals
    level: float = 0.9  # interval coverage
    holdouts: int = 2  # rollout backtests: the 1, ..., `holdouts` largest rungs held out
    min_rungs: int = 2  # a fit needs this many rungs left
    seed: int = 0
    loss_task: str = "c4_en"  # the held-out set whose loss the loss-based method uses
    metrics: tuple[str, ...] = DEFAULT_METRICS  # first present wins
    rule: str = "monotone_rise"  # the forecastability rule (`forecast.verdict.RULES`)
    methods: tuple[str, ...] = ()  # the forecast methods to run (empty: every registered one); naive always runs
    task_loss: str = TASK_LOSS  # the metric two_step reads as the task loss (a sweep's own models: target_nll)

    @classmethod
    def from_config(cls, entry: dict, seed: int = 0) -> Settings:
        """Settings from a JSON object of the fields above; InputError naming an unknown key, or a value of
        the wrong type or range (checked against config/schema.yaml's `forecast` block, as a sweep's
        config is, so a value the config check lets through is never a traceback here)."""
        from emergence.config import SCHEMA, settings_problem

        if not isinstance(entry, dict):
            raise InputError(f"forecast --settings: {json.dumps(entry)} is not a JSON object of settings")
        unknown = sorted(set(entry) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(
                f"forecast --settings: unknown key {', '.join(unknown)} (known: {', '.join(cls.__dataclass_fields__)})"
            )
        problem = settings_problem(entry, "forecast", SCHEMA)
        if problem:
            raise InputError(f"forecast --settings: {problem}")
        values = {**entry, "seed": seed}
        for key in ("metrics", "methods"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class Ladder:
    """`checkpoints`: the rungs' rows (run, n, d, step, y, task_loss, lm_loss, stderr[, n_items]), sorted by run and d;
    `targets`: what to predict (target, n, d, actual; actual NaN when unknown)."""

    family: str
    task: str
    method: str
    metric: str
    checkpoints: pd.DataFrame
    targets: pd.DataFrame
    settings: Settings

    def finals(self) -> pd.DataFrame:
        """One row per run (sorted by n, d): n, d of its last checkpoint, the mean of y and of the losses
        over its last `window` checkpoints, `noise` (their standard deviation) and the last `stderr`."""
        last = self.checkpoints.groupby("run", sort=False).tail(self.settings.window)
        grouped = last.groupby("run", sort=False)
        finals = grouped[["y", "task_loss", "lm_loss"]].mean()
        finals["noise"] = grouped["y"].std()
        finals[["n", "d", "stderr"]] = grouped[["n", "d", "stderr"]].last()
        return finals.reset_index().sort_values(["n", "d"], kind="stable").reset_index(drop=True)

    def rng(self, *key: object) -> np.random.Generator:
        """A generator seeded by the seed, this curve (family, task, prompting method, metric) and `key`
        (as `analysis.scaling.curve_rng`): a curve's draws, and a target's, never depend on which other
        curves or targets the same run forecasts."""
        identity = stable_hash([self.family, self.task, self.method, self.metric, *key])
        return np.random.default_rng([self.settings.seed, int(identity[:12], 16)])

    def rungs(self) -> np.ndarray:
        return np.unique(self.checkpoints["n"].to_numpy())

    def unknown_tokens(self) -> str:
        """Why D (and C = 6ND) is not known for every run and target (a sweep's model without
        `training_tokens`): the methods that read D do not apply; "" when it is known."""
        unknown = sorted(set(self.checkpoints.loc[self.checkpoints["d"].isna(), "run"]))
        unknown += sorted(self.targets.loc[self.targets["d"].isna(), "target"])
        return f"training tokens D unknown for {', '.join(map(str, unknown))}" if unknown else ""

    def target_status(self) -> list[str]:
        """Per target, its `status` in the forecasts table: `ok` beyond the rungs (a larger N, or the
        largest rung's N trained on more tokens), else why its row is no forecast of a larger model:
        within the rungs' sizes (an interpolation) or below them (a backcast)."""
        finals = self.finals()
        largest, smallest = finals["n"].max(), finals["n"].min()
        longest = finals.loc[finals["n"] == largest, "d"].max()
        return [
            "ok"
            if n > largest or (n == largest and d > longest)
            else BELOW_THE_LADDER
            if n < smallest
            else WITHIN_THE_LADDER
            for n, d in zip(self.targets["n"], self.targets["d"])
        ]

    def without(self, k: int) -> Ladder:
        """The ladder with its `k` largest rungs held out; their runs' final values become the targets."""
        cut = self.rungs()[-k]
        held = self.finals().query("n >= @cut")
        targets = pd.DataFrame({"target": held["run"], "n": held["n"], "d": held["d"], "actual": held["y"]})
        return replace(self, checkpoints=self.checkpoints[self.checkpoints["n"] < cut], targets=targets)


def build_ladders(
    table: pd.DataFrame,
    targets: list[str],
    settings: Settings,
    tasks: list[str] | None = None,
    planned: Sequence[tuple[str, float, float]] = (),
) -> list[Ladder]:
    """One ladder per (family, task, method) of the long table that has a metric of `settings.metrics`.

    The models named in `targets` are predicted; every other model of a family with a target is a rung.
    `planned` targets (name, N, D: models not trained) are predicted in every family. InputError for a
    target no family has. A family with fewer than `settings.min_rungs` sizes besides its targets, and
    tasks without any listed metric or without targets, are reported (one log line) and skipped."""
    unknown = sorted(set(targets) - set(table["model"]))
    if unknown:
        raise InputError(f"--targets: {', '.join(unknown)} not in the results (models: {sorted(set(table['model']))})")
    table = table.assign(n=table["n_params_non_embedding"].astype(float), d=table["training_tokens"].astype(float))
    families = set(table.loc[table["model"].isin(targets), "family"]) | (set(table["family"]) if planned else set())
    extra = pd.DataFrame([(name, float(n), float(d), np.nan) for name, n, d in planned], columns=TARGET_COLUMNS)
    ladders = []
    for family in sorted(families):
        rows = table[table["family"] == family]
        named = sorted(set(rows.loc[rows["model"].isin(targets), "model"]))
        sizes = rows.loc[~rows["model"].isin(named), "n"].nunique()
        if sizes < settings.min_rungs:
            log.info(
                f"forecast: family {family} has {sizes} model sizes besides its targets, fewer than min_rungs"
                f" ({settings.min_rungs}); skipped"
            )
            continue
        ladders += family_ladders(rows, named, extra, settings, tasks)
    return ladders


def family_ladders(
    table: pd.DataFrame, targets: list[str], extra: pd.DataFrame, settings: Settings, tasks: list[str] | None
) -> list[Ladder]:
    lm = checkpoint_values(table[(table["task"] == settings.loss_task) & (table["metric"] == LM_LOSS)], "lm_loss")
    ladders = []
    for (task, method), rows in table.groupby(["task", "method"]):
        if (tasks and task not in tasks) or (not tasks and task == settings.loss_task):
            continue
        metric = next((m for m in settings.metrics if (rows["metric"] == m).any()), None)
        if metric is None:
            log.info(f"forecast: {task} {method} has none of the metrics {', '.join(settings.metrics)}; skipped")
            continue
        points = checkpoint_values(rows[rows["metric"] == metric], "y", keep_stderr=True)
        points = points.merge(checkpoint_values(rows[rows["metric"] == settings.task_loss], "task_loss"), "left")
        points = points.merge(lm, "left").sort_values(["run", "d"], kind="stable").reset_index(drop=True)
        rungs = points[~points["run"].isin(targets)]
        wanted = pd.concat([target_rows(points, targets, settings.window), extra], ignore_index=True)
        if wanted.empty:
            log.info(f"forecast: {table['family'].iloc[0]} {task} {method} has none of the targets; skipped")
            continue
        ladders.append(Ladder(table["family"].iloc[0], task, method, metric, rungs, wanted, settings))
    return ladders


def checkpoint_values(rows: pd.DataFrame, name: str, keep_stderr: bool = False) -> pd.DataFrame:
    """(run, n, d, step, `name`[, stderr, n_items]) per checkpoint of the rows of one metric (n_items
    where the table has it: the `verdicts` forecastability rule reads it)."""
    columns = {"model": "run", "value": name}
    keep = ["model", "n", "d", "step", "value"] + (["stderr"] if keep_stderr else [])
    keep += ["n_items"] if keep_stderr and "n_items" in rows else []
    return rows[keep].rename(columns=columns).reset_index(drop=True)


def target_rows(points: pd.DataFrame, targets: list[str], window: int) -> pd.DataFrame:
    """Each target's N, D (its last checkpoint) and actual value (mean of its last `window` checkpoints)."""
    rows = []
    for target in targets:
        own = points[points["run"] == target]
        if len(own):
            rows.append((target, own["n"].iloc[-1], own["d"].iloc[-1], own["y"].tail(window).mean()))
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


def step2_points(ladder: Ladder, column: str) -> pd.DataFrame:
    """Checkpoints for the loss-to-metric fit, as Bhagia et al. (2024)'s paper commands run it
    (`--skip_perc 0.1 --moving_avg 5`): each run without its first `skip` share of checkpoints (its last
    one always kept: a sweep's models are one final checkpoint each), `column` and y smoothed by a moving
    average over `smooth` checkpoints (a shorter one at a run's start, as theirs); `raw` keeps the
    unsmoothed y."""
    s = ladder.settings
    frames = []
    for _, run in ladder.checkpoints.dropna(subset=[column]).groupby("run", sort=False):
        run = run.iloc[min(int(np.ceil(s.skip * len(run))), len(run) - 1) :]
        smoothed = run[[column, "y"]].rolling(s.smooth, min_periods=1).mean()
        frames.append(run[["run", "n"]].assign(x=smoothed[column], y=smoothed["y"], raw=run["y"]))
    return pd.concat(frames, ignore_index=True)
