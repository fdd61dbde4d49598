# Stage 4: one job per model loads the engine once and answers every task x method, through the
# request cache in results/cache/{model}/ (not a declared output, so it survives a failed job and a
# restart resumes from it). On a cluster the job asks for the model's GPUs, memory and time; a
# retried job (after running out of memory or time) gets more memory and time, and the engine
# smaller batches (emergence.inference.attempt_settings).


rule inference:
    input:
        manifest="results/models/{model}/manifest.json",
        prompts=per_pair("results/prompts/{task}/{method}.parquet"),
    output:
        per_pair("results/generations/{{model}}/{task}/{method}.parquet"),
    log:
        "logs/inference/{model}.log",
    resources:
        gpu=lambda w: model_resources(config, w.model)["gpus"],
        mem_mb=lambda w, attempt: model_resources(config, w.model)["mem_mb"] * attempt,
        runtime=lambda w, attempt: model_resources(config, w.model)["runtime"] * attempt,
        attempt=lambda w, attempt: attempt,
    params:
        engine=lambda w: config["engine"]["name"],
        settings=lambda w: as_json(engine_settings(config, w.model)),
        chunk_size=lambda w: config["engine"]["chunk_size"],
        cache="results/cache/{model}",
        stats="logs/inference/{model}.stats.jsonl",
    conda:
        "../envs/inference.yaml"
    shell:
        "emergence infer --model {wildcards.model:q} --manifest {input.manifest:q} --prompts {input.prompts:q}"
        " --out {output:q} --engine {params.engine} --settings {params.settings:q} --cache-dir {params.cache:q}"
        " --chunk-size {params.chunk_size} --stats {params.stats:q} --attempt {resources.attempt} 2> {log}"
