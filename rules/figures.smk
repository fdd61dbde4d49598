# Stage 7: the figure set (PNG and PDF, one job each) and the HTML report.


rule figure:
    input:
        unpack(figure_inputs),
    output:
        png=report("results/figures/{figure}.png", caption="../workflow/report/figure.rst", category="Figures", subcategory="{figure}"),
        pdf="results/figures/{figure}.pdf",
    log:
        "logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(FIGURES) or "no-figure",
    params:
        kind=lambda w: FIGURES[w.figure]["kind"],
        options=lambda w: as_json(FIGURES[w.figure]["options"]),
        title=lambda w: FIGURES[w.figure]["title"],
        style=as_json(config["figures"]["style"]),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence figure --kind {params.kind} --fits {input.fits:q} --manifests {input.manifests:q}"
        " --options {params.options:q} --title {params.title:q} --style {params.style:q}"
        " --out {output.png:q} {output.pdf:q} 2> {log}"


rule report:
    input:
        scores=[path for model in MODELS for path in per_pair("results/scores/{model}/{task}/{method}.parquet", model=model)],
        fits=per_pair("results/fits/{task}/{method}.parquet") + imported("results/imported/{source}/fits/sizes.parquet"),
        verdicts=per_pair("results/verdicts/{task}/{method}.parquet") + imported("results/imported/{source}/verdicts.parquet"),
        forecasts=sweep_forecasted("results/forecasts/forecasts.parquet") + forecasted("results/imported/{source}/forecasts.parquet"),
        forecast_figures=sweep_forecasted("results/figures/forecasts") + forecasted("results/figures/imported/{source}/forecasts"),
        training=imported("results/imported/{source}/fits/training.parquet"),
        imported=imported("results/imported/{source}/results.parquet"),
        figures=figures() + imported("results/figures/imported/{source}/{curves}"),
        manifests=expand("results/models/{model}/manifest.json", model=MODELS) + imported("results/imported/{source}/models.json"),
    output:
        "results/report.html",
    log:
        "logs/report.log",
    params:
        config=as_json(config),
        notes=as_json(FIGURE_NOTES),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence report --scores {input.scores:q} --fits {input.fits:q} --verdicts {input.verdicts:q}"
        " --forecasts {input.forecasts:q} --forecast-figures {input.forecast_figures:q}"
        " --figures {input.figures:q} --manifests {input.manifests:q} --imported {input.imported:q}"
        " --training-fits {input.training:q} --config {params.config:q} --notes {params.notes:q} --out {output:q} 2> {log}"
