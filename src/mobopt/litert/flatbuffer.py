"""The one reader (and writer) of the .tflite flatbuffer.

Every module that looks inside a .tflite file (FLOP counts, the per-op
profile's single-op models, fusion checks, weight sparsity, node reordering)
goes through here, so the schema, the builtin-code quirk and the definition
of a constant tensor exist once.  It wraps LiteRT's own
``ai_edge_litert.tools.flatbuffer_utils`` (as ai-edge-quantizer's
``tfl_flatbuffer_utils`` does) rather than parsing bytes by hand.  TF-free.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any


def schema():
    """LiteRT's generated schema module (``BuiltinOperator``, ``TensorType``, ``BufferT``...)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read(model: str | os.PathLike | bytes | bytearray) -> Any:
    """The model as LiteRT's mutable object tree (``ModelT``), from a path or the file's bytes."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    data = model if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
    return fb.read_model_from_bytearray(bytearray(data))


def write(model: Any) -> bytes:
    """Serialise an object tree from :func:`read` back to .tflite bytes."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    return bytes(fb.convert_object_to_bytearray(model))


@cache
def _enum_names(enum: str) -> dict[int, str]:
    return {v: k for k, v in vars(getattr(schema(), enum)).items() if not k.startswith("_") and isinstance(v, int)}


def op_names() -> dict[int, str]:
    """Builtin operator code -> name (``FULLY_CONNECTED``...)."""
    return _enum_names("BuiltinOperator")


def tensor_type_names() -> dict[int, str]:
    """TensorType code -> name (``FLOAT32``, ``INT8``...)."""
    return _enum_names("TensorType")


def activation_names() -> dict[int, str]:
    """ActivationFunctionType code -> name (``RELU6``...)."""
    return _enum_names("ActivationFunctionType")


def builtin_code(model: Any, op: Any) -> int:
    """An op's builtin code: files keep it in one of two fields (``deprecatedBuiltinCode`` below 127)."""
    code = model.operatorCodes[op.opcodeIndex]
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


def op_name(model: Any, op: Any, unknown: str = "?") -> str:
    """An op's type name; custom ops as ``CUSTOM:<name>``."""
    code = model.operatorCodes[op.opcodeIndex]
    if code.customCode:
        custom = code.customCode
        return f"CUSTOM:{custom.decode(errors='replace') if isinstance(custom, bytes) else custom}"
    return op_names().get(builtin_code(model, op), unknown)


def is_constant(model: Any, tensor: Any) -> bool:
    """Whether a tensor's values are stored in the file (weights, biases, quantization tables)."""
    buf = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    if buf is None:
        return False
    return (buf.data is not None and len(buf.data) > 0) or bool(getattr(buf, "size", 0))
