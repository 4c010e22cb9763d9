"""TF-free helpers around the LiteRT interpreter (``ai_edge_litert``).

Used by conversion (to describe a model), evaluation and benchmarking.  This
module must never import TensorFlow: benchmarks run in processes whose memory
and start-up are those of an app, not of a training framework.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError


def interpreter(model: str | os.PathLike | bytes, *, threads: int = 1, delegates: bool = True):
    """Create and allocate an interpreter; ``delegates=False`` disables the default XNNPACK delegate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs: dict[str, Any] = {"num_threads": threads}
    if not delegates:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        if isinstance(model, bytes):
            it = Interpreter(model_content=model, **kwargs)
        else:
            it = Interpreter(model_path=str(model), **kwargs)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise MobOptError(f"{model if not isinstance(model, bytes) else '<model bytes>'}: LiteRT cannot load it ({exc})") from exc
    return it


def _quant(detail: dict[str, Any]) -> dict[str, Any]:
    qp = detail.get("quantization_parameters", {})
    scales = np.asarray(qp.get("scales", []), dtype=float)
    zps = np.asarray(qp.get("zero_points", []), dtype=int)
    return {
        "name": detail["name"], "shape": [int(d) for d in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
        "scale": scales.tolist(), "zero_point": zps.tolist(),
    }


def delegation(model: str | os.PathLike | bytes, *, threads: int = 1) -> dict[str, Any]:
    """Which nodes the default delegate (XNNPACK) takes, and in how many partitions.

    The interpreter's node list keeps every original node after delegation and
    appends one ``DELEGATE`` node per partition, so it cannot say which nodes
    were taken.  With ``experimental_disable_delegate_node_fusion`` every
    delegated node becomes its own one-node partition with the node's own
    outputs, which identifies them exactly; the partition count comes from the
    normal (fused) interpreter.  A node left out runs on LiteRT's builtin
    kernels, with a hand-over (and often a QUANTIZE/DEQUANTIZE pair) at each
    partition boundary: the usual reason a quantized model is slower than its
    float original on a CPU.
    """
    from ai_edge_litert.interpreter import Interpreter

    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    fused = interpreter(data, threads=threads)
    partitions = sum(op["op_name"] == "DELEGATE" for op in fused._get_ops_details())
    try:
        single = Interpreter(model_content=data, num_threads=threads, experimental_disable_delegate_node_fusion=True)
        single.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise MobOptError(f"{model if not isinstance(model, bytes) else '<model bytes>'}: LiteRT cannot load it ({exc})") from exc
    ops = single._get_ops_details()
    delegate_outputs = {tuple(op["outputs"]) for op in ops if op["op_name"] == "DELEGATE"}
    nodes = [op for op in ops if op["op_name"] != "DELEGATE"]
    left = [op for op in nodes if tuple(op["outputs"]) not in delegate_outputs]
    return {
        "delegate": "XNNPACK (LiteRT's default CPU delegate)",
        "nodes": len(nodes),
        "delegated_nodes": len(nodes) - len(left),
        "coverage": (len(nodes) - len(left)) / len(nodes) if nodes else 0.0,
        "partitions": int(partitions),
        "undelegated_ops": dict(sorted(Counter(op["op_name"] for op in left).items())),
        "undelegated_nodes": [int(op["index"]) for op in left],
    }


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Size raw and gzip, op histogram (before delegation), delegate coverage, I/O dtypes and quantization."""
    data = Path(path).read_bytes()
    plain = interpreter(data, delegates=False)
    ops = Counter(op["op_name"] for op in plain._get_ops_details())
    from mobopt.litert import flops

    coverage = delegation(data)
    tensor_types = Counter(np.dtype(t["dtype"]).name for t in plain.get_tensor_details())
    return {
        "size_bytes": len(data),
        "size_gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
        "op_histogram": dict(sorted(ops.items())),
        "op_count": int(sum(ops.values())),
        "xnnpack_partitions": coverage["partitions"],
        "delegation": coverage,
        "tensor_dtypes": dict(sorted(tensor_types.items())),
        "compute": flops.count(path),
        "inputs": [_quant(d) for d in plain.get_input_details()],
        "outputs": [_quant(d) for d in plain.get_output_details()],
    }


def quantize_input(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Map real values to the input tensor's type: q = round(x / scale) + zero_point (identity for float)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype)
    scale, zero = detail["quantization"]
    if scale == 0:
        raise MobOptError(f"input tensor {detail['name']} is {dtype.name} but has no quantization scale")
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale) + zero, info.min, info.max).astype(dtype)


def dequantize_output(q: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """Map the output tensor back to real values: real = (q - zero_point) * scale."""
    if np.dtype(detail["dtype"]).kind == "f":
        return q.astype(np.float32)
    scale, zero = detail["quantization"]
    return (q.astype(np.float32) - zero) * scale
