"""The commands for results made elsewhere: every `--settings` checked as a sweep's config is, and their
tables written where and as asked (CSV or Parquet by the path's suffix, folders made, nothing partial)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import run_cli
from emergence import cli, io
from emergence.config import ConfigError, check_config
from emergence.importers import IMPORTERS

REPO = Path(__file__).resolve().parents[1]
TABLE = """model,n_params,exact_match,target_nll
a,1e6,0.02,2.0
b,1e7,0.05,1.5
c,1e8,0.40,1.1
d,1e9,0.90,0.8
"""

BAD_SETTINGS = [
    ('{"bootstrap": "many"}', "--settings: bootstrap: 'many' is not of type 'integer'"),
    ('{"bootstrap": -5}', "--settings: bootstrap: -5 is less than the minimum of 0"),
    ('{"bootstrap": 2.5}', "--settings: bootstrap: 2.5 is not of type 'integer'"),
    ('{"confidence_level": 90}', "--settings: confidence_level: 90 is greater than or equal to the maximum of 1"),
    ('{"x_axes": ["n_parms"]}', "--settings: x_axes.0: 'n_parms' is not one of ['n_params', 'training_flops']"),
    ('{"sigmoid_metrics": ["exact_mtch"]}', "sigmoid_metrics: unknown metric 'exact_mtch'"),
    ('{"sigmoid_metrics": ["target_logprob"]}', "sigmoid_metrics: target_logprob is continuous and not bounded"),
    ('{"bootstap": 3}', "unknown setting 'bootstap'"),
    ("{bootstrap: 3", "--settings is not JSON"),
    ('{"confidence_level": NaN}', "--settings: confidence_level: nan is not a finite number"),
    ('{"huber_delta": Infinity}', "--settings: huber_delta: inf is not a finite number"),
    ('{"emergent_breakthroughness": -1e400}', "--settings: emergent_breakthroughness: -inf is not a finite number"),
    ('{"min_models": 1e18}', "--settings: min_models: 1e+18 is not of type 'integer' (write 1000000000000000000"),
    ('{"x_axes": ["n_params", "n_params"]}', "--settings: x_axes: ['n_params', 'n_params'] has non-unique elements"),
]


def commands(folder) -> dict[str, list[str]]:
    """Each command that takes `--settings`, on a small table, writing into `folder`/out."""
    (folder / "table.csv").write_text(TABLE)
    table, out = str(folder / "table.csv"), folder / "out"
    return {
        "fit-csv": ["fit-csv", "--csv", table, "--out", str(out / "fits.csv")],
        "import-results": [
            *("import-results", "--format", "table", "--path", table),
            *("--out", str(out / "t.csv"), "--fits", str(out / "f.csv")),
        ],
    }


@pytest.mark.parametrize("command", ["fit-csv", "import-results"])
@pytest.mark.parametrize("settings,message", BAD_SETTINGS)
def test_bad_settings_are_one_line_and_write_nothing(tmp_path, capsys, root_logging, command, settings, message):
    argv = commands(tmp_path)[command]
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--settings", settings])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 1 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_forecast_settings_that_are_not_json_are_one_line(tmp_path, capsys, root_logging):
    (tmp_path / "table.csv").write_text(TABLE)
    with pytest.raises(SystemExit):
        cli.main(
            ["forecast", "--table", str(tmp_path / "table.csv"), "--settings", "{replicates", "--out", "x.parquet"]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --settings is not JSON"), err


def test_good_settings_reach_the_fits(tmp_path, root_logging):
    argv = commands(tmp_path)["fit-csv"]
    cli.main([*argv, "--settings", '{"bootstrap": 0, "x_axes": ["n_params"]}'])
    fits = pd.read_csv(tmp_path / "out" / "fits.csv")
    assert set(fits["x"].dropna()) <= {"", "n_params"} and fits["ci_low"].isna().all()  # no replicates, one axis


def test_tables_are_parquet_or_csv_by_suffix_in_folders_made_for_them(tmp_path, root_logging):
    """import-results and fit-csv write Parquet in the stage's schema for a .parquet path (which forecast
    --table and the stages read back), CSV otherwise, creating the folder; never a CSV under a .parquet name."""
    (tmp_path / "table.csv").write_text(TABLE)
    deep = tmp_path / "new" / "folder"
    source, out = ["--format", "table", "--path", str(tmp_path / "table.csv")], ["--out", str(deep / "t.parquet")]
    cli.main(["import-results", *source, *out, "--fits", str(deep / "f.parquet")])
    imported, fits = io.read_table(deep / "t.parquet", "imported"), io.read_table(deep / "f.parquet", "fits")
    assert sorted(imported["model"].unique()) == ["a", "b", "c", "d"]
    assert pq.read_schema(deep / "f.parquet").field("n_items").type == "int32"
    cli.main(
        ["fit-csv", "--csv", str(tmp_path / "table.csv"), "--out", str(deep / "f.csv"), "--table", str(deep / "t.csv")]
    )
    from_csv = pd.read_csv(deep / "f.csv")
    assert len(from_csv) == len(fits) and list(from_csv.columns) == list(fits.columns)
    assert pd.read_csv(deep / "t.csv")["model"].nunique() == 4
    assert sorted(p.name for p in deep.iterdir()) == ["f.csv", "f.parquet", "t.csv", "t.parquet"]  # no leftovers


def test_import_results_help_names_every_format():
    help_text = cli.COMMANDS["import-results"][1]
    assert all(name in help_text for name in IMPORTERS), (sorted(IMPORTERS), help_text)


@pytest.mark.parametrize(
    "metrics,message",
    [
        (["exact_mtch"], "unknown metric 'exact_mtch'"),
        (["target_logprob"], "target_logprob is continuous and not bounded"),
    ],
)
def test_a_sweep_refuses_sigmoid_metrics_the_fits_would_pass_over(metrics, message):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["fitting"]["sigmoid_metrics"] = metrics
    with pytest.raises(ConfigError, match=f"fitting.sigmoid_metrics: {message}"):
        check_config(config)


def test_outputs_never_overwrite_an_input_or_each_other(tmp_path, capsys, root_logging):
    """A command refuses, before reading or writing anything, an output that is an input, lies inside an
    input folder (the next run would read it back), names a folder, or names another output's file."""
    (tmp_path / "table.csv").write_text(TABLE)
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "a.csv").write_text(TABLE)
    table, folder = str(tmp_path / "table.csv"), str(tmp_path / "tables")
    cases = [
        (["fit-csv", "--csv", table, "--out", table], f"--out {table} is the input --csv {table}"),
        (["fit-csv", "--csv", folder, "--out", f"{folder}/fits.csv"], f"lies inside the input --csv {folder}"),
        (
            ["import-results", "--format", "table", "--path", folder, "--out", f"{folder}/t.csv"],
            f"lies inside the input --path {folder}",
        ),
        (["fit-csv", "--csv", table, "--out", folder], "give a file to write, not a folder"),
        (
            [
                "import-results",
                "--format",
                "table",
                "--path",
                table,
                "--out",
                f"{tmp_path}/o.csv",
                "--fits",
                f"{tmp_path}/o.csv",
            ],
            "--fits and --out name the same file",
        ),
        (["import-results", "--format", "table", "--path", table, "--out", table], "is the input --path"),
        (["forecast", "--table", table, "--targets", "d", "--out", table], "is the input --table"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit):
            cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
        assert (tmp_path / "table.csv").read_text() == TABLE and (tmp_path / "tables" / "a.csv").read_text() == TABLE
        assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv", "tables"]


def through_a_pipe(pipe: Path, out: Path, text: str) -> bytes:
    """What a reader of the FIFO `pipe` receives when `io.write_atomically` writes `text` to `out` (the
    pipe, or a link to it)."""
    import os
    import threading

    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    io.write_atomically(out, lambda path: path.write_text(text))
    reader.join(timeout=10)
    return b"".join(received)


def test_a_path_that_is_no_regular_file_is_written_through_not_replaced(tmp_path):
    """`--out /dev/null` or a pipe: written to, never renamed over (a rename replaced /dev/null with a file)."""
    import stat

    pipe = tmp_path / "pipe"
    assert through_a_pipe(pipe, pipe, "model,value\n") == b"model,value\n" and stat.S_ISFIFO(pipe.stat().st_mode)


def test_a_seed_or_count_below_zero_is_refused_by_the_parser(tmp_path, capsys):
    (tmp_path / "table.csv").write_text(TABLE)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit-csv", "--csv", str(tmp_path / "table.csv"), "--seed", "-1"])
    assert exit_.value.code == 2 and "argument --seed: -1 is below 0" in capsys.readouterr().err


def test_models_to_predict_are_finite_named_once_and_not_targets():
    from emergence.errors import InputError
    from emergence.forecast.ladder import Settings
    from emergence.forecast.stage import parse_planned, run

    with pytest.raises(InputError, match="n_params_non_embedding '1e400' must be a finite count >= 1"):
        parse_planned(["30B:1e400:6e12"])
    with pytest.raises(InputError, match=r"training_tokens '6e-3' must be a finite count >= 1 \(a size in billions"):
        parse_planned(["30B:3e10:6e-3"])
    with pytest.raises(InputError, match="expected a name and finite N and D"):
        parse_planned(["30B::6e12"])
    with pytest.raises(InputError, match="a second model named 30B"):
        parse_planned(["30B:3e10:6e12", "30B:3e10:6e12"])
    results = pd.DataFrame(columns=["method", "task", "metric"])
    with pytest.raises(InputError, match="d is both a target and a model to --predict"):
        run(results, ["d"], Settings(), planned=[("d", 3e10, 6e12)])


def test_a_link_is_written_through_to_its_target_and_a_failed_write_is_one_line(tmp_path, capsys):
    """`--out /dev/stdout` (a link to the terminal or a pipe) replaced the link with a regular file, and so
    did a link to a file; both now write where the link points (a link to a pipe is tested with a FIFO).
    A write that fails (a folder of /proc, a full device) is one `error:` line, not a traceback."""
    target, link = tmp_path / "target.csv", tmp_path / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target)
    io.write_atomically(link, lambda path: path.write_text("new\n"))
    assert link.is_symlink() and target.read_text() == "new\n"
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "made.csv")
    io.write_atomically(dangling, lambda path: path.write_text("made\n"))
    assert dangling.is_symlink() and (tmp_path / "made.csv").read_text() == "made\n"
    pipe, to_pipe = tmp_path / "pipe", tmp_path / "stdout"
    to_pipe.symlink_to(pipe)
    assert through_a_pipe(pipe, to_pipe, "piped\n") == b"piped\n" and to_pipe.is_symlink()
    (tmp_path / "table.csv").write_text(TABLE)
    for out in ("/proc/emergence-test.csv", "/dev/full"):
        status, _, err = run_cli(["fit-csv", "--csv", str(tmp_path / "table.csv"), "--out", out], capsys)
        assert status == 1 and err.strip().splitlines()[-1].startswith(f"error: {out}: cannot be written ("), err


def test_when_one_output_cannot_be_written_every_output_stays_as_it_was(tmp_path, capsys):
    """fit-csv --table and import-results --out were written before --out or --fits failed, and stayed;
    then the written one was deleted: a file that was there before, or a link and its target, lost.
    Now nothing is renamed into place until every output is written, and folders made are removed."""
    (tmp_path / "table.csv").write_text(TABLE)
    table = str(tmp_path / "table.csv")
    old, target, link = tmp_path / "old.csv", tmp_path / "target.csv", tmp_path / "link.csv"
    for unwritable in ("/proc/emergence-test.csv", "/dev/full"):
        for out in (old, link, tmp_path / "new" / "deeper" / "long.csv"):
            old.write_text("keep\n")
            target.write_text("target\n")
            link.unlink(missing_ok=True)
            link.symlink_to(target)
            for argv in (
                ["fit-csv", "--csv", table, "--table", str(out), "--out", unwritable],
                ["import-results", "--format", "table", "--path", table, "--out", str(out), "--fits", unwritable],
            ):
                status, _, err = run_cli(argv, capsys)
                assert status == 1 and err.strip().splitlines()[-1].startswith(
                    f"error: {unwritable}: cannot be written"
                )
                assert old.read_text() == "keep\n" and link.is_symlink() and target.read_text() == "target\n"
                assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "old.csv", "table.csv", "target.csv"]
