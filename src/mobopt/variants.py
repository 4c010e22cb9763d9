"""Variant registry: every way a trained model is turned into a .tflite file.

Adding a variant is one :class:`Variant` entry: a name, a one-line
description (it ends up in tables and the report) and a function that sets
options on a ``tf.lite.TFLiteConverter``.  The registry imports no TensorFlow
(the workflow reads it when it parses); the configure functions receive the
``tf`` module from the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mobopt import MobOptError

RepresentativeData = Callable[[], Iterable[list]]


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    configure: Callable[[Any, Any, RepresentativeData, dict[str, Any]], None]
    needs_representative_data: bool = False


def _float32(tf, converter, representative, options) -> None:
    """No optimisation: the float32 reference every other variant is compared with."""


def _int8(tf, converter, representative, options) -> None:
    """Full-integer post-training quantization: int8 weights and activations, int8 input and output.

    Activation ranges are calibrated on ``representative`` (training images);
    ``TFLITE_BUILTINS_INT8`` makes conversion fail instead of silently keeping
    float ops, so the file really is integer-only.
    """
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("float32", "TFLite float32, no optimization (reference)", _float32),
        Variant("int8", "full-integer post-training quantization (int8 weights, activations, input and output)",
                _int8, needs_representative_data=True),
    )
}


def get(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise MobOptError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None
