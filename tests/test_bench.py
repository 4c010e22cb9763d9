"""The benchmark runs TF-free in a fresh process and reports every field Table 2 needs."""

import json

import numpy as np
import pytest
from conftest import mobopt_cli


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """A tiny float model converted with TF (the benchmark itself never imports it)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inp = keras.Input((28, 28, 1), batch_size=1)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x))
    path = tmp_path_factory.mktemp("bench") / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_benchmark_fields(tiny_tflite, tmp_path):
    out = tmp_path / "bench.json"
    mobopt_cli("bench", "--model", tiny_tflite, "--device", "host_1t", "--out", out,
               "--options", json.dumps({"iterations": 300, "warmup": 5}))
    r = json.loads(out.read_text())
    assert r["tensorflow_imported"] is False
    assert r["iterations"] == 300 and len(r["latencies_ms"]) == 300
    assert r["threads"] == 1 and len(r["cores"]) == 1
    assert 0 < r["min_ms"] <= r["p10_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p95_ms"] <= r["max_ms"]
    assert r["p50_ms"] == pytest.approx(float(np.percentile(r["latencies_ms"], 50)), rel=1e-4)
    assert 50 < r["cpu_percent"] <= 110  # one pinned thread keeps one core busy
    assert r["load_ms"] > 0 and r["first_inference_ms"] > 0
    assert r["peak_rss_mb"] >= r["rss_after_load_mb"] > 0
    assert r["model_size_bytes"] == tiny_tflite.stat().st_size
    assert r["provenance"]["packages"]["ai-edge-litert"] == "2.3.0"
    assert r["started_unix"] < r["finished_unix"]


def test_unknown_device_and_broken_model_are_named(tiny_tflite, tmp_path):
    proc = mobopt_cli("bench", "--model", tiny_tflite, "--device", "pixel9", "--out", tmp_path / "x.json", check=False)
    assert proc.returncode == 2 and "unknown device 'pixel9'; known: host_1t, host_2t" in proc.stderr
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer" * 10)
    proc = mobopt_cli("bench", "--model", broken, "--device", "host_1t", "--out", tmp_path / "y.json", check=False)
    assert proc.returncode == 2 and f"{broken}: LiteRT cannot load it" in proc.stderr
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


def test_peak_rss_is_the_benchmarks_own_not_its_parents(tiny_tflite, tmp_path):
    """ru_maxrss survives exec on Linux; a benchmark started from a big parent must not inherit its peak."""
    ballast = bytearray(600 * 2**20)  # make this (parent) process's peak RSS >= 600 MB
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    out = tmp_path / "bench.json"
    mobopt_cli("bench", "--model", tiny_tflite, "--device", "host_1t", "--out", out,
               "--options", json.dumps({"iterations": 50, "warmup": 1}))
    del ballast
    r = json.loads(out.read_text())
    assert r["peak_rss_mb"] < 400, r["peak_rss_mb"]
