"""The second study's lightweight CNNs, written in Keras 3: ShuffleNetV2 and a from-scratch MobileNetV2.

Keras ships no ShuffleNet, and its MobileNetV2 (``keras.applications``) has the
ImageNet strides fixed: a 32x32 CIFAR image would end at 1x1 before the last
stage.  Both networks here take a ``stem``: ``imagenet`` (the published
strides, for 224x224 inputs) or ``cifar`` (the first downsamplings removed, as
chenyaofo/pytorch-cifar-models does, so a 32x32 input ends at 4x4); ``auto``
picks ``cifar`` for inputs of at most 64 pixels.  Each has the ablation the
study reports: ShuffleNetV2 without its channel shuffle, MobileNetV2 with
standard instead of depthwise-separable convolutions.

The builders here return the feature extractor's last tensor; the registry in
:mod:`mobopt.models.architectures` adds the in-graph input scaling and the
classifier (so every model maps raw 0..255 pixels to float32 probabilities).
Channel split and shuffle are registered layers (not ``Lambda``: a saved model
must load without ``safe_mode=False``) whose reshapes use static sizes, so the
.tflite holds plain SPLIT / RESHAPE / TRANSPOSE ops.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from mobopt import MobOptError

STEMS = ("auto", "cifar", "imagenet")

#: A side of at most this many pixels gets the CIFAR stem under ``stem: auto``: with the ImageNet stem's
#: 32x downsampling a 64 px input ends at 2x2, a 32 px one at 1x1.
CIFAR_STEM_MAX_SIDE = 64


def resolve_stem(stem: Any, input_shape: tuple[int, int, int]) -> str:
    """``cifar`` or ``imagenet``: ``auto`` by the input size (see :data:`CIFAR_STEM_MAX_SIDE`)."""
    if stem not in STEMS:
        raise MobOptError(f"model.stem {stem!r}: choose one of {', '.join(STEMS)}")
    if stem == "auto":
        return "cifar" if max(input_shape[0], input_shape[1]) <= CIFAR_STEM_MAX_SIDE else "imagenet"
    return stem


@keras.saving.register_keras_serializable(package="mobopt")
class ChannelSplit(layers.Layer):
    """Split the channels into two equal halves (ShuffleNetV2's channel split); returns ``[first, second]``."""

    def call(self, x):
        return ops.split(x, 2, axis=-1)

    def compute_output_shape(self, input_shape):
        half = (*input_shape[:-1], input_shape[-1] // 2)
        return [half, half]


@keras.saving.register_keras_serializable(package="mobopt")
class ChannelShuffle(layers.Layer):
    """ShuffleNet's channel shuffle: output channel ``j * groups + g`` is input channel ``g * (C / groups) + j``.

    The usual reshape-transpose-reshape (channels as ``groups x C/groups``,
    transposed to ``C/groups x groups``), on a 4-D view (batch, H*W, groups,
    C/groups) with sizes fixed when the layer is built: TFLite gets a RESHAPE,
    a 4-D TRANSPOSE (which every delegate runs) and a RESHAPE, no dynamic shapes.
    """

    def __init__(self, groups: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def build(self, input_shape):
        h, w, c = input_shape[1:]
        if c % self.groups:
            raise MobOptError(f"channel shuffle: {c} channels do not split into {self.groups} groups")
        self.sizes = (int(h), int(w), int(c))

    def call(self, x):
        h, w, c = self.sizes
        x = ops.reshape(x, (-1, h * w, self.groups, c // self.groups))
        x = ops.transpose(x, (0, 1, 3, 2))
        return ops.reshape(x, (-1, h, w, c))

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


# ---------------------------------------------------------------------------------------------- ShuffleNetV2

#: Ma et al. 2018, Table 5: output channels of stages 2-4 and of conv5 per width; the stem has 24.
SHUFFLENETV2_CHANNELS: dict[float, tuple[int, int, int, int]] = {
    0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048),
}
SHUFFLENETV2_REPEATS = (4, 8, 4)
SHUFFLENETV2_STEM_CHANNELS = 24
# PyTorch's BatchNorm defaults (eps 1e-5, running-average factor 0.1), as the reference implementations train with
_SHUFFLE_BN = {"epsilon": 1e-5, "momentum": 0.9}


def _bn(name: str, **kw) -> layers.BatchNormalization:
    return layers.BatchNormalization(name=name, **{**_SHUFFLE_BN, **kw})


def _shuffle_unit(x, out_channels: int, stride: int, shuffle: bool, name: str):
    """One ShuffleNetV2 unit (Ma et al. 2018, Fig. 3c and 3d).

    Stride 1: half the channels pass unchanged, the other half go through
    1x1 conv-BN-ReLU, 3x3 depthwise-BN, 1x1 conv-BN-ReLU; stride 2: no split,
    both branches see the whole input (branch 1: 3x3 depthwise stride 2-BN,
    1x1 conv-BN-ReLU).  The halves are concatenated, then shuffled (unless
    ``shuffle`` is false: the ablation, where information never crosses from
    one half to the other except in the stride-2 units).
    """
    branch = out_channels // 2
    if stride == 1:
        passthrough, x2 = ChannelSplit(name=f"{name}_split")(x)
    else:
        passthrough = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name=f"{name}_b1_dw")(x)
        passthrough = _bn(f"{name}_b1_dw_bn")(passthrough)
        passthrough = layers.Conv2D(branch, 1, use_bias=False, name=f"{name}_b1_pw")(passthrough)
        passthrough = _bn(f"{name}_b1_pw_bn")(passthrough)
        passthrough = layers.ReLU(name=f"{name}_b1_pw_relu")(passthrough)
        x2 = x
    y = layers.Conv2D(branch, 1, use_bias=False, name=f"{name}_b2_pw1")(x2)
    y = _bn(f"{name}_b2_pw1_bn")(y)
    y = layers.ReLU(name=f"{name}_b2_pw1_relu")(y)
    y = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"{name}_b2_dw")(y)
    y = _bn(f"{name}_b2_dw_bn")(y)
    y = layers.Conv2D(branch, 1, use_bias=False, name=f"{name}_b2_pw2")(y)
    y = _bn(f"{name}_b2_pw2_bn")(y)
    y = layers.ReLU(name=f"{name}_b2_pw2_relu")(y)
    x = layers.Concatenate(name=f"{name}_concat")([passthrough, y])
    return ChannelShuffle(2, name=f"{name}_shuffle")(x) if shuffle else x


def shufflenetv2_features(x, width: float, stem: str, channel_shuffle: bool = True):
    """ShuffleNetV2 from the stem to conv5 (BN-ReLU), on an already scaled input.

    ``stem: imagenet``: 3x3 conv stride 2 (24 channels)-BN-ReLU and a 3x3 max
    pool stride 2, as published (224 px -> 56 px before stage 2, 7x7 at conv5).
    ``stem: cifar``: the same conv at stride 1 and no max pool (32 px -> 32 px
    before stage 2, 4x4 at conv5), as chenyaofo/pytorch-cifar-models.  Stages
    2-4 start with a stride-2 unit followed by 3, 7, 3 stride-1 units.
    """
    if width not in SHUFFLENETV2_CHANNELS:
        raise MobOptError(f"model.width {width!r} is not a ShuffleNetV2 width; choose one of "
                          f"{', '.join(map(str, SHUFFLENETV2_CHANNELS))}")
    *stages, last = SHUFFLENETV2_CHANNELS[width]
    stride = 2 if stem == "imagenet" else 1
    x = layers.Conv2D(SHUFFLENETV2_STEM_CHANNELS, 3, strides=stride, padding="same", use_bias=False,
                      name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if stem == "imagenet":
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for s, (channels, repeats) in enumerate(zip(stages, SHUFFLENETV2_REPEATS, strict=True), start=2):
        for u in range(repeats):
            x = _shuffle_unit(x, channels, 2 if u == 0 else 1, channel_shuffle, f"stage{s}_unit{u + 1}")
    x = layers.Conv2D(last, 1, use_bias=False, name="conv5")(x)
    x = _bn("conv5_bn")(x)
    return layers.ReLU(name="conv5_relu")(x)


# ---------------------------------------------------------------------------------------------- MobileNetV2

#: Sandler et al. 2018, Table 2: expansion t, output channels c, repeats n, first stride s (ImageNet).
MOBILENETV2_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                      (6, 320, 1, 1))
#: Rows of that table (from 0) that chenyaofo/pytorch-cifar-models runs at stride 1 for CIFAR, besides the stem conv:
#: the second (c = 24), so the network downsamples 8x, not 32x.
MOBILENETV2_CIFAR_STRIDE_1_ROWS = (1,)
#: keras.applications.MobileNetV2's BatchNorm epsilon, so the two networks compute the same (weights could be copied),
#: but PyTorch's momentum (0.9 here, 0.1 there), as ShuffleNetV2 has: Keras' 0.999 suits fine-tuning a pretrained
#: network, yet from scratch its moving statistics still hold two thirds of their initial values after one epoch
#: of CIFAR-10 (0.999 ** 390 steps), so inference scored at chance (10 %) while training accuracy was 72 %.
_MOBILENET_BN = {"epsilon": 1e-3, "momentum": 0.9}


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never below 90 % of ``v`` (TF-slim's and Keras' rule)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _inverted_residual(x, filters: int, alpha: float, stride: int, expansion: int, block_id: int,
                       depthwise_separable: bool):
    """One MobileNetV2 block: 1x1 expand-BN-ReLU6 (not in the first block), 3x3 depthwise-BN-ReLU6,
    1x1 linear projection-BN, and the residual when shapes allow; named as Keras names its layers.

    ``depthwise_separable: false`` (the ablation) replaces the depthwise-separable
    pair (3x3 depthwise-BN-ReLU6 then 1x1 projection-BN) by one standard 3x3
    convolution-BN from the expanded channels to the block's output channels,
    same stride, linear like the projection it replaces: MobileNetV1's "Conv
    MobileNet" ablation (Howard et al. 2017, Table 4) applied to V2's block.
    Per output pixel the pair costs ``9*C + C*Cout`` MACs, the standard conv
    ``9*C*Cout`` (``C``: expanded channels), about 8-9x more for this network's
    widths; the expansion, the residuals and everything else are unchanged.
    """
    in_channels = x.shape[-1]
    out_channels = make_divisible(int(filters * alpha), 8)
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    inputs = x
    if block_id:
        x = layers.Conv2D(expansion * in_channels, 1, padding="same", use_bias=False, name=prefix + "expand")(x)
        x = layers.BatchNormalization(name=prefix + "expand_BN", **_MOBILENET_BN)(x)
        x = layers.ReLU(6.0, name=prefix + "expand_relu")(x)
    # "same" padding at stride 2 pads (0, 1) on an even side and (1, 1) on an odd one: exactly Keras'
    # ZeroPadding2D(correct_pad) + "valid", in one op
    if depthwise_separable:
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=prefix + "depthwise")(x)
        x = layers.BatchNormalization(name=prefix + "depthwise_BN", **_MOBILENET_BN)(x)
        x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(x)
        x = layers.Conv2D(out_channels, 1, padding="same", use_bias=False, name=prefix + "project")(x)
        x = layers.BatchNormalization(name=prefix + "project_BN", **_MOBILENET_BN)(x)
    else:
        x = layers.Conv2D(out_channels, 3, strides=stride, padding="same", use_bias=False, name=prefix + "conv")(x)
        x = layers.BatchNormalization(name=prefix + "conv_BN", **_MOBILENET_BN)(x)
    if in_channels == out_channels and stride == 1:
        x = layers.Add(name=prefix + "add")([inputs, x])
    return x


def mobilenetv2_features(x, alpha: float, stem: str, depthwise_separable: bool = True):
    """MobileNetV2 from the stem to the last 1x1 conv (BN-ReLU6), on an already scaled input.

    Layer for layer the network of ``keras.applications.MobileNetV2`` (same
    widths by the same divisible-by-8 rule, same layer names and weight
    shapes) with ``stem: imagenet``.  ``stem: cifar`` runs the first conv and
    the second row of the table (24 channels) at stride 1 instead of 2, as
    chenyaofo/pytorch-cifar-models: 32 px -> 4x4 at the last conv instead of 1x1.
    """
    cifar = stem == "cifar"
    x = layers.Conv2D(make_divisible(32 * alpha, 8), 3, strides=1 if cifar else 2, padding="same", use_bias=False,
                      name="Conv1")(x)
    x = layers.BatchNormalization(name="bn_Conv1", **_MOBILENET_BN)(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    block_id = 0
    for row, (t, c, n, s) in enumerate(MOBILENETV2_BLOCKS):
        first_stride = 1 if cifar and row in MOBILENETV2_CIFAR_STRIDE_1_ROWS else s
        for i in range(n):
            x = _inverted_residual(x, c, alpha, first_stride if i == 0 else 1, t, block_id, depthwise_separable)
            block_id += 1
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = layers.BatchNormalization(name="Conv_1_bn", **_MOBILENET_BN)(x)
    return layers.ReLU(6.0, name="out_relu")(x)
