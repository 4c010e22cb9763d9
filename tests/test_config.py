"""Config validation and registry checks: every bad input names the key."""

import copy
import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")


def _load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = _load(name)
    validate(cfg, SCHEMA, set_default=True)
    assert cfg["benchmark"]["iterations"] == 1200


def test_defaults_are_filled_in():
    cfg = _load("demo.yaml")
    del cfg["benchmark"]
    validate(cfg, SCHEMA, set_default=True)
    from mobopt.bench.android import ANDROID_DEFAULTS
    from mobopt.bench.protocol import PROTOCOL_DEFAULTS

    bench = cfg["benchmark"]
    assert bench["devices"] == ["host_1t"]
    # the schema's defaults are the package's: a run configured by default measures what the code documents
    assert {k: bench[k] for k in PROTOCOL_DEFAULTS} == PROTOCOL_DEFAULTS
    assert {k: bench["android"][k] for k in ANDROID_DEFAULTS} == ANDROID_DEFAULTS


@pytest.mark.parametrize(
    "edit, key",
    [
        (lambda c: c["experiments"]["vit_mnist"]["train"].update(epoch=3), "epoch"),
        (lambda c: c["experiments"]["vit_mnist"]["model"].update(heads="two"), "two"),
        (lambda c: c["benchmark"].update(iteration=5), "iteration"),
        (lambda c: c.pop("seed"), "seed"),
        (lambda c: c["datasets"]["mnist"].update(source="ftp"), "ftp"),
    ],
)
def test_mistyped_or_missing_keys_are_named(edit, key):
    cfg = copy.deepcopy(_load("config.yaml"))
    edit(cfg)
    with pytest.raises(WorkflowError, match=re.escape(key)):
        validate(cfg, SCHEMA, set_default=True)


def _dry_run(tmp_path, cfg, *targets):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(path), *targets],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["experiments"]["vit_mnist"].update(variants=["float32", "int4"]),
         "config key experiments.vit_mnist.variants: unknown variant 'int4'; known: float32, int8"),
        (lambda c: c["benchmark"].update(devices=["pixel9"]), "config key benchmark.devices: unknown device 'pixel9'"),
        (lambda c: c["experiments"]["vit_mnist"].update(dataset="cifar10"), "unknown dataset 'cifar10'"),
    ],
)
def test_unknown_registry_names_fail_at_start(tmp_path, edit, message):
    cfg = _load("demo.yaml")
    edit(cfg)
    proc = _dry_run(tmp_path, cfg)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout


def test_unknown_experiment_target_is_named(tmp_path):
    proc = _dry_run(tmp_path, _load("demo.yaml"), "results/tflite/resnet_cifar/float32.tflite")
    assert proc.returncode != 0
    assert "results/tflite/resnet_cifar/float32.tflite" in proc.stderr + proc.stdout


def test_configfile_replaces_the_paper_config(tmp_path):
    """A user config must not silently inherit the paper's experiments."""
    cfg = _load("demo.yaml")
    cfg["experiments"] = {"mine": cfg["experiments"]["vit_mnist"]}
    proc = _dry_run(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr
    assert "results/models/mine/model.keras" in proc.stdout
    assert "vit_mnist" not in proc.stdout
