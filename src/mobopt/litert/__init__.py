"""TF-free floor over LiteRT: the interpreter, the one flatbuffer reader, FLOPs, the not-supported record.

The package face re-exports the interpreter helpers (``litert.interpreter(...)``,
``litert.describe(...)``); the other modules are imported by name.
"""

from mobopt.litert.interpreter import delegation, dequantize_output, describe, interpreter, quantize_input  # noqa: F401
