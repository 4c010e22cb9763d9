"""Latency, memory and CPU benchmark of one .tflite model on one device.

Runs in its own process and imports no TensorFlow (checked and recorded as
``tensorflow_imported``), so the memory and load time are those of an app.
Protocol, after LiteRT's ``benchmark_model``: load the model (timed: the
interpreter's construction plus tensor allocation), one first inference
(timed separately: it includes lazy delegate setup), ``warmup`` untimed runs,
then ``iterations`` timed ``invoke()`` calls on a fixed random input of the
model's dtype (input content does not change the work these models do).
CPU % is process CPU time over wall time during the timed runs: 100 % means
one core busy throughout.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from mobopt import devices, litert, provenance
from mobopt.atomic import write_json

log = logging.getLogger(__name__)

BENCH_DEFAULTS: dict[str, Any] = {"iterations": 1200, "warmup": 50, "seed": 0}
PERCENTILES = (10, 50, 90, 95)


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory.

    Reads ``VmHWM`` from /proc: ``getrusage().ru_maxrss`` survives ``execve`` on
    Linux, so a benchmark started from a large parent (Snakemake, a TF process)
    would report the parent's peak instead of its own.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux and BSD


def _random_input(detail: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    shape = tuple(detail["shape"])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.uniform(0, 255, size=shape).astype(dtype)


def summarize(latencies_ms: np.ndarray) -> dict[str, float]:
    lat = np.asarray(latencies_ms, dtype=np.float64)
    out = {f"p{p}_ms": float(np.percentile(lat, p)) for p in PERCENTILES}
    out.update(mean_ms=float(lat.mean()), std_ms=float(lat.std(ddof=1)) if len(lat) > 1 else 0.0,
               min_ms=float(lat.min()), max_ms=float(lat.max()))
    return out


def run(model_path: str | Path, device: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    opts = {**BENCH_DEFAULTS, **(options or {})}
    started = time.time()
    dev = devices.get(device)
    cores = dev.apply()
    rng = np.random.default_rng(opts["seed"])
    rss_before = _rss_mb()

    t0 = time.perf_counter()
    it = litert.interpreter(model_path, threads=dev.threads)
    load_ms = (time.perf_counter() - t0) * 1e3
    rss_loaded = _rss_mb()

    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], _random_input(inp, rng))
    t0 = time.perf_counter()
    it.invoke()
    first_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(opts["warmup"]):
        it.invoke()

    n = int(opts["iterations"])
    lat = np.empty(n, dtype=np.float64)
    invoke, clock = it.invoke, time.perf_counter_ns
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        s = clock()
        invoke()
        lat[i] = clock() - s
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    lat /= 1e6

    return {
        "model": str(model_path),
        "device": device,
        "device_description": dev.description,
        "threads": dev.threads,
        "cores": cores,
        "iterations": n,
        "warmup": opts["warmup"],
        "load_ms": load_ms,
        "first_inference_ms": first_ms,
        **summarize(lat),
        "cpu_percent": 100.0 * cpu / wall,
        "wall_seconds": wall,
        "rss_before_load_mb": rss_before,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": peak_rss_mb(),
        "model_size_bytes": Path(model_path).stat().st_size,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "started_unix": started,
        "finished_unix": time.time(),
        "latencies_ms": lat.round(6).tolist(),
        "provenance": provenance.collect(seed=opts["seed"], threads=dev.threads),
    }


def benchmark(model_path: str | Path, device: str, out_json: str | Path, options: dict[str, Any] | None = None):
    result = run(model_path, device, options)
    write_json(out_json, result)
    log.info("%s on %s: p50 %.3f ms p95 %.3f ms load %.1f ms peak RSS %.0f MB", model_path, device,
             result["p50_ms"], result["p95_ms"], result["load_ms"], result["peak_rss_mb"])
    return result
