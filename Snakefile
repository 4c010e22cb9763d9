# mobopt: how architecture and optimization change accuracy, size, memory, CPU load and
# latency of image classifiers on mobile devices. `snakemake --cores 8` reproduces the paper
# (config/config.yaml); see README.md for the stages, outputs and config keys.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# the package, importable before `pip install -e .`
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from mobopt.workflow import config as workflow_config  # noqa: E402

# Config files are overlays, as Snakemake documents --configfile: the paper config comes first
# and each --configfile deep-merges over it key by key (config/cpu.yaml holds only what differs),
# then --config. A study of its own (config/demo.yaml) sets `replace_workflow_config: true`, the
# in-file form of Snakemake's --replace-workflow-config flag (which works too): the paper's
# experiments are then not added to it. An empty or broken paper config is named with its line
# here; Snakemake reads a --configfile before this file runs (docs/troubleshooting.md).
CONFIG_FILES = list(workflow.overwrite_configfiles)
if not workflow_config.replaces_workflow_config(
    config, workflow.config_settings.replace_workflow_config
):
    CONFIG_FILES.insert(0, workflow_config.base_path(workflow.basedir))
    BASE_CONFIG = workflow_config.load(CONFIG_FILES[0])

    configfile: CONFIG_FILES[0]

    # experiments in the paper's order (the rows of every table), not the overlay's
    workflow_config.keep_order(config, BASE_CONFIG)


# Every problem as one line naming the file and the key (not the schema); defaults filled in.
workflow_config.validate(
    config,
    Path(workflow.basedir) / workflow_config.SCHEMA,
    files=CONFIG_FILES,
    overrides=workflow.config_settings.config,
)


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
