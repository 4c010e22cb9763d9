"""Per-operator time profile of an .onnx model from ONNX Runtime's own profiler (``enable_profiling``).

ONNX Runtime, unlike the LiteRT wheel, profiles inside its executor: each run writes one
``*_kernel_time`` event per graph node (after ONNX Runtime's own fusions, so the nodes are the
ones that really ran) and a ``model_run`` event, in a Chrome trace file.  This module runs the
model ``runs`` times after ``warmup`` under the profiler, on the thread count of the benchmark, and
sums each node's kernel time per op type, per run.

What the numbers are: shares of the executor's kernel time, as in the LiteRT op profile.  Absolute
times are inflated: the profiler collects memory statistics around every node, which on the paper
ViT made ``model_run`` about 3.7x the unprofiled latency, so the whole-model p50 of the benchmark is
recorded beside the sum and only the shares should be read.  Why not ``onnxruntime_perf_test``:
it is part of source builds, not of the wheel, and the wheel's ``onnxruntime.tools.onnxruntime_test``
cannot set a thread count (on one pinned core its default pool of several threads contends with itself).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

METHOD = "ONNX Runtime profiler (enable_profiling): in-graph kernel times per node, shares only"
#: What the benchmark says about a cross-check of ONNX Runtime variants (no independent timing tool exists).
NO_CROSSCHECK = ("no independent timing tool for ONNX Runtime in the wheel: onnxruntime_perf_test comes only with "
                 "source builds, onnxruntime_test cannot set threads, and the profiler adds per-node overhead")


def profile(model_path: str | Path, *, threads: int = 1, runs: int = 200, warmup: int = 20, seed: int = 0) -> dict[str, Any]:
    """The profile of ``model_path`` (see the module docstring); ``seed`` draws the random input."""
    import onnxruntime as ort

    from mobopt.onnxrt.session import io_details

    with tempfile.TemporaryDirectory(prefix="mobopt-ortprof-") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "profile")
        sess = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        (inp, *_), _ = io_details(sess)
        x = np.random.default_rng(seed).uniform(0, 255, size=inp["shape"]).astype(np.float32)
        t0 = time.perf_counter()
        for _ in range(warmup + runs):
            sess.run(None, {inp["name"]: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    run_events = [e for e in events if e.get("name") == "model_run"]
    if len(run_events) < warmup + runs:
        raise RuntimeError(f"{model_path}: the profiler recorded {len(run_events)} runs of {warmup + runs}")
    start = run_events[warmup]["ts"]  # kernel events of the warm-up runs come before the first counted run
    per_type: dict[str, list[int]] = defaultdict(list)
    nodes: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
            op = e.get("args", {}).get("op_name", "?")
            per_type[op].append(int(e["dur"]))
            nodes[e["name"]] = op
    total = sum(sum(v) for v in per_type.values()) or 1
    node_count: dict[str, int] = defaultdict(int)
    for op in nodes.values():
        node_count[op] += 1
    by_type = sorted(({"op": op, "delegated": None, "count": node_count[op], "total_us": sum(d) / runs,
                       "mean_us": sum(d) / runs / max(1, node_count[op]), "share": sum(d) / total}
                      for op, d in per_type.items()), key=lambda r: -r["total_us"])
    return {
        "method": METHOD,
        "runtime": "onnxruntime",
        "threads": threads,
        "runs": runs,
        "warmup": warmup,
        "by_type": by_type,
        "sum_us": total / runs,
        "profiled_run_p50_us": float(np.median([e["dur"] for e in run_events[warmup:]])),
        "ops_measured": len(nodes),
        "ops_failed": 0,
        "seconds": time.perf_counter() - t0,
    }
