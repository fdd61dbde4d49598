"""What the columns of a published results table are: one alias table, header parsing, cell parsing.

`importers.table` reads a table through this module. ALIASES and METRIC_ALIASES are the one list of
the headers it understands (the README prints `alias_table()`, and a test checks they agree).
Headers are compared after `normalise`: lower case, each run of other characters one `_`, so
`# Params`, `params` and `PARAMS` are one header.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from emergence.errors import InputError
from emergence.importers.lm_eval_03 import project_metric
from emergence.scoring.metrics import METRICS

# Header (normalised, see `normalise`) -> the column it is. One table: the README prints it.
ALIASES = {
    "model": ("model", "model_name", "name", "model_id", "models"),
    "family": ("family", "model_family", "suite"),
    "task": ("task", "task_name", "benchmark", "dataset"),
    "item": ("item", "item_id", "doc_id"),
    "revision": ("revision", "checkpoint", "branch"),
    "step": ("step", "training_step"),
    "num_fewshot": ("num_fewshot", "shots", "n_shot", "n_shots", "fewshot", "k_shot"),
    "n_params": ("n_params", "params", "parameters", "num_params", "n_parameters", "size", "model_size"),
    "n_params_non_embedding": ("n_params_non_embedding", "non_embedding_params", "non_embedding_parameters"),
    "training_tokens": ("training_tokens", "tokens", "train_tokens", "n_tokens"),
    "training_flops": ("training_flops", "training_flop", "flops", "compute"),
    "n_items": ("n_items", "items", "n_samples", "num_samples", "n_examples", "num_examples"),
    "metric": ("metric", "measure"),
    "value": ("value", "score", "result"),
    "stderr": ("stderr", "std_err", "standard_error", "se"),
}
# Metric name (normalised) -> the key kept as `source_metric`; `metric_of` turns it into the project's.
METRIC_ALIASES = {
    "acc": ("acc", "accuracy"),
    "acc_norm": ("acc_norm", "accuracy_norm", "acc_normalized", "normalized_accuracy"),
    "exact_match": ("em", "exact_match", "exactmatch", "exact"),
    "multiple_choice_grade": ("mc_grade", "multiple_choice_grade"),
    "token_f1": ("f1", "token_f1"),
    "ppl": ("ppl", "perplexity"),
    "target_nll": ("loss", "nll", "target_nll", "cross_entropy"),
}
SUMMARIES = ("average", "avg", "mean", "rank")  # derived from other columns: skipped, said so
SIZE_COLUMNS = ("n_params", "n_params_non_embedding", "training_tokens", "training_flops")
# a size header's unit (`Params (B)`, `Size in millions`, normalised) -> its suffix in SUFFIXES
UNITS = {"k": "k", "m": "m", "b": "b", "bn": "b", "t": "t"} | {
    word + plural: suffix
    for word, suffix in (("thousand", "k"), ("million", "m"), ("billion", "b"), ("trillion", "t"))
    for plural in ("", "s")
}
SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}
MISSING = ("", "na", "n/a", "nan", "null", "none", "-", "—")
PERCENT = ("auto", "yes", "no")
LOOKUP = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
# ... and every other project metric (`scoring.metrics.METRICS`) under its own name
METRIC_LOOKUP = {name: name for name in METRICS} | {
    alias: name for name, aliases in METRIC_ALIASES.items() for alias in aliases
}


def normalise(header: object) -> str:
    """A header as looked up: lower case, each run of other characters than letters and digits one `_`."""
    return re.sub(r"[^0-9a-z]+", "_", str(header).strip().lower()).strip("_")


def metric_of(task: str, key: str) -> str:
    """The project metric of a source metric key in a task (`acc` by task, as lm_eval_0.3; `ppl` -> nll)."""
    if key == "acc":
        return project_metric(task.lower(), "acc") or "multiple_choice_grade"
    return {"acc_norm": "acc_norm", "ppl": "target_nll"}.get(key, key)


def is_fraction(metric: str) -> bool:
    """Metrics that are fractions of items (or bounded like them): every all-or-nothing project metric
    (`Metric.discontinuous`) and the kept `acc_norm` and `token_f1`; a value above 1 is a percentage."""
    return metric in ("acc_norm", "token_f1") or (metric in METRICS and METRICS[metric].discontinuous)


def parse_size(text: object, where: str, unit: str = "") -> float:
    """A count written as a number or with a K/M/B/T suffix (`70M`, `0.56B`, `7b`, `1,400M`, `2.3e9`),
    exactly (decimal arithmetic: `0.56B` is 560,000,000); in a column whose header gives the `unit`
    (`Params (B)`: "b"), a plain number in that unit. NaN for an empty cell; InputError naming `where`
    (file, column, line, model) for anything else, and for a suffix in a column with a unit."""
    if isinstance(text, (int, float, np.integer, np.floating)) and not isinstance(text, bool):
        return float(Decimal(repr(float(text))) * SUFFIXES[unit]) if unit else float(text)
    cell = str(text).strip().replace(" ", "")
    if cell.lower() in MISSING:
        return math.nan
    sign = -1 if cell.startswith("-") else 1  # a number still, refused by `parse_count` as a count
    match = re.fullmatch(
        r"([1-9]\d{0,2}(?:,\d{3})+|\d*)(\.\d+)?(e[+-]?\d+)?([kmbt]?)", cell.removeprefix("-"), re.IGNORECASE
    )
    try:
        if not match or not (match.group(1) or match.group(2)):
            raise InvalidOperation
        number = Decimal("".join(g or "" for g in match.groups()[:3]).replace(",", ""))
    except InvalidOperation:
        hint = (
            f"a decimal comma? write {cell.replace(',', '.')}"
            if "," in cell
            else "write 70M, 1.4B, 0.56B or 1400000000"
        )
        raise InputError(f"{where}: size {str(text)!r} is not a number ({hint})") from None
    if unit and match.group(4):
        raise InputError(
            f"{where}: size {str(text)!r} has a unit, and so has its column ({unit.upper()}): write a number"
        )
    return sign * float(number * SUFFIXES[match.group(4).lower() or unit])


# Counts that may be 0 (zero-shot, the first checkpoint); every other count is positive. WHOLE: counted, not measured.
MAY_BE_ZERO = ("num_fewshot", "step")
WHOLE = ("n_items", "num_fewshot", "step")


def parse_count(text: object, where: str, name: str, unit: str = "") -> float:
    """`parse_size` of a column `name` (a SIZE_COLUMNS entry, n_items, num_fewshot or step), checked
    for what it counts: sizes at least 1 (a zero size breaks the log-scale fits; 1e-3 parameters is
    a count in other units), n_items above 0, n_items, shots and steps whole. NaN for an empty cell;
    InputError naming `where` otherwise. `unit`: the column's, as `parse_size` reads it."""
    value = parse_size(text, where, unit)
    zero, size = name in MAY_BE_ZERO, name in SIZE_COLUMNS
    if math.isnan(value) or (
        math.isfinite(value)
        and (value >= 1 if size else value > 0 or (zero and value == 0))
        and (name not in WHOLE or value.is_integer())
    ):
        return value
    if size:  # a parameter, token or FLOP count below one is a count in other units (1.4 for 1.4B)
        hint = "a size in billions is written 1.4B"
        raise InputError(f"{where}: {name} {str(text)!r} must be a finite count >= 1 ({hint})")
    kind = "a whole number" if name in WHOLE else "a number"
    raise InputError(f"{where}: {name} {str(text)!r} must be {kind} {'>= 0' if zero else '> 0'}")


def percent_of(value: float) -> float:
    """A percentage as a fraction, from its shortest decimal form: 18.46 -> 0.1846 exactly as typed
    (18.46 / 100 in binary floating point is 0.18460000000000001)."""
    return float(Decimal(repr(float(value))) / 100) if math.isfinite(value) else value


THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2}(,\d{3})+(\.\d*)?")  # 1,234.5: commas between groups of three digits


def parse_number(text: object, where: str) -> tuple[float, bool]:
    """A result cell: (value, whether it was written with %, then divided by 100). NaN when empty.
    Commas group thousands (`1,234.5`); anywhere else (`0,1`, a decimal comma) the cell is refused."""
    if isinstance(text, (int, float, np.integer, np.floating)) and not isinstance(text, bool):
        if math.isinf(text):
            raise InputError(f"{where}: {text!r} is not a finite number")
        return float(text), False
    cell = str(text).strip()
    if cell.lower() in MISSING:
        return math.nan, False
    percent = cell.endswith("%")
    number = cell.removesuffix("%").strip()
    if "," in number and not THOUSANDS.fullmatch(number):  # 0,1 is no 1: a decimal comma
        raise InputError(f"{where}: {str(text)!r} is not a number (a decimal comma? write {number.replace(',', '.')})")
    try:
        value = float(number.replace(",", ""))
    except ValueError:
        raise InputError(f"{where}: {str(text)!r} is not a number") from None
    if math.isinf(value):
        raise InputError(f"{where}: {str(text)!r} is not a finite number")
    return (percent_of(value), True) if percent else (value, False)


class Columns:
    """What each header of one table is: an id column (`ids`), a result column (`results`: header ->
    (task or None for the row's own, metric key, field value/stderr/n_items)) or skipped (`skipped`:
    header -> why). `shape` is one of the three shapes of the module docstring."""

    def __init__(self, path: Path, headers: Iterable[object]):
        self.path = path
        self.ids: dict[str, str] = {}
        self.results: dict[str, tuple[str | None, str, str]] = {}
        self.skipped: dict[str, str] = {}
        self.unknown: list[str] = []  # a long table's metric names that no project metric has (skipped rows)
        self.units: dict[str, str] = {}  # size column -> the unit its header gives (`Params (B)`: "b")
        names = [str(h) for h in headers]
        for header in names:
            name = LOOKUP.get(normalise(header))
            unit = re.fullmatch(rf"(.+?)_(?:in_)?({'|'.join(UNITS)})", normalise(header))
            if name is None and unit and LOOKUP.get(unit.group(1)) in SIZE_COLUMNS:
                name = LOOKUP[unit.group(1)]
                self.units[name] = UNITS[unit.group(2)]
            if name in self.ids:
                raise InputError(f"{path}: columns {self.ids[name]!r} and {header!r} both give {name}; keep one")
            if name is not None:
                self.ids[name] = header
        rest = [h for h in names if h not in self.ids.values()]
        if "metric" in self.ids or "value" in self.ids:
            self.shape = "long"
            missing = [n for n in ("metric", "value") if n not in self.ids]
            if missing:
                raise InputError(f"{path}: a long table needs a 'metric' and a 'value' column (no {missing[0]!r})")
        elif any(metric_key(normalise(h)) for h in rest):
            self.shape = "one column per metric"
        else:
            self.shape = "one column per benchmark"
        for header in rest:
            why = self.classify(header)
            if why:
                self.skipped[header] = why
        seen: dict[tuple[str | None, str, str], str] = {}
        for header, result in self.results.items():
            if result in seen:
                raise InputError(f"{path}: columns {seen[result]!r} and {header!r} are the same result; keep one")
            seen[result] = header
        values = {(task, key) for task, key, field in self.results.values() if field == "value"}
        if self.shape != "long" and "stderr" in self.ids:  # a lone `stderr` column: whose?
            header = self.ids.pop("stderr")
            if len(values) == 1:
                self.results[header] = (*next(iter(values)), "stderr")
            else:
                self.skipped[header] = "the stderr of which column? name it <metric>_stderr or <task>/stderr"
        for header, (task, key, field) in list(self.results.items()):
            if (field == "stderr" and (task, key) not in values) or (
                field == "n_items" and task not in {t for t, _ in values}
            ):
                self.skipped[header] = f"its {field} belongs to no result column"
                del self.results[header]

    def classify(self, header: str) -> str:
        """Records a result column; returns why a column is skipped ("" when it is not)."""
        name = normalise(header)
        if name in SUMMARIES:
            return "a summary of other columns"
        if self.shape == "long":
            return "not a column of a long table"
        if self.shape == "one column per metric":
            found = metric_key(name)
            if found is None:
                return "no project metric of that name"
            self.results[header] = (None, *found)
            return ""
        task, sep, field = header.rpartition("/")
        task, field = (task.strip(), normalise(field)) if sep else (header.strip(), "acc")
        if not sep and name in OTHER_METRICS:
            return "a metric that no project metric computes"
        found = (
            ("acc", field)
            if field == "stderr"
            else ("", "n_items")
            if LOOKUP.get(field) == "n_items"
            else metric_key(field)
        )
        if found is None or not task:
            return f"{field!r} is no project metric" if task else "no benchmark name"
        self.results[header] = (task, *found)
        return ""


# Metric names a table of benchmark columns may carry that no project metric computes: skipped there,
# never read as a benchmark's accuracies.
OTHER_METRICS = (
    "bleu",
    "sacrebleu",
    "chrf",
    "ter",
    "meteor",
    "rouge",
    "rouge1",
    "rouge2",
    "rougel",
    "bertscore",
    "bpb",
)


def metric_key(name: str) -> tuple[str, str] | None:
    """(metric key, field) of a normalised metric header: `accuracy` -> (acc, value), `acc_stderr` ->
    (acc, stderr); None for a header that names no metric."""
    if name in METRIC_LOOKUP:
        return METRIC_LOOKUP[name], "value"
    base = name.removesuffix("_stderr")
    return (METRIC_LOOKUP[base], "stderr") if base != name and base in METRIC_LOOKUP else None


NOTES = {"acc": "`multiple_choice_grade`, or `exact_match` by task", "ppl": "`target_nll` = ln(ppl)"}


def alias_table() -> str:
    """The README's alias table (Markdown), from ALIASES and METRIC_ALIASES: one source of truth."""
    lines = ["| column header (any case; spaces and punctuation as `_`) | read as |", "|---|---|"]
    lines += [f"| {', '.join(f'`{a}`' for a in aliases)} | `{name}` |" for name, aliases in ALIASES.items()]
    for key, aliases in METRIC_ALIASES.items():
        target = NOTES.get(key, f"`{metric_of('', key)}`")
        lines.append(f"| {', '.join(f'`{a}`' for a in aliases)} | metric {target} |")
    lines.append("| any other project metric's name (`token_edit_distance`, `per_token_prob`, ...) | that metric |")
    return "\n".join(lines) + "\n"
