"""TensorFlow set-up shared by every stage that runs it: seeds, determinism, threads, quiet stdout.

One place, so training, conversion, pruning, sensitivity and evaluation all
start TensorFlow the same way (the same seed gives the same bytes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

log = logging.getLogger(__name__)


def configure_tensorflow(seed: int, threads: int):
    """Seed everything, enable op determinism and pin thread counts (before any TF op runs)."""
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # runtime already initialised in this process (tests): keep its settings
        log.warning("TensorFlow already initialised; thread counts not changed")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return tf


def device_info(tf) -> dict:
    """Which device TensorFlow computes on, for training logs and metrics.json.

    TensorFlow places ops on the first GPU it sees, else on the CPU; a GPU it
    cannot see (no CUDA wheels: ``pip install -e ".[gpu]"``, docs/gpu.md) is not
    used, however many the scheduler granted.
    """
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for gpu in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name)
        except (RuntimeError, ValueError):  # details are best effort; the device itself is what matters
            names.append(gpu.name)
    logical = [d.name for d in tf.config.list_logical_devices()]
    return {
        "device": "/GPU:0" if gpus else "/CPU:0",
        "device_name": names[0] if gpus else "CPU",
        "gpu_visible": bool(gpus),
        "gpus": names,
        "logical_devices": logical,
        "cuda_build": bool(tf.test.is_built_with_cuda()),
    }


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
