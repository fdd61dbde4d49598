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
MODEL_COLUMNS = ["model", "family", "source", "sha", "n_params", "n_params_non_embedding", "training_tokens", "training_flops", "path"]
FIT_INDEX = ["family", "task", "method", "digits", "n_models", "status"]
JUMP_METRICS = {"exact_match": "exact match", "token_edit_distance": "token edit distance", "target_logprob": "log P(target)"}


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
    rows = [{"family": m["family"], "model": m["model"], "n_params": m["n_params"], **{f"loss at {p['tokens']:,} tokens": p["heldout_loss"] for p in m["training"]["curve"]}} for m in trained]
    parts = ["<h2>Training: held-out loss</h2>"]
    for family in sorted({m["family"] for m in trained}):
        members = [m for m in trained if m["family"] == family]
        final = [m["training"]["curve"][-1]["heldout_loss"] for m in members]
        falls = all(a > b for a, b in zip(final, final[1:]))
        verdict = (
            f"Family {family}: final held-out loss {'falls' if falls else 'does NOT fall'} with every step up in size: "
            + " > ".join(f"{loss:.4f} ({m['model']})" for loss, m in zip(final, members))
            + "."
        )
        parts.append(f"<p>{html.escape(verdict)}</p>")
    return [*parts, table_html(pd.DataFrame(rows))]


def jump_section(summary: pd.DataFrame, min_models: int = 3) -> list[str]:
    """Does exact match jump where the continuous metrics move smoothly? Answered in numbers per curve."""
    from emergence.fits import largest_step_share

    means = summary[summary["metric"].isin(JUMP_METRICS)]
    rows = []
    for (family, task, method, digits), curve in means.groupby(["family", "task", "method", "digits"], sort=True):
        wide = curve.pivot_table(index="n_params", columns="metric", values="mean").sort_index()
        if len(wide) < min_models or "exact_match" not in wide:
            continue
        row = {"family": family, "task": task, "method": method, "digits": digits, "exact match, smallest → largest": f"{wide['exact_match'].iloc[0]:.2f} → {wide['exact_match'].iloc[-1]:.2f}"}
        for metric, label in JUMP_METRICS.items():
            if metric in wide:
                row[f"largest step share: {label}"] = largest_step_share(wide[metric].to_numpy())
        rows.append(row)
    if not rows:
        return []
    table = pd.DataFrame(rows)
    moving = table.dropna(subset=["largest step share: exact match"])
    lines = [f"Exact match moves across sizes in {len(moving)} of {len(table)} curves (family × task × method × digit count)."]
    for label in JUMP_METRICS.values():
        column = f"largest step share: {label}"
        if column in moving and len(moving):
            lines.append(f"Median share of the movement made in the largest single step, {label}: {moving[column].median():.2f}.")
    lines.append("1.00 means the whole change happens between two neighbouring sizes; even steps over k sizes give 1/(k−1).")
    return ["<h2>Jump or smooth?</h2>", *[f"<p>{html.escape(line)}</p>" for line in lines], table_html(table)]


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
    out: Path, figures: list[Path], fits: pd.DataFrame, manifests: list[dict], config: dict, summary: pd.DataFrame, min_models: int = 3
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
        *jump_section(summary, min_models),
        *heldout_loss_section(manifests),
        "<h2>Figures</h2>",
        *[figure_html(path) for path in figures],
        "<h2>Fits</h2>",
    ]
    for caption, table in fit_tables(fits):
        parts += [f"<h3>{html.escape(caption)}</h3>", table_html(table)]
    parts += [
        "<h2>Per-model means</h2>",
        table_html(summary.pivot_table(index=["task", "method", "digits", "family", "model", "n_params"], columns="metric", values="mean", sort=False).reset_index()),
        "<h2>Models</h2>",
        table_html(models.reindex(columns=MODEL_COLUMNS)),
        "<h2>Configuration</h2>",
        f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=True))}</pre>",
        "</body></html>",
    ]
    write_text("\n".join(parts) + "\n", out)
