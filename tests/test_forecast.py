"""Forecasts of larger models' scores: seeded simulations of the fits and intervals, and real ladders.

The OLMo ladder (Bhagia et al. 2024, github.com/allenai/OLMo-ladder) and the Pythia evaluations
(Biderman et al. 2023) are read from ../shared/data; those tests are skipped when it is absent. The
repository's committed chained predictions (reference/chained_main.csv) are compared with ours.
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # L-BFGS-B on 16 points: threads only contend

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emergence import cli, io
from emergence.errors import InputError
from emergence.forecast import FORECASTS
from emergence.forecast.backtest import choose, forecast_ladder, predictions
from emergence.forecast.curves import fit_loss_law, fit_sigmoid
from emergence.forecast.ladder import Ladder, Settings
from emergence.forecast.stage import check_methods, load_results, parse_planned, run
from emergence.forecast.verdict import judge
from emergence.importers import import_results

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OLMO, PYTHIA = DATA / "olmo_ladder", DATA / "pythia_evals"
needs_olmo = pytest.mark.skipif(not OLMO.is_dir(), reason=f"the OLMo ladder is not at {OLMO}")
needs_pythia = pytest.mark.skipif(not PYTHIA.is_dir(), reason=f"the Pythia evaluations are not at {PYTHIA}")
OLMO_TASKS = {  # ours: the repository's name
    "mmlu_avg_test": "mmlu_avg_test_5shot",
    "hellaswag_val": "hellaswag_val_5shot",
    "arc_challenge_test": "arc_challenge_test_5shot",
    "arc_easy_test": "arc_easy_test_5shot",
    "piqa_val": "piqa_val_5shot",
    "csqa_val": "csqa_val_5shot",
    "socialiqa_val": "socialiqa_val_5shot",
    "openbookqa_test": "openbookqa_test_5shot",
}
PYTHIA_TASKS = ["arc_challenge", "arc_easy", "lambada_openai", "logiqa", "piqa", "sciq", "winogrande", "wsc"]
PYTHIA_TARGETS = ["pythia-6.9b", "pythia-12b", "pythia-6.9b-deduped", "pythia-12b-deduped"]


# ---- simulation: a ladder whose truth is known --------------------------------------------------


def simulated_ladder(seed: int, noise: float = 0.01) -> Ladder:
    """4 sizes x 4 token budgets, 20 checkpoints each; task loss L(N, D) = 0.5 + 400/N^0.3 + 300/D^0.25
    and accuracy 0.25 + 0.75 sigmoid(-6 (L - 1.1)), with normal noise of sd `noise` on every checkpoint's
    accuracy and 0.002 on its loss; the target is a 10x larger model trained on 20x more tokens."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in (2e8, 4e8, 8e8, 1.6e9):
        for multiple in (1, 2, 5, 10):
            for d in np.linspace(0.1, 1.0, 20) * 20 * multiple * n:
                loss = true_loss(n, d) + rng.normal(0, 0.002)
                rows.append((f"{n:.0e}-{multiple}x", n, d, 0, true_accuracy(loss) + rng.normal(0, noise), loss))
    checkpoints = pd.DataFrame(rows, columns=["run", "n", "d", "step", "y", "task_loss"])
    checkpoints = checkpoints.assign(lm_loss=np.nan, stderr=np.nan)
    target = (1.6e10, 20 * 20 * 1.6e10)
    actual = true_accuracy(true_loss(*target))
    targets = pd.DataFrame([("big", *target, actual)], columns=["target", "n", "d", "actual"])
    return Ladder("sim", "task", "few_shot_5", "acc", checkpoints, targets, Settings(replicates=100, seed=seed))


def true_loss(n: float, d: float) -> float:
    return 0.5 + 400 / n**0.3 + 300 / d**0.25


def true_accuracy(loss: float) -> float:
    return 0.25 + 0.75 / (1 + np.exp(6 * (loss - 1.1)))


def test_loss_law_and_sigmoid_recover_known_curves():
    rng = np.random.default_rng(1)
    n, d = np.repeat([1e8, 3e8, 1e9, 3e9], 4), np.tile([2e9, 6e9, 2e10, 6e10], 4)
    loss = np.array([true_loss(a, b) for a, b in zip(n, d)]) * np.exp(rng.normal(0, 1e-3, len(n)))
    law = fit_loss_law(n, d, loss, np.ones((1, len(n))))
    far = law.predict(np.array([3e10]), np.array([1e12]))[0, 0]
    assert far == pytest.approx(true_loss(3e10, 1e12), rel=0.01)
    x = np.linspace(-1.6, -0.6, 200)
    y = np.array([true_accuracy(-v) for v in x]) + rng.normal(0, 0.005, len(x))
    sigmoid = fit_sigmoid(x, y, np.ones((1, len(x))), (0.0, 1.0), (0.0, 1.0))
    floor, ceiling, midpoint, slope = sigmoid.params[0]
    assert (floor, ceiling, midpoint, slope) == pytest.approx((0.25, 1.0, -1.1, 6.0), abs=0.05 * 6)
    assert floor == pytest.approx(0.25, abs=0.02) and midpoint == pytest.approx(-1.1, abs=0.02)


def test_two_step_intervals_cover_the_truth_about_as_often_as_claimed():
    """Seeded simulation: over 20 ladders the 90 % interval of the two-step chain (fit uncertainty by
    resampling runs, plus checkpoint noise) holds the true target value in 18 to 20 of them; the point
    forecast is unbiased to within a point, and the intervals are no wider than the errors call for."""
    method = FORECASTS["two_step"]
    rows = pd.concat([predictions(method, simulated_ladder(seed), 0) for seed in range(20)])
    assert rows["covered"].mean() >= 0.85
    assert abs(rows["error"].mean()) < 0.01
    half_width = rows["upper"].sub(rows["lower"]).median() / 2
    assert half_width < 3 * rows["error"].abs().median()
    assert rows["upper"].sub(rows["lower"]).max() < 0.55


def test_verdicts_and_selection_rule():
    ladder = simulated_ladder(0)
    assert judge(ladder) == "forecastable"
    flat = ladder.checkpoints.assign(y=0.25 + 0.001 * np.arange(len(ladder.checkpoints)) % 0.003)
    assert judge(Ladder(**{**ladder.__dict__, "checkpoints": flat})) == "flat"
    dip = ladder.checkpoints.assign(y=np.where(ladder.checkpoints["n"] == 8e8, 0.2, ladder.checkpoints["y"]))
    assert judge(Ladder(**{**ladder.__dict__, "checkpoints": dip})) == "non_monotone"
    applicable = {"two_step", "loss_based", "direct", "naive"}
    errors = pd.Series({"two_step": 0.015, "loss_based": 0.009, "direct": 0.02})
    assert choose(errors, "forecastable", applicable) == "two_step"  # 0.6 points better: within the margin
    assert choose(errors.replace(0.009, 0.004), "forecastable", applicable) == "loss_based"
    assert choose(pd.Series({"direct": 0.02}), "forecastable", {"direct", "naive"}) == "direct"
    assert choose(errors, "flat", applicable) == "naive"


def test_verdicts_rule_judges_the_rungs_with_the_verdicts_module():
    """Seeded: rungs rising with 1000 items each are forecastable; binomial noise around chance is `flat`;
    a rung that drops is `non_monotone` (as `emergence.verdicts.judge` calls them); unknown item counts
    cannot be judged. The targets are never read."""
    from emergence import verdicts

    base = simulated_ladder(0)
    ladder = replace(base, checkpoints=base.checkpoints.assign(n_items=1000.0), settings=Settings(rule="verdicts"))
    assert judge(ladder) == "forecastable"
    top = ladder.finals().groupby("n").tail(1)
    direct = verdicts.judge(top["n"], top["y"], 1000, stderr=top["noise"]).verdict
    assert direct == "smooth"  # the early, slow part of the simulated sigmoid: a smooth rise of 4.6 points
    rng = np.random.default_rng(5)
    chance = ladder.checkpoints.assign(y=rng.binomial(1000, 0.25, len(ladder.checkpoints)) / 1000)
    assert judge(replace(ladder, checkpoints=chance)) == "flat"
    dip = ladder.checkpoints.assign(y=np.where(ladder.checkpoints["n"] == 8e8, 0.2, ladder.checkpoints["y"]))
    assert judge(replace(ladder, checkpoints=dip)) == "non_monotone"
    assert judge(replace(ladder, checkpoints=dip, targets=ladder.targets.assign(actual=0.0))) == "non_monotone"
    assert judge(replace(ladder, checkpoints=base.checkpoints)) == "insufficient"  # no n_items column
    assert judge(replace(ladder, checkpoints=ladder.checkpoints.iloc[:40])) == "insufficient"  # 2 rungs


def test_methods_setting_runs_the_methods_named_and_the_baseline():
    ladder = simulated_ladder(1)
    table = forecast_ladder(replace(ladder, settings=replace(ladder.settings, methods=("direct",), replicates=20)))
    assert (
        set(table["method"]) == {"direct", "naive"}
        and table.query("holdout == 0 and chosen")["method"].eq("direct").all()
    )
    with pytest.raises(InputError, match=r"^forecast methods: chained unknown \(known: direct, loss_based, naive"):
        check_methods(["direct", "chained"])


# ---- the OLMo ladder ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def olmo() -> pd.DataFrame:
    table = import_results("olmo_ladder", OLMO)
    forecasts = run(table, ["7B-4T", "13B-5T"], Settings(), list(OLMO_TASKS))
    return forecasts


@needs_olmo
def test_olmo_importer_reads_the_main_configuration():
    table = import_results("olmo_ladder", OLMO)
    assert sorted(table["model"].unique())[:4] == ["1.3B-10xC", "1.3B-1xC", "1.3B-2xC", "1.3B-5xC"]
    assert table["model"].nunique() == 18  # 4 sizes x 4 budgets + 2 targets; 3B and 0.5xC are not rungs
    final = table[(table["model"] == "13B-5T") & table["final_checkpoint"]]
    assert final["training_tokens"].iloc[0] == 596057 * 8388608  # _step x batch_size_in_tokens
    mmlu = final[(final["task"] == "mmlu_avg_test") & (final["metric"] == "acc_norm")]["value"].iloc[0]
    parts = [
        final[(final["task"] == f"mmlu_{s}_test") & (final["metric"] == "acc_norm")]["value"].iloc[0]
        for s in ("stem", "humanities", "social_sciences", "other")
    ]
    assert mmlu == pytest.approx(np.dot(parts, [0.215, 0.335, 0.219, 0.231]))


@needs_olmo
def test_olmo_targets_predicted_within_the_papers_errors(olmo):
    chosen = olmo[olmo["chosen"] & (olmo["holdout"] == 0)].set_index(["task", "target"])
    points = chosen["error"].abs() * 100
    for task in ("mmlu_avg_test", "hellaswag_val", "piqa_val", "socialiqa_val"):
        assert points[task].mean() <= 2.0, task
        assert points[task].max() <= 3.0, task
    assert points.xs("13B-5T", level="target").mean() <= 4.17
    assert chosen["covered"].sum() >= 12
    assert (chosen["upper"] - chosen["lower"]).median() * 100 <= 12


@needs_olmo
def test_olmo_two_step_reproduces_the_repositorys_chained_predictions(olmo):
    reference = pd.read_csv(OLMO / "reference" / "chained_main.csv").set_index("Task")
    ours = olmo[(olmo["method"] == "two_step") & (olmo["holdout"] == 0) & (olmo["target"] == "13B-5T")]
    for row in ours.itertuples():
        expected = reference.loc[OLMO_TASKS[row.task]]
        assert row.actual == pytest.approx(expected["Actual"], abs=1e-9)
        assert row.predicted == pytest.approx(expected["Pred"], abs=2e-4)


@needs_olmo
def test_olmo_rollouts_are_recorded_for_every_method(olmo):
    rollouts = olmo[olmo["holdout"] > 0]
    assert set(rollouts["holdout"]) == {1, 2}
    one = rollouts[(rollouts["holdout"] == 1) & (rollouts["method"] == "two_step")]
    assert sorted(one["target"].unique()) == ["1.3B-10xC", "1.3B-1xC", "1.3B-2xC", "1.3B-5xC"]
    two_step = olmo[(olmo["method"] == "two_step") & (olmo["holdout"] == 0)]
    by_task = one.groupby("task")["error"].apply(lambda e: e.abs().mean())
    two = rollouts[(rollouts["holdout"] == 2) & (rollouts["method"] == "two_step")]
    expected = (by_task + two.groupby("task")["error"].apply(lambda e: e.abs().mean())) / 2
    assert two_step.groupby("task")["backtest_error"].first().to_dict() == pytest.approx(expected.to_dict())


# ---- Pythia ---------------------------------------------------------------------------------------


@needs_pythia
def test_pythia_forecasts_beat_the_largest_observed_model():
    table = import_results("lm_eval_0.3", PYTHIA)
    forecasts = run(table, PYTHIA_TARGETS, Settings(window=1), PYTHIA_TASKS, "zero_shot")
    targets = forecasts[forecasts["holdout"] == 0]
    for family, naive_error in (("pythia", 0.0361), ("pythia-deduped", 0.0377)):
        rows = targets[targets["family"] == family]
        naive = rows[rows["method"] == "naive"]["error"].abs().mean()
        assert naive == pytest.approx(naive_error, abs=5e-5)  # the 3.7 points (deduplicated)
        assert rows[rows["chosen"]]["error"].abs().mean() < naive - 0.005
    unforecastable = targets[targets["verdict"] != "forecastable"]
    assert set(unforecastable["task"]) == {"logiqa", "wsc"}
    assert (unforecastable[unforecastable["chosen"]]["method"] == "naive").all()
    assert set(targets[targets["verdict"] == "forecastable"].query("chosen")["method"]) == {"direct"}


# ---- the command ----------------------------------------------------------------------------------


@needs_olmo
def test_command_writes_the_same_table_twice_and_refuses_unknown_targets(tmp_path, root_logging, capsys):
    args = ["forecast", "--format", "olmo_ladder", "--path", str(OLMO), "--tasks", "piqa_val"]
    args += ["--settings", '{"replicates": 20, "holdouts": 1}', "--seed", "3"]
    cli.main([*args, "--out", str(tmp_path / "a.parquet")])
    cli.main([*args, "--out", str(tmp_path / "b.parquet")])
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    table = io.read_table(tmp_path / "a.parquet", "forecasts")
    assert set(table["method"]) == {"two_step", "loss_based", "direct", "naive"}
    assert (table["chosen"] & (table["holdout"] == 0)).sum() == 2 and (table["replicates"] == 20).all()
    cli.main([*args, "--predict", "30B:3e10:6e12", "--out", str(tmp_path / "p.parquet")])
    planned = io.read_table(tmp_path / "p.parquet", "forecasts").query("target == '30B' and chosen")
    assert len(planned) == 1 and planned["actual"].isna().all() and planned["covered"].isna().all()
    thirteen = table.query("target == '13B-5T' and chosen")["predicted"].iloc[0]
    assert planned["predicted"].iloc[0] > thirteen  # more parameters and tokens than 13B-5T: PIQA rises
    with pytest.raises(SystemExit):
        cli.main([*args, "--targets", "70B", "--out", str(tmp_path / "c.parquet")])
    assert "error: --targets: 70B not in the results" in capsys.readouterr().err
    assert not (tmp_path / "c.parquet").exists()
    with pytest.raises(InputError, match="unknown key"):
        Settings.from_config({"replicate": 3})


@needs_olmo
def test_forecast_figure_is_drawn_the_same_twice(olmo, tmp_path):
    from emergence.forecast.figure import draw_forecast

    for name in ("a", "b"):
        draw_forecast(olmo, "olmo-ladder", "socialiqa_val", [tmp_path / f"{name}.png"])
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").stat().st_size > 10_000
    with pytest.raises(InputError, match="no chosen forecast"):
        draw_forecast(olmo, "olmo-ladder", "no_such_task", [tmp_path / "c.png"])
    assert not (tmp_path / "c.png").exists()


# ---- input checks and reproducibility -------------------------------------------------------------


def test_a_forecast_does_not_depend_on_the_other_targets_and_curves_of_its_run():
    """Seeded: a target's interval and a rollout's are the same whether or not the run also forecasts
    another target (a planned one) or another curve (the same ladder under another task name)."""
    ladder = replace(simulated_ladder(2), settings=Settings(replicates=50, seed=2))
    planned = pd.DataFrame([("bigger", 3.2e10, 1.6e13, np.nan)], columns=["target", "n", "d", "actual"])
    more = replace(ladder, targets=pd.concat([planned, ladder.targets], ignore_index=True))
    alone, together = forecast_ladder(ladder), forecast_ladder(more)
    together = together[together["target"] != "bigger"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, together)
    other = replace(ladder, task="other_task")
    other_rows = predictions(FORECASTS["two_step"], other, 0)
    assert not np.allclose(
        other_rows[["lower", "upper"]], predictions(FORECASTS["two_step"], ladder, 0)[["lower", "upper"]]
    )


def long_table(ladder: Ladder) -> pd.DataFrame:
    """The simulated ladder as the importers' long table (rungs and a 3.2B target, one task)."""
    rows = ladder.checkpoints.assign(model=ladder.checkpoints["run"], family="sim", method="zero_shot")
    return pd.concat(
        [
            rows.assign(task=task, metric=metric, value=rows[column])
            for task in ("sim_task", "other_task")
            for metric, column in (("multiple_choice_grade", "y"), ("bits_per_byte", "task_loss"))
        ],
        ignore_index=True,
    ).assign(n_params_non_embedding=lambda t: t["n"], training_tokens=lambda t: t["d"])


def test_a_forecast_is_the_same_with_another_curve_and_target_in_the_run():
    """The command's route (`run`): one curve and one planned target, then two curves and two targets."""
    table = long_table(simulated_ladder(3))
    settings = Settings(replicates=30, holdouts=1, seed=3)
    one = run(table, [], settings, ["sim_task"], planned=[("big", 1.6e10, 6.4e12)])
    more = run(table, [], settings, ["sim_task", "other_task"], planned=[("big", 1.6e10, 6.4e12), ("a", 3e9, 1e12)])
    more = more[(more["task"] == "sim_task") & (more["target"] != "a")].reset_index(drop=True)
    pd.testing.assert_frame_equal(one, more)


@pytest.mark.parametrize(("method", "parameters"), [("direct", 4), ("two_step", 5)])
def test_a_fit_with_as_many_parameters_as_runs_gets_no_interval(method, parameters):
    """With as many runs as parameters the fit passes through every run under every bootstrap weighting
    that keeps them all, and is not determined under one that drops some: its spread says nothing
    (the direct sigmoid on 4 of Pythia's runs gave intervals of zero width). One run more, an interval."""
    ladder = simulated_ladder(5)
    runs = sorted(set(ladder.checkpoints["run"]))
    for count in (parameters, parameters + 1):
        kept = replace(ladder, checkpoints=ladder.checkpoints[ladder.checkpoints["run"].isin(runs[:count])])
        rows = predictions(FORECASTS[method], kept, 0)
        if count == parameters:
            assert rows[["lower", "upper"]].isna().all().all() and rows["covered"].isna().all()
            assert rows["replicates"].eq(0).all() and np.isfinite(rows["predicted"]).all()
            curve = "the sigmoid" if method == "direct" else "L(N, D)"
            assert rows["status"].tolist() == [
                f"no interval: {count} runs for {curve}'s {parameters} parameters: an exact fit"
            ]
        else:
            assert (rows["upper"] - rows["lower"] > 0.01).all() and rows["status"].eq("ok").all()


def test_a_model_to_predict_may_not_take_the_name_of_a_model_of_the_results():
    """--predict pythia-12b:30B:6T ran: two rows named pythia-12b, at two sizes."""
    table = long_table(simulated_ladder(4))
    taken = table["model"].iloc[0]
    with pytest.raises(InputError, match=rf"^forecast --predict: {re.escape(taken)} is a model of the results"):
        run(table, [], Settings(replicates=10), ["sim_task"], planned=[(taken, 1.6e10, 6.4e12)])


def test_a_target_inside_or_below_the_ladder_is_marked_no_forecast(caplog):
    """Rungs at 2e8-1.6e9 (the largest trained up to 3.2e11 tokens): a larger N, or the largest N on more
    tokens, is a forecast; a size among the rungs' an interpolation; a smaller one a backcast. Rollout
    rows (their targets the held-out largest rungs) are forecasts."""
    planned = [("big", 1.6e10, 6.4e12), ("longer", 1.6e9, 1e12), ("mid", 5e8, 1e10), ("small", 1e8, 2e9)]
    table = run(
        long_table(simulated_ladder(4)), [], Settings(replicates=10, holdouts=1, seed=4), ["sim_task"], planned=planned
    )
    status = table[table["holdout"] == 0].groupby("target")["status"].unique().map(list).to_dict()
    assert status == {
        "big": ["ok"],
        "longer": ["ok"],
        "mid": ["within the ladder: an interpolation, not a forecast"],
        "small": ["below the ladder: smaller than every rung, not a forecast"],
    }
    assert (table.loc[table["holdout"] > 0, "status"] == "ok").all()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "forecast: target mid (N = 5e+08) is within the ladder: an interpolation, not a forecast; see `status`",
        "forecast: target small (N = 1e+08) is below the ladder: smaller than every rung, not a forecast; see `status`",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"prompt_method": "fewshot"},
            r"^forecast --prompt-method: 'fewshot' matches no results \(known: zero_shot\)$",
        ),
        (
            {"tasks": ["sim_task", "sim_tsak"]},
            r"^forecast --tasks: 'sim_tsak' matches no results \(known: other_task, sim_task\)$",
        ),
        (
            {"settings": Settings(metrics=("acc", "acc_norm"))},
            r"^forecast --settings metrics: none of 'acc', 'acc_norm' is in the results"
            r" \(known: bits_per_byte, multiple_choice_grade\)$",
        ),
    ],
)
def test_a_filter_matching_nothing_is_named_with_the_known_values(options, message):
    table = long_table(simulated_ladder(3))
    settings = options.pop("settings", Settings(replicates=5))
    with pytest.raises(InputError, match=message):
        run(table, [], settings, planned=[("big", 1.6e10, 6.4e12)], **options)


def test_metrics_are_an_order_of_preference_so_one_present_is_enough():
    table = long_table(simulated_ladder(3))
    preferred = run(
        table, [], Settings(replicates=5, metrics=("acc", "multiple_choice_grade")), planned=[("big", 1.6e10, 6.4e12)]
    )
    assert set(preferred["metric"]) == {"multiple_choice_grade"} and len(preferred)


def test_a_task_loss_no_run_has_is_named_in_the_log(caplog):
    table = long_table(simulated_ladder(3))
    settings = Settings(replicates=5, holdouts=1, task_loss="bpbb")
    with caplog.at_level("INFO"):
        run(table, [], settings, ["sim_task"], planned=[("big", 1.6e10, 6.4e12)])
    assert "two_step does not apply (no task_loss 'bpbb' for every run)" in caplog.text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"replicates": "x"}, r"replicates: 'x' is not of type 'integer'"),
        ({"replicates": True}, r"replicates: True is not of type 'integer'"),  # JSON true is no count
        ({"level": 90}, r"level: 90 is greater than or equal to the maximum of 1"),
        ({"level": 1.0}, r"level: 1.0 is greater than or equal to the maximum of 1"),
        ({"skip": 1}, r"skip: 1 is greater than or equal to the maximum of 1"),
        ({"min_rungs": 1}, r"min_rungs: 1 is less than the minimum of 2"),
        ({"holdouts": 0}, r"holdouts: 0 is less than the minimum of 1"),
        ({"window": 2.5}, r"window: 2.5 is not of type 'integer'"),
        ({"metrics": "acc"}, r"metrics: 'acc' is not of type 'array'"),
        ({"methods": []}, r"methods: \[\] should be non-empty"),
        ({"task_loss": 3}, r"task_loss: 3 is not of type 'string'"),
        ([1], r"\[1\] is not a JSON object"),
    ],
)
def test_settings_values_are_checked_by_type_and_range(entry, message):
    with pytest.raises(InputError, match=r"^forecast --settings: " + message):
        Settings.from_config(entry)
    assert Settings.from_config({"level": 0.8, "skip": 0, "min_rungs": 2, "metrics": ["acc"]}).metrics == ("acc",)


def test_predict_takes_sizes_with_suffixes_as_the_table_importer_does():
    assert parse_planned(["30B:30B:6T", "x:3e10:6e12", "y:1,400M:0.5T"]) == [
        ("30B", 3e10, 6e12),
        ("x", 3e10, 6e12),
        ("y", 1.4e9, 5e11),
    ]
    with pytest.raises(InputError, match=r"^--predict '30B:3x:6T': size '3x' is not a number"):
        parse_planned(["30B:3x:6T"])
    with pytest.raises(InputError, match=r"^--predict '30B:3B': expected NAME:N:D"):
        parse_planned(["30B:3B"])


def test_table_and_format_together_or_neither_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"^forecast: give either --table or --format and --path, not both$"):
        load_results("olmo_ladder", str(OLMO), str(tmp_path / "t.csv"))
    with pytest.raises(InputError, match=r"^forecast: give either --table or --format and --path, not both$"):
        load_results("olmo_ladder", None, str(tmp_path / "t.csv"))
    with pytest.raises(InputError, match=r"^forecast: give --table, or --format and --path$"):
        load_results(None, None, None)


def test_an_unreadable_table_is_an_input_error_and_stays_in_place(tmp_path, root_logging, capsys):
    """A CSV named .parquet, a truncated Parquet file, a Parquet file named .csv: one error line each,
    and the user's file is still there (the CLI removes the file behind a CorruptStageFile)."""
    table = long_table(simulated_ladder(3))
    csv, parquet = tmp_path / "table.csv", tmp_path / "table.parquet"
    table.to_csv(csv, index=False)
    table.to_parquet(parquet)
    cases = {
        tmp_path / "csv.parquet": (csv.read_bytes(), "Parquet"),
        tmp_path / "truncated.parquet": (parquet.read_bytes()[:-100], "Parquet"),
        tmp_path / "parquet.csv": (parquet.read_bytes(), "CSV"),
    }
    for path, (content, kind) in cases.items():
        path.write_bytes(content)
        out = tmp_path / "f.parquet"
        with pytest.raises(SystemExit):
            cli.main(["forecast", "--table", str(path), "--predict", "big:16B:6T", "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {path}: cannot be read as a {kind} table ("), err
        assert path.read_bytes() == content and not out.exists()


@pytest.mark.parametrize(
    ("column", "cell", "why"),
    [
        ("value", "1.7", "value = 1.7 is not a fraction in [0, 1]"),
        ("value", "high", "value = 'high' is not a number"),
        ("value", "inf", "value = inf is not a finite number"),
        ("stderr", "-0.1", "stderr = -0.1 is not a number >= 0"),
        ("n_params_non_embedding", "-3", "n_params_non_embedding = -3.0 is not a finite count >= 1"),
        ("training_tokens", "-1", "training_tokens = -1.0 is not a finite count >= 0"),
        ("training_tokens", "410M", "training_tokens = '410M' is not a number"),
        ("step", "-1", "step = -1.0 is not a whole number >= 0"),
        ("step", "1.5", "step = 1.5 is not a whole number >= 0"),
    ],
)
def test_a_table_s_impossible_values_are_named_by_line_as_the_importers_name_them(tmp_path, column, cell, why):
    """`forecast --table` read import-results' CSV without the importers' checks: an accuracy of 1.7, a
    negative N ran to a forecast (a log10 warning on the way)."""
    table = long_table(simulated_ladder(3)).astype({column: object})
    first = table.index[table["metric"] == "multiple_choice_grade"][0]
    table.loc[first, column] = cell
    table.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(InputError) as err:
        load_results(None, None, tmp_path / "t.csv")
    row = table.loc[first]
    assert str(err.value) == (
        f"{tmp_path / 't.csv'}: line {first + 2}: model {row['model']!r}, {row['task']} multiple_choice_grade {why}"
    )


def test_a_table_s_results_without_a_value_are_left_out_with_a_warning(tmp_path, caplog):
    table = long_table(simulated_ladder(3))
    table.loc[[0, 1], "value"] = np.nan
    table.to_csv(tmp_path / "t.csv", index=False)
    read, _ = load_results(None, None, tmp_path / "t.csv")
    assert len(read) == len(table) - 2 and read["value"].notna().all()
    assert f"t.csv: 2 results without a value left out (models {table.loc[0, 'model']})" in caplog.text


def test_a_parquet_table_another_program_wrote_is_read_as_its_csv(tmp_path):
    """pandas writes `large_string` and `int64` columns where import-results writes `string` and `int32`:
    the file was refused, listing eleven columns; its values now go through the CSV's checks."""
    table = long_table(simulated_ladder(3))
    table.to_csv(tmp_path / "t.csv", index=False)
    table.to_parquet(tmp_path / "t.parquet")
    from_csv, _ = load_results(None, None, tmp_path / "t.csv")
    from_parquet, _ = load_results(None, None, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(from_parquet, from_csv, check_dtype=False)
    table.assign(value=table["value"].astype(str).where(table.index != 3, "x")).to_parquet(tmp_path / "text.parquet")
    with pytest.raises(InputError, match=r"text\.parquet: row 4: model .* value = 'x' is not a number$"):
        load_results(None, None, tmp_path / "text.parquet")


def test_a_table_s_repeated_results_sizes_and_empty_names_are_named_by_line(tmp_path):
    """A pasted copy of a row with another value flipped a forecast to `non_monotone`; a model given a
    second N, an empty task (a TypeError), an all-text Parquet file (another) and a column of dates ran."""
    table = long_table(simulated_ladder(3))
    row = table.iloc[5]
    cases = {
        "repeat": (
            pd.concat([table, table.iloc[[5]].assign(value=0.2)], ignore_index=True),
            f"line {len(table) + 2}: model {row['model']!r}, sim_task zero_shot multiple_choice_grade given a second"
            " time; keep one",
        ),
        "size": (
            table.assign(n_params_non_embedding=table["n_params_non_embedding"].where(table.index != 5, 1e9)),
            f"line 7: model {row['model']!r} has N = 1e+09 here and {row['n']:g} above: one size per model",
        ),
        "task": (table.assign(task=table["task"].where(table.index != 5, "")), "line 7: empty 'task'"),
    }
    for name, (edited, message) in cases.items():
        edited.to_csv(tmp_path / f"{name}.csv", index=False)
        with pytest.raises(InputError) as err:
            load_results(None, None, tmp_path / f"{name}.csv")
        assert str(err.value) == f"{tmp_path / name}.csv: {message}"
    table.astype(str).to_parquet(tmp_path / "text.parquet")  # every column text: read as a CSV's cells
    read, _ = load_results(None, None, tmp_path / "text.parquet")
    assert read["value"].tolist() == table["value"].tolist() and read["training_tokens"].dtype == float
    table.assign(training_tokens=pd.Timestamp("2024-01-01")).to_parquet(tmp_path / "dates.parquet")
    with pytest.raises(
        InputError, match=r"dates\.parquet: column 'training_tokens' holds datetime64\[.*\], not numbers$"
    ):
        load_results(None, None, tmp_path / "dates.parquet")
