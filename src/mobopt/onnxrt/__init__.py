"""TF-free floor over ONNX Runtime, the second runtime beside LiteRT: sessions, model description, prediction.

The package face re-exports the session helpers (``onnxrt.session(...)``, ``onnxrt.describe(...)``).
"""

from mobopt.onnxrt.session import describe, predict, session  # noqa: F401
