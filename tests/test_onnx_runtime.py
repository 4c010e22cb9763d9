"""ONNX Runtime beside LiteRT: every ort_* variant exports from the trained model, runs in the same accuracy loop
and the same benchmark protocol, and its float32 agrees with Keras and with LiteRT's float32."""

import json

import numpy as np
import pytest
from conftest import mobopt_cli

from mobopt import onnxrt
from mobopt.datasets.prepared import load_split

ORT_VARIANTS = ("ort_float32", "ort_dynamic_int8", "ort_int8")
#: ORT float32 vs Keras on the same images: the same float graph, other kernels (and orders of summation).
FLOAT_ATOL = 1e-4


@pytest.fixture(scope="module")
def exported(trained_tiny, prepared_digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    for variant in (*ORT_VARIANTS, "float32"):
        suffix = "tflite" if variant == "float32" else "onnx"
        mobopt_cli("convert", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--variant", variant,
                   "--out", root / f"{variant}.{suffix}", "--info", root / f"{variant}.json", "--seed", 3,
                   "--options", json.dumps({"representative_samples": 100}))
    return root


def test_every_variant_is_an_onnx_model_described_like_a_tflite(exported):
    for variant in ORT_VARIANTS:
        info = json.loads((exported / f"{variant}.json").read_text())
        assert info["supported"] is True and info["runtime"] == "onnxruntime", info.get("reason")
        assert info["size_bytes"] == (exported / f"{variant}.onnx").stat().st_size
        assert info["inputs"][0]["shape"][0] == 1 and info["exporter"]["opset"] == 17
        assert info["provenance"]["cpu"]["isa"] is not None
    ops = {v: json.loads((exported / f"{v}.json").read_text())["op_histogram"] for v in ORT_VARIANTS}
    assert "Erf" in ops["ort_float32"]  # Keras' exact GELU, mended from Erfc
    assert "DynamicQuantizeLinear" in ops["ort_dynamic_int8"] or "MatMulInteger" in ops["ort_dynamic_int8"]
    assert "QuantizeLinear" in ops["ort_int8"] and "DequantizeLinear" in ops["ort_int8"]
    sizes = {v: json.loads((exported / f"{v}.json").read_text())["size_bytes"] for v in ORT_VARIANTS}
    assert sizes["ort_dynamic_int8"] < 0.7 * sizes["ort_float32"]  # the matrix weights in int8, the rest float


def test_ort_float32_agrees_with_keras_and_litert(exported, trained_tiny, prepared_digits):
    from mobopt.evaluate import predict_keras, predict_tflite

    x, y = load_split(prepared_digits, "test")
    x = np.asarray(x[:200], np.float32)
    ort = onnxrt.predict(exported / "ort_float32.onnx", x)
    keras = predict_keras(trained_tiny / "model.keras", x)
    lite = predict_tflite(exported / "float32.tflite", x)
    assert np.abs(ort - keras).max() < FLOAT_ATOL
    assert np.abs(ort - lite).max() < FLOAT_ATOL
    assert (ort.argmax(1) == keras.argmax(1)).all()


def test_the_same_accuracy_loop_scores_onnx_files(exported, prepared_digits, tmp_path):
    acc = {}
    for variant in ("float32", *ORT_VARIANTS):
        model = exported / (f"{variant}.tflite" if variant == "float32" else f"{variant}.onnx")
        mobopt_cli("evaluate", "--model", model, "--data", prepared_digits, "--out", tmp_path / f"{variant}.json")
        result = json.loads((tmp_path / f"{variant}.json").read_text())
        assert result["kind"] == model.suffix[1:] and result["samples"] > 0
        acc[variant] = result["accuracy"]
    assert acc["ort_float32"] == acc["float32"]
    for variant in ("ort_dynamic_int8", "ort_int8"):  # the tiny ViT learnt digits to >= 90 %; int8 keeps most of it
        assert acc[variant] >= acc["ort_float32"] - 0.05, acc


def test_the_benchmark_protocol_measures_onnx_variants_beside_tflite(exported, tmp_path):
    from mobopt.bench import protocol

    models = {"float32": exported / "float32.tflite", "ort_float32": exported / "ort_float32.onnx"}
    outputs = {v: tmp_path / f"{v}.json" for v in models}
    opts = {"iterations": 30, "warmup": 5, "repeats": 2, "load_samples": 2, "op_profile_runs": 10,
            "bootstrap_resamples": 100}
    results = protocol.run(models, "host_1t", outputs, opts)
    ort = results["ort_float32"]
    assert ort["status"] == "ok" and ort["repeats_done"] == 2 and ort["p50_ms"] > 0
    assert ort["repeats"][0]["runtime"] == "onnxruntime" and not ort["tensorflow_imported"]
    assert "delegation" not in ort and ort["crosscheck"]["within_tolerance"] is None
    assert "onnxruntime_perf_test" in ort["crosscheck"]["unavailable"]
    assert not any("cross-check" in flag for flag in ort["flags"]), ort["flags"]  # said, not flagged
    shares = [r["share"] for r in ort["op_profile"]["by_type"]]
    assert abs(sum(shares) - 1) < 1e-6 and ort["op_profile"]["runtime"] == "onnxruntime"
    assert results["float32"]["status"] == "ok" and "delegation" in results["float32"]


def test_an_export_that_fails_is_recorded_with_the_exporters_words(trained_tiny, prepared_digits, tmp_path):
    """An opset tf2onnx cannot write (ONNX has no opset 999) is the exporter's refusal: an empty file and its reason."""
    mobopt_cli("convert", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--variant", "ort_float32",
               "--out", tmp_path / "m.onnx", "--info", tmp_path / "m.json", "--options", json.dumps({"onnx": {"opset": 999}}))
    info = json.loads((tmp_path / "m.json").read_text())
    assert info["supported"] is False and info["unsupported_stage"] == "exporter" and info["reason"]
    assert (tmp_path / "m.onnx").stat().st_size == 0
    mobopt_cli("evaluate", "--model", tmp_path / "m.onnx", "--data", prepared_digits, "--out", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["supported"] is False and result["reason"] == info["reason"] and "accuracy" not in result


def test_an_onnx_variant_must_be_written_to_an_onnx_file(trained_tiny, prepared_digits, tmp_path):
    proc = mobopt_cli("convert", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--variant",
                      "ort_float32", "--out", tmp_path / "m.tflite", "--info", tmp_path / "m.json", check=False)
    assert proc.returncode != 0 and "name the output .onnx" in proc.stderr
