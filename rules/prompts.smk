# Stage 3: turn each task's test items into requests under each prompting method.


rule prompts:
    input:
        task_items="results/tasks/{task}.parquet",
    output:
        "results/prompts/{task}/{method}.parquet",
    log:
        "logs/prompts/{task}/{method}.log",
    params:
        spec=lambda w: as_json(METHOD_SPECS[w.method]),
        sampling=lambda w: as_json(config["sampling"]),
        seed=config["seed"],
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence prompts --task {wildcards.task:q} --items {input.task_items:q} --method {wildcards.method:q}"
        " --spec {params.spec:q} --sampling {params.sampling:q} --seed {params.seed} --out {output:q} 2> {log}"
