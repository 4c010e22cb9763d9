"""This CPU's measured ceilings for the roofline figure: compute peak (float32, int8) and memory bandwidth.

What LiteRT itself can reach here is the honest ceiling for our models, so the
compute peaks are measured with the same runtime, delegate and thread count
as the benchmarks: a batch-64 1024x1024 ``FULLY_CONNECTED`` layer (a GEMM,
XNNPACK's best case: high arithmetic intensity, no partition boundaries),
converted float32 and full-int8 with the study's own converter settings
(:func:`mobopt.optimize.peak_models.build_models`, needs TensorFlow, run by
the ``peak_models`` rule), then
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

from mobopt.bench import devices, measurement

BATCH, FEATURES = 64, 1024
FLOPS = 2 * BATCH * FEATURES * FEATURES


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
        r = measurement.measure(path, device, {"iterations": iterations, "warmup": 10})
        out[f"{variant}_p50_ms"] = r["p50_ms"]
        out[f"{variant}_gflops"] = FLOPS / (r["p50_ms"] / 1e3) / 1e9
        out["cores"] = r["cores"]
    out["memory_bandwidth_gbs"] = memory_bandwidth_gbs()
    return out
