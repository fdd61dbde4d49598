"""The commands for results made elsewhere: every `--settings` checked as a sweep's config is, and their
tables written where and as asked (CSV or Parquet by the path's suffix, folders made, nothing partial)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

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
