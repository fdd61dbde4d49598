# Config validation and the input functions every stage shares.
import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.utils import validate

from emergence.config import ConfigError, check_config, schema_problem
from emergence.io import unreadable_parquet
from emergence.plan import (
    engine_settings,
    forecast_arguments,
    forecast_sources,
    imported_entry,
    item_files,
    keeps_items,
    model_resources,
    plan,
    source_files,
    sweep_forecast_arguments,
    training_priority,
)
from emergence.plan import model_inputs as model_inputs_of
from emergence.plan import task_inputs as task_inputs_of

# A bad config stops the run before any job, with one line naming the key (Snakemake's own
# message prints the whole schema); then Snakemake's validation, which also fills in defaults.
problem = schema_problem(config, workflow.source_path("../config/schema.yaml"))
if problem:
    sys.exit(f"config error: {problem}")
validate(config, "../config/schema.yaml")
try:
    check_config(config)
except ConfigError as err:
    sys.exit(f"config error: {err}")

envvars:
    "PATH",


# A stage file truncated or damaged since an earlier run (a full disk, a copy cut short) is removed
# here, so Snakemake rebuilds it instead of trusting it. Only the main process checks, not each job.
if workflow.is_main_process:
    for broken in unreadable_parquet("results"):
        print(f"{broken}: truncated or corrupt Parquet file; removed, it will be rebuilt", file=sys.stderr)
        broken.unlink()


# Jobs find the package's CLI (`emergence`) beside the interpreter that runs Snakemake; under
# --software-deployment-method conda, the rule's environment comes first.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
SWEEP = plan(config)  # everything the sweep will do, from the config alone (emergence/plan.py)
MODELS = list(SWEEP.models)
TASKS = list(SWEEP.tasks)
METHOD_SPECS = SWEEP.methods  # a list of k: one method per k
METHODS = sorted(METHOD_SPECS)
PAIRS = list(SWEEP.pairs)  # (task, method): every method, or those a task lists
FIGURES, FIGURE_NOTES = SWEEP.figures, list(SWEEP.figure_notes)
SOURCES = SWEEP.sources  # results made elsewhere, by name (rules/imported.smk)
ITEM_SOURCES = [name for name, source in SOURCES.items() if keeps_items(source)]  # their format keeps items
CURVES = ["sizes", "training"]  # an imported source's two kinds of curve (emergence/analysis/checkpoints.py)
FORECAST_SOURCES = forecast_sources(config)  # sources with a `forecast:` section (rule forecast_imported)
SWEEP_FORECAST = "forecast" in config and bool(MODELS)  # the sweep's own models forecast (rules/forecast.smk)


def per_pair(pattern, **wildcards):
    """`pattern` filled in for every (task, method) of the sweep; other wildcards as given."""
    return [pattern.format(task=task, method=method, **wildcards) for task, method in PAIRS]


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def task_inputs(wildcards):
    """What a task's items are made from, as its kind declares it (emergence/tasks/)."""
    return task_inputs_of(config, wildcards.task)


def model_inputs(wildcards):
    """What a model's manifest is made from, as its source declares it (emergence/sources/)."""
    return model_inputs_of(config, wildcards.model)


def input_paths(input):
    """A rule's named inputs as JSON for the CLI: {name: path or [paths]}."""
    named = {key: getattr(input, key) for key in input.keys()}
    return as_json({key: value if isinstance(value, str) else list(value) for key, value in named.items()})


def scores_of(task, method):
    return expand("results/scores/{model}/{task}/{method}.parquet", model=MODELS, task=task, method=method)


def figures(extension="png"):
    return [f"results/figures/{stem}.{extension}" for stem in FIGURES]


def figure_inputs(wildcards):
    """The fit tables a figure reads, and every model's manifest (for N and C)."""
    tables = FIGURES[wildcards.figure]["tables"]
    return {
        "fits": [f"results/fits/{task}/{method}.parquet" for task, method in tables],
        "manifests": expand("results/models/{model}/manifest.json", model=MODELS),
    }


def imported_inputs(wildcards):
    """What an imported source's curves are fitted and judged from: its table, and its per-item scores
    where its format keeps items (curves over sizes only)."""
    items = wildcards.source in ITEM_SOURCES and wildcards.get("curves", "sizes") == "sizes"
    table = f"results/imported/{wildcards.source}/results.parquet"
    return {"table": table, **({"per_item": f"results/imported/{wildcards.source}/items.parquet"} if items else {})}


def items_option(wildcards, input):
    """`--items PATH` where the job reads per-item scores."""
    return f"--items {shlex.quote(input.per_item)}" if "per_item" in input.keys() else ""


def imported(pattern, curves=CURVES):
    """`pattern` filled in for every imported source (and kind of curve)."""
    return expand(pattern, source=list(SOURCES), curves=curves)


def forecasted(pattern):
    """`pattern` filled in for every imported source with a `forecast:` section."""
    return expand(pattern, source=FORECAST_SOURCES)


def sweep_forecasted(path):
    """`path` (an output of rules/forecast.smk) when the sweep forecasts its own models, else nothing."""
    return [path] if SWEEP_FORECAST else []


def forecast_options(wildcards):
    """The `emergence forecast` options of a source's `forecast:` entry, quoted for the shell."""
    return shlex.join(forecast_arguments(SOURCES[wildcards.source]["forecast"], config["seed"]))


def get_final_output():
    return ["results/report.html", *figures("pdf")]
