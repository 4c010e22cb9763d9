"""Conversion and evaluation of a really trained tiny ViT, with real TF and LiteRT."""

import json

import numpy as np
import pytest
from conftest import mobopt_cli

#: int8 post-training quantization may cost at most this much test accuracy on the digits.
INT8_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def converted(tmp_path_factory, trained_tiny, prepared_digits):
    out = tmp_path_factory.mktemp("tflite")
    for variant in ("float32", "int8"):
        mobopt_cli("convert", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--variant", variant,
                   "--out", out / f"{variant}.tflite", "--info", out / f"{variant}.json", "--seed", 1,
                   "--options", json.dumps({"representative_samples": 200}))
    return out


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory, converted, trained_tiny, prepared_digits):
    from mobopt.evaluate import evaluate

    out = tmp_path_factory.mktemp("eval")
    res = {v: evaluate(converted / f"{v}.tflite", prepared_digits, out / f"{v}.json") for v in ("float32", "int8")}
    mobopt_cli("evaluate", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--out", out / "keras.json")
    res["keras"] = json.loads((out / "keras.json").read_text())
    return res


def test_variant_json_describes_the_file(converted):
    f32 = json.loads((converted / "float32.json").read_text())
    i8 = json.loads((converted / "int8.json").read_text())
    assert f32["size_bytes"] == (converted / "float32.tflite").stat().st_size
    assert 0 < f32["size_gzip_bytes"] < f32["size_bytes"]
    assert i8["size_bytes"] < 0.6 * f32["size_bytes"]
    assert f32["inputs"][0]["dtype"] == "float32" and f32["inputs"][0]["shape"] == [1, 28, 28, 1]
    assert i8["inputs"][0]["dtype"] == "int8" and i8["outputs"][0]["dtype"] == "int8"
    assert len(i8["inputs"][0]["scale"]) == 1 and -128 <= i8["inputs"][0]["zero_point"][0] <= 127
    assert f32["op_histogram"]["BATCH_MATMUL"] >= 2 and f32["op_histogram"]["SOFTMAX"] >= 2
    assert sum(f32["op_histogram"].values()) == f32["op_count"]
    assert i8["tensor_dtypes"]["int8"] > i8["tensor_dtypes"].get("float32", 0)
    assert f32["keras_layer_histogram"]["MultiHeadAttention"] == 2
    assert i8["representative_samples"] == 200 and f32["representative_samples"] is None
    assert i8["provenance"]["packages"]["tensorflow"] == "2.21.0"


def test_keras_and_float32_agree(evaluations):
    assert evaluations["float32"]["samples"] == evaluations["keras"]["samples"] == 359
    assert abs(evaluations["float32"]["accuracy"] - evaluations["keras"]["accuracy"]) <= 1 / 359
    assert evaluations["float32"]["loss"] == pytest.approx(evaluations["keras"]["loss"], rel=1e-3)


def test_int8_accuracy_within_tolerance_of_float(evaluations):
    assert evaluations["float32"]["accuracy"] >= 0.90
    assert evaluations["int8"]["accuracy"] >= evaluations["float32"]["accuracy"] - INT8_TOLERANCE


def test_metrics_are_consistent(evaluations):
    for res in evaluations.values():
        cm = np.array(res["confusion_matrix"])
        assert cm.sum() == res["samples"]
        assert np.trace(cm) / cm.sum() == pytest.approx(res["accuracy"])
        assert res["top5_accuracy"] >= res["accuracy"]
        per_class = np.array(list(res["per_class_accuracy"].values()))
        np.testing.assert_allclose(per_class, np.diag(cm) / cm.sum(axis=1))


def test_classification_metrics_by_hand():
    from mobopt.evaluate import EPS, classification_metrics

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.0, 1.0, 0.0]])
    y = np.array([0, 1, 0])
    m = classification_metrics(probs, y, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["loss"] == pytest.approx(-(np.log(0.7) + np.log(0.1) + np.log(EPS)) / 3)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert m["per_class_accuracy"] == {"a": 0.5, "b": 0.0, "c": None}
    assert m["top3_accuracy"] == 1.0


def test_quantize_dequantize_follow_the_tensor_parameters():
    from mobopt.litert.interpreter import dequantize_output, quantize_input

    detail = {"name": "image", "dtype": np.int8, "quantization": (1.0, -128)}
    np.testing.assert_array_equal(quantize_input(np.array([0.0, 127.6, 255.0, 300.0]), detail), [-128, 0, 127, 127])
    out = {"dtype": np.int8, "quantization": (1 / 256, -128)}
    np.testing.assert_allclose(dequantize_output(np.array([-128, 127], dtype=np.int8), out), [0.0, 255 / 256])
