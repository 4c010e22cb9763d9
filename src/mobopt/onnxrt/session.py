"""TF-free helpers around an ONNX Runtime inference session (``onnxruntime``), the counterpart of
:mod:`mobopt.litert.interpreter`.

Used by export (to describe a model), evaluation and benchmarking.  This module never imports
TensorFlow, for the same reason as the LiteRT side: a benchmark process must cost what an app costs.

Threads are pinned the way LiteRT's are: ``intra_op_num_threads`` is the device's thread count and
the graph runs sequentially (``inter_op_num_threads`` 1), so "1 thread" means one core on both
runtimes.  Everything else is ONNX Runtime's default (all graph optimisations, the CPU execution
provider, its spin-waiting thread pool), as an app that only sets the thread count would get.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError

#: ONNX tensor element types (onnx.TensorProto) -> numpy names, for the description (no onnx import needed at run time).
_ELEMENT_TYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
                  10: "float16", 11: "float64", 16: "bfloat16"}
#: Session input/output type strings -> numpy dtypes.
_SESSION_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
                  "tensor(int8)": np.int8, "tensor(int32)": np.int32, "tensor(int64)": np.int64}


def _name(model: str | os.PathLike | bytes) -> str:
    return "<model bytes>" if isinstance(model, bytes) else str(model)


def session(model: str | os.PathLike | bytes, *, threads: int = 1):
    """An inference session on the CPU execution provider with ``threads`` intra-op threads, run sequentially."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: its warnings about unused initializers are not the user's business
    try:
        return ort.InferenceSession(model if isinstance(model, bytes) else str(model), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise MobOptError(f"{_name(model)}: ONNX Runtime cannot load it ({exc})") from exc


def io_details(sess) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inputs and outputs as ``{name, shape, dtype}`` (a dynamic dimension is 1: our models run at batch 1)."""
    def one(arg):
        shape = [d if isinstance(d, int) else 1 for d in arg.shape]
        return {"name": arg.name, "shape": shape, "dtype": np.dtype(_SESSION_TYPES.get(arg.type, np.float32)).name}

    return [one(a) for a in sess.get_inputs()], [one(a) for a in sess.get_outputs()]


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Size raw and gzip, op histogram (the ONNX graph's nodes, before ONNX Runtime's fusions), initializer
    dtypes, and inputs/outputs: the fields :func:`mobopt.litert.describe` gives a .tflite, where they exist."""
    import onnx

    data = Path(path).read_bytes()
    graph = onnx.load_from_string(data).graph
    ops = Counter(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}" for node in graph.node)
    dtypes = Counter(_ELEMENT_TYPES.get(t.data_type, str(t.data_type)) for t in graph.initializer)
    inputs, outputs = io_details(session(data))
    return {
        "size_bytes": len(data),
        "size_gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
        "op_histogram": dict(sorted(ops.items())),
        "op_count": int(sum(ops.values())),
        "tensor_dtypes": dict(sorted(dtypes.items())),
        "inputs": [{**d, "scale": [], "zero_point": []} for d in inputs],
        "outputs": [{**d, "scale": [], "zero_point": []} for d in outputs],
    }


def predict(model: str | os.PathLike | bytes, x: np.ndarray, threads: int = 1, *, progress=None) -> np.ndarray:
    """Output probabilities, one image at a time (batch 1, as an app and the LiteRT loop run it).

    The exported models take raw float pixels and normalise inside, like the .tflite files, and a QDQ
    model quantizes inside its graph, so no input needs quantizing here."""
    sess = session(model, threads=threads)
    (inp, *_), (out, *_) = io_details(sess)
    shape = tuple(inp["shape"][1:])
    if tuple(x.shape[1:]) != shape:
        shown = "x".join(map(str, shape)), "x".join(str(int(d)) for d in x.shape[1:])
        raise MobOptError(f"{_name(model)}: the model takes images of {shown[0]} but the data has {shown[1]}; "
                          "export the model trained on this dataset")
    probs = np.empty((len(x), out["shape"][-1]), dtype=np.float32)
    run, feed = sess.run, inp["name"]
    for i in range(len(x)):
        probs[i] = run(None, {feed: np.asarray(x[i: i + 1], np.float32)})[0][0]
        if progress is not None:
            progress.advance()
    return probs
