"""The sweep plan: everything the workflow will do, derived from the config alone.

`plan(config)` gives the models, tasks, expanded methods, the (task, method) pairs, the figures to draw
(with a note for each that cannot be drawn) and each model's engine settings and cluster resources.
It is all `rules/common.smk` imports, so parsing the workflow loads no engine, plotting or scoring
library (vLLM, torch, matplotlib, rapidfuzz): a no-op rerun stays fast. Pure functions of the config.
"""

from __future__ import annotations

from dataclasses import dataclass

from emergence.engines import OPTIONAL_OUTPUTS
from emergence.tasks import kind_of


@dataclass(frozen=True)
class Sweep:
    """What one config asks for. `methods` has a list of k expanded (`few_k0`, `few_k1`, ...);
    `figures` maps an output stem under results/figures/ to its kind, the fit tables it reads, options and title."""

    models: tuple[str, ...]
    tasks: tuple[str, ...]
    methods: dict[str, dict]
    pairs: tuple[tuple[str, str], ...]
    figures: dict[str, dict]
    figure_notes: tuple[str, ...]
    sources: dict[str, dict]  # results made elsewhere (`results:`), by name


def plan(config: dict) -> Sweep:
    """The sweep a validated config describes (see config/schema.yaml)."""
    figures, notes = figure_plan(config)
    return Sweep(
        models=tuple(sorted(config.get("models", {}))),
        tasks=tuple(sorted(config.get("tasks", {}))),
        methods=expand_methods(config.get("methods", {})),
        pairs=tuple(sweep_pairs(config)),
        figures=figures,
        figure_notes=tuple(notes),
        sources={source["name"]: source for source in config.get("results", [])},
    )


def source_files(source: dict) -> list[str]:
    """The files a `results:` entry imports (the file, or every file its format reads under the folder):
    the import job's inputs, so it runs again when one changes, appears or goes."""
    from pathlib import Path

    from emergence.importers import IMPORTERS

    path = Path(source["path"])
    pattern = IMPORTERS.find(source["format"], f"results.{source['name']}.format").pattern
    files = [str(path)] if path.is_file() else sorted(str(p) for p in path.rglob(pattern) if p.is_file())
    return files + ([source["models"]] if source.get("models") else [])  # the model registry it names


def keeps_items(source: dict) -> bool:
    """Whether a `results:` entry's format keeps per-item results (lm_eval_0.4's samples files): its
    sweep then writes results/imported/<name>/items.parquet and fits its curves over sizes from items.
    Known from the format alone, so the DAG is fixed when the workflow is parsed."""
    from emergence.importers import IMPORTERS

    return IMPORTERS.find(source["format"], f"results.{source['name']}.format").item_pattern is not None


def item_files(source: dict) -> list[str]:
    """The files a per-item import reads: the results files (and registry), and the per-item files
    (samples) in the folders of the results files."""
    from pathlib import Path

    from emergence.importers import IMPORTERS

    pattern = IMPORTERS.find(source["format"], f"results.{source['name']}.format").item_pattern
    results = source_files(source)
    folders = sorted({Path(f).parent for f in results if f != source.get("models")})
    return results + sorted(str(p) for folder in folders for p in folder.glob(pattern or "") if p.is_file())


FORECAST_OPTIONS = ("targets", "predict", "tasks", "prompt_method")  # the rest of a `forecast:` entry is Settings


def forecast_sources(config: dict) -> list[str]:
    """The `results:` entries with a `forecast:` section, by name (rule forecast_imported)."""
    return [source["name"] for source in config.get("results", []) if "forecast" in source]


def forecast_arguments(forecast: dict, seed: int) -> list[str]:
    """`emergence forecast` options from a source's `forecast:` entry (config/schema.yaml): the targets,
    models not trained (`--predict NAME:N:D`), tasks and prompting method; every other key goes to
    `--settings` (`forecast.ladder.Settings`), as sorted JSON so that the command is the same every run."""
    import json

    arguments = ["--seed", str(seed)]
    if forecast.get("targets"):
        arguments += ["--targets", *forecast["targets"]]
    if forecast.get("predict"):
        arguments += ["--predict"]
        arguments += [
            f"{p['name']}:{float(p['n_params'])!r}:{float(p['training_tokens'])!r}" for p in forecast["predict"]
        ]
    if forecast.get("tasks"):
        arguments += ["--tasks", *forecast["tasks"]]
    if forecast.get("prompt_method"):
        arguments += ["--prompt-method", forecast["prompt_method"]]
    settings = {key: value for key, value in forecast.items() if key not in FORECAST_OPTIONS}
    return [*arguments, "--settings", json.dumps(settings, sort_keys=True)]


def sweep_forecast_arguments(config: dict) -> list[str]:
    """`emergence forecast` options of the sweep's own `forecast:` section (rule forecast): as a source's,
    with the task loss `target_nll` (the scores' per-token loss) unless set, and each family's largest
    size held out (`--hold-out largest`) unless `targets` names the models (`[]`: none, only `predict`)."""
    forecast = {"task_loss": "target_nll", **config["forecast"]}
    return forecast_arguments(forecast, config["seed"]) + ([] if "targets" in forecast else ["--hold-out", "largest"])


def imported_entry(source: dict) -> dict:
    """A `results:` entry as the import job reads it: without `forecast:`, so that changing a forecast
    re-runs the forecast, not the import and everything after it."""
    return {key: value for key, value in source.items() if key != "forecast"}


def task_inputs(config: dict, task: str) -> dict[str, str]:
    """The files a task's items are made from, as its kind declares them (`emergence.tasks`)."""
    spec = config["tasks"][task]
    return kind_of(task, spec).inputs(task, spec)


def model_inputs(config: dict, model: str) -> dict[str, str | list[str]]:
    """The files a model's manifest is made from, as its source declares them (`emergence.sources`)."""
    from emergence.sources import source_of

    entry = config["models"][model]
    return source_of(model, entry).inputs(model, entry)


def model_resources(config: dict, model: str) -> dict:
    """What a model's inference job asks of a cluster; defaults filled in by the schema."""
    return {"gpus": 0, "mem_mb": 8000, "runtime": 120, **config["models"][model].get("resources", {})}


def training_priority(config: dict, model: str) -> float:
    """A trained_tiny model's training cost, about layers x width^2 x tokens (1e12 units), as its job's
    scheduling priority: the longest training starts first and shorter jobs fill the other cores,
    instead of a size that starts last deciding when inference can begin."""
    entry = config["models"][model]
    tokens = entry.get("tokens", config.get("training", {}).get("tokens", 0))
    return entry["num_layers"] * entry["hidden_size"] ** 2 * tokens / 1e12


def engine_settings(config: dict, model: str) -> dict:
    """The engine settings of one model: a model given GPUs runs tensor-parallel over all of them;
    log-probabilities (of targets, teacher-forced, and of sampled tokens) are computed only when a
    configured metric reads them."""
    gpus = model_resources(config, model)["gpus"]
    return {
        **config["engine"],
        "seed": config["seed"],
        **engine_outputs(config["metrics"]),
        **({"tensor_parallel_size": gpus} if gpus else {}),
    }


def engine_outputs(names: list[str]) -> dict[str, bool]:
    """Which optional engine outputs these metrics read (pass@k and the like read sampled texts only):
    the inference stage computes only those."""
    # metric metadata; rapidfuzz is imported only when a metric runs
    from emergence.scoring.metrics import METRICS, base_metric

    reads = {output for name in map(base_metric, names) if name in METRICS for output in METRICS[name].reads}
    return {output: output in reads for output in OPTIONAL_OUTPUTS}


def expand_methods(methods: dict) -> dict:
    """The configured methods with a list of k (the in-context learning curve) made one method per k."""
    out = {}
    for name, spec in methods.items():
        if isinstance(spec.get("k"), list):
            out.update({f"{name}_k{k}": {**spec, "k": k} for k in spec["k"]})
        else:
            out[name] = spec
    return out


def sweep_pairs(config: dict) -> list[tuple[str, str]]:
    """Every (task, method) the sweep runs: all methods, or those a task lists under `methods`.

    A listed name covers every method it expands to (`few` covers `few_k0`, `few_k1`, ...); a shifted
    variant runs what its clean task runs unless it lists its own.
    """
    expanded = expand_methods(config.get("methods", {}))
    covers = {
        name: [m for m in expanded if m == name or m.startswith(f"{name}_k")] for name in config.get("methods", {})
    }
    pairs = []
    for task, spec in sorted(config.get("tasks", {}).items()):
        clean = kind_of(task, spec).shifted_from(spec)
        listed = spec.get("methods") or (clean and config["tasks"].get(clean, {}).get("methods"))
        methods = [m for m in expanded if not listed or any(m in covers[name] for name in listed)]  # config order
        pairs += [(task, method) for method in methods]
    return pairs


METRIC_LABELS = {
    "exact_match": "Exact match",
    "exact_string_match": "Exact string match",
    "token_edit_distance": "Token edit distance",
    "target_logprob": "log P(target)",
    "target_nll": "Per-token loss, −log P(target) / tokens (nats)",
    "per_token_prob": "Per-token probability of the target",
    "multiple_choice_grade": "Multiple-choice grade",
    "brier_multiclass": "Brier score (multi-class)",
}


def label(metric: str) -> str:
    from emergence.scoring.metrics import THRESHOLD

    threshold = THRESHOLD.match(metric)
    if threshold and metric not in METRIC_LABELS:
        return f"{label(threshold[1])} {threshold[2].replace('==', '=')} {threshold[3]}"
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


@dataclass(frozen=True)
class FigureContext:
    """What every figure planner reads: the sweep's (task, method) pairs, each task's methods and its main
    method (`figures.method`, or the task's first), the figure settings and the largest family's size."""

    config: dict
    pairs: list[tuple[str, str]]
    runs: dict[str, list[str]]
    main: dict[str, str]
    x: str
    metric: str
    largest: int

    @property
    def metrics(self) -> list[str]:
        return self.config["metrics"]

    @property
    def fitting(self) -> dict:
        return self.config["fitting"]

    def entry(self, kind: str, tables: list[tuple[str, str]], options: dict, title: str) -> dict:
        return {"kind": kind, "tables": tables, "options": options, "title": title}


Planned = tuple[dict[str, dict], list[str]]  # figures by output stem, and notes on those not drawn


def figure_plan(config: dict) -> Planned:
    """The figures a sweep can draw, by output stem under results/figures/, and a note for each it cannot.

    Each entry gives the figure's kind, the task x method fit tables it reads, its options and title.
    Summary figures use `figures.method`, or for a task that does not run it, the task's first method.
    """
    pairs = sweep_pairs(config)
    if not pairs or not config.get("models"):
        return {}, []  # results made elsewhere only: their figures are drawn per source (rules/imported.smk)
    runs: dict[str, list[str]] = {}
    for task, m in pairs:
        runs.setdefault(task, []).append(m)
    wanted = config["figures"].get("method")
    families: dict[str, int] = {}
    for name, entry in config["models"].items():
        families[entry.get("family", name)] = families.get(entry.get("family", name), 0) + 1
    context = FigureContext(
        config,
        pairs,
        runs,
        {task: wanted if wanted in methods else methods[0] for task, methods in runs.items()},
        config["figures"]["x"],
        config["figures"]["metric"],
        max(families.values()),
    )
    plan: dict[str, dict] = {}
    notes: list[str] = []
    planners = (loss_figures, task_figures, method_figures, per_run_figures, choice_figures, robustness_figures)
    for planner in (*planners, induced_figures):
        planned, why_not = planner(context)
        plan.update(planned)
        notes += why_not
    return plan, notes


def loss_figures(c: FigureContext) -> Planned:
    if "target_logprob" not in c.metrics:
        return {}, ["Loss against scale: not drawn, the sweep does not score target_logprob."]
    return {
        f"loss/{task}": c.entry("loss", [(task, c.main[task])], {}, f"Per-token loss, {task}, {c.main[task]}")
        for task in sorted(c.runs)
    }, []


def task_figures(c: FigureContext) -> Planned:
    tasks = sorted(c.runs)
    chance = {task: 0.0 for task in tasks}  # exact answers to generation tasks: no guessing
    title = f"{label(c.metric)} per task, {', '.join(sorted(set(c.main.values())))}"
    options = {"metric": c.metric, "x": c.x, "chance": chance}
    return {f"tasks/{c.metric}": c.entry("tasks", [(t, c.main[t]) for t in tasks], options, title)}, []


def method_figures(c: FigureContext) -> Planned:
    plan = {
        f"methods/{task}": c.entry(
            "methods",
            [(task, m) for m in c.runs[task]],
            {"metric": c.metric, "x": c.x, "by": "method"},
            f"Prompting methods, {task}",
        )
        for task in sorted(c.runs)
        if len(c.runs[task]) > 1
    }
    return plan, [] if plan else ["Prompting methods against scale: not drawn, the sweep has one method."]


def per_run_figures(c: FigureContext) -> Planned:
    """Per (task, method): one set of outputs under three metrics, and the extrapolation to the largest model."""
    continuous = [m for m in ("exact_match", "token_edit_distance", "target_logprob") if m in c.metrics]
    extrapolated = {
        m: fit
        for m, fit in ((c.metric, "sigmoid_floor"), ("target_nll", "power_law"))
        if m != "target_nll" or "target_logprob" in c.metrics
    }
    held_out = c.fitting["extrapolate"]
    can_extrapolate = held_out >= 1 and c.largest - held_out >= c.fitting["min_models"]
    plan = {}
    for task, m in c.pairs:
        plan[f"metrics/{task}/{m}"] = c.entry(
            "metrics", [(task, m)], {"metrics": continuous, "x": c.x}, f"One set of outputs, three metrics: {task}, {m}"
        )
        if can_extrapolate:
            plan[f"extrapolation/{task}/{m}"] = c.entry(
                "extrapolation",
                [(task, m)],
                {"metrics": extrapolated, "x": c.x},
                f"Extrapolation to the largest model: {task}, {m}",
            )
    notes = [
        f"Extrapolation: not drawn, no family has {c.fitting['min_models']} models besides the {held_out} held out."
    ]
    return plan, [] if can_extrapolate else notes


def choice_figures(c: FigureContext) -> Planned:
    choice = [m for m in ("multiple_choice_grade", "brier_multiclass") if m in c.metrics]
    tasks = [t for t, spec in sorted(c.config["tasks"].items()) if kind_of(t, spec).multiple_choice(spec)]
    if not tasks or len(choice) < 2:
        note = "Multiple-choice grade next to Brier score: not drawn, the sweep has no multiple-choice task scored"
        return {}, [note + " under both."]
    return {
        f"multiple_choice/{task}/{m}": c.entry(
            "multiple_choice", [(task, m)], {"metrics": choice, "x": c.x}, f"Grade and Brier score: {task}, {m}"
        )
        for task in tasks
        for m in c.runs[task]
    }, []


def robustness_figures(c: FigureContext) -> Planned:
    variants: dict[str, list[str]] = {}
    for task, spec in c.config["tasks"].items():
        clean = kind_of(task, spec).shifted_from(spec)
        if clean and c.main.get(task) == c.main.get(clean):
            variants.setdefault(clean, []).append(task)
    if not variants:
        return {}, ["Robustness (clean against shifted inputs): not drawn, the sweep has no shifted task variants."]
    return {
        f"robustness/{clean}": c.entry(
            "robustness",
            [(t, c.main[clean]) for t in [clean, *sorted(shifted)]],
            {"metric": c.metric, "x": c.x, "by": "task"},
            f"Clean against shifted inputs, {clean}, {c.main[clean]}",
        )
        for clean, shifted in sorted(variants.items())
    }, []


def induced_figures(c: FigureContext) -> Planned:
    """Per task: each thresholded metric beside the continuous metric it thresholds (induced emergence)."""
    from emergence.scoring.metrics import base_metric

    pairs = [m for name in c.metrics if base_metric(name) != name for m in (base_metric(name), name)]
    if not pairs:
        note = "Induced emergence: not drawn, the sweep thresholds no continuous metric (e.g. per_token_prob>=0.9)."
        return {}, [note]
    metrics = list(dict.fromkeys(pairs))
    return {
        f"induced/{task}": c.entry(
            "induced",
            [(task, c.main[task])],
            {"metrics": metrics, "x": c.x},
            f"A continuous metric and the same outputs thresholded: {task}, {c.main[task]}",
        )
        for task in sorted(c.runs)
    }, []
