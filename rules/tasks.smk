# Stage 2: build every task's items (the test items, and the train pool that exemplars come from).


rule task:
    output:
        "results/tasks/{task}.parquet",
    log:
        "logs/tasks/{task}.log",
    params:
        spec=lambda w: as_json(config["tasks"][w.task]),
        seed=config["seed"],
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence task --name {wildcards.task:q} --spec {params.spec:q} --seed {params.seed}"
        " --out {output:q} 2> {log}"
