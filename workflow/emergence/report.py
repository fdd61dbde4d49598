"""One self-contained HTML report: figures, fitted numbers, per-model means, models and config.

Everything is inlined (figures as base64 PNG) so the page can be mailed or archived alone, and
nothing in it depends on when it was written: the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

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
"""
MODEL_COLUMNS = ["model", "source", "sha", "n_params", "n_params_non_embedding", "path"]
FIT_INDEX = ["task", "method", "digits", "n_models", "status"]


def summarise_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard error and item count per (model, n_params, task, method, digits, metric), smallest model first."""
    keys = ["model", "n_params", "task", "method", "digits", "metric"]
    summary = scores.groupby(keys)["value"].agg(mean="mean", sem="sem", items="count").reset_index()
    return summary.sort_values(["n_params", *keys], ignore_index=True)


def table_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", border=0)


def fit_tables(fits: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One table per (fit, metric), a row per task/method/digits and a column per parameter, in `fits` order."""
    tables = []
    for (fit, metric), group in fits.groupby(["fit", "metric"], sort=True):
        rows = pd.MultiIndex.from_frame(group[FIT_INDEX].drop_duplicates())
        parameters = [name for name in group["parameter"].unique() if name]  # "" marks a fit not made
        wide = group.set_index([*FIT_INDEX, "parameter"])["value"].unstack("parameter").reindex(rows)
        wide = wide.reindex(columns=parameters).reset_index()
        wide.columns.name = None
        tables.append((f"{fit} on {metric}", wide))
    return tables


def figure_html(path: Path) -> str:
    """A figure as an inline base64 PNG, captioned with its task / method / metric path."""
    path = Path(path)
    if path.suffix != ".png":
        raise ValueError(f"{path}: only PNG figures can be embedded")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(" / ".join([*path.parent.parts[-2:], path.stem]))
    return f'<figure><img src="data:image/png;base64,{data}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'


def write_report(
    out: Path, figures: list[Path], fits: pd.DataFrame, manifests: list[dict], config: dict, summary: pd.DataFrame
) -> None:
    """Write the report page to `out`, atomically."""
    models = pd.DataFrame([{column: manifest.get(column) for column in MODEL_COLUMNS} for manifest in manifests])
    if len(models):
        models = models.assign(sha=models["sha"].astype(str).str[:12]).sort_values(["n_params", "model"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Emergence Lab report</title>',
        f"<style>{CSS}</style></head><body>",
        "<h1>Emergence Lab report</h1>",
        "<h2>Figures</h2>",
        *[figure_html(path) for path in figures],
        "<h2>Fits</h2>",
    ]
    for caption, table in fit_tables(fits):
        parts += [f"<h3>{html.escape(caption)}</h3>", table_html(table)]
    parts += [
        "<h2>Per-model means</h2>",
        table_html(summary.pivot_table(index=["task", "method", "digits", "model", "n_params"], columns="metric", values="mean", sort=False).reset_index()),
        "<h2>Models</h2>",
        table_html(models.reindex(columns=MODEL_COLUMNS)),
        "<h2>Configuration</h2>",
        f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=True))}</pre>",
        "</body></html>",
    ]
    write_text("\n".join(parts) + "\n", out)
