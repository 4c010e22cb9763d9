"""Model registry: architectures as configurable Keras 3 builders.

Adding an architecture is one entry in :data:`MODELS`: a function taking the
model options from the config, the input shape, the number of classes and the
training images (to adapt the in-graph normalisation), returning an uncompiled
``keras.Model`` that maps raw 0..255 pixels to class probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from mobopt import MobOptError


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
    "dropout": 0.1, "class_token": True, "layer_norm_epsilon": 1e-6,
}


def build_vit(options: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int,
              train_images: np.ndarray | None = None) -> keras.Model:
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
    variance and count are 3 of them).  Layers have stable names
    (``block{i}_attn``...) so later analyses can address them.
    """
    o = {**VIT_DEFAULTS, **options}
    h, w, c = input_shape
    p = o["patch_size"]
    if h % p or w % p:
        raise MobOptError(f"model.patch_size {p} does not divide the input size {h}x{w}")
    if o["dim"] % o["heads"]:
        raise MobOptError(f"model.dim {o['dim']} is not divisible by model.heads {o['heads']}")
    eps = o["layer_norm_epsilon"]
    inputs = keras.Input(input_shape, name="image")
    norm = layers.Normalization(axis=None, name="normalize")
    if train_images is not None:
        norm.adapt(train_images.astype("float32"))
    x = norm(inputs)
    x = layers.Conv2D(o["dim"], p, strides=p, name="patch_embed")(x)
    x = layers.Reshape(((h // p) * (w // p), o["dim"]), name="patches")(x)
    x = ClassTokenPosition(o["class_token"], name="tokens")(x)
    for i in range(o["depth"]):
        y = layers.LayerNormalization(epsilon=eps, name=f"block{i}_ln1")(x)
        y = layers.MultiHeadAttention(o["heads"], o["dim"] // o["heads"], dropout=0.0, name=f"block{i}_attn")(y, y)
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
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="mobtransformer")


MODELS: dict[str, Callable[..., keras.Model]] = {"vit": build_vit}


def build(options: dict[str, Any], input_shape, num_classes: int, train_images=None) -> keras.Model:
    name = options.get("name")
    if name not in MODELS:
        raise MobOptError(f"unknown model.name {name!r}; known: {', '.join(sorted(MODELS))}")
    rest = {k: v for k, v in options.items() if k != "name"}
    return MODELS[name](rest, tuple(input_shape), num_classes, train_images)


def load(path) -> keras.Model:
    """Load a saved model; importing this module registers the custom layers."""
    return keras.models.load_model(path, compile=False)
