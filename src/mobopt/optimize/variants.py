"""Variant registry: every way a trained model is turned into a .tflite file.

Adding a variant is one :class:`Variant` entry: a name, a one-line
description (it ends up in tables and the report) and a function that sets
options on a ``tf.lite.TFLiteConverter``.  The registry imports no TensorFlow
(the workflow reads it when it parses); the configure functions receive the
``tf`` module from the caller.

ONNX Runtime is the second runtime: its variants (``ort_*``) carry ``runtime="onnxruntime"``, are
written to results/onnx/ as .onnx files by :mod:`mobopt.optimize.onnx_export`, and are evaluated and
benchmarked by the same loops as the .tflite files.

Not every variant exists for every model: the converter refuses int16x8 for
the ViT (no 16x8 kernel for NEG, part of LayerNorm), and a converted model can
still be one LiteRT cannot run.  Conversion records such a variant as
unsupported, with the converter's or the runtime's own words, instead of
failing (see :mod:`mobopt.optimize.convert`).

``graph_opt_int8`` is not one converter call but the pipeline of
:mod:`mobopt.optimize.graphopt`: pruning, fusion check, mixed precision by
sensitivity, node-order measurement; its ``configure`` sets up the float
conversion the pipeline starts from.
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
    #: built by the graph-optimization pipeline (pruned model + precision selection), not by one converter call
    graph_opt: bool = False
    #: the runtime that runs it (a key of :data:`RUNTIMES`)
    runtime: str = "litert"

    @property
    def suffix(self) -> str:
        """The model file's suffix: ``tflite`` or ``onnx``."""
        return RUNTIMES[self.runtime]["suffix"]


#: Runtimes: the folder under results/ their model files go to, the file suffix, and the words for tables.
RUNTIMES: dict[str, dict[str, str]] = {
    "litert": {"folder": "tflite", "suffix": "tflite", "label": "LiteRT"},
    "onnxruntime": {"folder": "onnx", "suffix": "onnx", "label": "ONNX Runtime"},
}


def _onnx(tf, converter, representative, options) -> None:
    """ONNX Runtime variants are made by :mod:`mobopt.optimize.onnx_export`, not by a TFLite converter."""


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


def _dynamic_int8(tf, converter, representative, options) -> None:
    """Dynamic-range quantization: int8 weights, float activations quantized on the fly by the kernels.

    No calibration data.  On this x86 host it is the fastest ViT variant: XNNPACK runs the
    whole graph in float except the weight-heavy matrix products, which it runs in int8.
    """
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _float16(tf, converter, representative, options) -> None:
    """float16 weights, half the size of float32; CPUs without float16 arithmetic dequantize them at load."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _int16x8(tf, converter, representative, options) -> None:
    """16-bit activations, 8-bit weights: more accurate than int8, only where LiteRT has 16x8 kernels.

    Strict on purpose (no float fallback): the file is 16x8 throughout or the
    variant is recorded as unsupported with the converter's reason.
    """
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    converter.inference_input_type = tf.int16
    converter.inference_output_type = tf.int16


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("float32", "TFLite float32, no optimization (reference)", _float32),
        Variant("int8", "full-integer post-training quantization (int8 weights, activations, input and output)",
                _int8, needs_representative_data=True),
        Variant("dynamic_int8", "dynamic-range quantization (int8 weights, float activations quantized at run time)",
                _dynamic_int8),
        Variant("float16", "float16 weights (dequantized to float32 where the CPU has no float16 arithmetic)", _float16),
        Variant("int16x8", "16-bit activations, 8-bit weights (strict: only where LiteRT has 16x8 kernels)",
                _int16x8, needs_representative_data=True),
        Variant("graph_opt_int8", "graph-optimized int8: pruning, verified fusion, mixed precision chosen by per-layer "
                "sensitivity and measured latency, node order measured", _float32, graph_opt=True),
        Variant("ort_float32", "ONNX Runtime float32 (tf2onnx export; the reference of the second runtime)", _onnx,
                runtime="onnxruntime"),
        Variant("ort_dynamic_int8", "ONNX Runtime dynamic quantization (int8 weights, activations quantized at run time)",
                _onnx, runtime="onnxruntime"),
        Variant("ort_int8", "ONNX Runtime static int8, QDQ format (int8 weights per channel and activations, calibrated "
                "min-max)", _onnx, needs_representative_data=True, runtime="onnxruntime"),
    )
}


def get(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise MobOptError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None
