# Stage 8 (config `forecast:`): the sweep's own models forecast from the smaller models of their family.
# Every model's scores become the long table of per-model means that results made elsewhere are
# imported into; the forecast stage reads it as it reads theirs (rules/imported.smk: forecast_imported):
# by default each family's largest size is predicted from the smaller ones, with rollout backtests;
# a family with too few sizes is skipped with one log line. The report (figures.smk) reads the table
# and the figures.


rule sweep_results:
    input:
        scores=[path for model in MODELS for path in per_pair("results/scores/{model}/{task}/{method}.parquet", model=model)],
        manifests=expand("results/models/{model}/manifest.json", model=MODELS),
    output:
        "results/forecasts/results.parquet",
    log:
        "logs/forecasts/results.log",
    benchmark:
        "logs/forecasts/results.benchmark.tsv"
    params:
        methods=as_json(METHOD_SPECS),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence sweep-results --scores {input.scores:q} --manifests {input.manifests:q}"
        " --methods {params.methods:q} --out {output:q} 2> {log}"


rule forecast:
    input:
        "results/forecasts/results.parquet",
    output:
        "results/forecasts/forecasts.parquet",
    log:
        "logs/forecasts/forecasts.log",
    benchmark:
        "logs/forecasts/forecasts.benchmark.tsv"
    params:
        options=shlex.join(sweep_forecast_arguments(config)) if SWEEP_FORECAST else "",
    conda:
        "../envs/analysis.yaml"
    shell:  # one BLAS thread, as forecast_imported
        "OPENBLAS_NUM_THREADS=1 emergence forecast --table {input:q} {params.options} --out {output:q} 2> {log}"


rule forecast_figures:
    input:
        "results/forecasts/forecasts.parquet",
    output:
        directory("results/figures/forecasts"),
    log:
        "logs/forecasts/figures.log",
    benchmark:
        "logs/forecasts/figures.benchmark.tsv"
    params:
        style=as_json(config["figures"]["style"]),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence figures-forecast --forecasts {input:q} --style {params.style:q} --out {output:q} 2> {log}"
