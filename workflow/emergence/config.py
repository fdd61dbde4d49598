"""Checks of a sweep config that a JSON schema cannot express, run before any job starts.

The schema (config/schema.yaml) catches misspelled keys and wrong types; this catches entries that
are well-formed but unusable (a checkpoint folder that is not there, a task with no items, more
exemplars asked for than the pool holds), so a bad sweep fails at once with one line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from emergence.errors import EmergenceError

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"  # the sweep config's schema


class ConfigError(EmergenceError, ValueError):
    """A sweep config entry that is well-formed but cannot be run."""


def check_config(config: dict) -> None:
    from emergence.sources import source_of

    for name, entry in config.get("models", {}).items():
        source_of(name, entry).check(name, entry, config)
    check_results(config.get("results", []))
    if "forecast" in config:
        check_sweep_forecast(config)
    training = config.get("training")
    if training:
        from emergence.training import longest_line

        longest = longest_line(training["operations"], training["max_digits"])
        if longest > training["seq_len"]:
            raise ConfigError(
                f"training.seq_len: {training['seq_len']} is shorter than the longest curriculum line"
                f" ({longest} tokens)"
            )
    from emergence.tasks import kind_of

    pools = {}
    for name, task in config.get("tasks", {}).items():
        kind = kind_of(name, task)
        kind.check(name, task, config)
        pools[name] = kind.exemplar_pool(name, task, config)
    from emergence.scoring.metrics import check_sigmoid_metrics, expand_metrics, spec

    for name in expand_metrics(config["metrics"], 1):
        try:
            spec(name)
        except EmergenceError as error:  # e.g. a threshold on a metric that is already all-or-nothing
            raise ConfigError(f"metrics: {error}") from None
    try:
        check_sigmoid_metrics(config["fitting"].get("sigmoid_metrics", ()))
    except EmergenceError as error:
        raise ConfigError(f"fitting.{error}") from None
    figures = config["figures"]
    if figures["metric"] not in config["metrics"]:
        raise ConfigError(f"figures.metric: {figures['metric']} is not among the scored metrics {config['metrics']}")
    from emergence.plan import expand_methods, sweep_pairs

    methods = expand_methods(config.get("methods", {}))
    if figures.get("method") and figures["method"] not in methods:
        raise ConfigError(f"figures.method: {figures['method']} is not a configured method ({', '.join(methods)})")
    for name, task in config.get("tasks", {}).items():
        unknown = sorted(set(task.get("methods", [])) - set(config["methods"]))
        if unknown:
            raise ConfigError(
                f"tasks.{name}.methods: {', '.join(unknown)} not among the configured methods"
                f" ({', '.join(config['methods'])})"
            )
    for task, method in sweep_pairs(config):
        k = methods[method].get("k", 0)
        if pools[task] < k:
            raise ConfigError(f"methods.{method}.k: {k} exemplars need n_train >= {k}, task {task} has {pools[task]}")
    from emergence.methods import method_of

    for name, method in methods.items():
        method_of(name, method).check(name, method)


def check_results(sources: list[dict]) -> None:
    """Each `results:` entry names a registered format and an existing path (and model registry), under a
    name of its own. A `tokenizer` is not checked here: a hub name may need the network, and the import
    job says in one line when it cannot be loaded."""
    from emergence.importers import IMPORTERS

    seen: set[str] = set()
    for source in sources:
        name = source["name"]
        if name in seen:
            raise ConfigError(f"results: the name {name} is given twice (each source needs its own)")
        seen.add(name)
        if source["format"] not in IMPORTERS:
            known = ", ".join(sorted(IMPORTERS))
            raise ConfigError(f"results.{name}.format: unknown results format {source['format']!r} (known: {known})")
        if not Path(source["path"]).exists():
            raise ConfigError(
                f"results.{name}.path: {source['path']} does not exist (a relative path resolves against the"
                f" working folder, {Path.cwd()})"
            )
        if source.get("models") and not Path(source["models"]).is_file():
            raise ConfigError(
                f"results.{name}.models: {source['models']} is not a file"
                " (a model registry, shaped as config/model_families.yaml)"
            )
        if "forecast" in source:
            check_forecast(name, source["forecast"])


def check_forecast(name: str, forecast: dict) -> None:
    """A `forecast:` entry names registered methods and rule, and targets the models it predicts."""
    from emergence.forecast import FORECASTS
    from emergence.forecast.verdict import RULES

    unknown = sorted(set(forecast.get("methods", [])) - set(FORECASTS))
    if unknown:
        known = ", ".join(sorted(FORECASTS))
        raise ConfigError(f"results.{name}.forecast.methods: unknown method {', '.join(unknown)} (known: {known})")
    if "rule" in forecast and forecast["rule"] not in RULES:
        known = ", ".join(sorted(RULES))
        raise ConfigError(f"results.{name}.forecast.rule: unknown rule {forecast['rule']!r} (known: {known})")
    if not forecast.get("targets") and not forecast.get("predict"):
        raise ConfigError(f"results.{name}.forecast: give targets (models held out) or predict (models not trained)")


def check_sweep_forecast(config: dict) -> None:
    """The sweep's own `forecast:` names models, tasks and a method of the sweep (its forecast methods and
    rule are checked by the schema: importing the forecast package here would slow every start)."""
    from emergence.plan import expand_methods

    forecast, models = config["forecast"], config.get("models", {})
    if not models:
        raise ConfigError("forecast: the sweep runs no models (results made elsewhere: results.<name>.forecast)")
    for key, known in (("targets", models), ("tasks", config.get("tasks", {}))):
        unknown = sorted(set(forecast.get(key, [])) - set(known))
        if unknown:
            raise ConfigError(f"forecast.{key}: {', '.join(unknown)} not in the sweep ({', '.join(sorted(known))})")
    methods = expand_methods(config.get("methods", {}))
    if "prompt_method" in forecast and forecast["prompt_method"] not in methods:
        raise ConfigError(f"forecast.prompt_method: {forecast['prompt_method']} is not a method ({', '.join(methods)})")
    if "targets" in forecast and not forecast["targets"] and not forecast.get("predict"):
        raise ConfigError("forecast: targets [] holds out no model; give predict (models not trained) too")


def schema_problem(config: dict, schema_file: str | Path) -> str | None:
    """The most relevant schema violation of `config` as one line naming the key, or None."""
    import yaml

    return first_problem(config, yaml.safe_load(Path(schema_file).read_text()))


def settings_problem(values: dict, block: str, schema_file: str | Path) -> str | None:
    """`schema_problem` of one block's values given on their own, as a command's `--settings` give the
    `fitting` block: types and ranges only (the caller refuses unknown keys, with a suggestion, and fills
    in defaults)."""
    import yaml

    schema = yaml.safe_load(Path(schema_file).read_text())
    return first_problem(values, {**schema["properties"][block], "additionalProperties": True, "required": []})


def first_problem(instance: dict, schema: dict) -> str | None:
    """The schema violation to report, with two rules JSON Schema leaves out: no number may be NaN or
    infinite (YAML's .nan, JSON's NaN and 1e400 pass a range check), and an integer is written as one
    (1e18 and 2.0 are floats to Python, however whole)."""
    import jsonschema

    for key, value in numbers(instance):
        if not math.isfinite(value):
            return f"{key or '(top level)'}: {value} is not a finite number"
    base = jsonschema.validators.validator_for(schema)
    whole = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    validator = jsonschema.validators.extend(base, type_checker=whole)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is None:
        return None
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "anyOf" and error.context:  # say what each alternative wanted, not only "none matched"
        return f"{key}: {', nor '.join(dict.fromkeys(sub.message for sub in error.context))}"
    return f"{key}: {error.message}{number_hint(error.instance)}"


def numbers(value: object, key: str = "") -> Iterator[tuple[str, float]]:
    """(dotted key, number) of every float in a nested config."""
    if isinstance(value, float):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from numbers(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from numbers(item, f"{key}.{i}" if key else str(i))


def number_hint(value: object) -> str:
    """How to write a number the schema refused for how it was written: YAML 1.1 (PyYAML, hence
    Snakemake) reads 3e11 and 6.4e10 as text (a number needs a point and a sign in its exponent:
    3.0e+11); and 3.0e+11 is a float, where a count must be written whole (300000000000)."""
    if isinstance(value, float) and value.is_integer():
        return f" (write {int(value)}: with a point or an exponent a number is read as a float)"
    if not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    return f" (YAML reads {value} as text: write {number:.1e}, with a point and the exponent's sign)"
