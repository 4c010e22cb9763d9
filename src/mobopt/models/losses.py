"""Cross-entropy against integer labels with label smoothing (Szegedy et al., 2016).

Keras 3 gives ``label_smoothing`` only to ``CategoricalCrossentropy`` (one-hot targets), while our input
pipeline yields integer labels (the prepared splits store them so, and the ``accuracy`` metric and the
distillation target expect them).  This loss one-hots the labels inside and hands them to Keras' own
categorical cross-entropy, so the smoothing is Keras': the target is ``(1 - e) * one_hot + e / K``.
It is registered so a training checkpoint, which is saved compiled, loads again on resume.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mobopt")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy of integer labels, one-hot encoded and smoothed by ``label_smoothing``."""

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        one_hot = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype="float32")
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
