# Stage 5: score stored generations under every configured metric (never re-runs a model). One job per
# model, like inference: its generations come from one job, and the tokenizer loads once.


rule score:
    input:
        manifest="results/models/{model}/manifest.json",
        generations=per_pair("results/generations/{{model}}/{task}/{method}.parquet"),
        task_items=per_pair("results/tasks/{task}.parquet"),
    output:
        per_pair("results/scores/{{model}}/{task}/{method}.parquet"),
    log:
        "logs/scores/{model}.log",
    params:
        metrics=as_json(config["metrics"]),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence score --model {wildcards.model:q} --manifest {input.manifest:q}"
        " --generations {input.generations:q} --tasks {input.task_items:q} --metrics {params.metrics:q}"
        " --out {output:q} 2> {log}"
