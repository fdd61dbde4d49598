"""Forecasts with intervals, rollout backtests and the choice of method, as rows of the `forecasts` table.

For each ladder every method that applies is refitted with the largest rung held out (then the two
largest, up to `Settings.holdouts`, while `min_rungs` rungs and the method's inputs remain) and
predicts the held-out runs' final values: the rollout backtests. Then it is fitted on all rungs and
predicts the targets.

Intervals: B bootstrap replicates resample the runs (a run's final value and all its checkpoints
together) and refit; each replicate's prediction gets a draw of the evaluation noise around the fit
(`Fitted.noise`) and, for the targets, of the extrapolation error the rollouts measured (a normal with
their root-mean-square error): the interval is the central `level` share of those draws.

Selection rule, declared in code before any target is seen: methods are tried in the order of
`PREFERENCE` (the published two-step chain first); a later method replaces the current choice only
when its mean absolute rollout error (mean over rollouts of the mean over held-out runs) is smaller
by more than `margin` of the current's: max(1 point, half of it). Rollouts reach a few times the
rungs' compute while targets lie 10-100 times beyond, so small backtest differences are not taken as
evidence. A ladder judged unforecastable (`verdict`) gets `naive` chosen and its verdict in every row.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from emergence.forecast import FORECASTS, ForecastMethod
from emergence.forecast.ladder import Ladder
from emergence.forecast.verdict import FORECASTABLE, judge

log = logging.getLogger(__name__)

PREFERENCE = ("two_step", "loss_based", "direct")


def forecast_ladder(ladder: Ladder) -> pd.DataFrame:
    """The `forecasts` rows of one ladder: every applicable method on the targets (holdout 0) and on
    each rollout (holdout k), with `chosen` marking the method the rule picks."""
    verdict = judge(ladder)
    rows = []
    for name, method in FORECASTS.items():
        if ladder.settings.methods and name not in ladder.settings.methods and method.candidate:
            continue  # not asked for; baselines (naive) always run
        why = method.missing(ladder)
        if why:
            log.info(f"forecast {ladder.family} {ladder.task}: {name} does not apply ({why})")
            continue
        shorter = [ladder.without(k) for k in range(1, min(ladder.settings.holdouts, len(ladder.rungs()) - 1) + 1)]
        rollouts = [
            predictions(method, sub, k)
            for k, sub in enumerate(shorter, 1)
            if len(sub.rungs()) >= ladder.settings.min_rungs and not method.missing(sub)
        ]
        errors = np.concatenate([r["error"].to_numpy() for r in rollouts]) if rollouts else np.zeros(0)
        rows += [*rollouts, predictions(method, ladder, 0, float(np.sqrt(np.mean(errors**2))) if rollouts else 0.0)]
    table = pd.concat(rows, ignore_index=True)
    per_rollout = table[table["holdout"] > 0].groupby(["method", "holdout"])["error"].apply(lambda e: e.abs().mean())
    backtest = per_rollout.groupby("method").mean()
    table["backtest_error"] = table["method"].map(backtest)
    table["chosen"] = table["method"] == choose(backtest, verdict, set(table["method"]))
    return table.assign(
        family=ladder.family, task=ladder.task, prompt_method=ladder.method, metric=ladder.metric, verdict=verdict
    )


def choose(backtest: pd.Series, verdict: str, applicable: set[str]) -> str:
    """The selection rule (module docstring)."""
    if verdict != FORECASTABLE:
        return "naive"
    candidates = [m for m in PREFERENCE if m in applicable and FORECASTS[m].candidate]
    if not candidates:
        return "naive"
    chosen = candidates[0]
    for other in candidates[1:]:
        if backtest.get(other, np.inf) < backtest.get(chosen, np.inf) - margin(backtest.get(chosen, np.inf)):
            chosen = other
    return chosen


def margin(error: float) -> float:
    """How much smaller another method's rollout error must be to replace a method with rollout `error`."""
    return max(0.01, 0.5 * error) if np.isfinite(error) else 0.0


def predictions(method: ForecastMethod, ladder: Ladder, holdout: int, extrapolation: float = 0.0) -> pd.DataFrame:
    """One method's predictions and intervals for a ladder's targets; `extrapolation` is the standard
    deviation of the extrapolation error added to every draw."""
    s = ladder.settings
    runs = len(ladder.finals())
    draws = ladder.rng("bootstrap", holdout).multinomial(runs, np.full(runs, 1 / runs), s.replicates)
    weights = np.vstack([np.ones(runs), draws])
    targets = ladder.targets
    fitted = method.fit(ladder, weights)
    values = fitted.predict(targets["n"].to_numpy(), targets["d"].to_numpy())
    point, spread = values[0], np.hypot(fitted.noise, extrapolation)
    lower, upper, replicates = np.full(len(targets), np.nan), np.full(len(targets), np.nan), []
    for i, target in enumerate(targets["target"]):
        if fitted.no_interval:  # the bounds stay NaN, `status` says why
            replicates.append(0)
            continue
        # each target's noise from its own generator, its replicates those finite at it
        noise = ladder.rng("noise", holdout, target).normal(0.0, spread, s.replicates)
        finite = np.isfinite(values[1:, i])
        # every metric forecast is a fraction of items: draws beyond [0, 1] are clipped to it
        samples = np.clip(values[1:, i][finite] + noise[finite], 0.0, 1.0)
        if len(samples):
            lower[i], upper[i] = np.quantile(samples, [(1 - s.level) / 2, (1 + s.level) / 2])
        replicates.append(len(samples))
    actual = targets["actual"].to_numpy(float)
    judged = np.isfinite(actual) & np.isfinite(lower)  # covered: null without an actual value or an interval
    status = ladder.target_status()
    if fitted.no_interval:
        status = [f"{'' if st == 'ok' else st + '; '}no interval: {fitted.no_interval}" for st in status]
    return pd.DataFrame(
        {
            "target": targets["target"].to_numpy(),
            "holdout": holdout,
            "n_params": targets["n"].to_numpy(float),
            "training_tokens": targets["d"].to_numpy(float),
            "method": method.name,
            "predicted": point,
            "lower": lower,
            "upper": upper,
            "actual": actual,
            "error": point - actual,
            "covered": pd.array(np.where(judged, (lower <= actual) & (actual <= upper), pd.NA), dtype="boolean"),
            "replicates": replicates,
            "status": status,
        }
    )
