"""The two GEMM models whose speed is this CPU's roofline ceiling (:mod:`mobopt.bench.peak`).

A batch-64 1024x1024 ``FULLY_CONNECTED`` layer, converted with the variant
registry's own ``float32`` and ``int8`` settings, so the ceiling is measured
on exactly the kind of file the study benchmarks.  Needs TensorFlow, which is
why it lives here and not beside the TF-free measurement.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mobopt.bench.peak import BATCH, FEATURES
from mobopt.common.atomic import write_bytes
from mobopt.optimize import variants


def build_models(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write ``fc_float32.tflite`` and ``fc_int8.tflite`` (one GEMM each) into ``out_dir``."""
    from mobopt.models.runtime import configure_tensorflow, stdout_to_stderr

    tf = configure_tensorflow(seed, 1)
    import keras

    inputs = keras.Input((FEATURES,), batch_size=BATCH)
    model = keras.Model(inputs, keras.layers.Dense(FEATURES)(inputs))
    rng = np.random.default_rng(seed)
    calibration = rng.standard_normal((8, BATCH, FEATURES)).astype(np.float32)
    out = {}
    for variant in ("float32", "int8"):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        variants.get(variant).configure(tf, converter, lambda: ([x] for x in calibration), {})
        with stdout_to_stderr():
            data = converter.convert()
        out[variant] = Path(out_dir) / f"fc_{variant}.tflite"
        write_bytes(out[variant], data)
    return out
