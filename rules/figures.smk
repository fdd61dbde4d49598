# Stage 7: figures (one metric against parameters, one line per digit count) and the HTML report.


rule figure:
    input:
        scores=lambda w: scores_of(w.task, w.method),
    output:
        "results/figures/{task}/{method}/{metric}.png",
    log:
        "logs/figures/{task}/{method}/{metric}.log",
    params:
        title=lambda w: f"{w.task}, {w.method.replace('_', '-')}",
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence figure --scores {input.scores:q} --metric {wildcards.metric:q} --title {params.title:q}"
        " --out {output:q} 2> {log}"


rule report:
    input:
        scores=expand("results/scores/{model}/{task}/{method}.parquet", model=MODELS, task=TASKS, method=METHODS),
        fits=expand("results/fits/{task}/{method}.parquet", task=TASKS, method=METHODS),
        figures=figures(),
        manifests=expand("results/models/{model}/manifest.json", model=MODELS),
    output:
        "results/report.html",
    log:
        "logs/report.log",
    params:
        config=as_json(config),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence report --scores {input.scores:q} --fits {input.fits:q} --figures {input.figures:q}"
        " --manifests {input.manifests:q} --config {params.config:q}"
        " --out {output:q} 2> {log}"
