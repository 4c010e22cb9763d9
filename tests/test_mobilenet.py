"""MobileNetV2: pretrained weights fetched and loaded (from .h5 files the tests write), transfer learning
in two phases, and scoring through a 1000-class head."""

import json

import numpy as np
import pytest
from conftest import mobopt_cli, write_mobilenetv2_weights

from mobopt import MobOptError
from mobopt.common.download import sha256sum
from mobopt.evaluate import classification_metrics
from mobopt.models import pretrained


def first_weight(h5_path, layer):
    """A layer's first weight as stored in a legacy Keras HDF5 weights file."""
    import h5py

    with h5py.File(h5_path) as f:
        group = f[layer]
        return group[group.attrs["weight_names"][0]][()]


def test_weight_file_names_follow_keras():
    names = pretrained.weight_files
    assert names({"name": "mobilenetv2", "alpha": 1.0, "include_top": True}, (224, 224, 3)) == [
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"]
    assert names({"name": "mobilenetv2", "alpha": 0.5}, (96, 96, 3)) == [
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_96_no_top.h5"]
    # no published weights for 200 px: Keras uses the 224 ones
    assert names({"name": "mobilenetv2", "alpha": 0.35}, (200, 200, 3))[0].endswith("_0.35_224_no_top.h5")
    assert names({"name": "mobilenetv2", "weights": "none"}, (96, 96, 3)) == []
    assert names({"name": "vit"}, (28, 28, 1)) == []
    with pytest.raises(MobOptError, match="alpha 0.6"):
        names({"name": "mobilenetv2", "alpha": 0.6}, (96, 96, 3))


@pytest.fixture(scope="module")
def weights_www(tmp_path_factory):
    www = tmp_path_factory.mktemp("weights-www")
    return (write_mobilenetv2_weights(www, include_top=False), write_mobilenetv2_weights(www, include_top=True))


def test_fetch_records_the_hash_and_enforces_a_pin(tmp_path, http_server, weights_www):
    no_top = weights_www[0]
    (http_server.root / no_top.name).write_bytes(no_top.read_bytes())
    opts = {"mirrors": [http_server.url], "backoff": 0, "progress": False}
    record = pretrained.fetch(no_top.name, opts, tmp_path / "w")
    assert record["sha256"] == sha256sum(no_top) and not record["pinned"]
    assert json.loads((tmp_path / "w" / (no_top.name + ".json")).read_text())["sha256"] == record["sha256"]
    with pytest.raises(MobOptError, match=f"computed {record['sha256']}"):
        pretrained.fetch(no_top.name, {**opts, "sha256": {no_top.name: "1" * 64}}, tmp_path / "pinned")
    assert not (tmp_path / "pinned" / no_top.name).exists()


def test_build_loads_the_weights_file(weights_www):
    from mobopt.models import architectures

    folder = weights_www[0].parent
    model = architectures.build({"name": "mobilenetv2", "alpha": 0.35, "include_top": False}, (32, 32, 3), 29,
                         weights_dir=folder)
    backbone = model.get_layer("backbone")
    kernel = first_weight(weights_www[0], "Conv1")
    np.testing.assert_array_equal(backbone.get_layer("Conv1").get_weights()[0], kernel)
    assert model.output_shape == (None, 29)
    top = architectures.build({"name": "mobilenetv2", "alpha": 0.35, "include_top": True}, (32, 32, 3), 1000,
                       weights_dir=folder)
    assert top.output_shape == (None, 1000)
    with pytest.raises(MobOptError, match="1000-class ImageNet head.*29 outputs"):
        architectures.build({"name": "mobilenetv2", "alpha": 0.35, "include_top": True}, (32, 32, 3), 29, weights_dir=folder)
    with pytest.raises(MobOptError, match="pretrained weights not found"):
        architectures.build({"name": "mobilenetv2", "alpha": 0.5}, (32, 32, 3), 29, weights_dir=folder)


def test_metrics_through_a_larger_head():
    probs = np.full((4, 1000), 1e-4)
    probs[0, 217] = probs[1, 0] = probs[2, 5] = probs[3, 217] = 0.9  # sample 2 predicts a class outside the subset
    y = np.array([217, 0, 0, 0])
    m = classification_metrics(probs, y, ["n01440764", "n02102040"], [0, 217])
    assert m["accuracy"] == 0.5 and m["outputs"] == 1000
    assert m["confusion_columns"] == ["n01440764", "n02102040", "other"]
    assert m["confusion_matrix"] == [[1, 1, 1], [0, 1, 0]]
    assert m["per_class_accuracy"] == {"n01440764": 1 / 3, "n02102040": 1.0}


@pytest.fixture(scope="module")
def tiny_asl(tmp_path_factory):
    """A tiny ASL-like prepared dataset (32 px) written directly in the prepared format."""
    from mobopt.datasets.asl_alphabet import ASL_CLASSES
    from mobopt.datasets.images import load_image
    from mobopt.datasets.prepared import save_split
    from mobopt.datasets.standins import write_fake_class_tree

    root = tmp_path_factory.mktemp("asl-tree")
    write_fake_class_tree(root, ASL_CLASSES[:4], 24, size=(48, 48), workers=1)
    out = tmp_path_factory.mktemp("asl-prepared")
    for split, sl in (("train", slice(0, 16)), ("val", slice(16, 20)), ("test", slice(20, 24))):
        items = [(f, label) for label, c in enumerate(ASL_CLASSES[:4]) for f in sorted((root / c).iterdir())[sl]]
        save_split(out, split, np.stack([load_image(f, 32).pixels for f, _ in items]), [label for _, label in items])
    (out / "meta.json").write_text(json.dumps({"classes": list(ASL_CLASSES[:4]), "image_shape": [32, 32, 3],
                                               "counts": {"train": 64, "val": 16, "test": 16}}))
    return out


def test_frozen_then_fine_tune(tmp_path, tiny_asl, weights_www):
    """Frozen epochs leave the backbone as loaded; fine-tuning changes only the layers from fine_tune_from on."""
    import keras

    folder = weights_www[0].parent
    spec = {"model": {"name": "mobilenetv2", "alpha": 0.35, "include_top": False, "dropout": 0.0},
            "train": {"epochs": 2, "frozen_epochs": 1, "fine_tune_from": 100, "batch_size": 16, "threads": 2,
                      "learning_rate": 0.01, "fine_tune_learning_rate": 0.01, "warmup_epochs": 0}}
    for epochs, out in ((1, tmp_path / "frozen"), (2, tmp_path / "tuned")):
        mobopt_cli("train", "--experiment", "asl", "--data", tiny_asl, "--out", out, "--seed", 0, "--weights", folder,
                   "--spec", json.dumps({**spec, "train": {**spec["train"], "epochs": epochs}}))
    history = (tmp_path / "tuned" / "history.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in history[1:]] == ["frozen", "fine_tune"]
    early, late = first_weight(weights_www[0], "Conv1"), first_weight(weights_www[0], "Conv_1")
    frozen = keras.models.load_model(tmp_path / "frozen" / "model.keras").get_layer("backbone")
    tuned = keras.models.load_model(tmp_path / "tuned" / "model.keras").get_layer("backbone")
    np.testing.assert_array_equal(frozen.get_layer("Conv_1").get_weights()[0], late)
    np.testing.assert_array_equal(tuned.get_layer("Conv1").get_weights()[0], early)  # before layer 100
    assert not np.array_equal(tuned.get_layer("Conv_1").get_weights()[0], late)  # after it
    metrics = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert [p["name"] for p in metrics["phases"]] == ["frozen", "fine_tune"]


def test_pretrained_model_is_kept_as_is(tmp_path, tiny_asl, weights_www):
    spec = {"model": {"name": "mobilenetv2", "alpha": 0.35, "include_top": False}, "train": {"epochs": 0}}
    mobopt_cli("train", "--experiment", "as_is", "--data", tiny_asl, "--out", tmp_path, "--seed", 0,
               "--weights", weights_www[0].parent, "--spec", json.dumps(spec))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["phases"] == [] and metrics["final"] == {}
    assert metrics["pretrained_weights"][0]["file"] == weights_www[0].name
