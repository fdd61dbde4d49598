# Stage 6: fit scaling curves per task x method across all models.


rule fit:
    input:
        scores=lambda w: scores_of(w.task, w.method),
    output:
        "results/fits/{task}/{method}.parquet",
    log:
        "logs/fits/{task}/{method}.log",
    params:
        min_models=config["fitting"]["min_models"],
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence fit --scores {input.scores:q} --min-models {params.min_models} --out {output:q} 2> {log}"
