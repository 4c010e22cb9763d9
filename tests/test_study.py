"""The second study (MobileNet vs ShuffleNet) as data, the table that sets ours beside it, and the accuracy table's
class-balanced scores, on result JSONs written in the formats the tables read."""

import json

import pandas as pd
import pytest
import yaml
from conftest import REPO

from mobopt.report import paper, study, tables
from mobopt.workflow.plan import Plan

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def test_published_rows_are_complete_and_unambiguous():
    rows = study.rows()
    keys = [(r["model"], tuple(sorted(r["options"].items())), r["dataset"]) for r in rows]
    assert len(set(keys)) == len(rows) == 6
    assert study.row_by_id("shufflenet_cifar10")["scores"] == {"accuracy": 89.2, "recall": 88.6, "f1": 88.9}
    assert study.row_by_id("mobilenet_imagenet")["scores"] == {"top1": 70.3, "top5": 89.1}
    for r in rows:
        if "full" in r:  # an ablation is measured against the full model of the same architecture and dataset
            full = study.row_by_id(r["full"])
            assert (full["model"], full["dataset"]) == (r["model"], r["dataset"]) and "accuracy" in full["scores"]
        assert set(r["scores"]) <= set(study.SCORES)
    recipe = study.published()["recipe"]
    assert (recipe["learning_rate"], recipe["batch_size"], recipe["epochs"], recipe["decay_every_epochs"]) == (0.01, 128, 100, 10)
    cost = study.published()["cost_ratio"]
    assert study.cost_ratio(cost["kernel"], cost["c_in"], cost["c_out"]) == pytest.approx(cost["ratio"], abs=0.05)


def test_option_defaults_are_the_schemas():
    defs = SCHEMA["$defs"]
    assert defs["mobilenetv2"]["properties"]["depthwise_separable"]["default"] is study.OPTION_DEFAULTS["depthwise_separable"]
    assert defs["shufflenetv2"]["properties"]["channel_shuffle"]["default"] is study.OPTION_DEFAULTS["channel_shuffle"]


@pytest.mark.parametrize("model, dataset, study_dataset, expected", [
    ({"name": "shufflenetv2"}, "cifar10", None, "ShuffleNet, CIFAR-10"),
    ({"name": "shufflenetv2", "width": 0.5, "channel_shuffle": False}, "cifar10", None, "ShuffleNet, no shuffle, CIFAR-10"),
    ({"name": "mobilenetv2", "weights": "none"}, "cifar10", None, "MobileNet, CIFAR-10"),
    ({"name": "mobilenetv2", "weights": None, "depthwise_separable": False}, "cifar10", None,
     "MobileNet, standard conv, CIFAR-10"),
    ({"name": "mobilenetv2", "weights": "none"}, "imagenet", None, "MobileNet, ImageNet"),
    ({"name": "shufflenetv2"}, "fashion_mnist", "cifar10", "ShuffleNet, CIFAR-10"),
    ({"name": "mobilenetv2", "weights": "imagenet"}, "imagenet", None, None),  # pretrained: the first paper's, not the study's
    ({"name": "mobilenetv2"}, "cifar10", None, None),  # the schema's default weights are Keras' pretrained ones
    ({"name": "shufflenetv2"}, "fashion_mnist", None, None),  # no stand-in declared
    ({"name": "shufflenetv2", "channel_shuffle": False}, "imagenet", None, None),  # the study ablated on CIFAR-10 only
    ({"name": "vit"}, "cifar10", None, None),
])
def test_rows_are_matched_by_architecture_ablation_and_dataset(model, dataset, study_dataset, expected):
    r = study.match(model, dataset, study_dataset)
    assert (r["row"] if r else None) == expected


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return str(path)


def _eval(accuracy, recall=None, f1=None, top5=None):
    return {"samples": 10000, "accuracy": accuracy, "loss": 0.4, "top5_accuracy": top5 or min(1.0, accuracy + 0.08),
            "macro_recall": accuracy if recall is None else recall, "macro_f1": accuracy if f1 is None else f1,
            "macro_precision": accuracy, "outputs": 10}


def _experiment(tmp_path, name, model, dataset, accuracy, *, study_dataset=None, variants=("float32", "int8"),
                devices=("host_1t",), shape="32x32x3", **scores):
    """The plan's study entries of one experiment, with result JSONs in the tables' formats."""
    entries = []
    for i, variant in enumerate(variants):
        entry = {"experiment": name, "label": name.replace("_", " "), "model": model, "dataset": dataset,
                 "input_shape": shape, "variant": variant,
                 "eval": _write(tmp_path / f"eval/{name}/test/{variant}.json", _eval(accuracy - 0.01 * i, **scores)),
                 "tflite_info": _write(tmp_path / f"tflite/{name}/{variant}.json",
                                       {"size_bytes": 5_000_000 // (1 + 3 * i), "size_gzip_bytes": 4_000_000}),
                 "bench": {d: _write(tmp_path / f"bench/{d}/{name}/{variant}.json",
                                     {"status": "ok", "p50_ms": 2.0 + i, "p95_ms": 2.5 + i}) for d in devices}}
        if study_dataset:
            entry["study_dataset"] = study_dataset
        entries.append(entry)
    return entries


MOBILENET = {"name": "mobilenetv2", "weights": "none", "alpha": 1.0}
SHUFFLENET = {"name": "shufflenetv2", "width": 1.0}


def test_scores_and_ablation_drops_against_the_full_model(tmp_path):
    entries = (_experiment(tmp_path, "mobilenet", MOBILENET, "cifar10", 0.90, recall=0.89, f1=0.885)
               + _experiment(tmp_path, "mobilenet_std", {**MOBILENET, "depthwise_separable": False}, "cifar10", 0.84)
               + _experiment(tmp_path, "shufflenet", SHUFFLENET, "cifar10", 0.88)
               + _experiment(tmp_path, "shufflenet_noshuffle", {**SHUFFLENET, "channel_shuffle": False}, "cifar10", 0.875)
               + _experiment(tmp_path, "shufflenet_imagenet", SHUFFLENET, "imagenet", 0.70, top5=0.89)
               + _experiment(tmp_path, "vit", {"name": "vit"}, "cifar10", 0.7))  # no row: left out
    df = study.write(entries, tmp_path / "s.csv", tmp_path / "s.md")
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == study.COLUMNS
    assert "vit" not in set(df.experiment)
    score = df[df.kind == "score"].set_index(["experiment", "metric"])
    assert score.loc[("mobilenet", "accuracy"), "theirs"] == 88.5
    assert score.loc[("mobilenet", "accuracy"), "ours"] == pytest.approx(90.0)
    assert score.loc[("mobilenet", "accuracy"), "difference"] == pytest.approx(1.5)
    assert score.loc[("mobilenet", "macro recall"), ["theirs", "ours"]].tolist() == pytest.approx([87.8, 89.0])
    assert score.loc[("mobilenet", "macro F1"), ["theirs", "ours"]].tolist() == pytest.approx([88.1, 88.5])
    assert score.loc[("shufflenet_imagenet", "top-5"), ["theirs", "ours"]].tolist() == pytest.approx([90.2, 89.0])
    assert score.loc[("shufflenet_imagenet", "top-1"), "theirs"] == 72.1
    assert set(score.loc["mobilenet_std"].index) == {"accuracy"}  # the study gives the ablations' accuracy only
    drop = df[df.kind == "ablation drop"].set_index("experiment")
    mn, sn = drop.loc["mobilenet_std"], drop.loc["shufflenet_noshuffle"]
    assert mn.theirs == pytest.approx(6.2) and mn.ours == pytest.approx(6.0) and mn.verdict == "reproduced"
    assert mn.full_experiment == "mobilenet" and (mn.theirs_full, mn.theirs_ablated) == (88.5, 82.3)
    assert sn.theirs == pytest.approx(4.1) and sn.ours == pytest.approx(0.5) and sn.verdict == "no change"
    cost = df[df.kind == "cost"]
    assert len(cost) == 5 * 2 * 3  # five study experiments x two variants x (size, p50, p95) on one device
    size = cost[(cost.experiment == "mobilenet") & (cost.variant == "int8") & (cost.metric == "size")]
    assert size.ours.item() == pytest.approx(1.25)
    md = (tmp_path / "s.md").read_text()
    assert "| mobilenet std" in md and "6.2 pp" in md and "reproduced" in md and "p95 latency (ms)" in md
    assert "stand-in" not in md and "SGD, learning rate 0.01" in md


@pytest.mark.parametrize("ours_full, ours_ablated, expected", [
    (0.885, 0.823, "reproduced"),             # 6.2 pp, as theirs
    (0.90, 0.80, "reproduced (stronger)"),    # 10 pp
    (0.88, 0.85, "reproduced (weaker)"),      # 3 pp
    (0.88, 0.875, "no change"),               # 0.5 pp: within 1 pp
    (0.85, 0.88, "reversed"),                 # the ablation helped
])
def test_each_verdict_of_the_ablation_drop(tmp_path, ours_full, ours_ablated, expected):
    entries = (_experiment(tmp_path, "full", MOBILENET, "cifar10", ours_full, variants=("float32",))
               + _experiment(tmp_path, "ablated", {**MOBILENET, "depthwise_separable": False}, "cifar10", ours_ablated,
                             variants=("float32",)))
    drop = study.table(entries).query("kind == 'ablation drop'").iloc[0]
    assert drop.verdict == expected and expected in paper.VERDICTS
    assert drop.ours == pytest.approx((ours_full - ours_ablated) * 100)


def test_an_ablation_without_its_full_model_is_not_measured(tmp_path):
    entries = (_experiment(tmp_path, "narrow", {**SHUFFLENET, "width": 0.5}, "cifar10", 0.86)  # other options
               + _experiment(tmp_path, "ablated", {**SHUFFLENET, "channel_shuffle": False}, "cifar10", 0.85))
    df = study.write(entries, tmp_path / "s.csv", tmp_path / "s.md")
    drop = df[df.kind == "ablation drop"].iloc[0]
    assert drop.verdict == "not measured" and pd.isna(drop.full_experiment) and drop.theirs == pytest.approx(4.1)
    assert "no ShuffleNet experiment with the same options on CIFAR-10" in (tmp_path / "s.md").read_text()


def test_a_stand_in_is_set_beside_the_study_and_labelled(tmp_path):
    entries = (_experiment(tmp_path, "sn_fmnist", SHUFFLENET, "fashion_mnist", 0.92, study_dataset="cifar10")
               + _experiment(tmp_path, "sn_fmnist_ns", {**SHUFFLENET, "channel_shuffle": False}, "fashion_mnist", 0.91,
                             study_dataset="cifar10"))
    df = study.write(entries, tmp_path / "s.csv", tmp_path / "s.md")
    note = "ours: Fashion-MNIST padded to 32x32x3, a stand-in for CIFAR-10; CIFAR-10 numbers come from users' runs"
    assert set(df.stand_in) == {note} and set(df.study_dataset) == {"cifar10"} and set(df.dataset) == {"fashion_mnist"}
    assert df[df.kind == "ablation drop"].iloc[0].full_experiment == "sn_fmnist"
    assert note in (tmp_path / "s.md").read_text()


def test_an_unsupported_variant_has_no_numbers(tmp_path):
    entries = _experiment(tmp_path, "sn", SHUFFLENET, "cifar10", 0.88)
    _write(tmp_path / "tflite/sn/int8.json", {"supported": False, "reason": "no int8 kernel"})
    cost = study.table(entries).query("kind == 'cost' and variant == 'int8'")
    assert set(cost.note) == {"not supported"} and cost.ours.isna().all()


def test_no_matching_experiment_writes_an_empty_table_that_says_so(tmp_path):
    df = study.write([], tmp_path / "s.csv", tmp_path / "s.md")
    assert df.empty and "No experiment of this config matches" in (tmp_path / "s.md").read_text()


def _config(experiments):
    return {"experiments": experiments, "datasets": {"cifar10": {}, "fashion_mnist": {"image_size": 32, "channels": 3},
                                                     "mnist": {}},
            "benchmark": {"devices": ["host_1t"]}}


def test_the_plan_lists_the_table_only_with_a_matching_experiment():
    vit = {"dataset": "mnist", "model": {"name": "vit"}, "variants": ["float32"]}
    pretrained = {"dataset": "cifar10", "model": {"name": "mobilenetv2", "weights": "imagenet"}, "variants": ["float32"]}
    plan = Plan(_config({"vit": vit, "pretrained": pretrained}), env={})
    assert plan.study_experiments() == [] and not any("second_study" in f for f in plan.final_outputs())
    stand_in = {"dataset": "fashion_mnist", "study_dataset": "cifar10", "model": {"name": "shufflenetv2"},
                "variants": ["float32", "int8"]}
    plan = Plan(_config({"vit": vit, "sn": stand_in}), env={})
    assert plan.study_experiments() == ["sn"]
    assert {"reports/tables/second_study.csv", "reports/tables/second_study.md"} <= set(plan.final_outputs())
    entries = plan.study_entries()
    assert [(e["variant"], e["input_shape"], e["study_dataset"]) for e in entries] == [
        ("float32", "32x32x3", "cifar10"), ("int8", "32x32x3", "cifar10")]
    assert entries[1]["bench"] == {"host_1t": "results/bench/host_1t/sn/int8.json"}
    assert "results/eval/sn/test/float32.json" in plan.study_files(entries)


def test_the_accuracy_table_shows_macro_recall_and_f1_beside_accuracy(tmp_path):
    entries = [{"experiment": "e", "label": "E", "variant": "float32", "split": "test",
                "eval": _write(tmp_path / "a.json", _eval(0.9, recall=0.85, f1=0.84))},
               {"experiment": "e", "label": "E", "variant": "int8", "split": "test",  # written before the macro scores
                "eval": _write(tmp_path / "b.json", {"samples": 5, "accuracy": 0.8, "loss": 0.5, "top5_accuracy": 1.0})}]
    df = tables.write_accuracy(entries, tmp_path / "acc.csv", tmp_path / "acc.md")
    assert df.columns.tolist()[5:8] == ["accuracy", "macro_recall", "macro_f1"]
    assert df.macro_recall.tolist()[0] == 0.85 and pd.isna(df.macro_f1[1])
    header = [h.strip() for h in (tmp_path / "acc.md").read_text().splitlines()[0].strip("|").split("|")]
    assert header == ["model", "variant", "split", "samples", "accuracy (top-1)", "macro recall", "macro F1", "top-5", "loss"]
