# Stage 2: build every task's items (the test items, and the train pool that exemplars come from).


rule download_bigbench:
    output:
        "resources/downloads/bigbench-1.0.0.tar.gz",
    log:
        "logs/tasks/download_bigbench.log",
    params:
        folder=lambda w, output: Path(output[0]).parent,
    conda:
        "../envs/analysis.yaml"
    shell:
        # the source archive only: installing bigbench would pull tensorflow, t5 and seqio
        "python -m pip download --no-deps --no-cache-dir bigbench==1.0.0 -d {params.folder:q} > {log} 2>&1"


rule task:
    input:
        unpack(task_inputs),
    output:
        "results/tasks/{task}.parquet",
    log:
        "logs/tasks/{task}.log",
    params:
        spec=lambda w: as_json(config["tasks"][w.task]),
        seed=config["seed"],
        inputs=lambda w, input: input_paths(input),
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence task --name {wildcards.task:q} --spec {params.spec:q} --seed {params.seed}"
        " --inputs {params.inputs:q} --out {output:q} 2> {log}"
