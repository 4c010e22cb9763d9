# Snakemake glue only: one mobopt.workflow.plan.Plan for the config (src/mobopt/workflow/plan.py
# holds every computation, unit-tested), wildcard constraints, the shell prefix, and the named
# input functions the rules use. Rules only call `python -m mobopt <command>`.
import os
import shlex
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

SRC = str(Path(workflow.basedir) / "src")

from mobopt.optimize import variants as variant_registry  # noqa: E402
from mobopt.bench import devices as device_registry  # noqa: E402
from mobopt.workflow import hooks  # noqa: E402
from mobopt.workflow import plan as workflow_plan  # noqa: E402
from mobopt.workflow.plan import as_json  # noqa: E402

try:
    PLAN = workflow_plan.Plan(config)
except workflow_plan.ConfigError as exc:
    raise WorkflowError(str(exc)) from None
for _warning in PLAN.warnings:
    logger.warning(_warning)
#: Logs written after this are this run's (the failure summary's fallback when Snakemake's list is not at hand).
RUN_STARTED = time.time()

EXPERIMENTS = PLAN.experiments
BENCH = PLAN.bench
ANDROID_TOOL = workflow_plan.ANDROID_TOOL
ARM_TOOLCHAIN = workflow_plan.ARM_TOOLCHAIN
WEIGHTS_DIR = workflow_plan.WEIGHTS_DIR


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    variant="|".join(variant_registry.VARIANTS),
    device="|".join(device_registry.DEVICES),
    split="|".join(PLAN.eval_split_names),


# Without conda, jobs run with the Python that runs Snakemake (a virtualenv need not be
# activated); with --sdm conda, the rule's environment provides `python`.
_USE_CONDA = "conda" in {
    str(m).lower() for m in workflow.deployment_settings.deployment_method
}
_PATH = "" if _USE_CONDA else f"export PATH={Path(sys.executable).parent}:$PATH; "

# Every job: strict bash, the package on PYTHONPATH, provenance facts in the environment.
# MOBOPT_USER_PATH keeps the PATH the job was given, before _PATH puts the workflow's Python
# first: a bare `kaggle_cli: kaggle` is looked up there first (src/mobopt/datasets/kaggle.py).
shell.prefix(
    "set -euo pipefail; "
    + 'export MOBOPT_USER_PATH="$PATH"; '
    + _PATH
    + f"export PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    + f"export MOBOPT_CONFIG_SHA256={PLAN.config_sha256}; "
    + f"export MOBOPT_WORKFLOW_DIR={workflow.basedir}; "
)


def all_cores():
    """Every core of this run, so a benchmark never shares the machine with another job.

    Commands without --cores (--report, --lint, --summary) build the DAG too: 1 there.
    """
    try:
        return workflow.cores
    except WorkflowError:
        return 1


# ---------------------------------------------------------------- named input functions


def raw_outputs(dataset):
    """A download's outputs; an archive's extracted tree is a directory output."""
    out = PLAN.raw_outputs(dataset)
    if "tree" in out:
        out["tree"] = directory(out["tree"])
    return out


def experiment_data(wildcards):
    return PLAN.experiment_data(wildcards.experiment)


def folder_of_first(wildcards, input):
    """The prepared data's folder, from the first of its files."""
    return os.path.dirname(input.data[0])


def folder_of_record(wildcards, input):
    return os.path.dirname(input.record)


def folder_of_output(wildcards, output):
    return os.path.dirname(output[0])


def weight_files(wildcards):
    return PLAN.weight_files(wildcards.experiment)


def source_model(wildcards):
    return PLAN.source_model(wildcards.experiment)


def source_arg(wildcards, input):
    """` --source <model>` for an experiment that prunes another's trained model, ` --teacher <model>` for a
    distilled student."""
    out = f" --source {shlex.quote(input.source[0])}" if input.source else ""
    return out + (
        f" --teacher {shlex.quote(input.teacher[0])}" if input.teacher else ""
    )


def teacher_model(wildcards):
    return PLAN.teacher_model(wildcards.experiment)


def train_spec(wildcards):
    return as_json(PLAN.train_spec(wildcards.experiment))


def train_threads(wildcards):
    return PLAN.train_threads(wildcards.experiment)


def cluster_mem_mb(wildcards):
    return PLAN.cluster_request(wildcards.experiment)["mem_mb"]


def cluster_runtime(wildcards):
    return PLAN.cluster_request(wildcards.experiment)["runtime"]


def cluster_gpus(wildcards):
    return PLAN.cluster_request(wildcards.experiment)["gpus"]


def convert_inputs(wildcards):
    return PLAN.convert_inputs(wildcards.experiment, wildcards.variant)


def variants_of_runtime(runtime):
    """A wildcard constraint: the registry's variants that run on ``runtime``."""
    return "|".join(
        v.name for v in variant_registry.VARIANTS.values() if v.runtime == runtime
    )


def convert_options(wildcards):
    return as_json(PLAN.convert_options(wildcards.variant))


def graph_opt_arg(wildcards, input):
    return PLAN.graph_opt_arg(wildcards.experiment, wildcards.variant, input)


def graph_opt_options(wildcards):
    return as_json(PLAN.graph_opt_options(wildcards.experiment))


def pruning_options(wildcards):
    return as_json(PLAN.graph_opt_options(wildcards.experiment)["pruning"])


def pruning_threads(wildcards):
    return PLAN.graph_opt_options(wildcards.experiment)["pruning"].get("threads", 2)


def eval_model(wildcards):
    return PLAN.eval_model(wildcards.experiment, wildcards.variant)


def bench_threads(wildcards):
    return PLAN.bench_threads(wildcards.device, all_cores())


def bench_options(wildcards):
    return as_json(PLAN.bench_options(wildcards.device))


def bench_entry_files(keys):
    return PLAN.entry_files(PLAN.bench_entries(), keys)


def download_outputs(dataset):
    """The prepare rule's inputs: what the dataset's download rule wrote."""
    return lambda wildcards: dict(getattr(rules, f"download_{dataset}").output)


def evaluate_threads(wildcards):
    return 2 if wildcards.variant == "keras" else 1


def evaluate_mem_mb(wildcards):
    return 4000 if wildcards.variant == "keras" else 3000


def evaluate_env(wildcards):
    """Keras needs TensorFlow; a .tflite or .onnx is evaluated in the TF-free runtime environment."""
    return (
        "../../envs/tf.yaml"
        if wildcards.variant == "keras"
        else "../../envs/litert.yaml"
    )


def bench_inputs(experiment):
    """The experiment's model files by variant (plus the phone's tool for `android`)."""
    return lambda wildcards: PLAN.bench_inputs(experiment, wildcards.device)


def bench_args(experiment):
    return lambda wildcards, input, output: PLAN.bench_args(experiment, input, output)


def experiment_label(wildcards):
    return PLAN.label(wildcards.experiment)


def device_bench_files(*keys):
    """What a per-device figure reads: the files of that device's entries."""
    return lambda wildcards: PLAN.entry_files(
        PLAN.bench_entries([wildcards.device]), keys
    )


def device_bench_entries(wildcards):
    return as_json(PLAN.bench_entries([wildcards.device]))


def search_entries(wildcards):
    return as_json(PLAN.search_entries(wildcards.device))


def search_options(wildcards):
    return as_json(PLAN.search_options(wildcards.device))


def summary_inputs(wildcards):
    """The landing page's sources; with emulated CPUs also the does-int8-pay table."""
    inputs = {
        "verdicts": "reports/tables/paper_vs_reproduced.csv",
        "table2": "reports/tables/table2.csv",
        "bench": summary_bench_file(),
    }
    if PLAN.emulated_devices:
        inputs["isa"] = "reports/tables/int8_by_isa.csv"
    return inputs


def summary_isa_arg(wildcards, input):
    return f" --isa {shlex.quote(input.isa)}" if "isa" in input.keys() else ""


def summary_bench_file():
    """One benchmark result, for the run's provenance on the landing page."""
    entries = PLAN.bench_entries()
    return entries[0]["bench"] if entries else []


# ---------------------------------------------------------------- what the run tells the user
# The profile keeps the terminal to the job table and progress (quiet: [rules]); each job's
# block goes to the run's log file, named when the run starts.


def failed_jobs():
    """(rule, wildcards, logs) of each failed job, from Snakemake's scheduler; None if it is out of reach."""
    try:
        return [
            (job.rule.name, dict(job.wildcards_dict), [str(f) for f in job.log])
            for job in workflow.scheduler.failed
        ]
    except (AttributeError, TypeError):
        return None


onstart:
    logger.info(hooks.start_line(log))


onsuccess:
    for _line in hooks.success_lines(PLAN):
        logger.info(_line)


onerror:
    for _line in hooks.failure_lines(failed_jobs(), RUN_STARTED):
        logger.error(_line)
