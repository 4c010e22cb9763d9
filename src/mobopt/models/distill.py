"""Knowledge distillation (Hinton, Vinyals & Dean, 2015): a student trained on a teacher's softened outputs and the labels.

The loss of each image is

    alpha * CE(label, p_s)  +  (1 - alpha) * T^2 * KL(q_t || q_s),

where ``p_s`` is the student's output and ``q_t``, ``q_s`` are the teacher's and the student's
distributions softened by the temperature ``T``.  ``T^2`` keeps the soft term's gradients on the
scale of the hard term's whatever ``T`` is, as the paper prescribes.

Our models end in a softmax, so the logits are not at hand; they are not needed: for
``p = softmax(z)``, ``softmax(z / T) = softmax(log(p) / T)`` exactly, because ``log p`` differs
from ``z`` by a constant per image, which a softmax ignores.

How it fits the training loop (:func:`mobopt.models.train.train`, which stays the one loop with
seeds, checkpoints and resume): the teacher runs inside the input pipeline on the same augmented
batch the student sees, and its probabilities travel beside the label in the target tensor
(``[label, p_t(0..n-1)]``), so the saved checkpoint is an ordinary Keras model compiled with a
registered loss.  The reported ``accuracy`` is against the labels, and ``loss`` / ``val_loss``
are the distillation loss.  Written here because Keras 3 ships no distiller for ``fit`` (its
guide's ``Distiller`` subclasses the model, which our checkpoints and converters would then have
to know about).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

DISTILL_DEFAULTS: dict[str, Any] = {"temperature": 4.0, "alpha": 0.5}
#: floor of a probability before its log: far below any float32 softmax output that is not an underflow to 0,
#: so the softened distributions are the logits' own (a floor of 1e-7, Keras' epsilon, bends them)
TINY = 1e-30


def _log(p):
    return ops.log(ops.clip(p, TINY, 1.0))


def _soften(probs, temperature: float):
    return ops.softmax(_log(probs) / temperature, axis=-1)


@keras.saving.register_keras_serializable(package="mobopt")
class DistillationLoss(keras.losses.Loss):
    """``alpha`` x cross-entropy with the label + ``(1 - alpha)`` x ``T^2`` x KL(teacher || student), both softened by ``T``.

    ``y_true`` is ``[label, teacher probabilities...]`` per image (see the module docstring).
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5, name: str = "distillation", **kwargs):
        super().__init__(name=name, **kwargs)
        self.temperature = float(temperature)
        self.alpha = float(alpha)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        labels = ops.cast(y_true[:, 0], "int32")
        hard = keras.losses.sparse_categorical_crossentropy(labels, y_pred)
        q_t = _soften(y_true[:, 1:], self.temperature)
        q_s = _soften(y_pred, self.temperature)
        soft = ops.sum(q_t * (_log(q_t) - _log(q_s)), axis=-1)
        return self.alpha * hard + (1.0 - self.alpha) * self.temperature ** 2 * soft

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="mobopt")
def label_accuracy(y_true, y_pred):
    """Accuracy against the label in column 0 of a distillation target."""
    labels = ops.cast(ops.cast(y_true, "float32")[:, 0], "int32")
    return ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels), "float32")


def compile_args(options: dict[str, Any]) -> dict[str, Any]:
    """The loss and metrics ``model.compile`` gets for distillation (``accuracy`` keeps its history column)."""
    o = {**DISTILL_DEFAULTS, **options}
    return {"loss": DistillationLoss(o["temperature"], o["alpha"]),
            "metrics": [keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")]}


#: Batches the teacher labels ahead of the student (``tf.data`` prefetch after the teacher's map).
TEACHER_AHEAD = 2


def with_teacher(tf, dataset, teacher, ahead: int = TEACHER_AHEAD):
    """``(images, labels)`` batches -> ``(images, [label, teacher probabilities])`` batches.

    The teacher runs in inference mode on the very batch the student gets (augmented the same way).
    It labels ``ahead`` batches in advance, in tf.data's threads, while the student trains on the current
    one; with ``ahead=0`` each training step first waits for the teacher's forward pass.  The values are
    the same either way (the same graph on the same batch); only the order in time changes."""
    def add(images, labels):
        probs = tf.cast(teacher(images, training=False), tf.float32)
        return images, tf.concat([tf.cast(labels, tf.float32)[:, None], probs], axis=1)

    labelled = dataset.map(add)
    return labelled.prefetch(ahead) if ahead else labelled
