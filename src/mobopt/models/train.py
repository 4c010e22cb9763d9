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

Transfer learning (MobileNetV2 on ASL): ``frozen_epochs`` train only the new
head over a frozen pretrained ``backbone``, then the remaining epochs
fine-tune the backbone from layer ``fine_tune_from`` on, with a fresh
optimizer at ``fine_tune_learning_rate`` (the usual two-phase recipe; the
backbone's BatchNorm layers stay in inference mode throughout).  ``epochs: 0``
keeps a pretrained model as it is (MobileNetV2 on ImageNet).

Images are read from the memory-mapped prepared split batch by batch, so a
dataset larger than RAM trains as well as MNIST does.

Augmentation (``train.augmentation``, off by default: a horizontal flip turns digits into other shapes):
a random horizontal flip, a random shift of up to ``max_shift`` pixels (zero padding, then a crop back
to size: the usual CIFAR and Fashion-MNIST recipe) and random erasing (a rectangle of noise,
:func:`erase`), applied to the uint8 batch in the input thread.  It is written here rather than with
Keras' RandomFlip/RandomTranslation layers because those would either sit in the exported model or draw
from a generator state that a resumed run cannot restore; here every batch draws from its own ``(seed,
epoch, batch)`` generator, so a resumed run augments exactly as an uninterrupted one.

``train.label_smoothing`` trains on smoothed targets (:mod:`mobopt.models.losses`).

Optimizer and schedule (``train.optimizer``, ``train.lr_schedule``): AdamW with a linear warm-up and cosine
decay by default (the paper's ViT); ``sgd`` with ``momentum`` and ``lr_schedule: step`` (the learning rate
times ``lr_step_factor`` every ``lr_step_epochs`` epochs) is the second study's recipe for the
lightweight CNNs (:func:`_schedule`, :func:`_optimizer`).

Speed options (``benchmarks/train_throughput.py`` measures them): ``jit_compile``, off by default,
compiles the train and validation steps with XLA.  Keras refuses XLA while op
determinism is on (some XLA GPU kernels are not deterministic) and silently falls back, so
:func:`_compile` turns it on past that check; on a CPU an XLA train step under op determinism is
bit-reproducible (tests/test_train_speed_options.py), on a GPU that is not checked.  XLA draws
other dropout masks and fuses differently, so its weights differ from a run without XLA.
``precision: mixed_bfloat16`` builds the model under Keras' mixed policy (float32 weights,
bfloat16 matmuls and activations; the input normalisation, LayerNorm statistics, the classifier
softmax and the loss stay float32).  It pays off only where the CPU has bfloat16 instructions
(AVX-512 BF16, AMX) or on a GPU, so the default, ``auto``, takes it exactly where the CPU has them
(:func:`resolve_precision`) and float32 everywhere else, which is the earlier behaviour there.
The saved model.keras always computes in float32
(:func:`mobopt.models.architectures.float32_model`), so conversion and evaluation see the same
graph as after float32 training.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.common import download, provenance
from mobopt.common.atomic import atomic_path, write_json
from mobopt.datasets.prepared import load_meta, load_split, num_outputs

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")

TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 25, "batch_size": 128, "learning_rate": 1e-3, "weight_decay": 1e-4,
    "warmup_epochs": 1, "threads": 2, "frozen_epochs": 0, "fine_tune_learning_rate": 1e-4, "fine_tune_from": 0,
    "jit_compile": False, "precision": "auto",
    "augmentation": {"horizontal_flip": False, "max_shift": 0, "random_erasing": 0.0}, "label_smoothing": 0.0,
    "optimizer": "adamw", "momentum": 0.9, "lr_schedule": "cosine", "lr_step_epochs": 10, "lr_step_factor": 0.1,
}

#: ``train.optimizer`` values.
OPTIMIZERS = ("adamw", "sgd")
#: ``train.lr_schedule`` values.
LR_SCHEDULES = ("cosine", "step")

#: ``train.precision`` values: Keras dtype policies, and ``auto`` (:func:`resolve_precision`).
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
#: CPU features (mobopt.common.cpuinfo) that give TensorFlow bfloat16 arithmetic in hardware.
BF16_FEATURES = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Phase:
    """Epochs ``[first, last)`` trained with one optimizer and one set of trainable layers."""

    name: str
    first: int
    last: int
    learning_rate: float
    warmup_epochs: int
    frozen_backbone: bool


def phases(tspec: dict[str, Any]) -> list[Phase]:
    """``train`` for a model trained as a whole; ``frozen`` then ``fine_tune`` for transfer learning."""
    epochs, frozen = tspec["epochs"], tspec["frozen_epochs"]
    if frozen > epochs:
        raise MobOptError(f"train.frozen_epochs ({frozen}) exceeds train.epochs ({epochs})")
    if not frozen:
        return [Phase("train", 0, epochs, tspec["learning_rate"], tspec["warmup_epochs"], False)] if epochs else []
    out = [Phase("frozen", 0, frozen, tspec["learning_rate"], tspec["warmup_epochs"], True)]
    if epochs > frozen:
        out.append(Phase("fine_tune", frozen, epochs, tspec["fine_tune_learning_rate"], 0, False))
    return out


def set_trainable(model, phase: Phase, fine_tune_from: int) -> None:
    """Freeze the whole ``backbone`` layer, or only its first ``fine_tune_from`` layers."""
    backbone = next((layer for layer in model.layers if layer.name == "backbone"), None)
    if backbone is None:
        if phase.frozen_backbone:
            raise MobOptError("train.frozen_epochs needs a model with a pretrained backbone (e.g. mobilenetv2)")
        return
    backbone.trainable = not phase.frozen_backbone
    if not phase.frozen_backbone:
        for layer in backbone.layers[:fine_tune_from]:
            layer.trainable = False


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


#: Random erasing's rectangle (Zhong et al., 2020, their defaults): area a fraction in [0.02, 0.4] of the
#: image, aspect ratio (height / width) log-uniform in [0.3, 1 / 0.3], filled with uniform random pixels.
ERASE_AREA = (0.02, 0.4)
ERASE_ASPECT = (0.3, 1 / 0.3)


def augment(images: np.ndarray, rng: np.random.Generator, horizontal_flip: bool = False,
            max_shift: int = 0, random_erasing: float = 0.0) -> np.ndarray:
    """A batch (N, H, W, C) flipped left-right at random (half of it), shifted by up to ``max_shift``
    pixels each way (zero fill), and with a random rectangle of each image replaced by noise with
    probability ``random_erasing``; the input is not modified."""
    out = np.array(images, copy=True)
    if horizontal_flip:
        flip = rng.random(len(out)) < 0.5
        out[flip] = out[flip][:, :, ::-1]
    if max_shift:
        n, h, w = out.shape[:3]
        if max_shift >= min(h, w):
            raise MobOptError(f"train.augmentation.max_shift {max_shift} must be smaller than the image ({h}x{w})")
        padded = np.pad(out, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
        offsets = rng.integers(0, 2 * max_shift + 1, size=(n, 2))
        for i, (dy, dx) in enumerate(offsets):
            out[i] = padded[i, dy:dy + h, dx:dx + w]
    if random_erasing:
        erase(out, rng, random_erasing)
    return out


def erase(images: np.ndarray, rng: np.random.Generator, probability: float) -> None:
    """Random erasing in place: each image, with ``probability``, gets one rectangle of uniform noise
    (:data:`ERASE_AREA`, :data:`ERASE_ASPECT`; a draw that does not fit is redrawn, up to 10 times,
    as in the paper).  A regulariser for occlusion: the model cannot rely on any one region."""
    n, h, w = images.shape[:3]
    hi = np.iinfo(images.dtype).max + 1 if np.issubdtype(images.dtype, np.integer) else 1.0
    for i in np.flatnonzero(rng.random(n) < probability):
        for _ in range(10):
            area = rng.uniform(*ERASE_AREA) * h * w
            aspect = math.exp(rng.uniform(math.log(ERASE_ASPECT[0]), math.log(ERASE_ASPECT[1])))
            eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < eh < h and 0 < ew < w:
                y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
                noise = rng.integers(0, hi, size=(eh, ew, *images.shape[3:])) if hi != 1.0 else \
                    rng.random((eh, ew, *images.shape[3:]))
                images[i, y:y + eh, x:x + ew] = noise
                break


def _batches(tf, x: np.ndarray, y: np.ndarray, orders, augmentation: dict[str, Any] | None = None):
    """A tf.data pipeline over index batches: images gathered from ``x`` (uint8, possibly memory-mapped)
    in a background thread, augmented when asked (``orders`` then yields each batch's generator too),
    cast to float per batch; memory holds a few batches, not the dataset."""
    active = bool(augmentation) and any(augmentation.get(k) for k in ("horizontal_flip", "max_shift", "random_erasing"))

    def gen():
        for item in orders():
            if active:
                idx, rng = item
                yield augment(x[idx], rng, bool(augmentation.get("horizontal_flip")),
                              int(augmentation.get("max_shift") or 0),
                              float(augmentation.get("random_erasing") or 0.0)), y[idx]
            else:
                idx = item[0] if isinstance(item, tuple) else item
                yield x[idx], y[idx]

    sig = (tf.TensorSpec((None, *x.shape[1:]), tf.uint8), tf.TensorSpec((None,), tf.int64))
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
    return ds.map(lambda a, b: (tf.cast(a, tf.float32), b)).prefetch(2)


def epoch_batches(tf, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, first: int, last: int,
                  augmentation: dict[str, Any] | None = None):
    """Batches for epochs ``first..last-1``, each epoch in the order drawn from ``(seed, epoch)``, each
    batch augmented (if asked) from its own ``(seed, epoch, batch)`` generator."""
    def orders():
        for e in range(first, last):
            perm = np.random.default_rng([seed, e]).permutation(len(x))
            for b, start in enumerate(range(0, len(perm), batch_size)):
                yield perm[start:start + batch_size], np.random.default_rng([seed, e, b, 1])

    return _batches(tf, x, y, orders, augmentation)


def eval_batches(tf, x: np.ndarray, y: np.ndarray, batch_size: int = 256):
    """Batches in file order (validation, prediction)."""
    return _batches(tf, x, y, lambda: (np.arange(s, min(s + batch_size, len(x))) for s in range(0, len(x), batch_size)))


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

        def __init__(self, ckpt_dir: Path, rows: list[dict[str, float]], digest: str, phase: str):
            super().__init__()
            self.ckpt_dir, self.rows, self.digest, self.phase = ckpt_dir, rows, digest, phase
            self._t0 = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            lr = self.model.optimizer.learning_rate
            row = {"epoch": epoch + 1, "phase": self.phase,
                   **{k: float(v) for k, v in logs.items() if k in HISTORY_COLUMNS},
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


#: Seconds between training progress lines (steps done, img/s, ETA); Keras adds one summary per epoch.
PROGRESS_SECONDS = 60.0


class TrainingProgress:
    """Step-level progress of one training run, across its phases: the Keras callback methods that matter,
    on a plain object so a test drives it with a fake clock (:func:`progress_callback` makes it a callback).

    Keras' ``verbose=2`` prints a line per epoch only; an epoch of MobileNetV2 at 224 px on a CPU takes
    hours, so this logs the steps done, images per second and the time left at least every
    ``interval`` seconds (default :data:`PROGRESS_SECONDS`), as soon as a step ends.
    """

    def __init__(self, label: str, epochs: int, first_epoch: int, steps_per_epoch: int, images_per_epoch: int,
                 batch_size: int, *, interval: float | None = None, clock=time.monotonic):
        from mobopt.common.progress import Progress

        self.epochs, self.steps, self.images, self.batch_size = epochs, steps_per_epoch, images_per_epoch, batch_size
        self.epoch = first_epoch
        self.progress = Progress(label, (epochs - first_epoch) * steps_per_epoch, "steps",
                                 interval=PROGRESS_SECONDS if interval is None else interval, clock=clock, logger=log)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        last = batch == self.steps - 1  # the epoch's last batch holds what is left
        images = self.images - (self.steps - 1) * self.batch_size if last else self.batch_size
        self.progress.advance(1, images=images, note=f"epoch {self.epoch + 1}/{self.epochs}")


def progress_callback(progress: TrainingProgress):
    """``progress`` as a Keras callback (one object for every phase's ``fit``, so the count runs on)."""
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            progress.on_epoch_begin(epoch, logs)

        def on_train_batch_end(self, batch, logs=None):
            progress.on_train_batch_end(batch, logs)

    return ProgressCallback()


def step_boundaries(phase: Phase, steps_per_epoch: int, step_epochs: int, factor: float) -> tuple[list[int], list[float]]:
    """The step schedule's boundaries and learning rates, as PiecewiseConstantDecay takes them:
    ``learning_rate * factor**k`` from epoch ``k * step_epochs`` of the phase on.  A boundary is the last
    optimizer step (counted from 0 at the phase's start) before a drop, since the schedule keeps
    ``values[i]`` while ``step <= boundaries[i]``; one per drop inside the phase (none when the phase is
    not longer than ``step_epochs``)."""
    lr, epochs = phase.learning_rate, phase.last - phase.first
    drops = list(range(step_epochs, epochs, step_epochs))
    return [e * steps_per_epoch - 1 for e in drops], [lr * factor ** k for k in range(len(drops) + 1)]


def _schedule(keras, phase: Phase, steps_per_epoch: int, tspec: dict[str, Any] | None = None):
    """The phase's learning rate as a function of the optimizer's step (a fresh optimizer per phase counts from 0).

    ``cosine`` (the default): linear warm-up then cosine decay over the phase, the usual recipe for a ViT
    from scratch, and a gentle one for fine-tuning.  ``step``: the learning rate times ``lr_step_factor``
    every ``lr_step_epochs`` epochs (the second study's "0.01, x0.1 every 10 epochs"), Keras'
    PiecewiseConstantDecay over steps; a warm-up (``warmup_epochs`` > 0) ramps linearly from 0 to the first
    value before it (:class:`mobopt.models.schedules.WarmupPiecewiseConstantDecay`), the drops still
    counted from the phase's first epoch.  Either is a pure function of the step count, which the
    checkpoint holds with the optimizer, so a resumed run follows the same curve.
    """
    tspec = {**TRAIN_DEFAULTS, **(tspec or {})}
    total = max(1, (phase.last - phase.first) * steps_per_epoch)
    warmup = min(total - 1, phase.warmup_epochs * steps_per_epoch)
    if tspec["lr_schedule"] == "step":
        boundaries, values = step_boundaries(phase, steps_per_epoch, int(tspec["lr_step_epochs"]),
                                             float(tspec["lr_step_factor"]))
        if not boundaries:  # Keras wants one boundary at least: one past the phase's end, never reached
            boundaries, values = [total], [values[0], values[0]]
        if warmup:
            from mobopt.models import schedules

            return schedules.WarmupPiecewiseConstantDecay(boundaries, values, warmup_steps=warmup)
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if tspec["lr_schedule"] != "cosine":
        raise MobOptError(f"train.lr_schedule {tspec['lr_schedule']!r}; known: {', '.join(LR_SCHEDULES)}")
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else phase.learning_rate, decay_steps=total - warmup,
        warmup_target=phase.learning_rate if warmup else None, warmup_steps=warmup,
    )


def _optimizer(keras, phase: Phase, tspec: dict[str, Any], steps: int):
    """AdamW (the default: the paper's ViT) or SGD with momentum (the second study), on the phase's schedule.

    ``weight_decay`` is Keras' decoupled decay for both: each step multiplies the weights by
    ``1 - learning_rate * weight_decay``.  For SGD without momentum that is L2 regularisation with the
    same coefficient (PyTorch's ``weight_decay``); with momentum it is close to it, not identical.
    """
    tspec = {**TRAIN_DEFAULTS, **tspec}
    schedule = _schedule(keras, phase, steps, tspec)
    if tspec["optimizer"] == "sgd":
        return keras.optimizers.SGD(schedule, momentum=float(tspec["momentum"]), weight_decay=tspec["weight_decay"])
    if tspec["optimizer"] != "adamw":
        raise MobOptError(f"train.optimizer {tspec['optimizer']!r}; known: {', '.join(OPTIMIZERS)}")
    return keras.optimizers.AdamW(schedule, weight_decay=tspec["weight_decay"])


@contextlib.contextmanager
def precision_policy(keras, precision: str):
    """Layers built (or loaded from a checkpoint) inside compute in ``precision``; the global policy is
    restored afterwards (a built layer keeps its own policy)."""
    if precision not in PRECISIONS or precision == "auto":
        raise MobOptError(f"train.precision {precision!r}; known: {', '.join(PRECISIONS)}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def use_xla(model, jit_compile: bool) -> None:
    """Make ``model.compile(jit_compile=True)`` stick under op determinism.

    Keras answers ``jit_compile=True`` with "Model doesn't support jit_compile=True" and runs without
    XLA whenever op determinism is enabled, because some XLA GPU kernels are not deterministic.
    Training always enables it (:func:`mobopt.models.runtime.configure_tensorflow`), so the option
    would do nothing; this sets what Keras refused.  Called after every compile, also the one a
    resumed checkpoint makes from its saved compile config.
    """
    if jit_compile and not model.jit_compile:
        from mobopt.models.architectures import all_layers

        unsupported = [layer.name for layer in all_layers(model) if not getattr(layer, "supports_jit", True)]
        if unsupported:  # Keras' other reason to refuse
            raise MobOptError(f"train.jit_compile: these layers cannot be compiled with XLA: {', '.join(unsupported)}")
        model._jit_compile = True  # the attribute behind Keras' jit_compile property (the setter is what refuses)
        model.train_function = model.test_function = model.predict_function = None
        if not model.jit_compile:
            raise MobOptError("train.jit_compile: this Keras version does not let XLA be turned on under op determinism")


def _compile(keras, model, phase: Phase, tspec: dict[str, Any], steps: int,
             distillation: dict[str, Any] | None = None) -> None:
    set_trainable(model, phase, tspec["fine_tune_from"])
    if distillation is not None:
        from mobopt.models import distill

        objective = distill.compile_args(distillation)
    elif tspec["label_smoothing"]:
        from mobopt.models.losses import SmoothedSparseCrossentropy

        objective = {"loss": SmoothedSparseCrossentropy(tspec["label_smoothing"]), "metrics": ["accuracy"]}
    else:
        objective = {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    with warnings.catch_warnings():  # Keras' refusal of XLA under op determinism, overridden just below
        warnings.filterwarnings("ignore", message="Model doesn't support `jit_compile=True`")
        model.compile(optimizer=_optimizer(keras, phase, tspec, steps), jit_compile=bool(tspec["jit_compile"]),
                      **objective)
    use_xla(model, bool(tspec["jit_compile"]))


def resolve_precision(precision: str, device: dict[str, Any], cpu: dict[str, Any]) -> str:
    """``auto``: mixed bfloat16 on a CPU with bfloat16 instructions, float32 everywhere else.

    Measured (benchmarks/train_throughput.py, docs/results): on an AVX-512 BF16 CPU mixed bfloat16
    trains the paper ViT about 1.2x faster than float32 at the same accuracy after an epoch; where
    bfloat16 is emulated it is slower.  GPUs keep float32 under ``auto`` because no GPU was measured;
    set ``mixed_bfloat16`` there by hand.
    """
    if precision not in PRECISIONS:
        raise MobOptError(f"train.precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    has_bf16 = bool(set(BF16_FEATURES) & set(cpu.get("isa") or []))
    return "mixed_bfloat16" if has_bf16 and not device.get("gpu_visible") else "float32"


def warn_if_bf16_is_emulated(precision: str, device: dict[str, Any], cpu: dict[str, Any]) -> str | None:
    """A warning when mixed_bfloat16 runs on a CPU without bfloat16 instructions (emulated: slower, not faster)."""
    if precision != "mixed_bfloat16" or device.get("gpu_visible") or set(BF16_FEATURES) & set(cpu.get("isa") or []):
        return None
    return (f"train.precision mixed_bfloat16 on a CPU without {' or '.join(BF16_FEATURES)} ({cpu.get('model')}): "
            "TensorFlow emulates bfloat16 there, which is usually slower than float32")


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def weight_records(weights_dir: str | Path | None, model_spec: dict[str, Any], input_shape) -> list[dict[str, Any]]:
    """What the download rule recorded about each pretrained weight file (name, sha256, origin)."""
    from mobopt.models import pretrained

    records = []
    for name in pretrained.weight_files(model_spec, input_shape):
        path = Path(weights_dir or ".") / (name + ".json")
        records.append(json.loads(path.read_text()) if path.exists() else {"file": name, "sha256": None})
    return records


def train(prepared: str | Path, out_dir: str | Path, experiment: str, spec: dict[str, Any], seed: int,
          *, weights_dir: str | Path | None = None, callbacks: list | None = None,
          start: Callable[[np.ndarray, np.ndarray, dict[str, Any]], tuple[Any, dict[str, Any]]] | None = None,
          teacher: str | Path | None = None) -> dict[str, Any]:
    """Train ``spec['model']`` on the prepared dataset; write model.keras, history.csv, metrics.json.

    ``start`` replaces building the model from scratch: called with the training images, labels and the
    dataset's meta, it returns the model to fine-tune and a record of how it was made (structured pruning
    of a trained model), kept in metrics.json under ``start`` and in the checkpoint, so a resume keeps it.

    ``teacher`` (a trained model.keras) makes it knowledge distillation (:mod:`mobopt.models.distill`)
    with ``spec['distillation']``'s temperature and weight; the teacher file's sha256 joins the spec.
    """
    prepared, out_dir = Path(prepared), Path(out_dir)
    tspec = {**TRAIN_DEFAULTS, **spec.get("train", {})}
    tspec["augmentation"] = {**TRAIN_DEFAULTS["augmentation"], **(tspec.get("augmentation") or {})}
    plan = phases(tspec)
    from mobopt.models.runtime import configure_tensorflow, device_info

    tf = configure_tensorflow(seed, tspec["threads"])
    device = device_info(tf)
    log.info("training %s on %s (%s)%s", experiment, device["device"], device["device_name"],
             "" if device["gpu_visible"] else "; no GPU visible to TensorFlow")
    import keras

    from mobopt.common import cpuinfo
    from mobopt.models import architectures, distill, losses, schedules  # noqa: F401  (registers the custom objects)

    requested = tspec["precision"]
    cpu = cpuinfo.describe()
    tspec["precision"] = resolve_precision(requested, device, cpu)
    if requested == "auto":
        log.info("train.precision auto: %s (%s)", tspec["precision"], cpuinfo.summary(cpu))
    warning = warn_if_bf16_is_emulated(tspec["precision"], device, cpu)
    if warning:
        log.warning(warning)
    distillation = teacher_model = None
    if teacher is not None and tspec["label_smoothing"]:
        raise MobOptError(f"experiments.{experiment}: train.label_smoothing and distillation do not combine (the "
                          "teacher's soft targets already smooth the labels); set train.label_smoothing to 0")
    if teacher is not None:
        if not Path(teacher).exists():
            raise MobOptError(f"{teacher}: the teacher model of experiments.{experiment}.distillation is missing; "
                              "train that experiment first")
        distillation = {**distill.DISTILL_DEFAULTS, **spec.get("distillation", {})}
        spec = {**spec, "distillation": {**distillation,
                                         "teacher_sha256": download.sha256sum(teacher)}}
        teacher_model = architectures.load(teacher)
    meta = load_meta(prepared)
    x_train, y_train = load_split(prepared, "train")
    x_val, y_val = load_split(prepared, "val")
    digest = spec_hash({"spec": spec, "seed": seed, "data": meta, "precision": tspec["precision"]})
    steps = math.ceil(len(x_train) / tspec["batch_size"])
    ckpt_dir = out_dir / ".checkpoint"
    rows: list[dict[str, Any]] = []
    initial_epoch = 0
    model = None
    state_path = ckpt_dir / "state.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("spec_sha256") == digest and (ckpt_dir / state["model"]).exists():
            with precision_policy(keras, tspec["precision"]), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Model doesn't support `jit_compile=True`")
                model = keras.models.load_model(ckpt_dir / state["model"])  # compiled from its saved config
            use_xla(model, bool(tspec["jit_compile"]))
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
    start_record: dict[str, Any] | None = None
    if model is not None and start is not None:
        start_record = json.loads((ckpt_dir / "start.json").read_text())
    if model is None and start is not None:
        with precision_policy(keras, tspec["precision"]):
            model, start_record = start(x_train, y_train, meta)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        write_json(ckpt_dir / "start.json", start_record)
    if model is None:
        # a model trained from scratch adapts its input normalisation on (a bounded sample of) the training images
        sample = np.asarray(x_train[: min(len(x_train), 100_000)])
        with precision_policy(keras, tspec["precision"]):
            model = architectures.build(spec["model"], meta["image_shape"], num_outputs(meta), sample, weights_dir)
    model.summary(print_fn=log.info)
    params = int(model.count_params())
    resumed_from = initial_epoch
    progress = progress_callback(TrainingProgress(f"train {experiment}", tspec["epochs"], initial_epoch, steps, len(x_train),
                                                  tspec["batch_size"]))
    t0 = time.perf_counter()
    for phase in plan:
        if initial_epoch >= phase.last:
            continue
        if initial_epoch == phase.first:  # a fresh phase: (un)freeze and start a new optimizer
            _compile(keras, model, phase, tspec, steps, distillation)
        log.info("phase %s: epochs %d..%d at learning rate %g", phase.name, max(initial_epoch, phase.first) + 1,
                 phase.last, phase.learning_rate)
        batches = epoch_batches(tf, x_train, y_train, tspec["batch_size"], seed, initial_epoch, phase.last,
                                tspec["augmentation"])
        validation = eval_batches(tf, x_val, y_val)
        if teacher_model is not None:
            batches, validation = (distill.with_teacher(tf, d, teacher_model) for d in (batches, validation))
        model.fit(
            batches,
            validation_data=validation,
            epochs=phase.last, initial_epoch=initial_epoch, steps_per_epoch=steps,
            callbacks=[_callback_class()(ckpt_dir, rows, digest, phase.name), progress, *(callbacks or [])], verbose=2,
        )
        initial_epoch = phase.last
    seconds = time.perf_counter() - t0
    epochs_run = tspec["epochs"] - resumed_from
    trained_with = {"precision": tspec["precision"], "precision_setting": requested, "jit_compile": bool(tspec["jit_compile"]),
                    "compute_dtype": model.dtype_policy.compute_dtype,
                    "xla": bool(plan) and bool(model.compiled) and bool(model.jit_compile)}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.keras") as tmp:
        architectures.float32_model(model).save(tmp)  # float32 whatever train.precision (the model itself if so)
    write_history(out_dir / "history.csv", rows)
    metrics = {
        "experiment": experiment,
        "parameters": params,
        "trainable_parameters": int(sum(np.prod(v.shape) for v in model.trainable_weights)),
        "epochs": tspec["epochs"],
        "phases": [p.__dict__ for p in plan],
        "pretrained_weights": weight_records(weights_dir, spec["model"], meta["image_shape"]),
        "resumed_from_epoch": resumed_from,
        "train_seconds_this_run": seconds,
        "train_images_per_second": (epochs_run * len(x_train) / seconds) if epochs_run else None,
        "training": trained_with,
        "device": device,
        "final": rows[-1] if rows else {},
        "best_val_accuracy": max((r.get("val_accuracy", 0.0) for r in rows), default=None),
        "spec": spec,
        "provenance": provenance.collect(seed=seed, threads=tspec["threads"], dataset=meta),
    }
    if start_record is not None:
        metrics["start"] = start_record
    write_json(out_dir / "metrics.json", metrics)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return metrics
