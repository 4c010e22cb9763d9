# mobopt: how architecture and optimization change accuracy, size, memory, CPU load and
# latency of image classifiers on mobile devices. `snakemake --cores 8` reproduces the paper
# (config/config.yaml); see README.md for the stages, outputs and config keys.
from snakemake.utils import min_version, validate

min_version("9.0")


# The paper config is the default; a --configfile replaces it instead of being merged into it
# (merging would silently add the paper's experiments to a user's own config).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml", set_default=True)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/optimize.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        PLAN.final_outputs(),
