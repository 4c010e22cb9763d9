"""Config files, overlays and validation: every bad input is one line naming the file and the key."""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from mobopt.cli import main
from mobopt.workflow import config as workflow_config

SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
#: Lines Snakemake prints before any of ours (the profile, the overlay) and after (the traceback's frames).
NOISE = re.compile(r"^(Using workflow specific profile|Config file .* is extended|  File \"|\s*$)")


def _load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


def _paper():
    return _load("config.yaml")


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = _load(name)
    assert workflow_config.problems(cfg, SCHEMA) == []
    assert cfg["benchmark"]["iterations"] == 1200


def test_defaults_are_filled_in():
    cfg = _load("demo.yaml")
    del cfg["benchmark"]
    assert workflow_config.problems(cfg, SCHEMA) == []
    from mobopt.bench.android import ANDROID_DEFAULTS
    from mobopt.bench.protocol import PROTOCOL_DEFAULTS

    bench = cfg["benchmark"]
    assert bench["devices"] == ["host_1t"]
    # the schema's defaults are the package's: a run configured by default measures what the code documents
    assert {k: bench[k] for k in PROTOCOL_DEFAULTS} == PROTOCOL_DEFAULTS
    assert {k: bench["android"][k] for k in ANDROID_DEFAULTS} == ANDROID_DEFAULTS


def test_defaults_are_those_snakemake_sets():
    """Our validator fills in exactly what snakemake.utils.validate(set_default=True) does."""
    from snakemake.utils import validate

    ours, theirs = _paper(), _paper()
    assert workflow_config.problems(ours, SCHEMA) == []
    validate(theirs, SCHEMA, set_default=True)
    assert ours == theirs


@pytest.mark.parametrize(
    "edit, line",
    [
        (lambda c: c["experiments"]["vit_mnist"]["train"].update(epoch=3),
         "config key experiments.vit_mnist.train.epoch: unknown key; did you mean 'epochs'?"),
        (lambda c: c["experiments"]["vit_mnist"].update(trian={}),
         "config key experiments.vit_mnist.trian: unknown key; did you mean 'train'?"),
        (lambda c: c["experiments"]["vit_mnist"]["model"].update(heads="two"),
         "config key experiments.vit_mnist.model.heads: 'two' is not of type integer"),
        (lambda c: c["experiments"]["vit_mnist"]["train"].update(epochs="25"),
         "config key experiments.vit_mnist.train.epochs: '25' is not of type integer (remove the quotes around it)"),
        (lambda c: c["experiments"]["vit_mnist"]["train"].update(epochs=-1),
         "config key experiments.vit_mnist.train.epochs: -1 is less than the minimum of 0"),
        (lambda c: c["benchmark"].update(iteration=5), "config key benchmark.iteration: unknown key; did you mean 'iterations'?"),
        (lambda c: c.pop("seed"), "config key seed: missing; this key is required"),
        (lambda c: c["datasets"]["mnist"].update(source="ftp"),
         "config key datasets.mnist.source: 'ftp' is not one of url, path"),
        (lambda c: c["experiments"]["vit_mnist"]["graph_opt"].update(pruning={"sparsty": 0.5}),
         "config key experiments.vit_mnist.graph_opt.pruning.sparsty: unknown key; did you mean 'sparsity'?"),
    ],
)
def test_each_problem_is_one_line_with_the_key_path(edit, line):
    cfg = copy.deepcopy(_paper())
    cfg["experiments"]["vit_mnist"].setdefault("graph_opt", {})
    edit(cfg)
    assert workflow_config.problems(cfg, SCHEMA) == [line]


def test_every_problem_is_reported_and_a_branch_error_does_not_cascade():
    cfg = _paper()
    cfg["experiments"]["vit_mnist"]["model"].update(heads="two", foo=1)  # the vit branch fails: its keys stay known
    cfg["seed"] = -1
    assert workflow_config.problems(cfg, SCHEMA) == [
        "config key experiments.vit_mnist.model.foo: unknown key; known: name, patch_size, dim, depth, heads, mlp_dim, "
        "head_hidden, dropout, class_token, layer_norm_epsilon, key_dim",
        "config key experiments.vit_mnist.model.heads: 'two' is not of type integer",
        "config key seed: -1 is less than the minimum of 0",
    ]


def test_problems_name_the_file_the_key_came_from(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("experiments:\n  vit_mnist:\n    train: {epochs: -1}\n")
    cfg, files = workflow_config.compose([mine], REPO / "config/config.yaml")
    assert files == [str(REPO / "config/config.yaml"), str(mine)]
    (line,) = workflow_config.problems(cfg, SCHEMA, files)
    assert line.endswith(f"{mine.name}: config key experiments.vit_mnist.train.epochs: -1 is less than the minimum of 0")


# ------------------------------------------------------------------ through Snakemake


def _snakemake(workdir, *args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         *args], capture_output=True, text=True, timeout=300, env=env)


def _dry_run(tmp_path, cfg, *targets):
    """A dry run that lists every job's block (the profile's quiet: [rules] hides them)."""
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return _snakemake(tmp_path, "--quiet", "host", *targets, "--configfile", str(path))


def _error_text(proc) -> list[str]:
    return [line for line in (proc.stdout + proc.stderr).splitlines() if not NOISE.match(line)]


@pytest.mark.parametrize(
    "overlay, line",
    [
        ({"experiments": {"vit_mnist": {"modle": {"name": "vit"}}}},
         "config key experiments.vit_mnist.modle: unknown key; did you mean 'model'?"),
        ({"benchmark": {"iteration": 10}}, "config key benchmark.iteration: unknown key; did you mean 'iterations'?"),
        ({"replace_workflow_config": True, "datasets": {}, "experiments": {"x": {"dataset": "mnist", "model": {"name": "vit"},
                                                                                "variants": ["int8"]}}},
         "config key seed: missing; this key is required"),
        ({"experiments": {"vit_mnist": {"train": {"epochs": "many"}}}},
         "config key experiments.vit_mnist.train.epochs: 'many' is not of type integer"),
    ],
)
def test_a_bad_config_is_a_few_lines_naming_file_and_key(tmp_path, overlay, line):
    """Not the schema and the config dumped after the first problem: one line per problem."""
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(overlay))
    proc = _snakemake(tmp_path, "--configfile", str(path))
    assert proc.returncode != 0
    text = _error_text(proc)
    assert f"mine.yaml: {line}" in text, "\n".join(text)
    assert len(text) < 10, "\n".join(text)


def test_a_broken_paper_config_is_named_with_its_line(tmp_path):
    """The Snakefile reads the paper config itself: the working directory's config/config.yaml, here broken."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text("seed: 1\nexperiments:\n  a: [1,\n")
    proc = _snakemake(tmp_path)
    text = _error_text(proc)
    assert proc.returncode != 0 and len(text) < 10, "\n".join(text)
    assert any("config file config/config.yaml, line 4, column 1: not valid YAML" in t for t in text), "\n".join(text)
    (tmp_path / "config/config.yaml").write_text("")
    text = _error_text(_snakemake(tmp_path))
    assert any("config file config/config.yaml is empty" in t for t in text), "\n".join(text)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "config file {path} is empty"),
        ("seed: 1\nexperiments:\n  vit_mnist: {train: [1,\n",
         "config file {path}, line 4, column 1: not valid YAML: expected the node content"),
        ("seed: 1\n\texperiments: {}\n", "config file {path}, line 2, column 1: not valid YAML: found character '\\t'"),
        ("- a\n- b\n", "config file {path}: expected `key: value` lines at the top level, found a list"),
        (None, "config file {path}: not found"),
    ],
)
def test_an_empty_broken_or_missing_file_is_named_by_check_config(tmp_path, capsys, content, message):
    path = tmp_path / "mine.yaml"
    if content is not None:
        path.write_text(content)
    assert main(["check-config", "--base", str(REPO / "config/config.yaml"), str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: " + message.format(path=path)) and len(err.splitlines()) == 1, err


def test_check_config_accepts_the_shipped_configs(capsys):
    base = str(REPO / "config/config.yaml")
    assert main(["check-config", "--base", base, str(REPO / "config/cpu.yaml")]) == 0
    assert capsys.readouterr().out.strip().endswith("experiments vit_mnist, mobilenetv2_imagenet, mobilenetv2_asl")
    assert main(["check-config", "--base", base, str(REPO / "config/demo.yaml")]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{REPO / 'config/demo.yaml'}: experiments vit_mnist")


@pytest.mark.parametrize("content", ["", "seed: 1\nexperiments:\n  a: [1,\n", None])
def test_snakemakes_own_message_for_a_bad_configfile_is_in_the_troubleshooting_page(tmp_path, content):
    """Snakemake reads --configfile before the Snakefile runs; docs/troubleshooting.md quotes what it then prints."""
    path = tmp_path / "mine.yaml"
    if content is not None:
        path.write_text(content)
    proc = _snakemake(tmp_path, "--configfile", str(path))
    assert proc.returncode != 0
    last = (proc.stdout.strip() or proc.stderr.strip()).splitlines()[-1]  # Snakemake's errors go to stdout
    last = last.replace(str(path), "mine.yaml")
    assert last in (REPO / "docs/troubleshooting.md").read_text(), last


# ------------------------------------------------------------------ overlays


def _parsed_config(*configfiles, config=None):
    """The config a Snakemake run sees, after the Snakefile's merge and checks (parsed through Snakemake's API)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    with tempfile.TemporaryDirectory() as tmp, SnakemakeApi(OutputSettings()) as api:
        wapi = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                            config_settings=ConfigSettings(configfiles=list(configfiles), config=config or {}),
                            snakefile=REPO / "Snakefile", workdir=Path(tmp))
        return copy.deepcopy(wapi._workflow.config)  # no public accessor in Snakemake 9.27


def test_cpu_yaml_is_the_paper_config_with_three_changes():
    """config/cpu.yaml was a full copy of the paper config; as an overlay it must give the same effective config."""
    expected = _paper()
    expected["datasets"]["asl_alphabet"]["image_size"] = 96
    expected["experiments"]["mobilenetv2_asl"]["train"].update(epochs=10, frozen_epochs=3)
    assert workflow_config.problems(expected, SCHEMA) == []
    cfg = _parsed_config(REPO / "config/cpu.yaml")
    assert cfg == expected
    # in the paper's order too: Snakemake merges the paper config into the overlay's keys, which would put
    # mobilenetv2_asl first (the first row of every table, and other report-rule commands)
    assert json.dumps(cfg) == json.dumps(expected)


def test_the_default_run_is_the_paper_config():
    expected = _paper()
    assert workflow_config.problems(expected, SCHEMA) == []
    assert _parsed_config() == expected


def test_demo_yaml_replaces_the_paper_config():
    cfg = _parsed_config(REPO / "config/demo.yaml")
    assert list(cfg["experiments"]) == ["vit_mnist"] and cfg["seed"] == 1
    assert set(cfg["datasets"]) == {"mnist"}


def test_an_overlay_adds_experiments_after_the_papers(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"experiments": {"mine": _load("demo.yaml")["experiments"]["vit_mnist"]}}))
    cfg = _parsed_config(mine)
    assert list(cfg["experiments"]) == ["vit_mnist", "mobilenetv2_imagenet", "mobilenetv2_asl", "mine"]
    assert cfg["experiments"]["mine"]["model"]["dim"] == 48
    assert workflow_config.compose([mine], REPO / "config/config.yaml")[0]["experiments"].keys() == cfg["experiments"].keys()


def test_a_small_overlay_changes_only_its_keys(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("experiments:\n  vit_mnist:\n    train:\n      epochs: 2\n")
    cfg = _parsed_config(mine)
    assert list(cfg["experiments"]) == ["vit_mnist", "mobilenetv2_imagenet", "mobilenetv2_asl"]
    assert cfg["experiments"]["vit_mnist"]["train"]["epochs"] == 2
    assert cfg["experiments"]["vit_mnist"]["train"]["batch_size"] == 128  # the rest of the block is the paper's
    proc = _snakemake(tmp_path, "--configfile", str(mine))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^train\s+3$", proc.stdout + proc.stderr, flags=re.M)


def test_nested_config_values_arrive_as_numbers():
    """Snakemake reads nested --config values as strings ('3'); the schema's types win where it wants a number."""
    from snakemake.cli import parse_config

    overrides = parse_config(["experiments={vit_mnist: {train: {epochs: 3, learning_rate: 2e-3}}}",
                              "benchmark={iterations: 10, crosscheck: false, devices: [host_1t]}",
                              "graph_opt={mixed_precision: {candidates: [0, 2]}}",
                              "datasets={imagenet_subset: {resolution: '160'}}"])
    assert overrides["benchmark"]["iterations"] == "10"  # what Snakemake 9.27 hands over
    cfg = _parsed_config(config=overrides)
    assert cfg["experiments"]["vit_mnist"]["train"]["epochs"] == 3
    assert cfg["experiments"]["vit_mnist"]["train"]["learning_rate"] == 0.002
    assert cfg["benchmark"]["iterations"] == 10 and cfg["benchmark"]["crosscheck"] is False
    assert cfg["graph_opt"]["mixed_precision"]["candidates"] == [0, 2]
    assert cfg["datasets"]["imagenet_subset"]["resolution"] == "160"  # the schema wants a string: it stays one


def test_nested_config_on_the_command_line(tmp_path):
    proc = _snakemake(tmp_path, "--configfile", str(REPO / "config/demo.yaml"),
                      "--config", "experiments={vit_mnist: {train: {epochs: 3}}}", "benchmark={iterations: 10}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _snakemake(tmp_path, "--configfile", str(REPO / "config/demo.yaml"),
                      "--config", "benchmark={iterations: ten}")
    assert "--config: config key benchmark.iterations: 'ten' is not of type integer" in proc.stdout + proc.stderr


# ------------------------------------------------------------------ registry names (the plan's checks)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c["experiments"]["vit_mnist"].update(variants=["float32", "int4"]),
         "config key experiments.vit_mnist.variants: unknown variant 'int4'; known: float32, int8"),
        (lambda c: c["benchmark"].update(devices=["pixel9"]), "config key benchmark.devices: unknown device 'pixel9'"),
        (lambda c: c["experiments"]["vit_mnist"].update(dataset="svhn"), "unknown dataset 'svhn'"),
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


def test_a_standalone_config_does_not_inherit_the_paper_experiments(tmp_path):
    """replace_workflow_config: true (as in demo.yaml): a user's own study gets none of the paper's experiments."""
    cfg = _load("demo.yaml")
    cfg["experiments"] = {"mine": cfg["experiments"]["vit_mnist"]}
    proc = _dry_run(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr
    assert "results/models/mine/model.keras" in proc.stdout
    assert "vit_mnist" not in proc.stdout
    assert os.path.exists(REPO / "config/config.yaml")
