"""Convert a trained Keras model to one .tflite variant and describe the result.

The model is re-wrapped with a batch-1 ``keras.Input``: a phone classifies
one image at a time, and a fixed batch lets the converter fold shapes.  Beside
the .tflite goes a JSON with size (raw and gzip, the download size), the op
histogram, the Keras layer histogram (to see what conversion fused away), the
input/output dtypes and quantization parameters, and provenance.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import litert, provenance, variants
from mobopt.atomic import write_bytes, write_json
from mobopt.datasets import load_meta, load_split

log = logging.getLogger(__name__)

CONVERT_DEFAULTS: dict[str, Any] = {"representative_samples": 500}


@contextlib.contextmanager
def stdout_to_stderr():
    """Send file descriptor 1 (Python and C++ writes alike) to stderr for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def representative_images(prepared: Path, n: int, seed: int) -> np.ndarray:
    """``n`` training images chosen by ``seed`` (calibration must not see the test split)."""
    x, _ = load_split(prepared, "train")
    idx = np.random.default_rng(seed).permutation(len(x))[: min(n, len(x))]
    return x[np.sort(idx)].astype(np.float32)


def convert(model_path: str | Path, prepared: str | Path, variant: str, out_tflite: str | Path,
            out_json: str | Path, options: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    opts = {**CONVERT_DEFAULTS, **(options or {})}
    spec = variants.get(variant)
    from mobopt.train import configure_tensorflow

    tf = configure_tensorflow(seed, 1)
    import keras

    from mobopt import models

    model = models.load(model_path)
    inputs = keras.Input(model.input_shape[1:], batch_size=1, name="image")
    wrapped = keras.Model(inputs, model(inputs), name=model.name)
    images = representative_images(Path(prepared), opts["representative_samples"], seed) \
        if spec.needs_representative_data else None

    def representative():
        for img in images:
            yield [img[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(wrapped)
    spec.configure(tf, converter, representative, opts)
    t0 = time.perf_counter()
    with stdout_to_stderr():  # the converter prints every captured tensor on stdout
        data = converter.convert()
    seconds = time.perf_counter() - t0
    write_bytes(out_tflite, data)
    info = {
        "variant": variant,
        "description": spec.description,
        "source_model": str(model_path),
        "conversion_seconds": seconds,
        "representative_samples": None if images is None else int(len(images)),
        "keras_parameters": int(model.count_params()),
        "keras_layer_histogram": dict(sorted(Counter(type(layer).__name__ for layer in model.layers).items())),
        **litert.describe(out_tflite),
        "provenance": provenance.collect(seed=seed, dataset=load_meta(prepared)),
    }
    write_json(out_json, info)
    return info
