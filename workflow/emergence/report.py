"""One self-contained HTML report: figures, fitted numbers, per-model means, models and config.

Everything is inlined (figures as base64 PNG) so the page can be mailed or archived alone, and
nothing in it depends on when it was written: the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import html
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from emergence.io import write_text

CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f2f2f2; }
figure { display: inline-block; width: 48%; margin: 0 1% 1rem 0; vertical-align: top; }
img { max-width: 100%; }
pre { background: #f7f7f7; padding: 1rem; overflow-x: auto; }
.wide { overflow-x: auto; max-width: 100%; }
.verdicts table { width: 100%; }
.verdicts td { text-align: left; }
"""
MODEL_COLUMNS = [
    "model",
    "family",
    "source",
    "sha",
    "n_params",
    "n_params_non_embedding",
    "training_tokens",
    "training_flops",
    "path",
]
CURVE = ["family", "task", "method", "digits"]


def summarise_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard error and item count per (model, n_params, task, method, digits, metric), smallest model first."""
    keys = ["family", "model", "n_params", "task", "method", "digits", "metric"]
    summary = scores.groupby(keys)["value"].agg(mean="mean", sem="sem", items="count").reset_index()
    return summary.sort_values(["n_params", *keys], ignore_index=True)


def heldout_loss_section(manifests: list[dict]) -> list[str]:
    """Held-out loss of every trained model at each recorded token count, and whether it falls with size."""
    trained = sorted((m for m in manifests if "training" in m), key=lambda m: (m["family"], m["n_params"]))
    if not trained:
        return []
    rows = [
        {
            "family": m["family"],
            "model": m["model"],
            "n_params": m["n_params"],
            **{f"loss at {p['tokens']:,} tokens": p["heldout_loss"] for p in m["training"]["curve"]},
        }
        for m in trained
    ]
    parts = ["<h2>Training: held-out loss</h2>"]
    for family in sorted({m["family"] for m in trained}):
        members = [m for m in trained if m["family"] == family]
        final = [m["training"]["curve"][-1]["heldout_loss"] for m in members]
        falls = all(a > b for a, b in itertools.pairwise(final))
        verdict = (
            f"Family {family}: final held-out loss {'falls' if falls else 'does NOT fall'} with every step up in size: "
            + " > ".join(f"{loss:.4f} ({m['model']})" for loss, m in zip(final, members))
            + "."
        )
        parts.append(f"<p>{html.escape(verdict)}</p>")
    return [*parts, table_html(pd.DataFrame(rows))]


def table_html(df: pd.DataFrame, escape: bool = True, kind: str = "") -> str:
    """A table that scrolls inside the page when it is wider than the window; `kind` adds a CSS class."""
    table = df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0, escape=escape)
    return f'<div class="{" ".join(["wide", kind]).strip()}">{table}</div>'


VERDICT_ORDER = ["emergent", "mirage", "smooth", "flat", "saturated", "non_monotone", "insufficient"]


def verdicts_section(verdicts: pd.DataFrame, figures: list[Path]) -> list[str]:
    """The answer first: counts per verdict, one line per reason a curve could not be judged, then every
    judged curve with its verdict, confidence and sentence, the verdict linked to the curve's figure."""
    if verdicts is None or verdicts.empty:
        return []
    judged = verdicts[verdicts["verdict"] != "insufficient"]
    counts = verdicts["verdict"].value_counts().reindex(VERDICT_ORDER, fill_value=0)
    parts = [
        "<h2>Verdicts</h2>",
        "<p>One verdict per curve (family × task × method × digit count) and all-or-nothing metric, judged with"
        " its continuous twin by statistics that do not grow with the number of models (README, Verdicts).</p>",
        table_html(counts[counts > 0].rename_axis("verdict").reset_index(name="curves")),
    ]
    reasons = verdicts.loc[verdicts["verdict"] == "insufficient", "sentence"].value_counts().sort_index()
    if len(reasons):
        parts += ["<ul>", *[f"<li>{n} curves: {html.escape(r)}</li>" for r, n in reasons.items()], "</ul>"]
    if judged.empty:
        return parts
    stems = {figure_id(p) for p in figures}
    rows = judged.sort_values([*CURVE, "metric"], kind="stable")
    keys = [c for c in [*CURVE, "metric", "twin"] if rows[c].nunique() > 1 or c in ("task", "method")]
    same = [c for c in [*CURVE, "metric", "twin"] if c not in keys]  # said once above, not on every row
    if same:
        shared = "; ".join(f"{c}: {rows[c].iloc[0] or 'none'}" for c in same)
        parts.append(f"<p>Every curve below: {html.escape(shared)}.</p>")
    curves = [" · ".join(html.escape(v) for v in row if v) for row in rows[keys].itertuples(index=False)]
    cells = pd.DataFrame(
        {
            " · ".join(keys): curves,
            "verdict": [
                verdict_link(v, f"metrics/{t}/{m}", stems)
                for v, t, m in zip(rows["verdict"], rows["task"], rows["method"])
            ],
            "confidence": rows["confidence"].map(html.escape).to_numpy(),
            "why": rows["sentence"].map(html.escape).to_numpy(),
        }
    )
    return [*parts, table_html(cells, escape=False, kind="verdicts")]


def verdict_link(verdict: str, stem: str, stems: set[str]) -> str:
    """The verdict, linked to the figure of its curve's outputs under three metrics where it was drawn."""
    anchor = f"figure-{stem}"
    return f'<a href="#{html.escape(anchor)}">{verdict}</a>' if anchor in stems else verdict


def figure_id(path: Path) -> str:
    """A figure's anchor: `figure-` and its stem under results/figures/ (`figure-metrics/addition/few_shot`)."""
    parts = Path(path).with_suffix("").parts
    return "figure-" + "/".join(parts[parts.index("figures") + 1 :] if "figures" in parts else parts[-3:])


def with_interval(rows: pd.DataFrame) -> pd.Series:
    """ "value [low, high]" strings; the status instead where a row holds no number."""

    def cell(row) -> str:
        if row.status != "ok":
            return row.status
        if np.isnan(row.ci_low):
            return f"{row.value:.4g}"
        return f"{row.value:.4g} [{row.ci_low:.4g}, {row.ci_high:.4g}]"

    return pd.Series([cell(row) for row in rows.itertuples()], index=rows.index, dtype=object)


def measures_section(fits: pd.DataFrame, fitting: dict, heading: str = "Emergence measures") -> list[str]:
    """Does a metric jump where the continuous metrics move smoothly? Breakthroughness and flags per curve."""
    axis = fitting.get("x_axes", ["n_params"])[0]
    measured = fits[(fits["fit"] == "breakthroughness") & (fits["x"] == axis)]
    flags = fits[
        (fits["fit"] == "flag") & (fits["status"] == "ok") & (fits["value"] == 1.0) & fits["x"].isin(["", axis])
    ]
    if measured.empty:
        return []
    table = measured.assign(cell=with_interval(measured)).pivot_table(
        index=CURVE, columns="metric", values="cell", aggfunc="first"
    )
    names = flags["parameter"].where(flags["versus"] == "", flags["parameter"] + ": " + flags["versus"])
    raised = flags.assign(name=names).groupby(CURVE)["name"].agg(lambda p: "; ".join(sorted(p)))
    table = table.join(raised.rename("flags raised"), how="left").fillna({"flags raised": ""}).reset_index()
    level = fitting.get("confidence_level", 0.9)
    notes = [
        f"Breakthroughness (BIG-bench; Srivastava et al. 2022) of every metric along {axis}, oriented so that "
        f"improvement is positive, with its {level:.0%} bootstrap interval over items.",
        f"Flags: resolution_limited (every smaller model below {fitting.get('resolution_items', 3)} correct items); "
        f"metric_disagreement: X (breakthroughness at least {fitting.get('emergent_breakthroughness')} under the "
        f"discontinuous metric, at most {fitting.get('smooth_breakthroughness')} in size under continuous metric X); "
        "sigmoid_preferred (the sigmoid beats a line and a monotone curve in log scale by the verdicts' "
        "sharpness; where it does not, its parameters read 'not preferred'); "
        "midpoint_outside_range (the sigmoid's midpoint lies outside the sizes observed); "
        "outside_prediction_interval (a held-out model outside the extrapolation's prediction interval).",
    ]
    return [f"<h2>{html.escape(heading)}</h2>", *[f"<p>{html.escape(n)}</p>" for n in notes], table_html(table)]


def training_section(fits: pd.DataFrame | None, fitting: dict) -> list[str]:
    """Curves over training of imported checkpoints (one curve per model, `family` naming the model):
    their measures along C = 6ND (for one model, D times a constant) and their fits."""
    if fits is None or fits.empty:
        return []
    parts = measures_section(fits, {**fitting, "x_axes": ["training_flops"]}, "Emergence measures over training")
    for caption, table in fit_tables(fits):
        parts += [f"<h3>{html.escape(caption)} (over training)</h3>", table_html(table)]
    return parts


def fit_tables(fits: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One table per (fit, metric, x axis): a row per curve, a column per parameter, with intervals."""
    tables = []
    shown = fits[fits["fit"].isin(["sigmoid_floor", "power_law", "extrapolation", "mirage", "calibration"])]
    for (fit, metric, x), group in shown.groupby(["fit", "metric", "x"], sort=True):
        # a column per parameter, and per model for the rows about one model ("m5: predicted")
        column = group["parameter"].where(group["model"] == "", group["model"] + ": " + group["parameter"])
        cells = group.assign(cell=with_interval(group), column=column)
        parameters = [p for p in column.unique() if p]  # "" marks a fit not made
        wide = cells.pivot_table(
            index=[*CURVE, "n_models", "n_items"], columns="column", values="cell", aggfunc="first"
        )
        wide = wide.reindex(columns=parameters or [""]).reset_index()
        wide.columns.name = None
        tables.append((f"{fit} on {metric}" + (f" against {x}" if x else ""), wide.rename(columns={"": "status"})))
    return tables


FIGURE_SECTIONS = {  # figure kind (its folder under results/figures/): heading and what to look for
    "loss": (
        "Loss against scale",
        "Per-token loss of the answer against parameters and compute, log-log, with each family's power law"
        " and its bootstrap band.",
    ),
    "tasks": ("Every task against scale", "One panel per task, one line per family; chance dashed."),
    "methods": ("Prompting methods against scale", "Where an augmented method starts to help: one line per method."),
    "metrics": (
        "One set of outputs under three metrics",
        "Exact match next to token edit distance and log P(target), one line per operand length: a jump under"
        " one and a slope under the others is a metric's doing.",
    ),
    "multiple_choice": (
        "Multiple-choice grade and Brier score",
        "The same choices scored discontinuously and continuously.",
    ),
    "robustness": (
        "Clean against shifted inputs",
        "The same items with typos, a distracting sentence, or numbers in words: one line per variant.",
    ),
    "extrapolation": (
        "Extrapolation to the largest model",
        "Fitted on the smaller models; the band is the bootstrap interval of the prediction.",
    ),
    "sizes": (
        "Results made elsewhere: every task against size",
        "Final checkpoints, one line per family and method; a fitted sigmoid dotted where one was fitted.",
    ),
    "training": (
        "Results made elsewhere: every task over training",
        "Each model's checkpoints against training tokens D (log scale; step 0 left out), one line per size.",
    ),
}


def figure_html(path: Path) -> str:
    """A figure as an inline base64 PNG, captioned with its path under results/figures/."""
    path = Path(path)
    if path.suffix != ".png":
        raise ValueError(f"{path}: only PNG figures can be embedded")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    parts = path.with_suffix("").parts
    caption = html.escape(" / ".join(parts[parts.index("figures") + 1 :] if "figures" in parts else parts[-3:]))
    anchor = html.escape(figure_id(path))
    return (
        f'<figure id="{anchor}"><img src="data:image/png;base64,{data}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def figures_section(figures: list[Path], notes: list[str]) -> list[str]:
    """Figures grouped by kind, each group with what to look for; then why any figure was not drawn."""
    kinds = {kind: [f for f in figures if kind in Path(f).parts] for kind in FIGURE_SECTIONS}
    parts = ["<h2>Figures</h2>"]
    for kind, paths in kinds.items():
        if paths:
            heading, caption = FIGURE_SECTIONS[kind]
            parts += [
                f"<h3>{html.escape(heading)}</h3>",
                f"<p>{html.escape(caption)}</p>",
                *[figure_html(p) for p in paths],
            ]
    others = [f for f in figures if not any(f in paths for paths in kinds.values())]
    parts += [figure_html(p) for p in others]
    if notes:
        parts += ["<h3>Figures not drawn</h3>", "<ul>", *[f"<li>{html.escape(note)}</li>" for note in notes], "</ul>"]
    return parts


def write_report(
    out: Path,
    figures: list[Path],
    fits: pd.DataFrame,
    manifests: list[dict],
    config: dict,
    summary: pd.DataFrame,
    notes: Sequence[str] = (),
    verdicts: pd.DataFrame | None = None,
    training: pd.DataFrame | None = None,
    forecasts: pd.DataFrame | None = None,
    forecast_figures: Sequence[Path] = (),
) -> None:
    """Write the report page to `out`, atomically: the verdicts first, then the forecasts, then the measures
    they rest on. `training`: fits of imported curves over training; `forecasts`: the forecasts tables of
    imported sources (`emergence.report_forecasts`), `forecast_figures` their PNGs."""
    from emergence.report_forecasts import forecasts_section

    models = pd.DataFrame([{column: manifest.get(column) for column in MODEL_COLUMNS} for manifest in manifests])
    if len(models):
        models = models.assign(sha=models["sha"].astype(str).str[:12]).sort_values(["n_params", "model"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Emergence Lab report</title>',
        f"<style>{CSS}</style></head><body>",
        "<h1>Emergence Lab report</h1>",
        *verdicts_section(verdicts, figures),
        *forecasts_section(forecasts, list(forecast_figures)),
        *measures_section(fits, config.get("fitting", {})),
        *heldout_loss_section(manifests),
        *figures_section(figures, list(notes)),
        "<h2>Fits</h2>",
    ]
    for caption, table in fit_tables(fits):
        parts += [f"<h3>{html.escape(caption)}</h3>", table_html(table)]
    parts += training_section(training, config.get("fitting", {}))
    parts += [
        "<h2>Per-model means</h2>",
        table_html(
            summary.pivot_table(
                index=["task", "method", "digits", "family", "model", "n_params"],
                columns="metric",
                values="mean",
                sort=False,
            ).reset_index()
        ),
        "<h2>Models</h2>",
        table_html(models.reindex(columns=MODEL_COLUMNS)),
        "<h2>Configuration</h2>",
        f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=True))}</pre>",
        "</body></html>",
    ]
    write_text("\n".join(parts) + "\n", out)
