"""Per-operator time profile of a .tflite model on the host, from isolated single-op models.

Why this exists: LiteRT's C++ ``benchmark_model --enable_op_profiling``
prints a per-op profile, but the ai-edge-litert Python wheel exposes no
profiler (its ``benchmark_litert_model`` tool reports whole-model latency
only, and the C API's profiler needs runtime options the library does not
export).  To still explain *why* a variant is fast or slow on this CPU, each
operator of the model is cut out into a model of its own (same operator code
and options, same tensors with their types, shapes and quantization, same
constant weights) with the ``ai_edge_litert.tools.flatbuffer_utils`` object
API, fed the real intermediate values of one reference inference of the full
model, and timed with the same interpreter, delegate and thread count as the
benchmark.  Each op also says whether XNNPACK took it when alone.

What the numbers are and are not: the time of one op run alone, median of
``runs`` invocations.  They include the per-``invoke()`` overhead (about a
microsecond or two) and miss cross-op effects (cache reuse, XNNPACK's fusion
inside a partition), so their sum is usually somewhat above the whole-model
latency; the profile is for shares (which op types dominate, and whether they
ran on XNNPACK or on LiteRT's builtin kernels), not for exact sums.  The
whole-model p50 is recorded beside the sum so the reader can judge.  On an
Android device the real in-graph profile of ``benchmark_model`` is used
instead (:mod:`mobopt.bench.benchmark_model`).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.litert import flatbuffer

log = logging.getLogger(__name__)

METHOD = ("isolated single-op models: each operator cut out with its tensors and constant weights, fed the "
          "intermediate values of a reference inference, timed alone with the benchmark's interpreter, delegate "
          "and threads (median of the runs)")


def single_op_models(model_bytes: bytes) -> list[dict[str, Any]]:
    """One entry per operator of subgraph 0: ``index``, ``op``, ``inputs`` (original tensor indices fed at run
    time, in the order of the new model's inputs) and ``model`` (bytes of the one-op model)."""
    model = flatbuffer.read(model_bytes)
    if not model.subgraphs:
        raise MobOptError("the model has no subgraph")
    sg = model.subgraphs[0]
    out = []
    for i, op in enumerate(sg.operators):
        name = flatbuffer.op_name(model, op, unknown=f"op{model.operatorCodes[op.opcodeIndex].builtinCode}")
        used = list(dict.fromkeys(t for t in [*op.inputs, *op.outputs] if t >= 0))
        remap = {t: j for j, t in enumerate(used)}
        buffers = [flatbuffer.schema().BufferT()]
        tensors = []
        for t in used:
            tensor = copy.copy(sg.tensors[t])
            if flatbuffer.is_constant(model, sg.tensors[t]):
                buffers.append(model.buffers[tensor.buffer])
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
            tensors.append(tensor)
        feeds = [t for t in dict.fromkeys(op.inputs) if t >= 0 and not flatbuffer.is_constant(model, sg.tensors[t])]
        one = copy.copy(model)
        one.buffers = buffers
        one.signatureDefs = []
        sub = copy.copy(sg)
        new_op = copy.copy(op)
        new_op.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
        new_op.outputs = [remap[t] for t in op.outputs]
        new_op.intermediates = [] if op.intermediates is None else [remap.get(t, -1) for t in op.intermediates]
        sub.tensors, sub.operators = tensors, [new_op]
        sub.inputs = [remap[t] for t in feeds]
        sub.outputs = [remap[t] for t in op.outputs if t >= 0]
        one.subgraphs = [sub]
        out.append({"index": i, "op": name, "inputs": feeds, "model": flatbuffer.write(one)})
    return out


def reference_tensors(model_bytes: bytes, seed: int = 0) -> Any:
    """An interpreter holding every intermediate tensor of one inference on a seeded random input."""
    from ai_edge_litert.interpreter import Interpreter

    from mobopt.bench.measurement import random_input

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging": that is what it is used for here
        ref = Interpreter(model_content=model_bytes, experimental_preserve_all_tensors=True)
    ref.allocate_tensors()
    rng = np.random.default_rng(seed)
    for detail in ref.get_input_details():
        ref.set_tensor(detail["index"], random_input(detail, rng))
    ref.invoke()
    return ref


def time_op(entry: dict[str, Any], ref, threads: int, runs: int, warmup: int) -> dict[str, Any]:
    """Median and p90 time of one single-op model, and whether XNNPACK took it."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=entry["model"], num_threads=threads)
    it.allocate_tensors()
    for detail, tensor in zip(it.get_input_details(), entry["inputs"], strict=True):
        it.set_tensor(detail["index"], ref.get_tensor(tensor))
    delegated = any(op["op_name"] == "DELEGATE" for op in it._get_ops_details())
    for _ in range(warmup):
        it.invoke()
    invoke, clock = it.invoke, time.perf_counter_ns
    lat = np.empty(runs, dtype=np.int64)
    for k in range(runs):
        s = clock()
        invoke()
        lat[k] = clock() - s
    return {"delegated": delegated, "median_us": float(np.median(lat)) / 1e3,
            "p90_us": float(np.percentile(lat, 90)) / 1e3}


def summarize_ops(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (op type, delegated): count, total and mean time, share of the measured total; largest first."""
    groups: dict[tuple[str, bool], list[float]] = defaultdict(list)
    for op in ops:
        if op.get("median_us") is not None:
            groups[op["op"], bool(op["delegated"])].append(op["median_us"])
    total = sum(sum(v) for v in groups.values()) or 1.0
    rows = [{"op": name, "delegated": deleg, "count": len(v), "total_us": float(sum(v)), "mean_us": float(np.mean(v)),
             "share": float(sum(v) / total)} for (name, deleg), v in groups.items()]
    return sorted(rows, key=lambda r: -r["total_us"])


def profile(model_path: str | Path, *, threads: int = 1, runs: int = 200, warmup: int = 20,
            seed: int = 0) -> dict[str, Any]:
    """Isolated per-op profile of ``model_path`` (see the module docstring)."""
    data = Path(model_path).read_bytes()
    try:
        ref = reference_tensors(data, seed)
    except (ValueError, RuntimeError) as exc:
        raise MobOptError(f"{model_path}: LiteRT cannot run it for the op profile ({exc})") from exc
    ops = []
    t0 = time.perf_counter()
    for entry in single_op_models(data):
        row: dict[str, Any] = {"index": entry["index"], "op": entry["op"]}
        try:
            row.update(time_op(entry, ref, threads, runs, warmup))
        except (ValueError, RuntimeError) as exc:  # an op that cannot run alone: say so, keep the others
            row.update(delegated=None, median_us=None, p90_us=None, error=str(exc).splitlines()[0][:200])
        ops.append(row)
    measured = [op["median_us"] for op in ops if op.get("median_us") is not None]
    return {
        "method": METHOD,
        "threads": threads,
        "runs": runs,
        "warmup": warmup,
        "ops": ops,
        "by_type": summarize_ops(ops),
        "sum_us": float(sum(measured)),
        "ops_measured": len(measured),
        "ops_failed": len(ops) - len(measured),
        "seconds": time.perf_counter() - t0,
    }
