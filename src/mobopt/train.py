"""Seeded, deterministic, resumable training of one experiment.

Determinism: one seed drives Python, NumPy, TF and Keras
(``keras.utils.set_random_seed``), TF op determinism is enabled and the
thread counts are pinned from the config (not from how many cores the
scheduler happened to grant), so the same config and seed on the same machine
give the same weights, and therefore byte-identical .tflite files.

Resume: after every epoch the full model (weights + optimizer state) and the
history so far are checkpointed atomically under ``<out>/.checkpoint``.  A
rerun after an interruption continues from the last finished epoch; the data
order of epoch ``e`` is a permutation drawn from ``(seed, e)`` and the dropout
RNG states are checkpointed too, so a resumed run sees the same batches and
masks as an uninterrupted one and ends with the same history.  A checkpoint written for a
different spec is ignored.  The checkpoint is removed when training finishes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError, provenance
from mobopt.atomic import atomic_path, write_json
from mobopt.datasets import load_meta, load_split

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")

TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 25, "batch_size": 128, "learning_rate": 1e-3, "weight_decay": 1e-4,
    "warmup_epochs": 1, "threads": 2,
}


def configure_tensorflow(seed: int, threads: int):
    """Seed everything, enable op determinism and pin thread counts (before any TF op runs)."""
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # runtime already initialised in this process (tests): keep its settings
        log.warning("TensorFlow already initialised; thread counts not changed")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return tf


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def epoch_batches(tf, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, first: int, last: int):
    """Batches for epochs ``first..last-1``, each epoch in the order drawn from ``(seed, epoch)``.

    Images stay uint8 in memory (4x less than float) and are cast per batch.
    """
    xt, yt = tf.constant(x), tf.constant(y)
    perms = [np.random.default_rng([seed, e]).permutation(len(x)) for e in range(first, last)]
    parts = [tf.data.Dataset.from_tensor_slices(p).batch(batch_size) for p in perms]
    ds = parts[0]
    for part in parts[1:]:
        ds = ds.concatenate(part)
    return ds.map(lambda i: (tf.cast(tf.gather(xt, i), tf.float32), tf.gather(yt, i))).prefetch(2)


def rng_variables(model) -> list:
    """The random-number states of the model's Dropout layers, in layer order.

    They are variables, but not among ``model.weights``, so ``model.save`` drops
    them; without them a resumed run would draw different dropout masks than an
    uninterrupted one.
    """
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


def _callback_class():
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """Record history and checkpoint model + optimizer atomically after each epoch."""

        def __init__(self, ckpt_dir: Path, rows: list[dict[str, float]], digest: str):
            super().__init__()
            self.ckpt_dir, self.rows, self.digest = ckpt_dir, rows, digest
            self._t0 = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            lr = self.model.optimizer.learning_rate
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items() if k in HISTORY_COLUMNS},
                   "learning_rate": float(np.asarray(lr)), "seconds": time.perf_counter() - self._t0}
            self.rows.append(row)
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            model_path = self.ckpt_dir / f"epoch{epoch + 1:04d}.keras"
            rng_path = model_path.with_suffix(".rng.npz")
            with atomic_path(model_path) as tmp:
                self.model.save(tmp)
            with atomic_path(rng_path) as tmp:
                np.savez(tmp, *[np.asarray(v) for v in rng_variables(self.model)])
            # state.json is written last: it only ever names a complete checkpoint.
            write_json(self.ckpt_dir / "state.json",
                       {"epoch": epoch + 1, "model": model_path.name, "rng": rng_path.name, "history": self.rows,
                        "spec_sha256": self.digest})
            for old in self.ckpt_dir.glob("epoch*"):
                if old not in (model_path, rng_path):
                    old.unlink(missing_ok=True)

    return EpochCheckpoint


def _schedule(keras, spec: dict[str, Any], steps_per_epoch: int):
    """Linear warm-up then cosine decay: the usual recipe for training a ViT from scratch."""
    total = max(1, spec["epochs"] * steps_per_epoch)
    warmup = min(total - 1, spec["warmup_epochs"] * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else spec["learning_rate"], decay_steps=total - warmup,
        warmup_target=spec["learning_rate"] if warmup else None, warmup_steps=warmup,
    )


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def train(prepared: str | Path, out_dir: str | Path, experiment: str, spec: dict[str, Any], seed: int,
          *, callbacks: list | None = None) -> dict[str, Any]:
    """Train ``spec['model']`` on the prepared dataset; write model.keras, history.csv, metrics.json."""
    prepared, out_dir = Path(prepared), Path(out_dir)
    tspec = {**TRAIN_DEFAULTS, **spec.get("train", {})}
    tf = configure_tensorflow(seed, tspec["threads"])
    import keras

    from mobopt import models

    meta = load_meta(prepared)
    x_train, y_train = load_split(prepared, "train")
    x_val, y_val = load_split(prepared, "val")
    digest = spec_hash({"spec": spec, "seed": seed, "data": meta})
    steps = math.ceil(len(x_train) / tspec["batch_size"])
    ckpt_dir = out_dir / ".checkpoint"
    rows: list[dict[str, float]] = []
    initial_epoch = 0
    model = None
    state_path = ckpt_dir / "state.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("spec_sha256") == digest and (ckpt_dir / state["model"]).exists():
            model = keras.models.load_model(ckpt_dir / state["model"])
            with np.load(ckpt_dir / state["rng"]) as saved:
                states = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            variables = rng_variables(model)
            if len(states) != len(variables):
                raise MobOptError(f"{ckpt_dir}: checkpoint holds {len(states)} dropout RNG states but the model has "
                                  f"{len(variables)}; delete the folder to restart training")
            for var, value in zip(variables, states, strict=True):
                var.assign(value)
            rows, initial_epoch = state["history"], state["epoch"]
            log.info("resuming %s from the checkpoint after epoch %d", experiment, initial_epoch)
        else:
            log.warning("ignoring checkpoint in %s: written for a different spec, seed or dataset", ckpt_dir)
            shutil.rmtree(ckpt_dir)
    if model is None:
        model = models.build(spec["model"], meta["image_shape"], len(meta["classes"]), x_train)
        model.compile(
            optimizer=keras.optimizers.AdamW(_schedule(keras, tspec, steps), weight_decay=tspec["weight_decay"]),
            loss="sparse_categorical_crossentropy", metrics=["accuracy"],
        )
    model.summary(print_fn=log.info)
    params = int(model.count_params())
    t0 = time.perf_counter()
    if initial_epoch < tspec["epochs"]:
        model.fit(
            epoch_batches(tf, x_train, y_train, tspec["batch_size"], seed, initial_epoch, tspec["epochs"]),
            validation_data=tf.data.Dataset.from_tensor_slices((x_val.astype("float32"), y_val)).batch(256),
            epochs=tspec["epochs"], initial_epoch=initial_epoch, steps_per_epoch=steps,
            callbacks=[_callback_class()(ckpt_dir, rows, digest), *(callbacks or [])], verbose=2,
        )
    seconds = time.perf_counter() - t0
    epochs_run = tspec["epochs"] - initial_epoch
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.keras") as tmp:
        model.save(tmp)
    write_history(out_dir / "history.csv", rows)
    metrics = {
        "experiment": experiment,
        "parameters": params,
        "epochs": tspec["epochs"],
        "resumed_from_epoch": initial_epoch,
        "train_seconds_this_run": seconds,
        "train_images_per_second": (epochs_run * len(x_train) / seconds) if epochs_run else None,
        "final": rows[-1] if rows else {},
        "best_val_accuracy": max((r.get("val_accuracy", 0.0) for r in rows), default=None),
        "spec": spec,
        "provenance": provenance.collect(seed=seed, threads=tspec["threads"], dataset=meta),
    }
    write_json(out_dir / "metrics.json", metrics)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return metrics
