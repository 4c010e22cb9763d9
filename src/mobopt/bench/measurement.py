"""One latency, memory and CPU measurement of one .tflite or .onnx model on a host device, in this process.

This is the innermost layer of the benchmark protocol (:mod:`mobopt.bench.protocol`
runs it in a fresh process per measurement and repeats, interleaves and
aggregates).  It imports no TensorFlow (checked and recorded as
``tensorflow_imported``), so memory and load time are those of an app.

What one measurement does, after LiteRT's ``benchmark_model``:

* pin the process to the device's cores (before anything is loaded);
* load the model, timed (``load_ms``: interpreter construction plus tensor
  allocation, the first load of this process: a cold start of the runtime's
  model path, though the file itself may be in the page cache), with the
  resident memory before and after (``rss_delta_mb``: what the model costs);
* one first inference, timed separately (it includes lazy delegate set-up);
* ``warmup`` untimed runs;
* timed ``invoke()`` calls on a fixed random input until at least
  ``iterations`` runs *and* ``min_seconds`` have passed (MLPerf's floor, 0 =
  off), but never longer than ``max_seconds``; each run's latency is kept;
* CPU % = process CPU time over wall time during the timed runs (100 % = one
  core busy throughout), and the process's peak resident memory (``VmHWM``).

An .onnx model runs the same loop under ONNX Runtime (:class:`_OrtRunner`): the session's
construction is the load, ``run_with_iobinding`` the invoke.

``load_only`` stops after the timed load: the protocol uses it for extra
cold-load samples, which are cheap.
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

from mobopt import litert
from mobopt.bench import devices, stats
from mobopt.common import provenance
from mobopt.common.atomic import write_json
from mobopt.onnxrt.session import io_details

log = logging.getLogger(__name__)

BENCH_DEFAULTS: dict[str, Any] = {"iterations": 1200, "warmup": 50, "min_seconds": 0.0, "max_seconds": 600.0, "seed": 0}


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


def random_input(detail: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """A random tensor for an input: the full range of an integer type, 0..255 (raw pixels) for floats."""
    dtype = np.dtype(detail["dtype"])
    shape = tuple(detail["shape"])
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.uniform(0, 255, size=shape).astype(dtype)


class _OrtRunner:
    """An ONNX Runtime session behind the interpreter's calls the loop uses (``set_tensor``, ``invoke``).

    The input and output are bound once (I/O binding, output buffer allocated by the session), so
    ``invoke`` is ``run_with_iobinding``: no feed dictionary is built and no output copied per run,
    which is what LiteRT's ``invoke()`` costs too."""

    def __init__(self, model_path: str | Path, threads: int):
        from mobopt import onnxrt

        self.session = onnxrt.session(model_path, threads=threads)
        self.inputs, self.outputs = io_details(self.session)
        self.binding = self.session.io_binding()
        for out in self.outputs:
            self.binding.bind_output(out["name"])
        self._held: list[np.ndarray] = []

    def get_input_details(self) -> list[dict[str, Any]]:
        return [{"index": d["name"], "shape": d["shape"], "dtype": d["dtype"]} for d in self.inputs]

    def set_tensor(self, name: str, value: np.ndarray) -> None:
        value = np.ascontiguousarray(value)
        self._held.append(value)  # the binding points into the array: keep it alive
        self.binding.bind_cpu_input(name, value)

    def invoke(self) -> None:
        self.session.run_with_iobinding(self.binding)


def measure(model_path: str | Path, device: str, options: dict[str, Any] | None = None, *,
            load_only: bool = False) -> dict[str, Any]:
    """One measurement in this process; see the module docstring for the protocol."""
    opts = {**BENCH_DEFAULTS, **(options or {})}
    started = time.time()
    dev = devices.get(device)
    if dev.kind != "host":
        raise devices.DeviceError(f"device {device}: in-process measurement is for host devices; "
                                  f"{dev.kind} devices are measured by mobopt.bench.android")
    cores = dev.apply()
    rng = np.random.default_rng(opts["seed"])
    onnx = str(model_path).endswith(".onnx")
    t0 = time.perf_counter()
    if onnx:
        import onnxruntime  # noqa: F401  (the runtime library, loaded before the timed load)
    else:
        import ai_edge_litert.interpreter  # noqa: F401
    import_ms = (time.perf_counter() - t0) * 1e3
    rss_before = _rss_mb()

    t0 = time.perf_counter()
    it = _OrtRunner(model_path, dev.threads) if onnx else litert.interpreter(model_path, threads=dev.threads)
    load_ms = (time.perf_counter() - t0) * 1e3
    rss_loaded = _rss_mb()
    result: dict[str, Any] = {
        "model": str(model_path), "runtime": "onnxruntime" if onnx else "litert", "device": device,
        "threads": dev.threads, "cores": cores,
        "import_ms": import_ms, "load_ms": load_ms, "rss_before_load_mb": rss_before,
        "rss_after_load_mb": rss_loaded, "rss_delta_mb": rss_loaded - rss_before,
    }
    if load_only:
        return {**result, "peak_rss_mb": peak_rss_mb(), "tensorflow_imported": "tensorflow" in sys.modules,
                "started_unix": started, "finished_unix": time.time()}

    for detail in it.get_input_details():
        it.set_tensor(detail["index"], random_input(detail, rng))
    t0 = time.perf_counter()
    it.invoke()
    first_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(opts["warmup"]):
        it.invoke()

    n_min, min_ns, max_ns = int(opts["iterations"]), opts["min_seconds"] * 1e9, opts["max_seconds"] * 1e9
    lat = np.empty(max(n_min, 1024), dtype=np.int64)
    invoke, clock = it.invoke, time.perf_counter_ns
    n = 0
    cpu0, wall0 = time.process_time(), clock()
    now = wall0
    while (n < n_min or now - wall0 < min_ns) and now - wall0 <= max_ns:
        s = clock()
        invoke()
        now = clock()
        if n == len(lat):
            lat = np.resize(lat, 2 * len(lat))
        lat[n] = now - s
        n += 1
    wall = (clock() - wall0) / 1e9
    cpu = time.process_time() - cpu0
    latencies = lat[:n] / 1e6
    return {
        **result,
        "first_inference_ms": first_ms,
        "warmup": opts["warmup"],
        "iterations": n,
        "stopped_by": "max_seconds" if n < n_min or (now - wall0 < min_ns) else "iterations_and_min_seconds",
        **stats.summarize(latencies),
        "cpu_percent": 100.0 * cpu / wall if wall > 0 else 0.0,
        "wall_seconds": wall,
        "peak_rss_mb": peak_rss_mb(),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "started_unix": started,
        "finished_unix": time.time(),
        "latencies_ms": latencies.round(6).tolist(),
    }


def measure_to_file(model_path: str | Path, device: str, out_json: str | Path, options: dict[str, Any] | None = None,
                    *, load_only: bool = False) -> dict[str, Any]:
    """:func:`measure`, written atomically to ``out_json`` with provenance (what ``python -m mobopt bench-run`` does)."""
    result = measure(model_path, device, options, load_only=load_only)
    result["provenance"] = provenance.collect(seed=(options or {}).get("seed", 0), threads=result["threads"])
    write_json(out_json, result)
    if load_only:
        log.info("%s on %s: load %.2f ms", model_path, device, result["load_ms"])
    else:
        log.info("%s on %s: %d runs, p50 %.4f ms p95 %.4f ms, load %.2f ms, peak RSS %.0f MB", model_path, device,
                 result["iterations"], result["p50_ms"], result["p95_ms"], result["load_ms"], result["peak_rss_mb"])
    return result
