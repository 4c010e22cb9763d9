"""Emulates LiteRT's ``benchmark_model`` tool for tests: same flags, real inference, the tool's log format.

The real tool for a phone is an arm64 Android binary that cannot run here.
This one takes its flags (``--graph``, ``--num_threads``, ``--num_runs``,
``--min_secs``, ``--max_secs``, ``--warmup_runs``, ``--warmup_min_secs``,
``--dry_run``, ``--enable_op_profiling``), really runs the model with LiteRT
(ai-edge-litert), and prints what ``tflite/tools/benchmark`` prints:
``Initialized session in ...``, per phase ``Running benchmark for at least ...``
and a ``count=... first=... curr=... min=... max=... avg=... std=... p5=...
median=... p95=...`` line in microseconds with nearest-rank percentiles, the
inference-timings and memory lines, and with op profiling the ``Run Order``
and ``Summary by node type`` tables (per-op times from mobopt.bench.opprofile).
"""

import os
import sys
import time
from pathlib import Path

import numpy as np


def log(text: str) -> None:
    print("INFO: " + text, flush=True)


def stats_line(times: list[int]) -> str:
    v = sorted(times)

    def pct(p: int) -> int:
        return v[len(v) * p // 100]

    return (f"count={len(times)} first={times[0]} curr={times[-1]} min={v[0]} max={v[-1]} avg={np.mean(times):g} "
            f"std={int(np.std(times))} p5={pct(5)} median={pct(50)} p95={pct(95)}")


def rss_mb() -> float:
    """Resident memory from /proc/self/statm, as the tool's profiling::memory::GetMemoryUsage does on Linux."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def phase(it, n: int, min_s: float, max_s: float) -> list[int]:
    log(f"Running benchmark for at least {n} iterations and at least {min_s:g} seconds but terminate if "
        f"exceeding {max_s:g} seconds.")
    times: list[int] = []
    start = time.perf_counter()
    while (len(times) < n or time.perf_counter() - start < min_s) and time.perf_counter() - start <= max_s:
        s = time.perf_counter()
        it.invoke()
        times.append(int((time.perf_counter() - s) * 1e6))
    log(stats_line(times) if times else "count=0 curr=0")
    print()
    return times


def op_tables(graph: str, threads: int) -> None:
    from mobopt.bench import opprofile

    prof = opprofile.profile(graph, threads=threads, runs=20, warmup=2)
    total = sum(o["median_us"] for o in prof["ops"]) / 1e3
    columns = ("node type", "start", "first", "avg ms", "%", "cdf%", "mem KB", "times called", "Name")
    print("Operator-wise Profiling Info for Regular Benchmark Runs:")
    print("============================== Run Order ==============================")
    print("\t" + "\t".join(f"[{c}]" for c in columns))
    start = cdf = 0.0
    for o in prof["ops"]:
        ms = o["median_us"] / 1e3
        cdf += ms / total * 100
        cells = (f"{o['op']:>24}", f"{start:9.3f}", f"{ms:9.3f}", f"{ms:9.3f}", f"{ms / total * 100:7.3f}%",
                 f"{cdf:7.3f}%", f"{0:10.3f}", f"{1:9d}", f"[node_{o['index']}]")
        print("\t" + "\t".join(cells))
        start += ms
    print()
    print("============================== Summary by node type ==============================")
    print("\t" + "\t".join(f"[{c}]" for c in ("Node type", "count", "avg ms", "avg %", "cdf %", "mem KB", "times called")))
    cdf = 0.0
    for r in prof["by_type"]:
        cdf += r["share"] * 100
        cells = (f"{r['op']:>24}", f"{r['count']:9d}", f"{r['total_us'] / 1e3:9.3f}", f"{r['share'] * 100:9.3f}%",
                 f"{cdf:9.3f}%", f"{0:10.3f}", f"{r['count']:9d}")
        print("\t" + "\t".join(cells))
    print()


def main() -> int:
    flags = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
    log("STARTING!")
    graph = flags.get("graph", "")
    log(f"Graph: [{graph}]")
    if not os.path.isfile(graph):
        print(f"ERROR: Failed to mmap model {graph}")
        return 1
    from ai_edge_litert.interpreter import Interpreter

    threads = max(int(flags.get("num_threads", "1")), 1)
    start_mb = rss_mb()
    t0 = time.perf_counter()
    try:
        it = Interpreter(model_path=graph, num_threads=threads)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        print(f"ERROR: Failed to load model {graph}: {exc}")
        print("ERROR: Benchmarking failed.")
        return 1
    init_us = (time.perf_counter() - t0) * 1e6
    init_mb = rss_mb() - start_mb
    log(f"Loaded model {graph}")
    log(f"The input model file size (MB): {os.path.getsize(graph) / 1e6:g}")
    log(f"Initialized session in {init_us / 1e3:g}ms.")
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        dt = np.dtype(d["dtype"])
        x = rng.integers(-128, 128, d["shape"]) if dt.kind in "iu" else rng.uniform(-1, 1, d["shape"])
        it.set_tensor(d["index"], x.astype(dt))
    dry = flags.get("dry_run") == "true"
    max_s = float(flags.get("max_secs", "150"))
    warm = phase(it, 0 if dry else int(flags.get("warmup_runs", "1")),
                 -1 if dry else float(flags.get("warmup_min_secs", "0.5")), max_s)
    timed = phase(it, 0 if dry else int(flags.get("num_runs", "50")), -1 if dry else float(flags.get("min_secs", "1")), max_s)
    if flags.get("enable_op_profiling") == "true" and timed:
        op_tables(graph, threads)
    log(f"Inference timings in us: Init: {int(init_us)}, First inference: {warm[0] if warm else 0}, "
        f"Warmup (avg): {np.mean(warm) if warm else 0:g}, Inference (avg): {np.mean(timed) if timed else 0:g}")
    log("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the "
        "actual memory footprint of the model at runtime. Take the information at your discretion.")
    log(f"Memory footprint delta from the start of the tool (MB): init={init_mb:g} overall={rss_mb() - start_mb:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
