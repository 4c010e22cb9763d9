# Shared definitions: registry checks, wildcard constraints, path helpers.
# All logic lives in src/mobopt; rules only call `python -m mobopt <stage>`.
import hashlib
import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)  # the registries, importable even before `pip install -e .`

from mobopt import datasets as dataset_registry  # noqa: E402
from mobopt import devices as device_registry  # noqa: E402
from mobopt import pretrained  # noqa: E402
from mobopt import variants as variant_registry  # noqa: E402

EXPERIMENTS = config["experiments"]
BENCH = config.get("benchmark", {})
CONFIGURED_DEVICES = BENCH.get("devices", ["host_1t"])
CONFIG_SHA256 = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _check_names():
    """Names the schema cannot know: they come from the package's registries."""
    for device in CONFIGURED_DEVICES:
        if device not in device_registry.DEVICES:
            raise WorkflowError(
                f"config key benchmark.devices: unknown device {device!r}; "
                f"known: {', '.join(device_registry.DEVICES)}"
            )
    for name, exp in EXPERIMENTS.items():
        if exp["dataset"] not in dataset_registry.DATASETS:
            raise WorkflowError(
                f"config key experiments.{name}.dataset: unknown dataset {exp['dataset']!r}; "
                f"known: {', '.join(dataset_registry.DATASETS)}"
            )
        if exp["dataset"] not in config["datasets"]:
            raise WorkflowError(
                f"config key experiments.{name}.dataset is {exp['dataset']!r} but datasets.{exp['dataset']} "
                "is missing: add its source settings under `datasets:`"
            )
        for variant in exp["variants"]:
            if variant not in variant_registry.VARIANTS:
                raise WorkflowError(
                    f"config key experiments.{name}.variants: unknown variant {variant!r}; "
                    f"known: {', '.join(variant_registry.VARIANTS)}"
                )


_check_names()


def _usable_devices():
    """Configured devices minus a phone that is not attached: its benchmarks are skipped, with the reason."""
    usable = []
    for device in CONFIGURED_DEVICES:
        if device_registry.get(device).kind == "android":
            ok, why = device_registry.availability(device, BENCH.get("android", {}))
            if not ok:
                logger.warning(f"benchmark.devices: {why}")
                continue
        usable.append(device)
    return usable


DEVICES = _usable_devices()
HOST_DEVICES = [d for d in DEVICES if device_registry.get(d).kind == "host"]
#: LiteRT's benchmark_model binary for the phone (rule download_benchmark_model).
ANDROID_TOOL = "data/tools/android_aarch64_benchmark_model"

USED_DATASETS = sorted({exp["dataset"] for exp in EXPERIMENTS.values()})
EVAL_SPLITS = sorted({s for ds in USED_DATASETS for s in dataset_registry.get(ds).eval_splits})


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    variant="|".join(variant_registry.VARIANTS),
    device="|".join(device_registry.DEVICES),
    split="|".join(EVAL_SPLITS),


# Without conda, jobs run with the Python that runs Snakemake (a virtualenv need not be
# activated); with --sdm conda, the rule's environment provides `python`.
_USE_CONDA = "conda" in {str(m).lower() for m in workflow.deployment_settings.deployment_method}
_PATH = "" if _USE_CONDA else f"export PATH={Path(sys.executable).parent}:$PATH; "

# Every job: strict bash, the package on PYTHONPATH, provenance facts in the environment.
shell.prefix(
    "set -euo pipefail; "
    + _PATH
    + f"export PYTHONPATH={SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    + f"export MOBOPT_CONFIG_SHA256={CONFIG_SHA256}; "
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


def bench_threads(device):
    """Every core of this run, and at least what the device profile pins (a phone: 1 host thread drives adb)."""
    return max(all_cores(), getattr(device_registry.get(device), "threads", 1))


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def experiment(wildcards):
    return EXPERIMENTS[wildcards.experiment]


def label(name):
    return EXPERIMENTS[name].get("label", name)


def prepared_dir(dataset):
    return f"data/prepared/{dataset}"


def prepared_files(dataset):
    files = [f"{prepared_dir(dataset)}/meta.json"]
    for split in dataset_registry.get(dataset).splits:
        files += [f"{prepared_dir(dataset)}/{name}" for name in dataset_registry.split_files(split)]
    return files


def experiment_data(wildcards):
    return prepared_files(experiment(wildcards)["dataset"])


def raw_outputs(ds):
    out = {
        "files": [f"data/raw/{ds}/{f}" for f in dataset_registry.get(ds).raw_files(config["datasets"][ds])],
        "record": f"data/raw/{ds}/SOURCE.json",
    }
    if dataset_registry.get(ds).extracted:
        out["tree"] = directory(f"data/raw/{ds}/{dataset_registry.TREE}")
    return out


WEIGHTS_DIR = "data/weights"


def weight_files(name):
    """Pretrained weight files an experiment's model loads (fetched by download_weights)."""
    exp = EXPERIMENTS[name]
    shape = dataset_registry.get(exp["dataset"]).image_shape(config["datasets"][exp["dataset"]])
    return [f"{WEIGHTS_DIR}/{f}" for f in pretrained.weight_files(exp["model"], shape)]


def trained(name):
    """Whether the experiment fits its model (a pretrained model used as is has no training curves)."""
    return EXPERIMENTS[name].get("train", {}).get("epochs", 25) > 0


#: Defaults of experiments.<name>.resources (the schema sets the same ones).
CLUSTER_REQUEST = {"gpus": 0, "mem_mb": 8000, "runtime": 24 * 60}


def cluster_request(name):
    """What training asks a cluster scheduler for: memory (MB), wall time (minutes), GPUs."""
    return {**CLUSTER_REQUEST, **EXPERIMENTS[name].get("resources", {})}


def eval_splits(name):
    return dataset_registry.get(EXPERIMENTS[name]["dataset"]).eval_splits


def bench_inputs(experiment, device):
    """The experiment's .tflite files by variant name, plus the phone's benchmark tool for `android`."""
    inputs = {v: f"results/tflite/{experiment}/{v}.tflite" for v in EXPERIMENTS[experiment]["variants"]}
    if device_registry.get(device).kind == "android":
        inputs["binary"] = ANDROID_TOOL
    return inputs


def bench_args(experiment, input, output):
    args = []
    for v in EXPERIMENTS[experiment]["variants"]:
        args += ["--model", f"{v}={input[v]}", "--out", f"{v}={output[v]}"]
    if "binary" in input.keys():
        args += ["--binary", input.binary]
    return " ".join(shlex.quote(a) for a in args)


def bench_options(device):
    """What a benchmark job's result depends on: the protocol keys, plus the phone's settings for `android`.
    Scheduler settings (benchmark.runtime) and the device list stay out, so editing them reruns nothing."""
    skip = {"devices", "runtime"} | (set() if device_registry.get(device).kind == "android" else {"android"})
    return {k: v for k, v in BENCH.items() if k not in skip}


def bench_runtime():
    """Minutes a benchmark job asks a scheduler for (benchmark.runtime)."""
    return BENCH.get("runtime", 60)


def runs():
    """(experiment, variant) pairs the config asks for."""
    return [(name, v) for name, exp in EXPERIMENTS.items() for v in exp["variants"]]


def bench_entries(devices=None):
    """Everything Table 2 and the figures read, per (experiment, variant, device)."""
    return [
        {
            "experiment": name,
            "label": label(name),
            "model_name": EXPERIMENTS[name]["model"]["name"],
            "dataset": EXPERIMENTS[name]["dataset"],
            "variant": variant,
            "device": device,
            "bench": f"results/bench/{device}/{name}/{variant}.json",
            "tflite_info": f"results/tflite/{name}/{variant}.json",
            "eval": f"results/eval/{name}/test/{variant}.json",
        }
        for name, variant in runs()
        for device in (DEVICES if devices is None else devices)
    ]


def eval_entries(splits=("test",)):
    """Keras reference plus every variant, per experiment and evaluation split (Figs. 2-3: test only)."""
    return [
        {
            "experiment": name,
            "label": label(name),
            "variant": variant,
            "split": split,
            "eval": f"results/eval/{name}/{split}/{variant}.json",
        }
        for name, exp in EXPERIMENTS.items()
        for split in eval_splits(name)
        if split in splits
        for variant in ["keras", *exp["variants"]]
    ]


def model_entries():
    """Per experiment, what Table 1 reads: the trained model's metrics and the prepared data's meta."""
    return [
        {
            "experiment": name,
            "label": label(name),
            "dataset": exp["dataset"],
            "variants": exp["variants"],
            "metrics": f"results/models/{name}/metrics.json",
            "meta": f"{prepared_dir(exp['dataset'])}/meta.json",
        }
        for name, exp in EXPERIMENTS.items()
    ]


def _merge(base, over):
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def graph_opt_options(name):
    """The graph_opt block, with the experiment's own overrides merged in (schema defaults already set)."""
    return _merge(config.get("graph_opt", {}), EXPERIMENTS[name].get("graph_opt", {}))


def is_graph_opt(variant):
    return variant_registry.get(variant).graph_opt


def convert_inputs(wildcards):
    """A plain variant converts the trained model; graph_opt_int8 the pruned one plus the step outputs."""
    base = {"data": experiment_data(wildcards)}
    if not is_graph_opt(wildcards.variant):
        return {**base, "model": f"results/models/{wildcards.experiment}/model.keras"}
    go = f"results/graph_opt/{wildcards.experiment}"
    return {**base, "model": f"results/models/{wildcards.experiment}/pruned.keras",
            "pruning": f"results/models/{wildcards.experiment}/pruning.json", "float": f"{go}/pruned_float32.tflite",
            "sensitivity": f"{go}/sensitivity.json", "selection": f"{go}/selection.json"}


def graph_opt_arg(wildcards, input):
    if not is_graph_opt(wildcards.variant):
        return ""
    arg = {k: input[k] for k in ("float", "sensitivity", "selection", "pruning")}
    arg["options"] = graph_opt_options(wildcards.experiment)
    return f" --graph-opt {shlex.quote(as_json(arg))}"


def graph_opt_experiments():
    return [name for name, exp in EXPERIMENTS.items() if any(is_graph_opt(v) for v in exp["variants"])]


def entry_files(entries, keys):
    return sorted({e[k] for e in entries for k in keys})


def final_outputs():
    figures = [f"reports/figures/training_curves_{name}.{ext}" for name in EXPERIMENTS if trained(name) for ext in ("png", "svg")]
    figures += [f"reports/figures/fig{n}_{m}.{ext}" for n, m in ((2, "accuracy"), (3, "loss")) for ext in ("png", "svg")]
    figures += [f"reports/figures/pareto_{device}.{ext}" for device in DEVICES for ext in ("png", "svg")]
    # a phone's benchmark_model prints no per-run latencies, so it has no distribution to draw, and no GEMM peak
    figures += [f"reports/figures/{kind}_{device}.{ext}" for kind in ("latency", "roofline") for device in HOST_DEVICES
                for ext in ("png", "svg")]
    figures += [f"reports/figures/size.{ext}" for ext in ("png", "svg")] if DEVICES else []
    tables = [f"reports/tables/{t}.{ext}" for t in ("table1", "table2", "table2_paper", "paper_vs_reproduced")
              for ext in ("csv", "md", "tex")]
    tables += [f"reports/tables/{t}.{ext}" for t in ("accuracy", "op_profile", "variants") for ext in ("csv", "md")]
    figures += [f"reports/figures/sensitivity_{name}.{ext}" for name in graph_opt_experiments() for ext in ("png", "svg")]
    return [*tables, *figures, *(["reports/summary.html"] if DEVICES else [])]
