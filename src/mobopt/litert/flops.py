"""How much arithmetic and data one inference of a .tflite model takes, read from its graph.

For the roofline-style figure: achieved GFLOP/s = FLOPs / latency, set against
this CPU's measured peak.  Counted from the flatbuffer (TF-free), per operator:

* multiply-accumulates of the compute-bound ops, 2 FLOPs each:
  ``CONV_2D`` (output elements x kernel height x width x input channels),
  ``DEPTHWISE_CONV_2D`` (output elements x kernel height x width),
  ``FULLY_CONNECTED`` (output elements x input features) and
  ``BATCH_MATMUL`` (output elements x the contracted dimension);
* one FLOP per output element for every other op (activations, normalisation,
  element-wise arithmetic): a deliberate lower bound, small next to the above;
* bytes: constant tensors (weights) once, plus every non-constant tensor
  written once and read once.  Arithmetic intensity = FLOPs / bytes is the
  roofline's x axis; it ignores cache reuse, so it is the pessimistic end.

Integer models count the same operations (as "ops" rather than floating-point
operations); the figure says so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mobopt.litert import flatbuffer

#: Bits per element of LiteRT's TensorType names (STRING, RESOURCE, VARIANT have none: counted as 4 bytes).
_TYPE_BITS = {"FLOAT32": 32, "FLOAT16": 16, "BFLOAT16": 16, "FLOAT64": 64, "INT64": 64, "INT32": 32, "INT16": 16,
              "INT8": 8, "INT4": 4, "INT2": 2, "UINT64": 64, "UINT32": 32, "UINT16": 16, "UINT8": 8, "UINT4": 4,
              "BOOL": 8, "COMPLEX64": 64, "COMPLEX128": 128, "FLOAT8_E4M3FN": 8, "FLOAT8_E5M2": 8}


def _type_bytes() -> dict[int, float]:
    """Bytes per element by TensorType enum value, from the schema the wheel ships (never a typed-in number)."""
    return {value: _TYPE_BITS[name] / 8 for value, name in flatbuffer.tensor_type_names().items() if name in _TYPE_BITS}
_MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL")


def _shape(tensor) -> list[int]:
    return [int(d) for d in (tensor.shape if tensor.shape is not None else [])]


def count(model_path: str | Path) -> dict[str, Any]:
    """MACs, FLOPs, weight and activation bytes and arithmetic intensity of subgraph 0 of ``model_path``."""
    model = flatbuffer.read(model_path)
    type_bytes = _type_bytes()
    sg = model.subgraphs[0]
    macs = other = 0
    by_op: dict[str, int] = {}
    for op in sg.operators:
        name = flatbuffer.op_names().get(flatbuffer.builtin_code(model, op), "?")
        out = _shape(sg.tensors[op.outputs[0]]) if len(op.outputs) else []
        n_out = math.prod(out) if out else 0
        ins = [_shape(sg.tensors[t]) if t >= 0 else [] for t in op.inputs]
        m = 0
        if name == "CONV_2D" and len(ins) > 1 and len(ins[1]) == 4:
            m = n_out * ins[1][1] * ins[1][2] * ins[1][3]
        elif name == "DEPTHWISE_CONV_2D" and len(ins) > 1 and len(ins[1]) == 4:
            m = n_out * ins[1][1] * ins[1][2]
        elif name == "FULLY_CONNECTED" and len(ins) > 1 and len(ins[1]) == 2:
            m = n_out * ins[1][1]
        elif name == "BATCH_MATMUL" and len(ins) > 1 and len(ins[0]) >= 2 and len(ins[1]) >= 2:
            a, b = ins[0], ins[1]
            k = a[-1] if a[-1] in (b[-2], b[-1]) else a[-2]  # adj_x transposes A
            m = n_out * k
        if m:
            macs += m
            by_op[name] = by_op.get(name, 0) + 2 * m
        else:
            other += n_out
    weight_bytes = activation_bytes = 0
    for tensor in sg.tensors:
        nbytes = math.prod(_shape(tensor) or [1]) * type_bytes.get(tensor.type, 4)
        if flatbuffer.is_constant(model, tensor):
            weight_bytes += nbytes
        else:
            activation_bytes += 2 * nbytes
    flops = 2 * macs + other
    return {
        "macs": int(macs),
        "flops": int(flops),
        "other_flops": int(other),
        "flops_by_op": by_op,
        "weight_bytes": int(weight_bytes),
        "activation_bytes": int(activation_bytes),
        "arithmetic_intensity": flops / max(weight_bytes + activation_bytes, 1),
    }
