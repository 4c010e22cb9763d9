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
