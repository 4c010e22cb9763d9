"""Magnitude pruning in plain Keras 3, with a short fine-tune (graph-optimization step a).

Why not tensorflow-model-optimization: its pruning wrappers need the legacy
``tf-keras`` (Keras 2); our models are Keras 3.  What it does is small enough
to write directly, without wrapping layers:

* every kernel with at least ``min_weights`` entries (Dense, the attention's
  EinsumDense projections, Conv2D, DepthwiseConv2D) gets a 0/1 **mask**, a
  non-trainable ``keras.Variable``;
* the mask is attached to its kernel as the variable's ``constraint``; Keras 3
  optimizers apply a variable's constraint after every update, so a pruned
  weight stays exactly zero through fine-tuning, with no wrapper layer and no
  change to the graph;
* a callback raises the sparsity along TFMOT's polynomial schedule,
  ``s_t = s * (1 - (1 - t / T)**3)`` over the first ``schedule_fraction`` of
  the steps, recomputing each mask from the current magnitudes every
  ``frequency`` steps (each kernel pruned to the same fraction: layer-wise,
  as TFMOT does by default), then holds it while the network recovers;
* after fine-tuning the masks are **stripped**: the constraints are removed and
  the masks dropped, so the saved model has the original layers and variables
  and only zeros in its kernels.

Sparsity is measured on the saved weights, not assumed.  What it buys on a
CPU: XNNPACK's int8 and float GEMMs are dense, so unstructured zeros do not make
inference faster; they shrink the gzip-compressed download, and they are the
paper's "graph pruning".  The latency figures say so.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.common import provenance
from mobopt.common.atomic import atomic_path, write_json
from mobopt.datasets.prepared import load_meta, load_split

log = logging.getLogger(__name__)

PRUNING_DEFAULTS: dict[str, Any] = {
    "enabled": True, "sparsity": 0.3, "epochs": 2, "batch_size": 64, "learning_rate": 1e-5,
    "weight_decay": 0.0, "min_weights": 1024, "schedule_fraction": 0.7, "frequency": 10, "threads": 2,
}


def prunable_kernels(model, min_weights: int = 0) -> list:
    """Kernels worth pruning: variables named ``kernel``/``depthwise_kernel`` with >= ``min_weights`` entries.

    Biases, normalisation parameters, embeddings and tiny kernels are kept:
    they are few weights and pruning them costs accuracy for nothing.  Only
    trainable kernels: a frozen layer (the early MobileNetV2 backbone layers
    of a transfer-learning run) could not recover from pruning, and its
    constraint would never be applied.
    """
    out = []
    for v in model.trainable_variables:
        name = v.path.rsplit("/", 1)[-1]
        if name in ("kernel", "depthwise_kernel") and int(np.prod(v.shape)) >= min_weights:
            out.append(v)
    return out


def magnitude_mask(values: np.ndarray, sparsity: float) -> np.ndarray:
    """0/1 mask zeroing the ``round(sparsity * n)`` smallest magnitudes (ties broken by position: deterministic)."""
    flat = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    k = int(round(sparsity * flat.size))
    mask = np.ones(flat.size, dtype=np.float32)
    if k > 0:
        mask[np.argsort(flat, kind="stable")[:k]] = 0.0
    return mask.reshape(np.shape(values))


def schedule(step: int, total_steps: int, sparsity: float, fraction: float) -> float:
    """TFMOT's polynomial (cubic) ramp from 0 to ``sparsity`` over ``fraction`` of the steps."""
    ramp = max(1, int(math.ceil(fraction * total_steps)))
    t = min(1.0, step / ramp)
    return sparsity * (1.0 - (1.0 - t) ** 3)


class MaskedKernels:
    """The masks of one pruning run: non-trainable variables attached to kernels as constraints."""

    def __init__(self, kernels: list):
        import keras

        self.kernels = kernels
        self.masks = [keras.Variable(np.ones(k.shape, dtype="float32"), trainable=False, name="prune_mask")
                      for k in kernels]
        self.sparsity = 0.0

    def attach(self) -> None:
        from keras import ops

        for kernel, mask in zip(self.kernels, self.masks, strict=True):
            kernel.constraint = lambda w, m=mask: ops.multiply(w, ops.cast(m, w.dtype))

    def update(self, sparsity: float) -> None:
        """Recompute every mask from the current magnitudes and zero the pruned weights now."""
        self.sparsity = sparsity
        for kernel, mask in zip(self.kernels, self.masks, strict=True):
            value = np.asarray(kernel)
            m = magnitude_mask(value, sparsity)
            mask.assign(m)
            kernel.assign(value * m)

    def strip(self) -> None:
        """Remove the constraints and forget the masks: the model is a plain Keras model again."""
        for kernel, mask in zip(self.kernels, self.masks, strict=True):
            kernel.assign(np.asarray(kernel) * np.asarray(mask))
            kernel.constraint = None
        self.masks = []


def measure_sparsity(model, min_weights: int) -> dict[str, Any]:
    """Zeros per prunable kernel and overall, read from the weights themselves."""
    per_kernel = {}
    zeros = total = 0
    for v in prunable_kernels(model, min_weights):
        n = int(np.prod(v.shape))
        z = int(np.sum(np.asarray(v) == 0))
        per_kernel[v.path] = {"weights": n, "zeros": z, "sparsity": z / n}
        zeros, total = zeros + z, total + n
    all_params = int(sum(np.prod(v.shape) for v in model.weights))
    return {"kernels": per_kernel, "pruned_weights": total, "zeros": zeros,
            "sparsity": (zeros / total) if total else 0.0,
            "model_parameters": all_params, "model_sparsity": zeros / all_params if all_params else 0.0}


def prune(model_path: str | Path, prepared: str | Path, out_model: str | Path, out_json: str | Path,
          options: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """Prune ``model_path`` to ``options['sparsity']`` with a short fine-tune; save the stripped model."""
    opts = {**PRUNING_DEFAULTS, **(options or {})}
    if not 0.0 <= opts["sparsity"] < 1.0:
        raise MobOptError(f"config key graph_opt.pruning.sparsity must be in [0, 1), got {opts['sparsity']}")
    from mobopt.models.runtime import configure_tensorflow
    from mobopt.models.train import epoch_batches, eval_batches

    tf = configure_tensorflow(seed, opts["threads"])
    import keras

    from mobopt.models import architectures

    model = architectures.load(model_path)
    meta = load_meta(prepared)
    x_train, y_train = load_split(prepared, "train")
    x_val, y_val = load_split(prepared, "val")
    kernels = prunable_kernels(model, opts["min_weights"])
    if opts["enabled"] and opts["sparsity"] > 0 and not kernels:
        raise MobOptError(f"{model_path}: no kernel has >= graph_opt.pruning.min_weights ({opts['min_weights']}) weights")
    steps = math.ceil(len(x_train) / opts["batch_size"])
    total = steps * opts["epochs"]
    model.compile(optimizer=keras.optimizers.AdamW(opts["learning_rate"], weight_decay=opts["weight_decay"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(eval_batches(tf, x_val, y_val), verbose=0, return_dict=True)
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    masks = None
    if opts["enabled"] and opts["sparsity"] > 0:
        masks = MaskedKernels(kernels)
        masks.attach()
        frequency = max(1, int(opts["frequency"]))

        class Schedule(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.step = 0

            def on_train_batch_begin(self, batch, logs=None):
                if self.step % frequency == 0 or self.step == total - 1:
                    target = schedule(self.step, total, opts["sparsity"], opts["schedule_fraction"])
                    if target > masks.sparsity:
                        masks.update(target)
                self.step += 1

            def on_epoch_end(self, epoch, logs=None):
                history.append({"epoch": epoch + 1, "target_sparsity": masks.sparsity,
                                **{k: float(v) for k, v in (logs or {}).items()}})

        if total:
            model.fit(epoch_batches(tf, x_train, y_train, opts["batch_size"], seed, 0, opts["epochs"]),
                      validation_data=eval_batches(tf, x_val, y_val), epochs=opts["epochs"], steps_per_epoch=steps,
                      callbacks=[Schedule()], verbose=2)
        masks.update(opts["sparsity"])  # exactly the configured sparsity, also with epochs: 0 (one-shot)
        masks.strip()
    after = model.evaluate(eval_batches(tf, x_val, y_val), verbose=0, return_dict=True)
    # a plain model again: no constraints, no mask variables, the original layer classes
    leftovers = [v.path for v in model.variables if v.constraint is not None or "prune_mask" in v.path]
    if leftovers:
        raise MobOptError(f"{out_model}: pruning state left in the model: {leftovers[:5]}")
    with atomic_path(out_model) as tmp:
        model.save(tmp)
    measured = measure_sparsity(architectures.load(out_model), opts["min_weights"])
    info = {
        "source_model": str(model_path),
        "options": opts,
        "enabled": bool(opts["enabled"] and opts["sparsity"] > 0),
        "target_sparsity": opts["sparsity"] if opts["enabled"] else 0.0,
        "measured": measured,
        "fine_tune_steps": total if masks is not None else 0,
        "fine_tune_seconds": time.perf_counter() - t0,
        "val_before": {k: float(v) for k, v in before.items()},
        "val_after": {k: float(v) for k, v in after.items()},
        "history": history,
        "provenance": provenance.collect(seed=seed, threads=opts["threads"], dataset=meta),
    }
    write_json(out_json, info)
    log.info("pruned %s: %.1f %% of %d prunable weights are zero; val accuracy %.4f -> %.4f", model_path,
             100 * measured["sparsity"], measured["pruned_weights"], before.get("accuracy", float("nan")),
             after.get("accuracy", float("nan")))
    return info
