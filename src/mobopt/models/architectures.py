"""Model registry: architectures as configurable Keras 3 builders.

Adding an architecture is one :class:`Architecture` entry in :data:`MODELS`: a
builder taking the model options from the config, the input shape, the number
of model outputs, the training images (to adapt an in-graph normalisation) and
the folder of pretrained weight files, returning an uncompiled ``keras.Model``
that maps raw 0..255 pixels to class probabilities; and, for pretrained
models, the names of the weight files it needs, so the workflow can fetch
them in a download rule (training jobs never touch the network).
"""

from __future__ import annotations

import errno
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from mobopt import MobOptError
from mobopt.models import cnns, pretrained


@keras.saving.register_keras_serializable(package="mobopt")
class ClassTokenPosition(layers.Layer):
    """Prepend a learned class token (optional) and add a learned position embedding."""

    def __init__(self, class_token: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.class_token = class_token

    def build(self, input_shape):
        tokens, dim = input_shape[1], input_shape[2]
        if self.class_token:
            self.cls = self.add_weight(shape=(1, 1, dim), initializer="zeros", name="cls")
            tokens += 1
        self.pos = self.add_weight(
            shape=(1, tokens, dim), initializer=keras.initializers.RandomNormal(stddev=0.02), name="pos"
        )

    def call(self, x):
        if self.class_token:
            cls = ops.broadcast_to(self.cls, (ops.shape(x)[0], 1, ops.shape(x)[2]))
            x = ops.concatenate([cls, x], axis=1)
        return x + self.pos

    def get_config(self):
        return {**super().get_config(), "class_token": self.class_token}


@keras.saving.register_keras_serializable(package="mobopt")
class SelectToken(layers.Layer):
    """Take one token (the class token) from a token sequence."""

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, x):
        return x[:, self.index]

    def get_config(self):
        return {**super().get_config(), "index": self.index}


VIT_DEFAULTS: dict[str, Any] = {
    "patch_size": 4, "dim": 130, "depth": 5, "heads": 2, "mlp_dim": 390, "head_hidden": 64,
    "dropout": 0.1, "class_token": True, "layer_norm_epsilon": 1e-6, "key_dim": None,
}


def build_vit(options: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int,
              train_images: np.ndarray | None = None, weights_dir: str | Path | None = None) -> keras.Model:
    """The paper's "MobTransformer": a standard pre-norm ViT.

    Patches are embedded by a strided convolution (a linear map of each
    flattened patch, the same parameters as a Dense layer, and one op that
    XNNPACK runs well), a class token and learned position embedding are added,
    then ``depth`` blocks of LayerNorm -> multi-head self-attention -> residual,
    LayerNorm -> MLP (GELU) -> residual; a final LayerNorm, the class token (or
    the mean token without one), a GELU hidden layer and a softmax head.

    With the defaults (patch 4, dim 130, depth 5, heads 2, MLP 390, head hidden
    64) on 28x28x1 inputs and 10 classes the model has exactly 870,937
    parameters, the paper's count (the input Normalization layer's mean,
    variance and count are 3 of them).  ``key_dim`` (default ``dim // heads``)
    is each head's width: a structurally pruned ViT keeps it while losing heads.
    Trained from scratch: ``weights_dir`` is unused.  Layers have stable names
    (``block{i}_attn``...) so later analyses can address them.
    """
    o = {**VIT_DEFAULTS, **options}
    h, w, c = input_shape
    p = o["patch_size"]
    if h % p or w % p:
        raise MobOptError(f"model.patch_size {p} does not divide the input size {h}x{w}")
    if o["key_dim"] is None and o["dim"] % o["heads"]:
        raise MobOptError(f"model.dim {o['dim']} is not divisible by model.heads {o['heads']}; or set model.key_dim")
    key_dim = o["key_dim"] or o["dim"] // o["heads"]
    eps = o["layer_norm_epsilon"]
    inputs = keras.Input(input_shape, name="image")
    # float32 whatever the global policy: under mixed precision the raw 0..255 pixels and the adapted mean and
    # variance would be rounded to bfloat16 (8 significant bits) before the subtraction
    norm = layers.Normalization(axis=None, name="normalize", dtype="float32")
    if train_images is not None:
        norm.adapt(train_images.astype("float32"))
    x = norm(inputs)
    x = layers.Conv2D(o["dim"], p, strides=p, name="patch_embed")(x)
    x = layers.Reshape(((h // p) * (w // p), o["dim"]), name="patches")(x)
    x = ClassTokenPosition(o["class_token"], name="tokens")(x)
    for i in range(o["depth"]):
        y = layers.LayerNormalization(epsilon=eps, name=f"block{i}_ln1")(x)
        y = layers.MultiHeadAttention(o["heads"], key_dim, dropout=0.0, name=f"block{i}_attn")(y, y)
        y = layers.Dropout(o["dropout"], name=f"block{i}_drop1")(y)
        x = layers.Add(name=f"block{i}_res1")([x, y])
        y = layers.LayerNormalization(epsilon=eps, name=f"block{i}_ln2")(x)
        y = layers.Dense(o["mlp_dim"], activation="gelu", name=f"block{i}_mlp1")(y)
        y = layers.Dense(o["dim"], name=f"block{i}_mlp2")(y)
        y = layers.Dropout(o["dropout"], name=f"block{i}_drop2")(y)
        x = layers.Add(name=f"block{i}_res2")([x, y])
    x = layers.LayerNormalization(epsilon=eps, name="final_ln")(x)
    if o["class_token"]:
        x = SelectToken(0, name="class_token")(x)
    else:
        x = layers.GlobalAveragePooling1D(name="mean_token")(x)
    x = layers.Dense(o["head_hidden"], activation="gelu", name="head_hidden")(x)
    # the softmax (and the loss on it) in float32 under mixed precision, as Keras' mixed-precision guide advises
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mobtransformer")


MOBILENETV2_DEFAULTS: dict[str, Any] = {"alpha": 1.0, "weights": "imagenet", "include_top": False, "dropout": 0.2,
                                        "stem": "auto", "depthwise_separable": True}


def _scaled_input(input_shape) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The model input (raw 0..255 pixels) and the same scaled to [-1, 1] in the graph, as
    ``mobilenet_v2.preprocess_input`` does: the .tflite then needs no preprocessing."""
    inputs = keras.Input(input_shape, name="image")
    return inputs, layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)


def _classifier(x, num_outputs: int, dropout: float) -> keras.KerasTensor:
    """Global average pooling of the last feature map, dropout and the softmax classifier, computed in float32
    under mixed precision (as Keras' mixed-precision guide advises for the softmax and the loss on it)."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_outputs, activation="softmax", name="classifier", dtype="float32")(x)


def build_mobilenetv2(options: dict[str, Any], input_shape: tuple[int, int, int], num_outputs: int,
                      train_images: np.ndarray | None = None, weights_dir: str | Path | None = None) -> keras.Model:
    """MobileNetV2: Keras' pretrained one for the paper, or our own from scratch for the second study.

    ``weights: imagenet`` (the default) is Keras applications' network with its
    ImageNet weights, in the paper's two uses.  ``include_top: true``: the
    1000-class ImageNet classifier as published (the ImageNet rows of Table 2);
    the dataset must be labelled in ImageNet-1k indices.  ``include_top:
    false``: transfer learning, the ImageNet backbone (a nested model named
    ``backbone``, always run in inference mode so its BatchNorm statistics stay
    those of ImageNet, the usual fine-tuning recipe) with global average
    pooling, dropout and a new softmax classifier.

    ``weights: none`` (or null) builds the network itself
    (:func:`mobopt.models.cnns.mobilenetv2_features`, flat, no ``backbone``), to
    train from scratch: with ``stem: imagenet`` it is Keras' network layer for
    layer (the same weight shapes and names), with ``stem: cifar`` (the default
    for inputs up to 64 px) it keeps 32x32 images at 4x4 before the last conv,
    and ``depthwise_separable: false`` is the study's ablation.  Both options
    change the network, so with pretrained weights (which exist only for the
    published one) they are refused.  ``include_top`` then only asks for a
    1000-way classifier.

    Inputs are raw 0..255 pixels, scaled to [-1, 1] in the graph as
    ``mobilenet_v2.preprocess_input`` does, so the .tflite needs no preprocessing.
    """
    o = {**MOBILENETV2_DEFAULTS, **options}
    scratch = o["weights"] in (None, "none")
    stem = cnns.resolve_stem(o["stem"], input_shape)
    if not scratch and (o["stem"] == "cifar" or not o["depthwise_separable"]):
        key = "model.stem: cifar" if o["stem"] == "cifar" else "model.depthwise_separable: false"
        raise MobOptError(f"{key} changes the network, but Keras' ImageNet weights exist only for the published "
                          "MobileNetV2; set model.weights: none to train it from scratch")
    if o["include_top"] and num_outputs != pretrained.IMAGENET_CLASSES:
        raise MobOptError(f"model.include_top keeps the {pretrained.IMAGENET_CLASSES}-class ImageNet head, but the dataset has "
                          f"{num_outputs} outputs; use include_top: false to train a new classifier")
    name = f"mobilenetv2_{float(o['alpha']):g}"
    if scratch:
        inputs, x = _scaled_input(input_shape)
        x = cnns.mobilenetv2_features(x, float(o["alpha"]), stem, bool(o["depthwise_separable"]))
        return keras.Model(inputs, _classifier(x, num_outputs, o["dropout"]), name=name)
    files = pretrained.weight_files({"name": "mobilenetv2", **o}, input_shape)
    if weights_dir is None:
        raise MobOptError("model.weights is `imagenet` but no weights folder was given (the workflow passes data/weights)")
    weights = Path(weights_dir) / files[0]
    if not weights.is_file():
        raise MobOptError(f"{weights}: pretrained weights not found; run the download_weights rule first")
    inputs, x = _scaled_input(input_shape)
    try:
        backbone = keras.applications.MobileNetV2(
            input_shape=tuple(input_shape), alpha=float(o["alpha"]), include_top=bool(o["include_top"]),
            weights=str(weights), pooling=None if o["include_top"] else "avg",
            classes=pretrained.IMAGENET_CLASSES if o["include_top"] else 1000, name="backbone",
        )
    except (ValueError, OSError) as exc:
        raise MobOptError(f"{weights}: cannot load MobileNetV2 weights ({exc}); delete the file and download it again") \
            from exc
    if o["include_top"]:
        outputs = backbone(x, training=False)
    else:
        x = backbone(x, training=False)
        x = layers.Dropout(o["dropout"], name="head_dropout")(x)
        outputs = layers.Dense(num_outputs, activation="softmax", name="classifier", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


SHUFFLENETV2_DEFAULTS: dict[str, Any] = {"width": 1.0, "stem": "auto", "channel_shuffle": True, "dropout": 0.0}


def build_shufflenetv2(options: dict[str, Any], input_shape: tuple[int, int, int], num_outputs: int,
                       train_images: np.ndarray | None = None, weights_dir: str | Path | None = None) -> keras.Model:
    """ShuffleNetV2 (Ma et al. 2018), trained from scratch: Keras has none (:mod:`mobopt.models.cnns`).

    ``width`` 0.5, 1.0, 1.5 or 2.0 picks the published channel widths;
    ``stem: imagenet`` is the published network, ``stem: cifar`` (the default
    for inputs up to 64 px) the CIFAR one of chenyaofo/pytorch-cifar-models;
    ``channel_shuffle: false`` is the study's ablation (the shuffle layers left
    out, nothing else changed: the same parameters).  Raw 0..255 pixels are
    scaled to [-1, 1] in the graph; global average pooling, ``dropout`` (0 as
    in the reference implementations; Ma et al. use 0.2 only for the 2.0x
    model) and a float32 softmax classifier follow conv5.  ``weights_dir`` is
    unused.
    """
    o = {**SHUFFLENETV2_DEFAULTS, **options}
    stem = cnns.resolve_stem(o["stem"], input_shape)
    inputs, x = _scaled_input(input_shape)
    x = cnns.shufflenetv2_features(x, o["width"], stem, bool(o["channel_shuffle"]))
    return keras.Model(inputs, _classifier(x, num_outputs, o["dropout"]), name=f"shufflenetv2_{float(o['width']):g}")


CONVNET_DEFAULTS: dict[str, Any] = {"widths": [32, 64, 128], "convs_per_stage": 1, "pooling": "flatten",
                                     "dropout": 0.3}


def build_convnet(options: dict[str, Any], input_shape: tuple[int, int, int], num_outputs: int,
                  train_images: np.ndarray | None = None, weights_dir: str | Path | None = None) -> keras.Model:
    """A small VGG-style CNN for small images, trained from scratch: a teacher for a ViT, or a baseline.

    One stage per entry of ``widths``: ``convs_per_stage`` 3x3 convolutions (same padding, no bias)
    each followed by BatchNorm and ReLU, then a 2x2 max pool after every stage but the last (28 px:
    28 -> 14 -> 7).  ``pooling: flatten`` (the default) keeps where each feature is, as the classic
    MNIST-style CNNs do; ``avg`` is global average pooling.  Then ``dropout`` and a float32 softmax
    classifier.  Raw 0..255 pixels are scaled to [-1, 1] in the graph.

    Why it is here: a ViT trained from scratch on a small dataset lacks a CNN's locality bias; the
    usual remedy (Touvron et al. 2021, DeiT) is distillation from a CNN teacher, which must be cheap
    beside the ViT.  With the defaults on 28x28x1 it has 156,074 parameters and 7.5 million
    multiply-adds (a sixth of the paper's ViT's 45.6 million), and 10 epochs on Fashion-MNIST take a
    few minutes on 2 cores.
    ``weights_dir`` is unused.
    """
    o = {**CONVNET_DEFAULTS, **options}
    widths = [int(w) for w in o["widths"]]
    if not widths or min(widths) < 1:
        raise MobOptError(f"model.widths {o['widths']!r}: give one positive channel count per stage")
    if min(input_shape[:2]) >> (len(widths) - 1) < 1:
        raise MobOptError(f"model.widths has {len(widths)} stages: {len(widths) - 1} max pools shrink the "
                          f"{input_shape[0]}x{input_shape[1]} input to nothing; use fewer stages")
    if o["pooling"] not in ("flatten", "avg"):
        raise MobOptError(f"model.pooling {o['pooling']!r}: choose flatten or avg")
    inputs, x = _scaled_input(input_shape)
    for s, width in enumerate(widths):
        for c in range(int(o["convs_per_stage"])):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"stage{s}_conv{c}")(x)
            x = layers.BatchNormalization(name=f"stage{s}_bn{c}")(x)
            x = layers.ReLU(name=f"stage{s}_relu{c}")(x)
        if s < len(widths) - 1:
            x = layers.MaxPooling2D(name=f"stage{s}_pool")(x)
    x = layers.Flatten(name="flatten")(x) if o["pooling"] == "flatten" else \
        layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(o["dropout"], name="head_dropout")(x)
    outputs = layers.Dense(num_outputs, activation="softmax", name="classifier", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="convnet")


MODELS: dict[str, Callable[..., keras.Model]] = {"vit": build_vit, "mobilenetv2": build_mobilenetv2,
                                                 "shufflenetv2": build_shufflenetv2, "convnet": build_convnet}


def build(options: dict[str, Any], input_shape, num_outputs: int, train_images=None, weights_dir=None) -> keras.Model:
    name = options.get("name")
    if name not in MODELS:
        raise MobOptError(f"unknown model.name {name!r}; known: {', '.join(sorted(MODELS))}")
    rest = {k: v for k, v in options.items() if k != "name"}
    return MODELS[name](rest, tuple(input_shape), num_outputs, train_images, weights_dir)


def all_layers(model) -> list:
    """Every layer of ``model``, nested models' layers included (MobileNetV2's ``backbone``)."""
    out = []
    for layer in model.layers:
        out.append(layer)
        if isinstance(layer, keras.Model):
            out.extend(all_layers(layer))
    return out


def _float32_policies(node):
    """A serialized model with every mixed dtype policy (``mixed_bfloat16``...) replaced by ``float32``."""
    if isinstance(node, dict):
        if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and \
                str(node.get("config", {}).get("name", "")).startswith("mixed_"):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {key: _float32_policies(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_float32_policies(value) for value in node]
    return node


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` itself when it computes in float32, else a float32 copy of it (uncompiled, same weights).

    A model trained under ``train.precision: mixed_bfloat16`` keeps its weights in float32 but its
    layers compute in bfloat16, and a saved model would carry that policy into every later stage:
    the converter would write bfloat16 casts into the .tflite, and evaluation would score bfloat16
    arithmetic.  The copy has the same layers and the same (float32) weights and computes in float32,
    so it converts to the same graph as a model trained in float32.
    """
    if all(layer.dtype_policy.name == "float32" for layer in [model, *all_layers(model)]):
        return model
    serialized = keras.saving.serialize_keras_object(model)
    config = _float32_policies({key: value for key, value in serialized.items() if key != "compile_config"})
    copy = keras.saving.deserialize_keras_object(config)
    with tempfile.TemporaryDirectory() as tmp:  # through a weights file: Normalization re-derives its mean from it
        weights = os.path.join(tmp, "model.weights.h5")
        model.save_weights(weights)
        copy.load_weights(weights)
    return copy


def load(path) -> keras.Model:
    """Load a saved model, computing in float32 (:func:`float32_model`); importing this module registers
    the custom layers.

    A truncated or foreign file is one error naming it (Keras' own message for a
    broken zip says "File not found" for a file that exists)."""
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise MobOptError(f"{path}: not a readable Keras model ({reason}); delete it and rerun the rule that "
                          "writes it, or point to the right file") from None
    return float32_model(model)
