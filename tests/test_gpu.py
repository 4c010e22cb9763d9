"""The GPU path: TensorFlow sees the GPU (pip install -e ".[gpu]", docs/gpu.md), trains on it and says so."""

import json

import numpy as np
import pytest
from conftest import TINY_SPEC, mobopt_cli

from mobopt.models.runtime import device_info


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def test_device_info_says_what_tensorflow_sees(tf):
    info = device_info(tf)
    gpus = tf.config.list_physical_devices("GPU")
    assert info["gpu_visible"] is bool(gpus)
    assert info["device"] == ("/GPU:0" if gpus else "/CPU:0")
    assert len(info["gpus"]) == len(gpus)
    assert any(name.endswith("CPU:0") for name in info["logical_devices"])
    json.dumps(info)  # it goes into metrics.json as it is


def test_one_training_step_on_the_gpu(tf, tmp_path, prepared_digits):
    """One step placed on the GPU, then a one-epoch training through the CLI (op determinism on) that records it."""
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("no GPU visible to TensorFlow")
    import keras

    with tf.device("/GPU:0"):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.train_on_batch(np.ones((8, 4), np.float32), np.zeros(8, np.int64))
    assert "GPU" in model.trainable_weights[0].value.device

    spec = {**TINY_SPEC, "train": {**TINY_SPEC["train"], "epochs": 1}}
    mobopt_cli("train", "--experiment", "gpu", "--data", prepared_digits, "--out", tmp_path, "--spec", json.dumps(spec),
               "--seed", 1)
    device = json.loads((tmp_path / "metrics.json").read_text())["device"]
    assert device["gpu_visible"] and device["device"] == "/GPU:0", device
