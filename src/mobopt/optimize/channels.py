"""Channel pruning of the lightweight CNNs: whole channels removed inside MobileNetV2 and ShuffleNetV2 units.

The channels removed are the ones a unit keeps to itself, so nothing outside the unit changes
shape and the residual additions and concatenations stay valid:

* MobileNetV2 inverted residual (``block_<i>``, i >= 1): the expanded channels, i.e. the outputs
  of the 1x1 ``expand`` convolution, its BatchNorm, the 3x3 ``depthwise`` convolution and its
  BatchNorm, and the matching inputs of the 1x1 ``project`` convolution (or, in the
  standard-convolution ablation, of the 3x3 ``conv``);
* ShuffleNetV2 unit (``stage<s>_unit<u>``): the middle channels of the second branch, i.e. the
  outputs of ``b2_pw1`` and its BatchNorm, the ``b2_dw`` depthwise convolution and its BatchNorm,
  and the matching inputs of ``b2_pw2``.

The same fraction is removed in every unit; the count kept is rounded to a multiple of 8 (at least
8), the width SIMD kernels process at once, so the saving is not eaten by padding.  Which
channels go is decided per unit by an importance score:

``activation`` (data-driven, the default): a channel's mean absolute activation after the
    depthwise stage on calibration images, times the norm of the weights that read it in the
    closing 1x1 convolution: its average contribution to the unit's output;
``magnitude`` (weights only): the L1 norm of the channel's producing filter times the absolute
    scale of its BatchNorm (Liu et al., 2017, "network slimming").

With the data-driven score the removed channels' mean activation is not simply lost: what it added
to the closing convolution's output on average is folded into that convolution's BatchNorm
(subtracted from its moving mean), so the unit's output keeps its mean and the pruned model starts
closer to the source.

The result is a smaller dense Keras model of the same architecture (the functional graph is
cloned with fewer filters and the kept weights copied), fine-tuned afterwards by the training
loop like the pruned ViT (:func:`mobopt.optimize.structured.train_pruned`).  Written here for the
reason the ViT surgery is: no maintained library prunes Keras 3 models structurally.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from mobopt import MobOptError

#: Unit patterns: the producing 1x1 conv -> (the layers that follow channel for channel, the consuming convs).
_PATTERNS = (
    (re.compile(r"^(block_\d+)_expand$"), ("{u}_expand_BN", "{u}_depthwise", "{u}_depthwise_BN"),
     ("{u}_project", "{u}_conv"), "{u}_depthwise_relu"),
    (re.compile(r"^(stage\d+_unit\d+)_b2_pw1$"), ("{u}_b2_pw1_bn", "{u}_b2_dw", "{u}_b2_dw_bn"), ("{u}_b2_pw2",),
     "{u}_b2_dw_bn"),
)
SUPPORTED = ("mobilenetv2", "shufflenetv2")
SIMD = 8


def units(model) -> list[dict[str, Any]]:
    """The prunable units of ``model``: producer, followers, consumer (layer names) and the channel count."""
    names = {layer.name: layer for layer in model.layers}
    found = []
    for layer in model.layers:
        for pattern, followers, consumers, probe in _PATTERNS:
            m = pattern.match(layer.name)
            if not m:
                continue
            u = m.group(1)
            consumer = next((c.format(u=u) for c in consumers if c.format(u=u) in names), None)
            if consumer is None:
                continue
            found.append({"unit": u, "producer": layer.name, "followers": [f.format(u=u) for f in followers
                                                                           if f.format(u=u) in names],
                          "consumer": consumer, "probe": probe.format(u=u) if probe.format(u=u) in names else None,
                          "channels": int(layer.kernel.shape[-1])})
    return found


def kept(channels: int, ratio: float) -> int:
    """Channels kept of ``channels`` when ``ratio`` of them go: a multiple of 8 (at least 8), never more than all."""
    if not 0 < ratio < 1:
        raise MobOptError(f"structured_pruning.channels {ratio} must be above 0 and below 1 (a fraction removed)")
    k = int(round(channels * (1 - ratio) / SIMD)) * SIMD
    return min(channels, max(SIMD, k))


def magnitude_scores(model, unit: dict[str, Any]) -> np.ndarray:
    kernel = np.asarray(model.get_layer(unit["producer"]).kernel)  # (1, 1, in, out)
    score = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    bn = model.get_layer(unit["followers"][0]) if unit["followers"] else None
    if bn is not None and getattr(bn, "gamma", None) is not None:
        score = score * np.abs(np.asarray(bn.gamma))
    return score


def activation_scores(model, found: list[dict[str, Any]], images: np.ndarray,
                      batch: int = 256) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per unit: mean |activation| of each channel where it enters the closing conv, times that conv's weight norm;
    and each channel's mean activation there (what removing it takes away from the unit's output, on average)."""
    import keras

    probes = [model.get_layer(u["probe"]).output for u in found]
    reader = keras.Model(model.inputs, probes)
    sums = [np.zeros(u["channels"]) for u in found]
    means = [np.zeros(u["channels"]) for u in found]
    for start in range(0, len(images), batch):
        outs = reader(np.asarray(images[start:start + batch], np.float32), training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for s, m, o in zip(sums, means, outs, strict=True):
            o = np.asarray(o, np.float64)
            s += np.abs(o).mean(axis=(1, 2)).sum(axis=0)
            m += o.mean(axis=(1, 2)).sum(axis=0)
    scores = []
    for u, s in zip(found, sums, strict=True):
        kernel = np.asarray(model.get_layer(u["consumer"]).kernel)  # (kh, kw, in, out)
        out_norm = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=(0, 1, 3)))
        scores.append(s / len(images) * out_norm)
    return scores, [m / len(images) for m in means]


def _slice(layer_old, layer_new, keep: np.ndarray, role: str) -> list[np.ndarray]:
    weights = layer_old.get_weights()
    if role == "producer":  # conv kernel (kh, kw, in, out) [+ bias]
        return [weights[0][..., keep], *([weights[1][keep]] if len(weights) > 1 else [])]
    if role == "consumer":  # conv kernel (kh, kw, in, out): inputs sliced
        return [weights[0][:, :, keep, :], *weights[1:]]
    if type(layer_old).__name__ == "DepthwiseConv2D":  # (kh, kw, channels, 1) [+ bias]
        return [weights[0][:, :, keep, :], *([weights[1][keep]] if len(weights) > 1 else [])]
    return [w[keep] for w in weights]  # BatchNorm: gamma, beta, moving mean, moving variance


def prune_channels(model, options: dict[str, Any], images: np.ndarray | None = None) -> tuple[Any, dict[str, Any]]:
    """The smaller model and a record of what each unit kept (see the module docstring)."""
    import keras

    from mobopt.models import cost

    found = units(model)
    if not found:
        raise MobOptError("structured_pruning.channels: the model has no MobileNetV2 or ShuffleNetV2 units to prune")
    ratio = float(options["channels"])
    means: list[np.ndarray | None] = [None] * len(found)
    if options["importance"] == "activation":
        if images is None:
            raise MobOptError("structured_pruning.importance activation needs calibration images")
        scores, means = activation_scores(model, found, images)
    else:
        scores = [magnitude_scores(model, u) for u in found]
    plan: dict[str, tuple[np.ndarray, str]] = {}
    filters: dict[str, int] = {}
    record = []
    shifts: dict[str, np.ndarray] = {}
    for u, score, mean in zip(found, scores, means, strict=True):
        k = kept(u["channels"], ratio)
        keep = np.sort(np.argsort(-score, kind="stable")[:k])
        bn = next((f"{u['consumer']}{suffix}" for suffix in ("_BN", "_bn") if f"{u['consumer']}{suffix}" in
                   {layer.name for layer in model.layers}), None)
        if mean is not None and bn is not None:  # the removed channels' average contribution, kept in the BN's mean
            gone = np.setdiff1d(np.arange(u["channels"]), keep)
            kernel = np.asarray(model.get_layer(u["consumer"]).kernel, np.float64)
            shifts[bn] = (kernel[:, :, gone, :].sum(axis=(0, 1)) * mean[gone][:, None]).sum(axis=0)
        filters[u["producer"]] = k
        plan[u["producer"]] = (keep, "producer")
        for f in u["followers"]:
            plan[f] = (keep, "follower")
        plan[u["consumer"]] = (keep, "consumer")
        record.append({"unit": u["unit"], "channels": u["channels"], "kept": k})

    def clone(layer):
        config = layer.get_config()
        if layer.name in filters:
            config["filters"] = filters[layer.name]
        return layer.__class__.from_config(config)

    pruned = keras.models.clone_model(model, clone_function=clone)
    for layer in pruned.layers:
        old = model.get_layer(layer.name)
        if layer.name in plan:
            keep, role = plan[layer.name]
            layer.set_weights(_slice(old, layer, keep, role))
        elif layer.name in shifts:  # BatchNorm: gamma, beta, moving mean, moving variance
            gamma, beta, moving_mean, moving_var = old.get_weights()
            layer.set_weights([gamma, beta, (moving_mean - shifts[layer.name]).astype(moving_mean.dtype), moving_var])
        elif old.get_weights():
            layer.set_weights(old.get_weights())
    before = cost.summarize(cost.count(model))["total"]
    after = cost.summarize(cost.count(pruned))["total"]
    return pruned, {"options": dict(options), "method": "channels", "kept_units": record,
                    "parameters": {"before": int(model.count_params()), "after": int(pruned.count_params())},
                    "macs": {"before": int(before["macs"]), "after": int(after["macs"])}}
