# Stage 6: per task x method, fit scaling curves and emergence measures across every model.


rule fit:
    input:
        scores=lambda w: scores_of(w.task, w.method),
    output:
        fits="results/fits/{task}/{method}.parquet",
        calibration="results/calibration/{task}/{method}.parquet",
        verdicts="results/verdicts/{task}/{method}.parquet",
    log:
        "logs/fits/{task}/{method}.log",
    params:
        settings=as_json(config["fitting"]),
        seed=config["seed"],
    conda:
        "../envs/analysis.yaml"
    shell:
        "emergence fit --scores {input.scores:q} --settings {params.settings:q} --seed {params.seed}"
        " --out {output.fits:q} --calibration {output.calibration:q} --verdicts {output.verdicts:q} 2> {log}"
