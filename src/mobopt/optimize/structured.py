"""Structured pruning: whole MLP neurons, attention heads and transformer blocks removed from a trained ViT,
or whole channels from the units of a trained MobileNetV2 or ShuffleNetV2 (:mod:`mobopt.optimize.channels`).

Why: unstructured zeros (:mod:`mobopt.optimize.pruning`) leave every matrix its
shape, and XNNPACK's dense GEMMs run zeros at full price; on a CPU without int8
dot-product instructions the int8 variants do not pay either.  Removing whole
units makes every matrix smaller, so the float32 model itself gets faster on any
CPU, and each quantized variant can start from it.

The result is not a masked model but a new, smaller dense ViT built by the same
registry builder (:func:`mobopt.models.architectures.build_vit`) with fewer
``mlp_dim`` neurons, fewer ``heads`` of unchanged width (``key_dim``) and fewer
blocks, into which the kept units' weights are copied.  The same number of units
is kept in every block so the shape stays one ViT spec; which units are kept is
decided per block by an importance score:

``activation`` (data-driven, the default)
    a neuron's mean absolute GELU output on calibration images times the norm of
    its outgoing weights (its average contribution to the residual stream); a
    head's or a block's score is how much the loss on the calibration images
    rises when its output is zeroed (ablation, one forward pass per head/block).
``magnitude`` (weights only, no data)
    a neuron's incoming times outgoing weight norm; a head's value times output
    projection norm; a block's sum of its attention and MLP scores.

After the surgery the model is fine-tuned by the ordinary training loop (the
experiment's ``train`` keys: seeded, resumable, with history and curves), so a
pruned experiment is an experiment like any other and every variant starts
from it.  Written here because no maintained library prunes Keras 3 models
structurally: TF-MOT needs Keras 2, NNCF dropped TensorFlow pruning.

For the CNNs the ``channels`` key is the fraction of each unit's internal channels removed
(``mlp``, ``heads`` and ``blocks`` are the ViT's); the model spec stays the source's, and the
channels kept per unit are in the record (metrics.json ``start``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from mobopt import MobOptError

log = logging.getLogger(__name__)

STRUCTURED_DEFAULTS: dict[str, Any] = {
    "mlp": 0.5, "heads": 0.0, "blocks": 0, "channels": 0.0, "importance": "activation", "calibration_samples": 1024,
}
IMPORTANCES = ("activation", "magnitude")
#: Architectures whose units are removed: the ViT's neurons, heads and blocks; the CNNs' channels.
CNNS = ("mobilenetv2", "shufflenetv2")
SUPPORTED = ("vit", *CNNS)


def check_supported(model_spec: dict[str, Any], key: str = "structured_pruning",
                    options: dict[str, Any] | None = None) -> None:
    """The architecture can be pruned, and the keys asked for are its own (``channels`` for the CNNs only)."""
    name = model_spec.get("name")
    if name not in SUPPORTED:
        raise MobOptError(f"{key}: structured pruning removes ViT units (MLP neurons, heads, blocks) or MobileNetV2 and "
                          f"ShuffleNetV2 channels; model.name {name!r} is not supported (supported: {', '.join(SUPPORTED)})")
    o = {**STRUCTURED_DEFAULTS, **(options or {})}
    if name in CNNS and not 0 < float(o["channels"]) < 1:
        raise MobOptError(f"{key}.channels {o['channels']} must be above 0 and below 1 for a {name} (the fraction of "
                          "each unit's channels removed)")
    if name == "vit" and float(o["channels"]):
        raise MobOptError(f"{key}.channels applies to MobileNetV2 and ShuffleNetV2; for a ViT set mlp, heads or blocks")


def kept_counts(model_options: dict[str, Any], options: dict[str, Any]) -> dict[str, int]:
    """Units left per block (and blocks left) for the ratios in ``options``; at least one of each stays.

    Rounded to the nearest unit for neurons; heads are removed rounded down
    (``heads: 0.5`` of 3 heads removes one), so a ratio below one head's share removes none.
    """
    from mobopt.models.architectures import VIT_DEFAULTS

    o = {**VIT_DEFAULTS, **model_options}
    s = {**STRUCTURED_DEFAULTS, **options}
    for k in ("mlp", "heads"):
        if not 0 <= float(s[k]) < 1:
            raise MobOptError(f"structured_pruning.{k} {s[k]} must be at least 0 and below 1 (a fraction removed)")
    if s["importance"] not in IMPORTANCES:
        raise MobOptError(f"structured_pruning.importance {s['importance']!r}; known: {', '.join(IMPORTANCES)}")
    if not 0 <= int(s["blocks"]) < o["depth"]:
        raise MobOptError(f"structured_pruning.blocks {s['blocks']} must be below model.depth {o['depth']} "
                          "(at least one block stays)")
    return {
        "mlp_dim": max(1, int(round(o["mlp_dim"] * (1 - float(s["mlp"]))))),
        "heads": max(1, o["heads"] - int(math.floor(o["heads"] * float(s["heads"]) + 1e-9))),
        "depth": o["depth"] - int(s["blocks"]),
    }


def pruned_spec(model_options: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The model spec of the pruned ViT: the source's with fewer units and the heads' width pinned."""
    from mobopt.models.architectures import VIT_DEFAULTS

    o = {**VIT_DEFAULTS, **model_options}
    key_dim = o["key_dim"] or o["dim"] // o["heads"]
    return {**model_options, **kept_counts(model_options, options), "key_dim": key_dim}


# ---------------------------------------------------------------------------- importance scores


def _norm(a: np.ndarray, axes) -> np.ndarray:
    return np.sqrt(np.sum(np.square(a.astype(np.float64)), axis=axes))


def _attention_weights(model, block: int) -> dict[str, np.ndarray]:
    layer = model.get_layer(f"block{block}_attn")
    names = ("q_kernel", "q_bias", "k_kernel", "k_bias", "v_kernel", "v_bias", "o_kernel", "o_bias")
    return dict(zip(names, layer.get_weights(), strict=True))


def magnitude_scores(model, depth: int) -> dict[str, list[np.ndarray] | np.ndarray]:
    """Weight-only scores: neurons ``|W1[:, j]| |W2[j]|``; heads ``|Wv_h| |Wo_h|``; blocks the sum of both."""
    neurons, heads, blocks = [], [], []
    for i in range(depth):
        w1 = model.get_layer(f"block{i}_mlp1").get_weights()[0]
        w2 = model.get_layer(f"block{i}_mlp2").get_weights()[0]
        neurons.append(_norm(w1, 0) * _norm(w2, 1))
        a = _attention_weights(model, i)
        heads.append(_norm(a["v_kernel"], (0, 2)) * _norm(a["o_kernel"], (1, 2)))
        blocks.append(float(neurons[-1].sum() + heads[-1].sum()))
    return {"neurons": neurons, "heads": heads, "blocks": np.asarray(blocks)}


def _loss(model, images: np.ndarray, labels: np.ndarray) -> float:
    probs = np.asarray(model.predict(images, batch_size=256, verbose=0), dtype=np.float64)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))


def activation_scores(model, depth: int, images: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Data-driven scores on calibration images (see the module docstring)."""
    import keras

    probe = keras.Model(model.inputs, [model.get_layer(f"block{i}_mlp1").output for i in range(depth)])
    acts = probe.predict(images, batch_size=256, verbose=0)
    acts = acts if isinstance(acts, list | tuple) else [acts]
    neurons = []
    for i in range(depth):
        w2 = model.get_layer(f"block{i}_mlp2").get_weights()[0]
        neurons.append(np.mean(np.abs(np.asarray(acts[i], dtype=np.float64)), axis=(0, 1)) * _norm(w2, 1))
    base = _loss(model, images, labels)
    heads, blocks = [], []
    for i in range(depth):
        attn = model.get_layer(f"block{i}_attn")
        original = attn.get_weights()
        rises = []
        for h in range(original[6].shape[0]):  # zero head h's slice of the output projection
            silenced = [w.copy() for w in original]
            silenced[6][h] = 0.0
            attn.set_weights(silenced)
            rises.append(_loss(model, images, labels) - base)
        attn.set_weights(original)
        heads.append(np.asarray(rises))
        # the whole block: both residual branches zeroed, so the block passes its input through
        mlp2 = model.get_layer(f"block{i}_mlp2")
        kept_mlp2 = mlp2.get_weights()
        attn.set_weights([*original[:6], np.zeros_like(original[6]), np.zeros_like(original[7])])
        mlp2.set_weights([np.zeros_like(w) for w in kept_mlp2])
        blocks.append(_loss(model, images, labels) - base)
        attn.set_weights(original)
        mlp2.set_weights(kept_mlp2)
    return {"neurons": neurons, "heads": heads, "blocks": np.asarray(blocks), "base_loss": base}


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, in their original order (ties: the earlier unit wins)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return np.sort(order)


# ---------------------------------------------------------------------------- surgery


def prune_vit(model, model_options: dict[str, Any], options: dict[str, Any], num_classes: int,
              images: np.ndarray | None = None, labels: np.ndarray | None = None):
    """The smaller ViT and a record of what was kept; ``model`` (the trained source) is left unchanged.

    ``images``/``labels`` (calibration data) are needed for ``importance: activation``.
    """
    from mobopt.models import architectures, cost

    check_supported(model_options)
    s = {**STRUCTURED_DEFAULTS, **options}
    o = {**architectures.VIT_DEFAULTS, **model_options}
    spec = pruned_spec(model_options, s)
    if s["importance"] == "activation":
        if images is None or labels is None:
            raise MobOptError("structured_pruning.importance activation needs calibration images")
        scores = activation_scores(model, o["depth"], images, labels)
    else:
        scores = magnitude_scores(model, o["depth"])
    blocks = [int(b) for b in _top(scores["blocks"], spec["depth"])]
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    small = architectures.build({"name": "vit", **{k: v for k, v in spec.items() if k != "name"}},
                                input_shape, num_classes)
    for layer in small.layers:  # everything outside the blocks: same shapes, same weights
        if layer.weights and not layer.name.startswith("block"):
            layer.set_weights(model.get_layer(layer.name).get_weights())
    norm = small.get_layer("normalize")
    if hasattr(norm, "finalize_state"):  # the mean and variance the layer computes with come from its state
        norm.finalize_state()
    kept: list[dict[str, Any]] = []
    for new, old in enumerate(blocks):
        for ln in ("ln1", "ln2"):
            small.get_layer(f"block{new}_{ln}").set_weights(model.get_layer(f"block{old}_{ln}").get_weights())
        neurons = _top(scores["neurons"][old], spec["mlp_dim"])
        w1, b1 = model.get_layer(f"block{old}_mlp1").get_weights()
        w2, b2 = model.get_layer(f"block{old}_mlp2").get_weights()
        small.get_layer(f"block{new}_mlp1").set_weights([w1[:, neurons], b1[neurons]])
        small.get_layer(f"block{new}_mlp2").set_weights([w2[neurons], b2])
        heads = _top(scores["heads"][old], spec["heads"])
        a = _attention_weights(model, old)
        small.get_layer(f"block{new}_attn").set_weights([
            a["q_kernel"][:, heads], a["q_bias"][heads], a["k_kernel"][:, heads], a["k_bias"][heads],
            a["v_kernel"][:, heads], a["v_bias"][heads], a["o_kernel"][heads], a["o_bias"]])
        kept.append({"block": old, "heads": [int(h) for h in heads], "neurons": len(neurons)})
    before = cost.summarize(cost.count(model))["total"]
    after = cost.summarize(cost.count(small))["total"]
    record = {
        "options": s, "source_spec": model_options, "spec": spec, "kept_blocks": kept,
        "parameters": {"before": int(model.count_params()), "after": int(small.count_params())},
        "macs": {"before": int(before["macs"]), "after": int(after["macs"])},
    }
    if "base_loss" in scores:
        record["calibration_loss"] = scores["base_loss"]
    log.info("structured pruning: %d -> %d parameters, %d -> %d MACs; per block %d heads, %d MLP neurons, %d blocks",
             record["parameters"]["before"], record["parameters"]["after"], record["macs"]["before"],
             record["macs"]["after"], spec["heads"], spec["mlp_dim"], spec["depth"])
    return small, record


def calibration_set(x: np.ndarray, y: np.ndarray, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of the training images for the importance scores."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(x), size=min(samples, len(x)), replace=False))
    return np.asarray(x[idx]), np.asarray(y[idx])


def train_pruned(prepared, out_dir, experiment: str, spec: dict[str, Any], seed: int, source: str,
                 callbacks: list | None = None, teacher: str | None = None) -> dict[str, Any]:
    """Prune the trained model at ``source`` by ``spec['structured_pruning']`` and fine-tune it by ``spec['train']``.

    ``spec['model']`` is the source experiment's model spec; metrics.json records
    the pruned one (``spec.model``), the source (``spec.structured_pruning``: its
    spec and the sha256 of its file, so a retrained source invalidates a
    checkpoint) and what was kept (``start``).
    """
    from pathlib import Path

    from mobopt.common import download
    from mobopt.datasets.prepared import num_outputs
    from mobopt.models import architectures
    from mobopt.models import train as training

    options = {**STRUCTURED_DEFAULTS, **spec.get("structured_pruning", {})}
    check_supported(spec["model"], f"experiments.{experiment}.structured_pruning", options)
    cnn = spec["model"].get("name") in CNNS
    if not Path(source).exists():
        raise MobOptError(f"{source}: the source model of experiments.{experiment}.structured_pruning is missing; "
                          "train that experiment first")
    digest = download.sha256sum(source)
    full = {**spec, "model": spec["model"] if cnn else pruned_spec(spec["model"], options),
            "structured_pruning": {**options, "source_model": spec["model"], "source_sha256": digest}}

    def start(x_train, y_train, meta):
        trained = architectures.load(source)
        images, labels = calibration_set(x_train, y_train, int(options["calibration_samples"]), seed)
        if cnn:
            from mobopt.optimize import channels

            model, record = channels.prune_channels(trained, options, images)
            log.info("channel pruning: %d -> %d parameters, %d -> %d MACs", record["parameters"]["before"],
                     record["parameters"]["after"], record["macs"]["before"], record["macs"]["after"])
            return model, {**record, "source_spec": spec["model"]}
        return prune_vit(trained, spec["model"], options, num_outputs(meta), images, labels)

    return training.train(prepared, out_dir, experiment, full, seed, start=start, callbacks=callbacks,
                          teacher=teacher)
