"""The workflow's plan: from a validated config to the files every rule reads and writes.

Everything the Snakemake rule modules compute lives here, as plain Python
that tests import: the results layout, the registry checks (names the schema
cannot know), which devices are usable, the entries the table and figure
rules pass on, the option merges and the final outputs of ``rule all``.
``workflow/rules/common.smk`` builds one :class:`Plan` and keeps only the
Snakemake glue (wildcards, ``directory()``, the shell prefix, logging).

This module imports the registries only, never TensorFlow: Snakemake imports
it on every start, ``snakemake -n`` included.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mobopt import MobOptError
from mobopt.bench import devices as device_registry
from mobopt.common import download
from mobopt.datasets import archives, fashion_mnist, fetch, images, kaggle
from mobopt.datasets import registry as dataset_registry
from mobopt.datasets.prepared import TREE, split_files
from mobopt.models import pretrained
from mobopt.optimize import structured
from mobopt.optimize import variants as variant_registry
from mobopt.report import study

#: LiteRT's benchmark_model binary for the phone (rule fetch_benchmark_model).
ANDROID_TOOL = "data/tools/android_aarch64_benchmark_model"
#: The emulated ARM CPUs' toolchain record (the fetch_arm_toolchain rule; the toolchain lies beside it).
ARM_TOOLCHAIN = "data/tools/arm/toolchain.json"
WEIGHTS_DIR = "data/weights"
#: Defaults of experiments.<name>.resources (the schema sets the same ones; a test checks).
CLUSTER_REQUEST = {"gpus": 0, "mem_mb": 8000, "runtime": 24 * 60}
#: Minutes a benchmark job asks a scheduler for, unless benchmark.runtime says otherwise.
BENCH_RUNTIME = 60
#: Epochs of an experiment whose config names none (the paper's schedule).
DEFAULT_EPOCHS = 25
#: Keys of the benchmark block that only steer scheduling: editing them reruns nothing.
BENCH_SCHEDULING_KEYS = {"devices", "runtime"}
FIGURE_FORMATS = ("png", "svg")
#: Dataset keys added after results existed, with their defaults: the rules get them only when set to
#: something else.  The dataset's options are the download and prepare rules' params, and Snakemake
#: reruns a job whose params changed; a new key with a schema default would otherwise have rerun every
#: user's downloads, prepared data and, through them, everything else.
LATE_DATASET_KEYS: dict[str, Any] = {
    **{key: download.FETCH_DEFAULTS[key] for key in ("attempt_timeout", "min_rate", "rate_window")},
    **archives.EXTRACT_DEFAULTS,
    **images.IMAGE_DEFAULTS,
}
#: The same for keys that only some datasets have, by dataset: their defaults differ between datasets
#: (Fashion-MNIST's ``image_size`` is 28, a photo dataset's 224), so they cannot join the list above.
LATE_KEYS_OF_DATASET: dict[str, dict[str, Any]] = {
    "fashion_mnist": fashion_mnist.SHAPE_DEFAULTS,
}


#: Training keys added after results existed, with their defaults (see :meth:`Plan.train_spec`).
LATE_TRAIN_KEYS: dict[str, Any] = {"jit_compile": False, "precision": "auto",
                                   "augmentation": {"horizontal_flip": False, "max_shift": 0, "random_erasing": 0.0},
                                   "label_smoothing": 0.0,
                                   "optimizer": "adamw", "momentum": 0.9, "lr_schedule": "cosine", "lr_step_epochs": 10,
                                   "lr_step_factor": 0.1}

#: ONNX export keys added after results existed (only the quantized ONNX Runtime variants read them).
LATE_ONNX_KEYS: dict[str, Any] = {"reduce_range": False}

#: Augmentations added after models trained with the others existed (their params keep their old form).
LATE_AUGMENTATION_KEYS: dict[str, Any] = {"random_erasing": 0.0}

#: Model options added after results existed, per architecture, with their defaults (the builders' defaults,
#: written out here because the plan imports no Keras): MobileNetV2's from-scratch options.
LATE_MODEL_KEYS: dict[str, dict[str, Any]] = {"mobilenetv2": {"stem": "auto", "depthwise_separable": True}}


def _at_default(value: Any, default: Any) -> bool:
    """``value`` says no more than ``default`` (an object counts key by key: ``{}`` is all defaults)."""
    if isinstance(default, dict) and isinstance(value, dict):
        return all(value.get(k, d) == d for k, d in default.items()) and set(value) <= set(default)
    return value == default


class ConfigError(MobOptError):
    """A config value the schema cannot check (a name from a registry); the message names the key."""


def as_json(obj: Any) -> str:
    """Options as the rules pass them on the command line: stable key order, so params compare equal."""
    return json.dumps(obj, sort_keys=True)


def merge(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """``over`` merged into ``base`` key by key, nested blocks recursively (per-experiment overrides)."""
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def inherit_sources(experiments: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Experiments built from another's trained model take what they must share with it.

    A structurally pruned model (``structured_pruning.from``) is made from its source's trained model, so it
    has the source's dataset and architecture by construction; a distilled student
    (``distillation.teacher``) learns the teacher's dataset.  An experiment that sets them anyway must agree.
    Sources and teachers can chain (a pruned model pruned further, or distilled); a cycle or an unknown
    name is one error naming the key.
    """
    out: dict[str, dict[str, Any]] = {}

    def parent(name: str, key: str, other: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if other not in experiments:
            raise ConfigError(f"config key {key}: unknown experiment {other!r}; known: {', '.join(experiments)}")
        if other == name or other in seen:
            raise ConfigError(f"config key {key}: {other!r} leads back to {name!r}; sources cannot form a cycle")
        return resolve(other, (*seen, name))

    def agree(name: str, exp: dict[str, Any], other: str, found: dict[str, Any], keys: tuple[str, ...]) -> dict:
        for k in keys:
            if k in exp and exp[k] != found[k]:
                raise ConfigError(f"config key experiments.{name}.{k} differs from experiments.{other}.{k}: it must be "
                                  f"the same; leave the key out")
        return {k: found[k] for k in keys}

    def resolve(name: str, seen: tuple[str, ...]) -> dict[str, Any]:
        if name in out:
            return out[name]
        exp = dict(experiments[name])
        source = (exp.get("structured_pruning") or {}).get("from")
        if source is not None:
            key = f"experiments.{name}.structured_pruning.from"
            found = parent(name, key, source, seen)
            if found["model"].get("name") not in structured.SUPPORTED:
                raise ConfigError(f"config key {key}: {source!r} is a {found['model'].get('name')} model; structured "
                                  f"pruning supports {', '.join(structured.SUPPORTED)}")
            try:
                structured.check_supported(found["model"], f"config key experiments.{name}.structured_pruning",
                                           exp["structured_pruning"])
            except MobOptError as exc:
                raise ConfigError(str(exc)) from None
            exp.update(agree(name, exp, source, found, ("dataset", "model")))
        teacher = (exp.get("distillation") or {}).get("teacher")
        if teacher is not None:
            found = parent(name, f"experiments.{name}.distillation.teacher", teacher, seen)
            exp.update(agree(name, exp, teacher, found, ("dataset",)))
        for k in ("dataset", "model"):
            if k not in exp:
                raise ConfigError(f"config key experiments.{name}.{k} is missing: every experiment names its dataset "
                                  "and model, unless it prunes another's (structured_pruning.from), and a distilled "
                                  "student names its model")
        out[name] = exp
        return exp

    for name in experiments:
        resolve(name, ())
    return out


class Plan:
    """What the rules need, for one validated ``config`` (schema defaults already set).

    ``availability`` says whether a device can be used now (a phone over adb);
    it defaults to the device registry's check and is replaced in tests, as is
    ``env`` (the environment Kaggle credentials are looked up in; ``os.environ``).
    """

    def __init__(self, config: dict[str, Any],
                 availability: Callable[[str, dict[str, Any]], tuple[bool, str]] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.experiments: dict[str, dict[str, Any]] = inherit_sources(config["experiments"])
        self.bench: dict[str, Any] = config.get("benchmark", {})
        self.configured_devices: list[str] = self.bench.get("devices", ["host_1t"])
        self.config_sha256 = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
        self.check_names()
        self.warnings: list[str] = []
        usable = self._usable_devices(availability or device_registry.availability)
        #: devices that time the models (hosts, phones): every table and figure of latency reads these
        self.devices = [d for d in usable if device_registry.get(d).kind != "emulated"]
        self.host_devices = [d for d in self.devices if device_registry.get(d).kind == "host"]
        #: emulated ARM CPUs: they count instructions, read by the ISA table and their own search
        self.emulated_devices = [d for d in usable if device_registry.get(d).kind == "emulated"]
        self.used_datasets = sorted({exp["dataset"] for exp in self.experiments.values()})
        self.eval_split_names = sorted({s for ds in self.used_datasets for s in dataset_registry.get(ds).eval_splits})
        self._check_credentials(env)

    # ------------------------------------------------------------------ checks

    def check_names(self) -> None:
        """Names the schema cannot know: they come from the package's registries."""
        for device in self.configured_devices:
            if device not in device_registry.DEVICES:
                raise ConfigError(f"config key benchmark.devices: unknown device {device!r}; "
                                  f"known: {', '.join(device_registry.DEVICES)}")
        for name, exp in self.experiments.items():
            if exp["dataset"] not in dataset_registry.DATASETS:
                raise ConfigError(f"config key experiments.{name}.dataset: unknown dataset {exp['dataset']!r}; "
                                  f"known: {', '.join(dataset_registry.DATASETS)}")
            if exp["dataset"] not in self.config["datasets"]:
                raise ConfigError(f"config key experiments.{name}.dataset is {exp['dataset']!r} but "
                                  f"datasets.{exp['dataset']} is missing: add its source settings under `datasets:`")
            for variant in exp["variants"]:
                if variant not in variant_registry.VARIANTS:
                    raise ConfigError(f"config key experiments.{name}.variants: unknown variant {variant!r}; "
                                      f"known: {', '.join(variant_registry.VARIANTS)}")

    def _usable_devices(self, availability) -> list[str]:
        """Configured devices minus a phone that is not attached or an emulated CPU without QEMU: their benchmarks are
        skipped, with the reason."""
        usable = []
        for device in self.configured_devices:
            if device_registry.get(device).kind in ("android", "emulated"):
                ok, why = availability(device, self.bench.get("android", {}))
                if not ok:
                    self.warnings.append(f"benchmark.devices: {why}")
                    continue
            usable.append(device)
        return usable

    def _check_credentials(self, env: Mapping[str, str] | None) -> None:
        """A Kaggle download without credentials would fail only when its job runs: warn at the dry run, as for a phone."""
        for dataset in self.used_datasets:
            if self.config["datasets"][dataset].get("source") != "kaggle":
                continue
            if os.path.exists(self.raw_outputs(dataset)["record"]):
                continue  # downloaded already: the job will not run
            if kaggle.credential_source(env) is None:
                self.warnings.append(
                    f"datasets.{dataset}: source is kaggle but no Kaggle credentials are set (KAGGLE_API_TOKEN, "
                    f"KAGGLE_USERNAME + KAGGLE_KEY, or ~/.kaggle/kaggle.json), so download_{dataset} will fail; "
                    f"set them, or download the zip yourself and use `source: path` (docs/troubleshooting.md)")

    # ------------------------------------------------------------------ per experiment

    def label(self, name: str) -> str:
        return self.experiments[name].get("label", name)

    def trained(self, name: str) -> bool:
        """Whether the experiment fits its model (a pretrained model used as is has no training curves)."""
        return self.experiments[name].get("train", {}).get("epochs", DEFAULT_EPOCHS) > 0

    def train_spec(self, name: str) -> dict[str, Any]:
        """Only what changes the trained model: editing variants or labels must not retrain.

        Training and model keys added after results existed (:data:`LATE_TRAIN_KEYS`, :data:`LATE_MODEL_KEYS`)
        are left out while they sit at their defaults, so a schema default does not change the train rule's
        params and retrain every existing model.
        """
        exp = self.experiments[name]
        train = {k: v for k, v in exp.get("train", {}).items()
                 if k not in LATE_TRAIN_KEYS or not _at_default(v, LATE_TRAIN_KEYS[k])}
        if isinstance(train.get("augmentation"), dict):  # a later augmentation at its default leaves the others' params
            train["augmentation"] = {k: v for k, v in train["augmentation"].items()
                                     if k not in LATE_AUGMENTATION_KEYS or v != LATE_AUGMENTATION_KEYS[k]}
        late = LATE_MODEL_KEYS.get(exp["model"].get("name"), {})
        model = {k: v for k, v in exp["model"].items() if k not in late or not _at_default(v, late[k])}
        spec = {"model": model, "train": train}
        # the source's and the teacher's model files are inputs: retraining either reruns this training
        if "structured_pruning" in exp:  # `channels` came later: at its default it leaves a ViT's params as they were
            spec["structured_pruning"] = {k: v for k, v in exp["structured_pruning"].items()
                                          if k != "from" and not (k == "channels" and not v)}
        if "distillation" in exp:
            spec["distillation"] = {k: v for k, v in exp["distillation"].items() if k != "teacher"}
        return spec

    def teacher_model(self, name: str) -> list[str]:
        """The trained model a distilled student learns from (none without distillation)."""
        teacher = (self.experiments[name].get("distillation") or {}).get("teacher")
        return [f"results/models/{teacher}/model.keras"] if teacher else []

    def source_model(self, name: str) -> list[str]:
        """The trained model a structurally pruned experiment starts from (none for one trained from scratch)."""
        source = (self.experiments[name].get("structured_pruning") or {}).get("from")
        return [f"results/models/{source}/model.keras"] if source else []

    def train_threads(self, name: str) -> int:
        return self.experiments[name].get("train", {}).get("threads", 2)

    def cluster_request(self, name: str) -> dict[str, Any]:
        """What training (and the pruning fine-tune) asks a cluster scheduler for: memory, wall time, GPUs."""
        return {**CLUSTER_REQUEST, **self.experiments[name].get("resources", {})}

    def eval_splits(self, name: str) -> tuple[str, ...]:
        return dataset_registry.get(self.experiments[name]["dataset"]).eval_splits

    def weight_files(self, name: str) -> list[str]:
        """Pretrained weight files an experiment's model loads (fetched by fetch_weights)."""
        exp = self.experiments[name]
        shape = dataset_registry.get(exp["dataset"]).image_shape(self.config["datasets"][exp["dataset"]])
        return [f"{WEIGHTS_DIR}/{f}" for f in pretrained.weight_files(exp["model"], shape)]

    def runs(self) -> list[tuple[str, str]]:
        """(experiment, variant) pairs the config asks for."""
        return [(name, v) for name, exp in self.experiments.items() for v in exp["variants"]]

    # ------------------------------------------------------------------ datasets

    @staticmethod
    def prepared_dir(dataset: str) -> str:
        return f"data/prepared/{dataset}"

    def prepared_files(self, dataset: str) -> list[str]:
        files = [f"{self.prepared_dir(dataset)}/meta.json"]
        for split in dataset_registry.get(dataset).splits:
            files += [f"{self.prepared_dir(dataset)}/{name}" for name in split_files(split)]
        return files

    def experiment_data(self, name: str) -> list[str]:
        return self.prepared_files(self.experiments[name]["dataset"])

    def raw_outputs(self, dataset: str) -> dict[str, Any]:
        """The download's outputs: raw files, SOURCE.json, and for archives the extracted tree (a directory)."""
        spec = dataset_registry.get(dataset)
        files = [f"data/raw/{dataset}/{f}" for f in spec.raw_files(self.config["datasets"][dataset])]
        # a dataset read in place (ImageNet) has no raw files: SOURCE.json alone says where it is
        out: dict[str, Any] = {"files": files} if files else {}
        out["record"] = f"data/raw/{dataset}/SOURCE.json"
        if spec.extracted:
            out["tree"] = f"data/raw/{dataset}/{TREE}"
        return out

    def dataset_options(self, dataset: str) -> dict[str, Any]:
        """The dataset's config block as its download and prepare rules get it (:data:`LATE_DATASET_KEYS` and the
        dataset's :data:`LATE_KEYS_OF_DATASET` at their defaults left out: the code applies the same defaults)."""
        late = {**LATE_DATASET_KEYS, **LATE_KEYS_OF_DATASET.get(dataset, {})}
        return {key: value for key, value in self.config["datasets"][dataset].items()
                if key not in late or value != late[key]}

    def source_inputs(self, dataset: str) -> list[str]:
        """The user's own files a ``source: path`` download copies: the download rule's inputs.

        So a fixed or replaced original reruns the download (and what reads it)
        by itself; without them the rule has no inputs and a rerun would keep
        using the stale copy in ``data/raw``.  Resolved as the download resolves
        them (:func:`mobopt.datasets.fetch.local_file`); files that do not exist
        are left out, so the download itself says what is missing, and so is a
        file that is one of the download's own outputs (``path`` pointing into
        ``data/raw``).  Any other source: ``[]``.
        """
        options = dataset_registry.get(dataset).resolve_options(self.config["datasets"][dataset])
        if options.get("source") != "path" or not options.get("path"):
            return []
        outputs = {Path(f).absolute() for f in self.raw_outputs(dataset).get("files", [])}
        found: list[str] = []
        for name in dataset_registry.get(dataset).raw_files(options):
            src = fetch.local_file(options, name)
            if src.is_file() and src.absolute() not in outputs and str(src) not in found:
                found.append(str(src))
        return found

    def prepare_workers(self, dataset: str) -> int:
        return self.config["datasets"][dataset].get("workers", 2)

    # ------------------------------------------------------------------ graph optimization and conversion

    def graph_opt_options(self, name: str) -> dict[str, Any]:
        """The graph_opt block, with the experiment's own overrides merged in (schema defaults already set)."""
        return merge(self.config.get("graph_opt", {}), self.experiments[name].get("graph_opt", {}))

    @staticmethod
    def is_graph_opt(variant: str) -> bool:
        return variant_registry.get(variant).graph_opt

    def graph_opt_experiments(self) -> list[str]:
        return [name for name, exp in self.experiments.items() if any(self.is_graph_opt(v) for v in exp["variants"])]

    def convert_inputs(self, experiment: str, variant: str) -> dict[str, Any]:
        """A plain variant converts the trained model; graph_opt_int8 the pruned one plus the step outputs."""
        base: dict[str, Any] = {"data": self.experiment_data(experiment)}
        if not self.is_graph_opt(variant):
            return {**base, "model": f"results/models/{experiment}/model.keras"}
        go = f"results/graph_opt/{experiment}"
        return {**base, "model": f"results/models/{experiment}/pruned.keras",
                "pruning": f"results/models/{experiment}/pruning.json", "float": f"{go}/pruned_float32.tflite",
                "sensitivity": f"{go}/sensitivity.json", "selection": f"{go}/selection.json"}

    def convert_options(self, variant: str) -> dict[str, Any]:
        """The ``convert`` block a variant's conversion reads: ``onnx`` only for the ONNX Runtime variants, so
        editing it (or its schema defaults) leaves the .tflite files alone."""
        options = dict(self.config.get("convert", {}))
        if variant_registry.get(variant).runtime != "onnxruntime":
            options.pop("onnx", None)
        elif "onnx" in options:  # a late key reaches only the variants it changes, and only when set
            options["onnx"] = {k: v for k, v in options["onnx"].items()
                               if k not in LATE_ONNX_KEYS or (v != LATE_ONNX_KEYS[k] and variant != "ort_float32")}
        return options

    def graph_opt_arg(self, experiment: str, variant: str, inputs: dict[str, str]) -> str:
        """The convert command's ``--graph-opt`` argument (empty for a plain variant)."""
        if not self.is_graph_opt(variant):
            return ""
        arg: dict[str, Any] = {k: inputs[k] for k in ("float", "sensitivity", "selection", "pruning")}
        arg["options"] = self.graph_opt_options(experiment)
        return f" --graph-opt {shlex.quote(as_json(arg))}"

    # ------------------------------------------------------------------ evaluation

    @staticmethod
    def model_file(experiment: str, variant: str) -> str:
        """A variant's model file: results/{runtime folder}/{experiment}/{variant}.{tflite|onnx}."""
        spec = variant_registry.get(variant)
        return f"results/{variant_registry.RUNTIMES[spec.runtime]['folder']}/{experiment}/{variant}.{spec.suffix}"

    @staticmethod
    def variant_info(experiment: str, variant: str) -> str:
        """The JSON beside a variant's model file (what conversion or export wrote about it)."""
        return str(Path(Plan.model_file(experiment, variant)).with_suffix(".json"))

    @staticmethod
    def eval_model(experiment: str, variant: str) -> str:
        """What an evaluation reads: the Keras model for ``keras``, else the variant's model file."""
        if variant == "keras":
            return f"results/models/{experiment}/model.keras"
        return Plan.model_file(experiment, variant)

    # ------------------------------------------------------------------ benchmarks

    def bench_inputs(self, experiment: str, device: str) -> dict[str, str]:
        """The experiment's model files by variant name, plus the phone's benchmark tool for `android`."""
        inputs = {v: self.model_file(experiment, v) for v in self.experiments[experiment]["variants"]}
        if device_registry.get(device).kind == "android":
            inputs["binary"] = ANDROID_TOOL
        if device_registry.get(device).kind == "emulated":
            inputs["toolchain"] = ARM_TOOLCHAIN
        return inputs

    def bench_outputs(self, experiment: str) -> dict[str, str]:
        """One result per variant; ``{device}`` stays a wildcard."""
        return {v: f"results/bench/{{device}}/{experiment}/{v}.json" for v in self.experiments[experiment]["variants"]}

    def bench_args(self, experiment: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
        """The bench command's ``--model``/``--out`` pairs (and ``--binary`` for a phone), shell-quoted."""
        args = []
        for v in self.experiments[experiment]["variants"]:
            args += ["--model", f"{v}={inputs[v]}", "--out", f"{v}={outputs[v]}"]
        if "binary" in inputs.keys():
            args += ["--binary", inputs["binary"]]
        if "toolchain" in inputs.keys():
            args += ["--toolchain", inputs["toolchain"]]
        return " ".join(shlex.quote(a) for a in args)

    def bench_options(self, device: str) -> dict[str, Any]:
        """What a benchmark job's result depends on: the protocol keys, plus the phone's settings for `android` and the
        emulation's for an emulated CPU.
        Scheduler settings (benchmark.runtime) and the device list stay out, so editing them reruns nothing."""
        kind = device_registry.get(device).kind
        skip = BENCH_SCHEDULING_KEYS | ({"android", "emulation"} - {{"android": "android", "emulated": "emulation"}.get(kind)})
        return {k: v for k, v in self.bench.items() if k not in skip}

    def bench_runtime(self) -> int:
        """Minutes a benchmark job asks a scheduler for (benchmark.runtime)."""
        return self.bench.get("runtime", BENCH_RUNTIME)

    @staticmethod
    def bench_threads(device: str, cores: int) -> int:
        """Every core of this run, and at least what the device profile pins (a phone: 1 host thread drives adb)."""
        return max(cores, getattr(device_registry.get(device), "threads", 1))

    # ------------------------------------------------------------------ entries for tables and figures

    def bench_entries(self, devices: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Everything Table 2 and the figures read, per (experiment, variant, device)."""
        return [
            {
                "experiment": name, "label": self.label(name), "model_name": self.experiments[name]["model"]["name"],
                "dataset": self.experiments[name]["dataset"], "variant": variant, "device": device,
                **({"paper_dataset": self.experiments[name]["paper_dataset"]}
                   if "paper_dataset" in self.experiments[name] else {}),
                "bench": f"results/bench/{device}/{name}/{variant}.json",
                "tflite_info": self.variant_info(name, variant),
                "eval": f"results/eval/{name}/test/{variant}.json",
            }
            for name, variant in self.runs()
            for device in (self.devices if devices is None else list(devices))
        ]

    def family(self, name: str) -> str:
        """The experiment trained from scratch that ``name`` was made from (pruned or distilled), or itself.

        A distilled student joins its teacher's family only when it is a smaller model of the same
        architecture (compression); a student of another architecture (a ViT taught by a small CNN, as
        in DeiT) is a model of its own, whose variants are judged against its own float32."""
        exp = self.experiments[name]
        parent = (exp.get("structured_pruning") or {}).get("from")
        teacher = (exp.get("distillation") or {}).get("teacher")
        if parent is None and teacher is not None and \
                self.experiments[teacher]["model"].get("name") == exp["model"].get("name"):
            parent = teacher
        return self.family(parent) if parent else name

    def search_options(self, device: str) -> dict[str, Any]:
        """The config's ``search`` block; on an emulated CPU the cost is its instructions per invoke (it has no latency)."""
        options = dict(self.config.get("search", {}))
        if device_registry.get(device).kind == "emulated":
            options["latency_key"] = "instructions_per_invoke"
        return options

    def isa_entries(self) -> list[dict[str, Any]]:
        """What the does-int8-pay table reads: every device's entries, emulated CPUs included."""
        return self.bench_entries([*self.devices, *self.emulated_devices])

    def search_entries(self, device: str) -> list[dict[str, Any]]:
        """One device's benchmark entries, each with its family: the search's candidates."""
        return [{**e, "family": self.family(e["experiment"])} for e in self.bench_entries([device])]

    def eval_entries(self, splits: Iterable[str] = ("test",)) -> list[dict[str, Any]]:
        """Keras reference plus every variant, per experiment and evaluation split (Figs. 2-3: test only)."""
        splits = tuple(splits)
        return [
            {"experiment": name, "label": self.label(name), "variant": variant, "split": split,
             "eval": f"results/eval/{name}/{split}/{variant}.json"}
            for name, exp in self.experiments.items()
            for split in self.eval_splits(name)
            if split in splits
            for variant in ["keras", *exp["variants"]]
        ]

    def model_entries(self) -> list[dict[str, Any]]:
        """Per experiment, what Table 1 reads: the trained model's metrics and the prepared data's meta."""
        return [
            {"experiment": name, "label": self.label(name), "dataset": exp["dataset"], "variants": exp["variants"],
             "metrics": f"results/models/{name}/metrics.json", "meta": f"{self.prepared_dir(exp['dataset'])}/meta.json"}
            for name, exp in self.experiments.items()
        ]

    def cost_entries(self) -> list[dict[str, Any]]:
        """Per experiment, what the cost table reads: the model's cost.json (``mobopt model-cost``) and the float32
        variant's benchmark on each usable device (none when the experiment has no float32 variant)."""
        return [
            {"experiment": name, "label": self.label(name), "dataset": exp["dataset"], "model": exp["model"],
             "cost": f"results/models/{name}/cost.json",
             "bench": ({d: f"results/bench/{d}/{name}/float32.json" for d in self.devices}
                       if "float32" in exp["variants"] else {})}
            for name, exp in self.experiments.items()
        ]

    def cost_table_inputs(self) -> list[str]:
        entries = self.cost_entries()
        return sorted({e["cost"] for e in entries} | {path for e in entries for path in e["bench"].values()})

    def study_experiments(self) -> list[str]:
        """Experiments the second study has a row for (:func:`mobopt.report.study.match`): its architectures trained
        from scratch on its datasets, or on a stand-in that names one as ``study_dataset``."""
        return [name for name, exp in self.experiments.items() if study.matches_experiment(exp)]

    def study_entries(self) -> list[dict[str, Any]]:
        """What the second-study table reads, per (study experiment, variant): the test evaluation, the variant's
        JSON and its benchmark on every usable device, plus the model options and datasets its rows are matched by."""
        out = []
        for name in self.study_experiments():
            exp = self.experiments[name]
            shape = dataset_registry.get(exp["dataset"]).image_shape(self.config["datasets"][exp["dataset"]])
            for variant in exp["variants"]:
                out.append({
                    "experiment": name, "label": self.label(name), "model": exp["model"], "dataset": exp["dataset"],
                    **({"study_dataset": exp["study_dataset"]} if "study_dataset" in exp else {}),
                    "input_shape": "x".join(str(int(d)) for d in shape), "variant": variant,
                    "eval": f"results/eval/{name}/test/{variant}.json",
                    "tflite_info": self.variant_info(name, variant),
                    "bench": {device: f"results/bench/{device}/{name}/{variant}.json" for device in self.devices},
                })
        return out

    @staticmethod
    def study_files(entries: list[dict[str, Any]]) -> list[str]:
        """The files the second-study entries point to (the table rule's inputs)."""
        return sorted({f for e in entries for f in (e["eval"], e["tflite_info"], *e["bench"].values())})

    @staticmethod
    def entry_files(entries: list[dict[str, Any]], keys: Iterable[str]) -> list[str]:
        """The files a list of entries points to (a table rule's inputs)."""
        keys = tuple(keys)
        return sorted({e[k] for e in entries for k in keys})

    # ------------------------------------------------------------------ rule all

    def final_outputs(self) -> list[str]:
        """Every table, figure and the landing page the config asks for."""
        fmt = FIGURE_FORMATS
        figures = [f"reports/figures/training_curves_{name}.{ext}" for name in self.experiments if self.trained(name)
                   for ext in fmt]
        figures += [f"reports/figures/fig{n}_{m}.{ext}" for n, m in ((2, "accuracy"), (3, "loss")) for ext in fmt]
        figures += [f"reports/figures/{kind}_{device}.{ext}" for kind in ("pareto", "search") for device in self.devices
                    for ext in fmt]
        figures += [f"reports/figures/search_{device}.{ext}" for device in self.emulated_devices for ext in fmt]
        # a phone's benchmark_model prints no per-run latencies, so it has no distribution to draw, and no GEMM peak
        figures += [f"reports/figures/{kind}_{device}.{ext}" for kind in ("latency", "roofline")
                    for device in self.host_devices for ext in fmt]
        figures += [f"reports/figures/size.{ext}" for ext in fmt] if self.devices else []
        tables = [f"reports/tables/{t}.{ext}" for t in ("table1", "table2", "table2_paper", "paper_vs_reproduced")
                  for ext in ("csv", "md", "tex")]
        tables += [f"reports/tables/{t}.{ext}" for t in ("accuracy", "op_profile", "variants", "cost") for ext in ("csv", "md")]
        tables += [f"reports/tables/search_{device}.{ext}" for device in [*self.devices, *self.emulated_devices]
                   for ext in ("csv", "md")]
        if self.emulated_devices:
            tables += [f"reports/tables/int8_by_isa.{ext}" for ext in ("csv", "md")]
        if self.study_experiments():
            tables += [f"reports/tables/second_study.{ext}" for ext in ("csv", "md")]
        figures += [f"reports/figures/sensitivity_{name}.{ext}" for name in self.graph_opt_experiments() for ext in fmt]
        return [*tables, *figures, *(["reports/summary.html"] if self.devices else [])]
