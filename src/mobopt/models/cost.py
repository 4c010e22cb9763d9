"""Parameters and multiply-accumulates (MACs) of a Keras model, layer by layer, from the built model itself.

Papers compare lightweight networks by parameters and by MACs (often called
FLOPs or MAdds: ShuffleNetV2's "146M FLOPs" and MobileNetV2's "300M MAdds"
are both multiply-accumulates), and the second study argues from the MAC
cost of depthwise-separable convolutions.  Counting from the Keras layers,
with the shapes the model was built for, checks an implementation against
the published figures and gives the ablations' costs without a hand-written
formula per architecture.

What is counted, per call of each layer on one input (batch 1):

- convolution: ``H_out * W_out * K_h * K_w * C_in / groups * C_out``; a 1x1
  convolution without groups is *pointwise*; a grouped one with as many groups
  as channels counts as *depthwise*;
- depthwise convolution: ``H_out * W_out * K_h * K_w * C_in * depth_multiplier``;
- dense: ``in * out`` per row, times the rows (tokens) of a 3-D input (the
  ViT's MLPs); ``EinsumDense``: the product of every index size in its equation;
- multi-head attention: its four projections (tokens x kernel size each) and
  the two attention matmuls, ``Q K^T`` (``heads * T_q * T_k * key_dim``) and
  ``A V`` (``heads * T_q * T_k * value_dim``);
- nothing for normalisation, activations, pooling, element-wise adds,
  reshapes, shuffles: the papers' tables leave them out (BatchNorm folds into
  the convolution when converted).

Parameters are every weight of the layer, as ``model.count_params()`` counts
them; ``trainable_params`` leaves out BatchNorm's moving statistics (and the
Normalization layer's mean, variance and count), which is how PyTorch, and so
the published ShuffleNet and CIFAR figures, count a freshly built model.
A layer class this module cannot count but that holds a kernel is an error,
not a silent zero.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import keras
from keras import layers

from mobopt import MobOptError
from mobopt.models import architectures

#: The kinds of layers the summary groups by.
KINDS = ("standard conv", "depthwise conv", "pointwise conv", "dense", "attention", "other")


@dataclass(frozen=True)
class LayerCost:
    name: str
    layer_class: str
    kind: str
    params: int
    trainable_params: int
    macs: int


def _size(shape: Iterable[int | None]) -> int:
    """Elements per sample of a tensor shape (the batch dimension dropped)."""
    return math.prod(int(d) for d in list(shape)[1:])


def _count_weights(weights) -> int:
    return sum(math.prod(int(d) for d in w.shape) for w in weights)


def _single(layer, attr: str):
    """``layer.input`` or ``layer.output``; a layer called more than once (shared) has no single one."""
    try:
        return getattr(layer, attr)
    except (AttributeError, ValueError) as exc:
        raise MobOptError(f"layer {layer.name} ({type(layer).__name__}) is called more than once or never; "
                          "count a model whose layers are each used once") from exc


def _conv(layer) -> tuple[str, int]:
    kernel = tuple(int(d) for d in layer.kernel.shape)  # (*K, C_in / groups, C_out)
    out = _size(_single(layer, "output").shape)  # H_out * W_out * C_out
    macs = out * math.prod(kernel[:-1])
    groups = int(getattr(layer, "groups", 1))
    c_in = kernel[-2] * groups
    if groups > 1 and groups == c_in and kernel[-1] == c_in:
        return "depthwise conv", macs
    if groups == 1 and all(k == 1 for k in kernel[:-2]):
        return "pointwise conv", macs
    return "standard conv", macs


def _depthwise(layer) -> tuple[str, int]:
    kernel = tuple(int(d) for d in layer.kernel.shape)  # (*K, C_in, depth_multiplier)
    return "depthwise conv", _size(_single(layer, "output").shape) * math.prod(kernel[:-2])


def _dense(layer) -> tuple[str, int]:
    kernel = layer.kernel.shape
    rows = _size(_single(layer, "input").shape) // int(kernel[0])
    return "dense", rows * int(kernel[0]) * int(kernel[1])


def _einsum_macs(equation: str, input_shape, kernel_shape, output_shape) -> int:
    """MACs of ``einsum(equation, input, kernel)``: the product of every index's size (batch: 1)."""
    spec, out_spec = equation.split("->")
    in_spec, kernel_spec = spec.split(",")
    sizes: dict[str, int] = {}
    for letters, shape in ((in_spec, input_shape), (kernel_spec, kernel_shape), (out_spec, output_shape)):
        if "." in letters:
            raise MobOptError(f"cannot count an einsum with an ellipsis ({equation})")
        for letter, d in zip(letters, shape, strict=True):
            if d is not None and letter in string.ascii_letters:
                sizes[letter] = max(sizes.get(letter, 1), int(d))
    return math.prod(sizes.values())


def _einsum_dense(layer) -> tuple[str, int]:
    return "dense", _einsum_macs(layer.equation, _single(layer, "input").shape, layer.kernel.shape,
                                 _single(layer, "output").shape)


def _attention(layer) -> tuple[str, int]:
    inputs = _single(layer, "input")
    query, value = (inputs[0], inputs[1]) if isinstance(inputs, list | tuple) else (inputs, inputs)
    t_q, t_v = _size(query.shape[:-1]), _size(value.shape[:-1])  # tokens (every axis but batch and features)
    heads, key_dim = int(layer.num_heads), int(layer.key_dim)
    value_dim = int(layer.value_dim or key_dim)
    projections = (t_q * _count_weights([layer.query_dense.kernel]) + t_v * _count_weights([layer.key_dense.kernel])
                   + t_v * _count_weights([layer.value_dense.kernel]) + t_q * _count_weights([layer.output_dense.kernel]))
    matmuls = heads * t_q * t_v * (key_dim + value_dim)  # Q K^T, then the attention weights times V
    return "attention", projections + matmuls


#: Layer class -> function giving (kind, MACs); checked in order, so subclasses come first.
COUNTERS: tuple[tuple[type, Any], ...] = (
    (layers.DepthwiseConv2D, _depthwise),
    (layers.Conv1D, _conv), (layers.Conv2D, _conv), (layers.Conv3D, _conv),
    (layers.EinsumDense, _einsum_dense),
    (layers.Dense, _dense),
    (layers.MultiHeadAttention, _attention),
)
# transposed and separable convolutions subclass these but cost differently: refused rather than miscounted
_REFUSED = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose, layers.SeparableConv1D,
            layers.SeparableConv2D)


def layer_cost(layer) -> LayerCost:
    """Kind, parameters and MACs of one (built, called) layer."""
    kind, macs = "other", 0
    if isinstance(layer, _REFUSED):
        raise MobOptError(f"layer {layer.name}: cannot count MACs of a {type(layer).__name__}")
    for cls, counter in COUNTERS:
        if isinstance(layer, cls):
            kind, macs = counter(layer)
            break
    else:
        if getattr(layer, "kernel", None) is not None:
            raise MobOptError(f"layer {layer.name}: cannot count MACs of a {type(layer).__name__} (it has a kernel)")
    return LayerCost(layer.name, type(layer).__name__, kind, _count_weights(layer.weights),
                     _count_weights(layer.trainable_weights), int(macs))


def count(model: keras.Model) -> list[LayerCost]:
    """Every layer's cost, nested models' layers included (the nested model itself is not a row)."""
    return [layer_cost(layer) for layer in architectures.all_layers(model) if not isinstance(layer, keras.Model)]


def summarize(costs: list[LayerCost]) -> dict[str, dict[str, int]]:
    """Layers, parameters, trainable parameters and MACs by kind (:data:`KINDS`), plus ``total``."""
    out = {kind: {"layers": 0, "params": 0, "trainable_params": 0, "macs": 0} for kind in (*KINDS, "total")}
    for c in costs:
        for key in (c.kind, "total"):
            row = out[key]
            row["layers"] += 1
            row["params"] += c.params
            row["trainable_params"] += c.trainable_params
            row["macs"] += c.macs
    return out


def report(model: keras.Model) -> dict[str, Any]:
    """JSON-ready: the model's name, its per-layer costs and the summary by kind."""
    costs = count(model)
    return {"model": model.name, "layers": [asdict(c) for c in costs], "by_kind": summarize(costs)}


def separable_vs_standard(k: int = 3, c_in: int = 128, c_out: int = 256, size: int = 1) -> dict[str, Any]:
    """The MAC cost of a standard KxK convolution against a depthwise-separable one, counted from real layers.

    The second study's cost argument (K=3, C_in=128, C_out=256): a standard
    convolution costs ``C_in * C_out * K^2`` MACs per output pixel, a
    depthwise KxK followed by a pointwise 1x1 ``C_in * K^2 + C_in * C_out``;
    the ratio 294,912 / 33,920 = 8.69... ("about 8.7") does not depend on the
    image size.  Both are built as Keras layers on a ``size`` x ``size`` x
    ``C_in`` input (stride 1, "same" padding) and counted by :func:`count`, so
    the figure checks the counter as much as the arithmetic.  ``ratio`` is an
    exact :class:`~fractions.Fraction`.
    """
    inputs = keras.Input((size, size, c_in))
    standard = keras.Model(inputs, layers.Conv2D(c_out, k, padding="same", use_bias=False, name="standard")(inputs))
    y = layers.DepthwiseConv2D(k, padding="same", use_bias=False, name="depthwise")(inputs)
    separable = keras.Model(inputs, layers.Conv2D(c_out, 1, use_bias=False, name="pointwise")(y))
    std, sep = summarize(count(standard)), summarize(count(separable))
    return {"k": k, "c_in": c_in, "c_out": c_out, "size": size,
            "standard_macs": std["standard conv"]["macs"], "depthwise_macs": sep["depthwise conv"]["macs"],
            "pointwise_macs": sep["pointwise conv"]["macs"], "separable_macs": sep["total"]["macs"],
            "ratio": Fraction(std["total"]["macs"], sep["total"]["macs"])}
