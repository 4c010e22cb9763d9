"""The workflow's plan (src/mobopt/workflow/plan.py): what the rule modules compute, tested without Snakemake,
and the config schema's defaults checked against the code's, so the two cannot drift."""

import copy
import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from mobopt import datasets
from mobopt.workflow import plan as workflow_plan
from mobopt.workflow.plan import Plan

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def _config(name="demo"):
    """A config file with the schema's defaults set, as Snakemake hands it to the rules."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / f"config/{name}.yaml").read_text())
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return cfg


def test_demo_plan_lists_every_output_of_the_demo():
    plan = Plan(_config())
    assert plan.used_datasets == ["mnist"] and plan.devices == ["host_1t"] == plan.host_devices
    assert plan.runs() == [("vit_mnist", v) for v in ("float32", "int8", "dynamic_int8", "graph_opt_int8")]
    finals = plan.final_outputs()
    assert "reports/summary.html" in finals and "reports/figures/sensitivity_vit_mnist.svg" in finals
    assert "reports/figures/roofline_host_1t.png" in finals and "reports/tables/table2.tex" in finals
    assert len(finals) == len(set(finals))
    assert plan.prepared_files("mnist")[0] == "data/prepared/mnist/meta.json"
    assert "data/prepared/mnist/val_y.npy" in plan.prepared_files("mnist")
    assert plan.raw_outputs("mnist")["record"] == "data/raw/mnist/SOURCE.json" and "tree" not in plan.raw_outputs("mnist")


def test_paper_plan_extracts_archives_and_fetches_weights():
    plan = Plan(_config("config"))
    assert plan.raw_outputs("asl_alphabet")["tree"] == "data/raw/asl_alphabet/tree"
    weights = plan.weight_files("mobilenetv2_asl")
    assert weights and all(f.startswith("data/weights/") for f in weights)
    assert not plan.trained("mobilenetv2_imagenet") and plan.trained("vit_mnist")
    assert "official_test" in plan.eval_split_names
    assert "reports/figures/training_curves_mobilenetv2_imagenet.png" not in plan.final_outputs()


def test_a_path_source_makes_the_users_files_inputs_of_the_download(tmp_path, monkeypatch, digits_idx):
    """Fixing a file in the user's folder must rerun the download: those files are its inputs (none for a URL)."""
    monkeypatch.chdir(tmp_path)  # relative paths are the workdir's, as in a Snakemake job
    cfg = _config()
    names = [f"{digits_idx}/{name}" for name in datasets.DATASETS["mnist"].raw_files({})]
    cfg["datasets"]["mnist"]["path"] = str(digits_idx)
    assert Plan(cfg).source_inputs("mnist") == names
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"x")
    cfg["datasets"]["mnist"]["path"] = "partial"  # what is missing is left to the download's own message
    assert Plan(cfg).source_inputs("mnist") == ["partial/t10k-labels-idx1-ubyte.gz"]
    cfg["datasets"]["mnist"]["path"] = "data/raw/mnist"  # the download's own outputs are never its inputs
    (tmp_path / "data/raw/mnist").mkdir(parents=True)
    (tmp_path / "data/raw/mnist/t10k-labels-idx1-ubyte.gz").write_bytes(b"x")
    assert Plan(cfg).source_inputs("mnist") == []
    cfg["datasets"]["mnist"]["path"] = "nowhere"
    assert Plan(cfg).source_inputs("mnist") == []
    cfg["datasets"]["mnist"].update(source="url", path=str(digits_idx))
    assert Plan(cfg).source_inputs("mnist") == []

    paper = _config("config")  # a file given as `path`: that file, for a one-file dataset
    (tmp_path / "Downloads").mkdir()
    (tmp_path / "Downloads" / "asl.zip").write_bytes(b"PK")
    paper["datasets"]["asl_alphabet"].update(source="path", path="~/Downloads/asl.zip")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Plan(paper).source_inputs("asl_alphabet") == [str(tmp_path / "Downloads" / "asl.zip")]
    assert Plan(paper).source_inputs("imagenet_subset") == []


def test_keys_added_later_reach_the_rules_only_when_set():
    """Their schema defaults must not change the rules' params (which would rerun every user's data jobs)."""
    cfg = _config()
    plan = Plan(cfg)
    options = plan.dataset_options("mnist")
    assert cfg["datasets"]["mnist"]["min_rate"] == 1024  # the schema filled it in
    assert not set(options) & set(workflow_plan.LATE_DATASET_KEYS)
    assert options == {k: v for k, v in cfg["datasets"]["mnist"].items() if k not in workflow_plan.LATE_DATASET_KEYS}
    cfg["datasets"]["mnist"]["min_rate"] = 0
    assert Plan(cfg).dataset_options("mnist")["min_rate"] == 0
    paper = Plan(_config("config")).dataset_options("asl_alphabet")
    assert "max_image_pixels" not in paper and "max_member_bytes" not in paper and paper["image_size"] == 224


def test_fashion_mnist_shape_keys_at_their_defaults_leave_the_rules_as_they_were():
    """image_size/channels of Fashion-MNIST are late keys of that dataset only: ASL's image_size 28 must stay."""
    cfg = _config("fashion_mnist")
    assert cfg["datasets"]["fashion_mnist"]["image_size"] == 28 and cfg["datasets"]["fashion_mnist"]["channels"] == 1
    options = Plan(cfg).dataset_options("fashion_mnist")
    assert "image_size" not in options and "channels" not in options
    cfg["datasets"]["fashion_mnist"].update(image_size=32, channels=3)
    plan = Plan(cfg)
    assert plan.dataset_options("fashion_mnist")["image_size"] == 32 and plan.dataset_options("fashion_mnist")["channels"] == 3
    assert datasets.get("fashion_mnist").image_shape(cfg["datasets"]["fashion_mnist"]) == (32, 32, 3)
    paper = _config("config")
    paper["datasets"]["asl_alphabet"]["image_size"] = 28
    assert Plan(paper).dataset_options("asl_alphabet")["image_size"] == 28


def test_a_dataset_read_in_place_has_only_its_record_as_download_output(tmp_path):
    cfg = _config("fashion_mnist")
    cfg["datasets"]["imagenet"] = {"source": "path", "path": str(tmp_path)}
    for name in ("cnn_fashion_mnist", "vit_fashion_mnist"):  # the ViT's teacher: the same dataset
        cfg["experiments"][name]["dataset"] = "imagenet"
    plan = Plan(cfg)
    assert plan.raw_outputs("imagenet") == {"record": "data/raw/imagenet/SOURCE.json"}
    assert plan.source_inputs("imagenet") == [] and "data/prepared/imagenet/test_x.npy" in plan.prepared_files("imagenet")


def test_convert_inputs_and_the_graph_opt_argument():
    plan = Plan(_config())
    plain = plan.convert_inputs("vit_mnist", "int8")
    assert plain["model"] == "results/models/vit_mnist/model.keras" and set(plain) == {"data", "model"}
    assert plan.graph_opt_arg("vit_mnist", "int8", plain) == ""
    go = plan.convert_inputs("vit_mnist", "graph_opt_int8")
    assert go["model"] == "results/models/vit_mnist/pruned.keras" and go["selection"].endswith("selection.json")
    arg = plan.graph_opt_arg("vit_mnist", "graph_opt_int8", go)
    assert arg.startswith(" --graph-opt '") and '"accuracy_budget_pp": 1.5' in arg
    assert plan.eval_model("vit_mnist", "keras") == "results/models/vit_mnist/model.keras"
    assert plan.eval_model("vit_mnist", "int8") == "results/tflite/vit_mnist/int8.tflite"


def test_per_experiment_graph_opt_overrides_merge_key_by_key():
    cfg = _config()
    cfg["experiments"]["vit_mnist"]["graph_opt"] = {"pruning": {"sparsity": 0.5}}
    opts = Plan(cfg).graph_opt_options("vit_mnist")
    assert opts["pruning"]["sparsity"] == 0.5 and opts["pruning"]["epochs"] == 6  # the rest of the block stays
    assert workflow_plan.merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4}) == {"a": {"b": 1, "c": 3}, "d": 4}


def test_benchmark_options_leave_out_what_only_schedules():
    cfg = _config()
    cfg["benchmark"]["runtime"] = 240
    plan = Plan(cfg)
    assert plan.bench_runtime() == 240
    opts = plan.bench_options("host_1t")
    assert "runtime" not in opts and "devices" not in opts and "android" not in opts and opts["iterations"] == 1200
    inputs = plan.bench_inputs("vit_mnist", "host_1t")
    args = plan.bench_args("vit_mnist", inputs, {v: f"out/{v}.json" for v in inputs})
    assert args.startswith("--model float32=results/tflite/vit_mnist/float32.tflite --out float32=out/float32.json")
    assert plan.bench_threads("host_1t", 8) == 8 and plan.bench_threads("android", 1) >= 1


def test_an_absent_phone_is_skipped_with_the_reason():
    cfg = _config()
    cfg["benchmark"]["devices"] = ["host_1t", "android"]
    plan = Plan(cfg, availability=lambda device, options: (False, "no phone attached over adb"))
    assert plan.devices == ["host_1t"] and plan.warnings == ["benchmark.devices: no phone attached over adb"]
    phone = Plan(cfg, availability=lambda device, options: (True, ""))
    assert phone.devices == ["host_1t", "android"] and phone.host_devices == ["host_1t"]
    assert phone.bench_inputs("vit_mnist", "android")["binary"] == workflow_plan.ANDROID_TOOL
    assert "reports/figures/pareto_android.png" in phone.final_outputs()
    assert "reports/figures/latency_android.png" not in phone.final_outputs()


def test_a_kaggle_download_without_credentials_is_warned_about_at_the_dry_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _config("config")
    bare = {"HOME": str(tmp_path)}  # no KAGGLE_* variables, no ~/.kaggle
    (warning,) = Plan(cfg, env=bare).warnings
    assert warning.startswith("datasets.asl_alphabet: source is kaggle but no Kaggle credentials are set")
    assert "download_asl_alphabet will fail" in warning and "source: path" in warning and "\n" not in warning
    assert Plan(cfg, env={**bare, "KAGGLE_USERNAME": "me", "KAGGLE_KEY": "k"}).warnings == []
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle/kaggle.json").write_text("{}")
    assert Plan(cfg, env=bare).warnings == []
    (tmp_path / ".kaggle/kaggle.json").unlink()
    record = tmp_path / Plan(cfg, env=bare).raw_outputs("asl_alphabet")["record"]
    record.parent.mkdir(parents=True)
    record.write_text("{}")
    assert Plan(cfg, env=bare).warnings == []  # downloaded already: the download will not run
    cfg["datasets"]["asl_alphabet"]["source"] = "path"
    record.unlink()
    assert Plan(cfg, env=bare).warnings == []
    assert Plan(_config(), env=bare).warnings == []  # the demo uses no Kaggle data


@pytest.mark.parametrize(("path", "value", "words"), [
    (("benchmark", "devices"), ["host_9t"], "config key benchmark.devices: unknown device 'host_9t'"),
    (("experiments", "vit_mnist", "dataset"), "cifar", "config key experiments.vit_mnist.dataset: unknown dataset 'cifar'"),
    (("experiments", "vit_mnist", "variants"), ["int4"], "config key experiments.vit_mnist.variants: unknown variant 'int4'"),
    (("experiments", "vit_mnist", "dataset"), "asl_alphabet", "datasets.asl_alphabet is missing"),
])
def test_registry_names_are_checked_with_the_key(path, value, words):
    cfg = _config()
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(workflow_plan.ConfigError, match=words.replace("(", r"\(").replace(".", r"\.")):
        Plan(cfg)


def test_entries_point_into_the_results_layout():
    plan = Plan(_config())
    bench = plan.bench_entries()
    assert len(bench) == 4 and bench[0]["bench"] == "results/bench/host_1t/vit_mnist/float32.json"
    assert bench[0]["tflite_info"] == "results/tflite/vit_mnist/float32.json"
    assert bench[0]["label"] == "ViT + digits (demo)" and bench[0]["model_name"] == "vit"
    evals = plan.eval_entries()
    assert [e["variant"] for e in evals] == ["keras", "float32", "int8", "dynamic_int8", "graph_opt_int8"]
    assert plan.model_entries()[0]["meta"] == "data/prepared/mnist/meta.json"
    assert plan.entry_files(bench, ("bench",)) == sorted(e["bench"] for e in bench)


def test_the_config_hash_changes_with_the_config():
    cfg = _config()
    other = copy.deepcopy(cfg)
    other["seed"] = 2
    assert Plan(cfg).config_sha256 != Plan(other).config_sha256 == Plan(copy.deepcopy(other)).config_sha256


def test_the_plan_imports_no_tensorflow():
    import subprocess

    code = "import sys, mobopt.workflow.plan; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120).returncode == 0


# ------------------------------------------------------------------ one place for each default

def _schema_defaults(node: dict) -> dict:
    """``{key: default}`` of an object schema's properties (a $ref'd definition followed)."""
    if "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    out = {}
    for part in [node, *node.get("allOf", [])]:
        if "$ref" in part:
            out.update(_schema_defaults(part))
        for key, prop in part.get("properties", {}).items():
            if "default" in prop:  # an object's default {} is filled from its properties' defaults
                out[key] = {**prop["default"], **_schema_defaults(prop)} if "properties" in prop else prop["default"]
    return out


def _code_defaults():
    from mobopt.bench import android, measurement, protocol
    from mobopt.common import download
    from mobopt.datasets import archives, fashion_mnist, imagenet, images
    from mobopt.models import distill
    from mobopt.optimize import convert, graphopt, mixed_precision, onnx_export, pruning, structured
    from mobopt.report import search

    props = SCHEMA["properties"]
    ds = props["datasets"]["properties"]
    defs = SCHEMA["$defs"]
    exp = props["experiments"]["additionalProperties"]["properties"]
    go = props["graph_opt"]["properties"]
    return [
        ("experiments.<name>.resources", _schema_defaults(exp["resources"]), workflow_plan.CLUSTER_REQUEST),
        ("convert", _schema_defaults(props["convert"]), convert.CONVERT_DEFAULTS),
        ("convert.onnx", _schema_defaults(props["convert"]["properties"]["onnx"]), onnx_export.ONNX_DEFAULTS),
        ("graph_opt.pruning", _schema_defaults(go["pruning"]), pruning.PRUNING_DEFAULTS),
        ("graph_opt.mixed_precision", _schema_defaults(go["mixed_precision"]), mixed_precision.MIXED_DEFAULTS),
        ("graph_opt.reorder", _schema_defaults(go["reorder"]), graphopt.REORDER_DEFAULTS),
        ("graph_opt.fusion", _schema_defaults(go["fusion"]), graphopt.FUSION_DEFAULTS),
        ("benchmark", _schema_defaults(props["benchmark"]), {**measurement.BENCH_DEFAULTS, **protocol.PROTOCOL_DEFAULTS,
                                                             "runtime": workflow_plan.BENCH_RUNTIME}),
        ("benchmark.android", _schema_defaults(props["benchmark"]["properties"]["android"]), android.ANDROID_DEFAULTS),
        ("datasets.<name> ($defs.fetch)", _schema_defaults(defs["fetch"]), download.FETCH_DEFAULTS),
        ("datasets.<name> ($defs.archive)", _schema_defaults(defs["archive"]), archives.EXTRACT_DEFAULTS),
        ("datasets.<name> ($defs.images)", _schema_defaults(defs["images"]), images.IMAGE_DEFAULTS),
        ("datasets.fashion_mnist", _schema_defaults(ds["fashion_mnist"]), fashion_mnist.SHAPE_DEFAULTS),
        ("datasets.imagenet", _schema_defaults(ds["imagenet"]), imagenet.IMAGENET_DEFAULTS),
        ("experiments.<name>.structured_pruning", _schema_defaults(exp["structured_pruning"]),
         structured.STRUCTURED_DEFAULTS),
        ("experiments.<name>.distillation", _schema_defaults(exp["distillation"]), distill.DISTILL_DEFAULTS),
        ("search", _schema_defaults(props["search"]), search.SEARCH_DEFAULTS),
    ]


@pytest.mark.parametrize("index", range(17))
def test_schema_defaults_equal_the_code_defaults(index):
    """The schema documents every key the code defaults, with the same value (the code is the one source)."""
    where, schema, code = _code_defaults()[index]
    for key in set(schema) & set(code):
        assert schema[key] == code[key], f"{where}.{key}: schema default {schema[key]!r}, code default {code[key]!r}"
    missing = set(code) - set(schema) - {"seed"}
    assert not missing, f"{where}: the code defaults {sorted(missing)} but the schema gives no default"


def test_model_and_training_defaults_equal_the_schema():
    from mobopt.models import train

    exp = SCHEMA["properties"]["experiments"]["additionalProperties"]["properties"]
    schema_train = _schema_defaults(exp["train"])
    for key in set(schema_train) & set(train.TRAIN_DEFAULTS):
        assert schema_train[key] == train.TRAIN_DEFAULTS[key], f"experiments.<name>.train.{key}"
    assert Path(workflow_plan.__file__).name == "plan.py"
    assert workflow_plan.DEFAULT_EPOCHS == schema_train["epochs"]


def test_new_training_keys_at_their_defaults_do_not_retrain_existing_models():
    from mobopt.models import train

    cfg = _config()
    spec = Plan(cfg).train_spec("vit_mnist")["train"]
    assert "jit_compile" not in spec and "precision" not in spec and spec["epochs"] == 30
    assert not set(workflow_plan.LATE_TRAIN_KEYS) & set(spec)  # optimizer, lr_schedule, ... at their defaults
    assert all(train.TRAIN_DEFAULTS[k] == v for k, v in workflow_plan.LATE_TRAIN_KEYS.items())
    cfg["experiments"]["vit_mnist"]["train"]["jit_compile"] = True
    assert Plan(cfg).train_spec("vit_mnist")["train"]["jit_compile"] is True


def _with_pruned(cfg, **structured):
    from snakemake.utils import validate

    cfg["experiments"]["vit_small"] = {"variants": ["float32"], "train": {"epochs": 2},
                                       "structured_pruning": {"from": "vit_mnist", **structured}}
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return cfg


def test_a_pruned_experiment_takes_its_sources_dataset_and_model():
    cfg = _with_pruned(_config(), mlp=0.25)
    plan = Plan(cfg)
    assert plan.experiments["vit_small"]["dataset"] == "mnist"
    assert plan.experiments["vit_small"]["model"] == plan.experiments["vit_mnist"]["model"]
    assert plan.source_model("vit_small") == ["results/models/vit_mnist/model.keras"]
    assert plan.source_model("vit_mnist") == []
    spec = plan.train_spec("vit_small")
    assert spec["structured_pruning"] == {"mlp": 0.25, "heads": 0.0, "blocks": 0, "importance": "activation",
                                          "calibration_samples": 1024}
    assert "structured_pruning" not in plan.train_spec("vit_mnist")
    assert ("vit_small", "float32") in plan.runs()
    assert plan.family("vit_small") == plan.family("vit_mnist") == "vit_mnist"
    assert {e["family"] for e in plan.search_entries("host_1t")} == {"vit_mnist"}
    assert "reports/tables/search_host_1t.md" in plan.final_outputs()


@pytest.mark.parametrize("change, words", [
    (lambda c: c["experiments"]["vit_small"]["structured_pruning"].update({"from": "nope"}),
     "experiments.vit_small.structured_pruning.from: unknown experiment 'nope'"),
    (lambda c: c["experiments"]["vit_small"]["structured_pruning"].update({"from": "vit_small"}),
     "experiments.vit_small.structured_pruning.from: 'vit_small' leads back to 'vit_small'"),
    (lambda c: c["experiments"]["vit_small"].update({"dataset": "fashion_mnist"}),
     "experiments.vit_small.dataset differs from experiments.vit_mnist.dataset"),
    (lambda c: c["experiments"]["vit_mnist"].pop("model"), "experiments.vit_mnist.model is missing"),
])
def test_bad_pruning_sources_name_the_key(change, words):
    cfg = _with_pruned(_config())
    change(cfg)
    with pytest.raises(workflow_plan.ConfigError, match=re.escape(words)):
        Plan(cfg)


def test_a_cnn_is_pruned_by_channels_and_a_vit_by_its_units():
    cfg = _config("config")
    cfg["experiments"]["small"] = {"variants": ["float32"], "structured_pruning": {"from": "mobilenetv2_asl"}}
    with pytest.raises(workflow_plan.ConfigError, match="experiments.small.structured_pruning.channels 0.0 must be above "
                                                        "0 and below 1 for a mobilenetv2"):
        Plan(cfg)
    cfg["experiments"]["small"]["structured_pruning"]["channels"] = 0.5
    assert Plan(cfg).train_spec("small")["structured_pruning"]["channels"] == 0.5
    cfg["experiments"]["small"]["structured_pruning"] = {"from": "vit_mnist", "channels": 0.5}
    with pytest.raises(workflow_plan.ConfigError, match="channels applies to MobileNetV2 and ShuffleNetV2"):
        Plan(cfg)


def test_a_distilled_student_takes_its_teachers_dataset_and_names_its_model():
    from snakemake.utils import validate

    cfg = _config()
    student = {"name": "vit", "dim": 32, "depth": 2, "heads": 2, "mlp_dim": 64}
    cfg["experiments"]["vit_student"] = {"model": student, "variants": ["float32"],
                                         "distillation": {"teacher": "vit_mnist", "temperature": 2.0}}
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    plan = Plan(cfg)
    assert plan.experiments["vit_student"]["dataset"] == "mnist"
    assert plan.teacher_model("vit_student") == ["results/models/vit_mnist/model.keras"]
    assert plan.teacher_model("vit_mnist") == [] and plan.source_model("vit_student") == []
    assert plan.train_spec("vit_student")["distillation"] == {"temperature": 2.0, "alpha": 0.5}
    cfg["experiments"]["vit_mnist"]["distillation"] = {"teacher": "vit_student"}
    with pytest.raises(workflow_plan.ConfigError, match="leads back to"):
        Plan(cfg)
    del cfg["experiments"]["vit_mnist"]["distillation"]
    del cfg["experiments"]["vit_student"]["model"]
    with pytest.raises(workflow_plan.ConfigError, match="experiments.vit_student.model is missing"):
        Plan(cfg)


def test_a_student_of_the_same_architecture_joins_its_teachers_family_and_another_one_has_its_own():
    """Distillation as compression (a smaller ViT taught by the ViT) stays in the teacher's family, so the
    search judges it against the teacher's float32; a ViT taught by a small CNN (config/fashion_mnist.yaml)
    is its own model, judged against its own float32, and what is pruned from it stays in its family."""
    from snakemake.utils import validate

    cfg = _config("fashion_mnist")
    plan = Plan(cfg)
    assert plan.teacher_model("vit_fashion_mnist") == ["results/models/cnn_fashion_mnist/model.keras"]
    assert plan.family("vit_fashion_mnist") == "vit_fashion_mnist"
    assert plan.family("cnn_fashion_mnist") == "cnn_fashion_mnist"
    cfg = _config("fashion_mnist")
    cfg["experiments"]["vit_small"] = {"model": {"name": "vit", "dim": 32, "depth": 2, "mlp_dim": 64},
                                       "variants": ["float32"], "distillation": {"teacher": "vit_fashion_mnist"}}
    cfg["experiments"]["vit_slim"] = {"variants": ["float32"], "structured_pruning": {"from": "vit_fashion_mnist"}}
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    plan = Plan(cfg)
    assert plan.family("vit_small") == plan.family("vit_slim") == "vit_fashion_mnist"
    assert {e["experiment"]: e["family"] for e in plan.search_entries("host_1t")} == {
        "cnn_fashion_mnist": "cnn_fashion_mnist", "vit_fashion_mnist": "vit_fashion_mnist",
        "vit_small": "vit_fashion_mnist", "vit_slim": "vit_fashion_mnist"}


def test_emulated_cpus_count_beside_the_timed_devices_and_are_skipped_without_qemu():
    cfg = _config()
    cfg["benchmark"]["devices"] = ["host_1t", "arm_a53", "arm_a76"]
    plan = Plan(cfg, availability=lambda device, options: (True, ""))
    assert plan.devices == ["host_1t"] and plan.emulated_devices == ["arm_a53", "arm_a76"]
    final = plan.final_outputs()
    assert "reports/tables/int8_by_isa.md" in final and "reports/tables/search_arm_a76.md" in final
    assert "reports/figures/pareto_arm_a53.png" not in final  # no latency to draw
    assert plan.bench_inputs("vit_mnist", "arm_a53")["toolchain"] == "data/tools/arm/toolchain.json"
    assert "emulation" in plan.bench_options("arm_a53") and "emulation" not in plan.bench_options("host_1t")
    assert plan.search_options("arm_a53")["latency_key"] == "instructions_per_invoke"
    assert {e["device"] for e in plan.isa_entries()} == {"host_1t", "arm_a53", "arm_a76"}
    none = Plan(cfg, availability=lambda device, options: (False, f"device {device}: qemu-aarch64 is not installed"))
    assert none.emulated_devices == [] and "reports/tables/int8_by_isa.md" not in none.final_outputs()
    assert any("arm_a53: qemu-aarch64 is not installed" in w for w in none.warnings)


def test_onnx_runtime_variants_live_under_results_onnx_and_read_only_their_options():
    cfg = _config()
    cfg["convert"]["onnx"] = {"opset": 17, "per_channel": False}
    plan = Plan(cfg)
    assert plan.model_file("vit_mnist", "ort_int8") == "results/onnx/vit_mnist/ort_int8.onnx"
    assert plan.variant_info("vit_mnist", "ort_int8") == "results/onnx/vit_mnist/ort_int8.json"
    assert plan.model_file("vit_mnist", "int8") == "results/tflite/vit_mnist/int8.tflite"
    assert "onnx" in plan.convert_options("ort_int8") and "onnx" not in plan.convert_options("int8")
    # reduce_range, added after ONNX results existed: absent at its default, and never in ort_float32's params
    cfg["convert"]["onnx"]["reduce_range"] = False
    assert "reduce_range" not in Plan(cfg).convert_options("ort_int8")["onnx"]
    cfg["convert"]["onnx"]["reduce_range"] = True
    plan = Plan(cfg)
    assert plan.convert_options("ort_int8")["onnx"]["reduce_range"] is True
    assert plan.convert_options("ort_dynamic_int8")["onnx"]["reduce_range"] is True
    assert "reduce_range" not in plan.convert_options("ort_float32")["onnx"]
