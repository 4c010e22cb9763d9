"""This CPU's measured ceilings for the roofline figure: compute peak (float32, int8) and memory bandwidth.

What LiteRT itself can reach here is the honest ceiling for our models, so the
compute peaks are measured with the same runtime, delegate and thread count
as the benchmarks: a batch-64 1024x1024 ``FULLY_CONNECTED`` layer (a GEMM,
XNNPACK's best case: high arithmetic intensity, no partition boundaries),
converted float32 and full-int8 with the study's own converter settings
(:func:`build_models`, needs TensorFlow, run by the ``peak_models`` rule), then
timed like any model (:func:`measure`, TF-free, run by the ``cpu_peak`` rule
on each host device).  Memory bandwidth is a large-array copy with numpy on
the same pinned cores (read + write bytes over time): the slope of the
roofline.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import bench, devices

BATCH, FEATURES = 64, 1024
FLOPS = 2 * BATCH * FEATURES * FEATURES


def build_models(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write ``fc_float32.tflite`` and ``fc_int8.tflite`` (one GEMM each) into ``out_dir``."""
    from mobopt.convert import stdout_to_stderr
    from mobopt.train import configure_tensorflow

    tf = configure_tensorflow(seed, 1)
    import keras

    from mobopt.atomic import write_bytes

    inputs = keras.Input((FEATURES,), batch_size=BATCH)
    model = keras.Model(inputs, keras.layers.Dense(FEATURES)(inputs))
    rng = np.random.default_rng(seed)
    calibration = rng.standard_normal((8, BATCH, FEATURES)).astype(np.float32)
    out = {}
    for variant in ("float32", "int8"):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if variant == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([x] for x in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        with stdout_to_stderr():
            data = converter.convert()
        out[variant] = Path(out_dir) / f"fc_{variant}.tflite"
        write_bytes(out[variant], data)
    return out


def memory_bandwidth_gbs(mb: int = 256, repeats: int = 5) -> float:
    """Best of ``repeats`` copies of an ``mb`` MB array: (read + write) bytes per second, GB/s."""
    src = np.ones(mb * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch both
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def measure(models: dict[str, str | Path], device: str, iterations: int = 200) -> dict[str, Any]:
    """GFLOP/s (GOP/s for int8) of each GEMM model at its p50, and memory bandwidth, on ``device``'s cores."""
    dev = devices.get(device)
    if dev.kind != "host":
        raise devices.DeviceError(f"device {device}: the CPU peak is measured on host devices only")
    out: dict[str, Any] = {"device": device, "threads": dev.threads, "gemm": f"{BATCH}x{FEATURES} @ {FEATURES}x{FEATURES}",
                           "gemm_flops": FLOPS}
    for variant, path in models.items():
        r = bench.measure(path, device, {"iterations": iterations, "warmup": 10})
        out[f"{variant}_p50_ms"] = r["p50_ms"]
        out[f"{variant}_gflops"] = FLOPS / (r["p50_ms"] / 1e3) / 1e9
        out["cores"] = r["cores"]
    out["memory_bandwidth_gbs"] = memory_bandwidth_gbs()
    return out
