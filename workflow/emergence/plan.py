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


def plan(config: dict) -> Sweep:
    """The sweep a validated config describes (see config/schema.yaml)."""
    figures, notes = figure_plan(config)
    return Sweep(
        models=tuple(sorted(config["models"])),
        tasks=tuple(sorted(config["tasks"])),
        methods=expand_methods(config["methods"]),
        pairs=tuple(sweep_pairs(config)),
        figures=figures,
        figure_notes=tuple(notes),
    )


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
    from emergence.scoring.metrics import METRICS  # metric metadata; rapidfuzz is imported only when a metric runs

    reads = {output for name in names if name in METRICS for output in METRICS[name].reads}
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
    expanded = expand_methods(config["methods"])
    covers = {name: [m for m in expanded if m == name or m.startswith(f"{name}_k")] for name in config["methods"]}
    pairs = []
    for task, spec in sorted(config["tasks"].items()):
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
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


def figure_plan(config: dict) -> tuple[dict[str, dict], list[str]]:
    """The figures a sweep can draw, by output stem under results/figures/, and a note for each it cannot.

    Each entry gives the figure's kind, the task x method fit tables it reads, its options and title.
    Summary figures use `figures.method`, or for a task that does not run it, the task's first method.
    """
    pairs = sweep_pairs(config)
    runs: dict[str, list[str]] = {}
    for task, m in pairs:
        runs.setdefault(task, []).append(m)
    tasks, metrics, fitting = sorted(runs), config["metrics"], config["fitting"]
    x, metric, wanted = config["figures"]["x"], config["figures"]["metric"], config["figures"].get("method")
    main = {task: wanted if wanted in methods else methods[0] for task, methods in runs.items()}
    families: dict[str, int] = {}
    for name, entry in config["models"].items():
        families[entry.get("family", name)] = families.get(entry.get("family", name), 0) + 1
    largest = max(families.values())
    plan, notes = {}, []
    chance = {task: 0.0 for task in tasks}  # exact answers to generation tasks: no guessing
    if "target_logprob" in metrics:
        for task in tasks:
            plan[f"loss/{task}"] = {
                "kind": "loss",
                "tables": [(task, main[task])],
                "options": {},
                "title": f"Per-token loss, {task}, {main[task]}",
            }
    else:
        notes.append("Loss against scale: not drawn, the sweep does not score target_logprob.")
    methods_named = sorted(set(main.values()))
    plan[f"tasks/{metric}"] = {
        "kind": "tasks",
        "tables": [(t, main[t]) for t in tasks],
        "options": {"metric": metric, "x": x, "chance": chance},
        "title": f"{label(metric)} per task, {', '.join(methods_named)}",
    }
    for task in tasks:
        if len(runs[task]) > 1:
            plan[f"methods/{task}"] = {
                "kind": "methods",
                "tables": [(task, m) for m in runs[task]],
                "options": {"metric": metric, "x": x, "by": "method"},
                "title": f"Prompting methods, {task}",
            }
    if all(len(methods) == 1 for methods in runs.values()):
        notes.append("Prompting methods against scale: not drawn, the sweep has one method.")
    continuous = [m for m in ("exact_match", "token_edit_distance", "target_logprob") if m in metrics]
    choice = [m for m in ("multiple_choice_grade", "brier_multiclass") if m in metrics]
    extrapolated = {
        m: fit
        for m, fit in ((metric, "sigmoid_floor"), ("target_nll", "power_law"))
        if m != "target_nll" or "target_logprob" in metrics
    }
    can_extrapolate = fitting["extrapolate"] >= 1 and largest - fitting["extrapolate"] >= fitting["min_models"]
    for task, m in pairs:
        plan[f"metrics/{task}/{m}"] = {
            "kind": "metrics",
            "tables": [(task, m)],
            "options": {"metrics": continuous, "x": x},
            "title": f"One set of outputs, three metrics: {task}, {m}",
        }
        if can_extrapolate:
            plan[f"extrapolation/{task}/{m}"] = {
                "kind": "extrapolation",
                "tables": [(task, m)],
                "options": {"metrics": extrapolated, "x": x},
                "title": f"Extrapolation to the largest model: {task}, {m}",
            }
    if not can_extrapolate:
        notes.append(
            f"Extrapolation: not drawn, no family has {fitting['min_models']} models besides the"
            f" {fitting['extrapolate']} held out."
        )
    multiple_choice_tasks = [t for t, spec in sorted(config["tasks"].items()) if kind_of(t, spec).multiple_choice(spec)]
    if not multiple_choice_tasks or len(choice) < 2:
        notes.append(
            "Multiple-choice grade next to Brier score: not drawn, the sweep has no multiple-choice task"
            " scored under both."
        )
    for task in multiple_choice_tasks if len(choice) == 2 else []:
        for m in runs[task]:
            plan[f"multiple_choice/{task}/{m}"] = {
                "kind": "multiple_choice",
                "tables": [(task, m)],
                "options": {"metrics": choice, "x": x},
                "title": f"Grade and Brier score: {task}, {m}",
            }
    variants: dict[str, list[str]] = {}
    for task, spec in config["tasks"].items():
        clean = kind_of(task, spec).shifted_from(spec)
        if clean and main.get(task) == main.get(clean):
            variants.setdefault(clean, []).append(task)
    for clean, shifted in sorted(variants.items()):
        plan[f"robustness/{clean}"] = {
            "kind": "robustness",
            "tables": [(t, main[clean]) for t in [clean, *sorted(shifted)]],
            "options": {"metric": metric, "x": x, "by": "task"},
            "title": f"Clean against shifted inputs, {clean}, {main[clean]}",
        }
    if not variants:
        notes.append("Robustness (clean against shifted inputs): not drawn, the sweep has no shifted task variants.")
    return plan, notes
