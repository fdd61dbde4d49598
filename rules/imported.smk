# Results made elsewhere (`results:` in the config): each source is imported into one typed table, its
# curves over sizes (final checkpoints) and over training (each model's checkpoints) are fitted, and
# each kind of curve is drawn; a format that keeps items also gets items.parquet, from which its
# curves over sizes are fitted and judged; a source with a `forecast:` section also gets its target
# models forecast from the smaller ones, with a figure per task; the report (figures.smk) reads them
# all. No model is run.


rule import_results:
    input:
        lambda w: source_files(SOURCES[w.source]),
    output:
        table="results/imported/{source}/results.parquet",
        models="results/imported/{source}/models.json",
    log:
        "logs/imported/{source}/import.log",
    benchmark:
        "logs/imported/{source}/import.benchmark.tsv"
    wildcard_constraints:
        source="|".join(SOURCES) or "no-source",
    params:  # without the tokenizer (a new one re-runs the per-item import only) and the forecast
        entry=lambda w: as_json({key: value for key, value in imported_entry(SOURCES[w.source]).items() if key != "tokenizer"}),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence import-source --entry {params.entry:q} --out {output.table:q} --models {output.models:q} 2> {log}"


# A source whose format keeps items (lm_eval_0.4's samples): each item's lm-eval value and its response
# rescored under the project's metrics, in the tokenizer the entry names; the sizes fits and verdicts
# read it. A separate job, so a missing tokenizer stops only what needs it, with one line in its log.
rule import_items:
    input:
        files=lambda w: item_files(SOURCES[w.source]),
        table="results/imported/{source}/results.parquet",
    output:
        "results/imported/{source}/items.parquet",
    log:
        "logs/imported/{source}/items.log",
    benchmark:
        "logs/imported/{source}/items.benchmark.tsv"
    wildcard_constraints:
        source="|".join(ITEM_SOURCES) or "no-source",
    params:
        entry=lambda w: as_json(SOURCES[w.source]),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence import-items --entry {params.entry:q} --table {input.table:q} --out {output:q} 2> {log}"


rule fit_imported:
    input:
        unpack(imported_inputs),
    output:
        "results/imported/{source}/fits/{curves}.parquet",
    log:
        "logs/imported/{source}/fits_{curves}.log",
    benchmark:
        "logs/imported/{source}/fits_{curves}.benchmark.tsv"
    wildcard_constraints:
        source="|".join(SOURCES) or "no-source",
        curves="|".join(CURVES),
    threads: lambda w: 2 if w.curves == "training" else 1  # the costly kind: every model's curves
    params:
        metrics=as_json(config["metrics"]),
        settings=as_json(config["fitting"]),
        seed=config["seed"],
        per_item=items_option,
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence fit-imported --table {input.table:q} --curves {wildcards.curves} --metrics {params.metrics:q}"
        " --settings {params.settings:q} --seed {params.seed} --threads {threads} {params.per_item} --out {output:q}"
        " 2> {log}"


rule verdicts_imported:
    input:
        unpack(imported_inputs),
    output:
        "results/imported/{source}/verdicts.parquet",
    log:
        "logs/imported/{source}/verdicts.log",
    wildcard_constraints:
        source="|".join(SOURCES) or "no-source",
    params:
        metrics=as_json(config["metrics"]),
        settings=as_json(config["fitting"]),
        seed=config["seed"],
        per_item=items_option,
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence verdicts-imported --table {input.table:q} --metrics {params.metrics:q} --settings {params.settings:q}"
        " --seed {params.seed} {params.per_item} --out {output:q} 2> {log}"


rule figures_imported:
    input:
        fits="results/imported/{source}/fits/{curves}.parquet",
        models="results/imported/{source}/models.json",
    output:
        directory("results/figures/imported/{source}/{curves}"),
    log:
        "logs/imported/{source}/figures_{curves}.log",
    benchmark:
        "logs/imported/{source}/figures_{curves}.benchmark.tsv"
    wildcard_constraints:
        source="|".join(SOURCES) or "no-source",
        curves="|".join(CURVES),
    threads: lambda w: 2 if w.curves == "training" else 1  # a figure per family and method
    params:
        metrics=as_json(config["metrics"]),
        style=as_json(config["figures"]["style"]),
        name="{source}",
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence figures-imported --fits {input.fits:q} --manifests {input.models:q} --curves {wildcards.curves}"
        " --metrics {params.metrics:q} --source {params.name:q} --style {params.style:q} --threads {threads}"
        " --out {output:q} 2> {log}"


rule forecast_imported:
    input:
        "results/imported/{source}/results.parquet",
    output:
        "results/imported/{source}/forecasts.parquet",
    log:
        "logs/imported/{source}/forecasts.log",
    benchmark:
        "logs/imported/{source}/forecasts.benchmark.tsv"
    wildcard_constraints:
        source="|".join(FORECAST_SOURCES) or "no-source",
    params:
        options=forecast_options,
    conda:
        "../envs/analysis.yaml"
    shell:  # one BLAS thread: scipy's L-BFGS-B on a few points is 5 times slower with several (README, Forecasts)
        "OPENBLAS_NUM_THREADS=1 emergence forecast --table {input:q} {params.options} --out {output:q} 2> {log}"


rule forecast_figures_imported:
    input:
        "results/imported/{source}/forecasts.parquet",
    output:
        directory("results/figures/imported/{source}/forecasts"),
    log:
        "logs/imported/{source}/figures_forecasts.log",
    benchmark:
        "logs/imported/{source}/figures_forecasts.benchmark.tsv"
    wildcard_constraints:
        source="|".join(FORECAST_SOURCES) or "no-source",
    params:
        style=as_json(config["figures"]["style"]),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence figures-forecast --forecasts {input:q} --style {params.style:q} --out {output:q} 2> {log}"
