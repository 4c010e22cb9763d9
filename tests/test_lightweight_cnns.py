"""The second study's configs: valid, the published recipe where it is the study as published, the CPU-sized one
scaled down, the Fashion-MNIST overlay swapping only the dataset; every experiment planned with its cost table."""

import pytest
from conftest import REPO

from mobopt.workflow import config as workflow_config
from mobopt.workflow.plan import Plan

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
GPU, CPU, FASHION = (REPO / "config" / f for f in ("lightweight_cnns.yaml", "lightweight_cnns_cpu.yaml",
                                                   "lightweight_cnns_fashion_mnist.yaml"))
STUDY_RECIPE = {"optimizer": "sgd", "learning_rate": 0.01, "lr_schedule": "step", "lr_step_epochs": 10,
                "lr_step_factor": 0.1, "batch_size": 128, "epochs": 100, "warmup_epochs": 0}


def _config(*files):
    cfg, sources = workflow_config.compose(list(files), REPO / "config/config.yaml")
    assert workflow_config.problems(cfg, SCHEMA, sources) == []
    return cfg


def _models(cfg):
    return {name: exp["model"] for name, exp in cfg["experiments"].items()}


@pytest.mark.parametrize("files", [(GPU,), (CPU,), (CPU, FASHION)], ids=["gpu", "cpu", "cpu+fashion_mnist"])
def test_valid_standalone_and_every_experiment_planned(files):
    cfg = _config(*files)
    assert workflow_config.replaces_workflow_config(cfg)
    assert len(cfg["experiments"]) == 4 and "vit_mnist" not in cfg["experiments"]
    plan = Plan(cfg, availability=lambda device, options: (True, ""))
    assert plan.devices == ["host_1t", "host_2t"]
    outputs = plan.final_outputs()
    assert "reports/tables/cost.csv" in outputs and "reports/tables/cost.md" in outputs
    inputs = plan.cost_table_inputs()
    for name in cfg["experiments"]:
        assert f"results/models/{name}/cost.json" in inputs
        assert {f"results/bench/{d}/{name}/float32.json" for d in plan.devices} <= set(inputs)
        assert plan.train_spec(name)["train"]["optimizer"] == "sgd"
        assert set(cfg["experiments"][name]["variants"]) >= {"float32", "int8", "dynamic_int8", "float16"}


def test_the_study_as_published():
    cfg = _config(GPU)
    for exp in cfg["experiments"].values():
        assert {k: exp["train"][k] for k in STUDY_RECIPE} == STUDY_RECIPE
        assert exp["dataset"] == "cifar10" and exp["train"]["weight_decay"] == 0
    models = _models(cfg)
    assert models["shufflenetv2_cifar10"]["width"] == 1.0
    assert models["mobilenetv2_cifar10"] == {**models["mobilenetv2_standard_conv_cifar10"], "depthwise_separable": True}
    assert models["mobilenetv2_cifar10"]["alpha"] == 1.0 and models["mobilenetv2_cifar10"]["weights"] == "none"
    assert models["shufflenetv2_no_shuffle_cifar10"]["channel_shuffle"] is False


def test_the_cpu_sized_study_scales_widths_and_schedule():
    cfg = _config(CPU)
    for exp in cfg["experiments"].values():
        train = exp["train"]
        assert (train["optimizer"], train["learning_rate"], train["lr_schedule"]) == ("sgd", 0.01, "step")
        assert train["epochs"] < 10 and train["lr_step_epochs"] < train["epochs"]
    models = _models(cfg)
    assert models["shufflenetv2"]["width"] == 0.5 and models["mobilenetv2"]["alpha"] == 0.5
    assert models["mobilenetv2_standard_conv"]["depthwise_separable"] is False
    assert models["shufflenetv2_no_shuffle"]["channel_shuffle"] is False


def test_the_fashion_mnist_overlay_swaps_only_the_dataset():
    cpu, both = _config(CPU), _config(CPU, FASHION)
    assert both["datasets"]["fashion_mnist"]["image_size"] == 32 and both["datasets"]["fashion_mnist"]["channels"] == 3
    for name, exp in both["experiments"].items():
        assert exp["dataset"] == "fashion_mnist" and exp["study_dataset"] == "cifar10"
        assert exp["model"] == cpu["experiments"][name]["model"] and exp["train"] == cpu["experiments"][name]["train"]
        assert exp["variants"] == cpu["experiments"][name]["variants"]
    plan = Plan(both, availability=lambda device, options: (True, ""))
    assert plan.used_datasets == ["fashion_mnist"]  # CIFAR-10 stays in `datasets` but nothing downloads it
    assert not FASHION.read_text().count("replace_workflow_config")


def test_the_imagenet_rows_as_a_gpu_cluster_config():
    cfg = _config(REPO / "config/lightweight_cnns_imagenet.yaml")
    assert workflow_config.replaces_workflow_config(cfg)
    assert cfg["datasets"]["imagenet"]["source"] == "path"
    models = _models(cfg)
    assert models == {"shufflenetv2_imagenet": {"name": "shufflenetv2", "width": 1.0, "stem": "imagenet",
                                                "channel_shuffle": True, "dropout": models["shufflenetv2_imagenet"]["dropout"]},
                      "mobilenetv2_imagenet": models["mobilenetv2_imagenet"]}
    assert models["mobilenetv2_imagenet"]["weights"] in ("none", None) and models["mobilenetv2_imagenet"]["stem"] == "imagenet"
    for exp in cfg["experiments"].values():
        assert exp["dataset"] == "imagenet" and exp["resources"]["gpus"] == 1
        assert {k: exp["train"][k] for k in STUDY_RECIPE} == STUDY_RECIPE
    plan = Plan(cfg, availability=lambda device, options: (True, ""))
    assert "reports/tables/second_study.md" in plan.final_outputs()
