# Stage 4: one job per model loads the engine once and answers every task x method, through the
# request cache in results/cache/{model}/ (not a declared output, so it survives a failed job and a
# restart resumes from it).


rule inference:
    input:
        manifest="results/models/{model}/manifest.json",
        prompts=per_pair("results/prompts/{task}/{method}.parquet"),
    output:
        per_pair("results/generations/{{model}}/{task}/{method}.parquet"),
    log:
        "logs/inference/{model}.log",
    params:
        engine=config["engine"]["name"],
        settings=as_json({**config["engine"], "seed": config["seed"]}),
        chunk_size=config["engine"]["chunk_size"],
        cache="results/cache/{model}",
        stats="logs/inference/{model}.stats.jsonl",
    conda:
        "../envs/inference.yaml"
    shell:
        "emergence infer --model {wildcards.model:q} --manifest {input.manifest:q} --prompts {input.prompts:q}"
        " --out {output:q} --engine {params.engine} --settings {params.settings:q} --cache-dir {params.cache:q}"
        " --chunk-size {params.chunk_size} --stats {params.stats:q} 2> {log}"
