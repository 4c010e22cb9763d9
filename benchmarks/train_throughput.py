"""Training speed of the paper's ViT at batch 128 on a CPU: XLA and mixed bfloat16 against the current set-up.

Modes (``--modes``, comma-separated, default ``base,xla,bf16,xla+bf16``):

``base``      float32, no XLA: training as the workflow does it on a CPU without bfloat16 instructions
              (``train.precision: auto`` takes ``bf16`` on one with them);
``xla``       ``train.jit_compile: true``;
``bf16``      ``train.precision: mixed_bfloat16``;
``xla+bf16``  both;
``tensors``   ``base`` fed in-memory float tensors that Keras slices itself, instead of the workflow's
              input pipeline (:func:`mobopt.models.train.epoch_batches`: uint8, per-epoch seeded
              permutation, cast per batch); ``--modes base,tensors`` measures the pipeline's overhead;
``base+kd``, ``bf16+kd``
              knowledge distillation as ``config/fashion_mnist.yaml`` runs it: that config's CNN teacher
              (``convnet``, float32 as training loads it, random weights: speed does not depend on them)
              labels each batch in the input pipeline (:func:`mobopt.models.distill.with_teacher`,
              ``TEACHER_AHEAD`` batches ahead of the student) and the loss is the distillation loss;
``base+kd-serial``, ``bf16+kd-serial``
              the same with the teacher in series (each step waits for its forward pass);
              ``--modes bf16,bf16+kd,bf16+kd-serial`` measures what the teacher costs and what labelling
              ahead saves.

The bf16 modes are skipped, with the reason printed, on a CPU without AVX-512 BF16 (``avx512_bf16`` in
/proc/cpuinfo): TensorFlow emulates bfloat16 there.  Every mode builds and compiles its model with the
training code itself (:func:`mobopt.models.train.precision_policy`, ``train._compile``: AdamW with the
warm-up + cosine schedule, XLA turned on past Keras' refusal under op determinism), with op determinism
and pinned threads as in training.

Speed: all modes live in one process.  A dtype policy is read only when a layer is built (each model
keeps its own) and ``jit_compile`` belongs to one model's compiled step, so a float32 and a bfloat16
model, with and without XLA, coexist; one process lets the rounds interleave (A B C D A B C D ...)
without rebuilding a model or XLA-compiling its step again per round, and interleaving is what cancels the drift of a shared
VM's CPU time (up to 2x from minute to minute).  Each mode's first epoch (tracing, XLA compilation,
first allocations) is a warm-up and not timed; then ``--rounds`` timed epochs of ``--images`` random
images (throughput does not depend on content), each one ``fit``.  A round's rate counts the steps after
its first: the set-up of a ``fit`` (a new dataset makes Keras retrace its step function, seconds for
this model) recurs per round here but once per phase in training, so it is printed apart.  Reported:
the median img/s per mode, the median of the paired per-round ratios to ``base``, the cores the
process kept busy (CPU time / wall time over the same steps), the warm-up and the set-up per fit.

Accuracy: per mode and seed, a fresh model trained ``--accuracy-epochs`` epochs (the workflow's
schedule, warm-up epoch included) on ``--accuracy-data``: ``digits`` is scikit-learn's digits upsampled
to 28x28 as the tests do (1,438 training and 359 validation images, a fixed stratified split: one
image is 0.28 pp, so only large differences show); ``fashion_mnist`` is the real Fashion-MNIST training
set (Debian's ``dataset-fashion-mnist`` or ``--fashion-mnist-dir``), 54,000 training and 6,000
validation images split as the workflow does (one image is 0.017 pp).  Reported: the validation
accuracy of the model as the mode computes it and of the float32 model that training saves; the
spread over ``--accuracy-seeds`` seeds is the noise a difference between modes must exceed.
``--accuracy-epochs 0`` skips this part.

Defaults should take 5-7 minutes on 2 quiet cores at ~400 img/s (an estimate from runs with tiny
arguments on a busy host; ``total`` is printed at the end).  ``--json`` writes every figure.

Usage: python benchmarks/train_throughput.py [--modes base,xla,bf16,xla+bf16] [--images 2560] [--rounds 3]
       [--threads 2] [--accuracy-epochs 3] [--accuracy-seeds 2] [--json results.json]
"""

import argparse
import json
import os
import platform
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODES = {"base": (False, "float32"), "xla": (True, "float32"), "bf16": (False, "mixed_bfloat16"),
         "xla+bf16": (True, "mixed_bfloat16"), "tensors": (False, "float32"),
         "base+kd": (False, "float32"), "bf16+kd": (False, "mixed_bfloat16"),
         "base+kd-serial": (False, "float32"), "bf16+kd-serial": (False, "mixed_bfloat16")}
#: Distillation modes: batches the teacher labels ahead (None: no teacher).
TEACHER = {"base+kd": "ahead", "bf16+kd": "ahead", "base+kd-serial": 0, "bf16+kd-serial": 0}
#: config/fashion_mnist.yaml's teacher and distillation settings.
TEACHER_SPEC = {"name": "convnet", "widths": [32, 64, 128], "convs_per_stage": 1, "pooling": "flatten", "dropout": 0.3}
DISTILLATION = {"temperature": 4.0, "alpha": 0.1}
BATCH = 128
#: The paper's ViT ("MobTransformer") on 28x28x1 inputs and 10 classes.
PAPER_PARAMETERS = 870_937


def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes or len(set(modes)) != len(modes):
        raise SystemExit(f"--modes: give distinct names among {', '.join(MODES)} (got {text!r})")
    return modes


def bf16_skip_reason(isa: list[str]) -> str | None:
    if "avx512_bf16" in isa:
        return None
    return "this CPU lacks avx512_bf16 (/proc/cpuinfo), so TensorFlow emulates bfloat16 and the mode says nothing useful"


def accuracy_data(name: str, fashion_dir: str | None):
    """Training and validation images (uint8, NHWC) and labels for the accuracy part, and their description."""
    import numpy as np

    from mobopt.datasets.prepared import stratified_split

    if name == "digits":
        from mobopt.datasets.standins import digits_28x28

        x, y = digits_28x28()
        fraction, described = 0.2, "digits 28x28"
    else:
        from pathlib import Path

        from mobopt.datasets import fashion_mnist
        from mobopt.datasets.idx import read_idx

        folder = Path(fashion_dir or fashion_mnist.DEBIAN_DIR)
        x = read_idx(folder / "train-images-idx3-ubyte.gz", expect_ndim=3)
        y = read_idx(folder / "train-labels-idx1-ubyte.gz", expect_ndim=1)
        fraction, described = 0.1, f"Fashion-MNIST from {folder}"
    x, y = x[..., None], y.astype(np.int64)
    train_idx, val_idx = stratified_split(y, fraction, 0)
    return x[train_idx], y[train_idx], x[val_idx].astype("float32"), y[val_idx], described


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", type=parse_modes, default=parse_modes("base,xla,bf16,xla+bf16"))
    ap.add_argument("--images", type=int, default=2560, help="images per timed epoch (a multiple of 128)")
    ap.add_argument("--rounds", type=int, default=3, help="timed epochs per mode, interleaved across modes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--accuracy-epochs", type=int, default=3, help="epochs of digits per mode and seed; 0: no accuracy")
    ap.add_argument("--accuracy-seeds", type=int, default=2)
    ap.add_argument("--accuracy-data", choices=("digits", "fashion_mnist"), default="digits")
    ap.add_argument("--fashion-mnist-dir", default=None, help="the four IDX files (default: Debian's copy)")
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args()
    images = max(2 * BATCH, args.images // BATCH * BATCH)
    started = time.perf_counter()
    # Keras' notes on every fit over the workflow's one-pass datasets, not about the measurement
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")

    import numpy as np

    from mobopt.common import cpuinfo

    cpu = cpuinfo.describe()
    print(f"CPU: {cpuinfo.summary(cpu)}; {os.cpu_count()} logical CPUs visible, {args.threads} threads")
    reason = bf16_skip_reason(cpu.get("isa") or [])
    modes = [m for m in args.modes if not (reason and MODES[m][1] != "float32")]
    for m in args.modes:
        if m not in modes:
            print(f"skipping {m}: {reason}")
    if not modes:
        raise SystemExit("no mode left to measure")

    from mobopt.models.runtime import configure_tensorflow
    from mobopt.models.train import TRAIN_DEFAULTS, _compile, epoch_batches, phases, precision_policy

    tf = configure_tensorflow(0, args.threads)
    import keras

    from mobopt.models import architectures, distill

    teacher = None
    if any(m in TEACHER for m in modes):
        sample = np.random.default_rng(1).integers(0, 256, (1024, 28, 28, 1), dtype=np.uint8)
        teacher = architectures.build(TEACHER_SPEC, (28, 28, 1), 10, sample)

    def ahead(mode):
        return distill.TEACHER_AHEAD if TEACHER[mode] == "ahead" else TEACHER[mode]

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, Python {platform.python_version()}")

    def tspec_for(mode, epochs):
        jit, precision = MODES[mode]
        return {**TRAIN_DEFAULTS, "epochs": epochs, "jit_compile": jit, "precision": precision}

    def build(mode, sample, steps, epochs):
        tspec = tspec_for(mode, epochs)
        with precision_policy(keras, tspec["precision"]):
            model = architectures.build({"name": "vit"}, (28, 28, 1), 10, sample)
        assert model.count_params() == PAPER_PARAMETERS, model.count_params()
        _compile(keras, model, phases(tspec)[0], tspec, steps, DISTILLATION if mode in TEACHER else None)
        assert model.jit_compile == tspec["jit_compile"], (mode, model.jit_compile)
        return model

    # ------------------------------------------------------------------ speed
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, images).astype(np.int64)
    xf = x.astype("float32")
    steps = images // BATCH

    class StepTimes(keras.callbacks.Callback):
        """Wall and CPU time at the end of every train step of one fit."""

        def on_train_begin(self, logs=None):
            self.wall, self.cpu = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())

    def epoch_fn(mode, model):
        timer = StepTimes()

        def fit():
            if mode == "tensors":
                model.fit(xf, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=True, callbacks=[timer])
            else:
                batches = epoch_batches(tf, x, y, BATCH, 0, 0, 1)
                if mode in TEACHER:
                    batches = distill.with_teacher(tf, batches, teacher, ahead(mode))
                model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])

        return fit, timer

    runs, warmup = {}, {}
    for mode in modes:
        keras.utils.set_random_seed(0)
        model = build(mode, x[:1024], steps, TRAIN_DEFAULTS["epochs"])
        fit, timer = epoch_fn(mode, model)
        t0 = time.perf_counter()
        fit()  # warm-up: tracing, XLA compilation, first-call allocation
        warmup[mode] = time.perf_counter() - t0
        runs[mode] = (fit, timer, [], [], [])
    for _ in range(args.rounds):
        for fit, timer, rates, busy, setup in runs.values():
            t0 = time.perf_counter()
            fit()
            wall = time.perf_counter() - t0
            assert len(timer.wall) == steps, (len(timer.wall), steps)
            # steps 2..n: what 25 epochs in one fit cost per step; the fit's set-up (a new dataset retraces
            # Keras' step function) and the first step are paid once per phase in training, here per round
            steady = timer.wall[-1] - timer.wall[0]
            rates.append((steps - 1) * BATCH / steady)
            busy.append((timer.cpu[-1] - timer.cpu[0]) / steady)
            setup.append(wall - steps * steady / (steps - 1))
    print(f"\npaper ViT ({PAPER_PARAMETERS:,} parameters), batch {BATCH}, {args.threads} threads, {images} random images "
          f"per timed epoch, {args.rounds} interleaved rounds after one warm-up epoch per mode")
    base = np.array(runs["base"][2]) if "base" in runs else None
    results = {}
    for mode, (_, _, rates, busy, setup) in runs.items():
        r = np.array(rates)
        ratio = float(np.median(r / base)) if base is not None else None
        results[mode] = {"jit_compile": MODES[mode][0], "precision": MODES[mode][1], "median_img_s": float(np.median(r)),
                         "best_img_s": float(r.max()), "rounds_img_s": [float(v) for v in r],
                         "teacher_ahead": ahead(mode) if mode in TEACHER else None,
                         "ratio_to_base": ratio, "cores_busy": float(np.median(busy)), "warmup_s": warmup[mode],
                         "fit_setup_s": float(np.median(setup))}
        vs = f", x{ratio:.2f} base" if ratio is not None and mode != "base" else ""
        print(f"  {mode:14s}: median {np.median(r):6.1f} img/s{vs} (best {r.max():6.1f}, all {[round(v) for v in r]}; "
              f"{np.median(busy):.1f} cores busy; warm-up {warmup[mode]:.1f} s, set-up per fit {np.median(setup):.1f} s)")
    if "tensors" in runs and base is not None:
        overhead = 100 * (np.median(np.array(runs["tensors"][2]) / base) - 1)
        print(f"  input pipeline overhead (tensors vs base, median of paired rounds): {overhead:+.1f} % (target <= 5 %)")
    for mode in (m for m in runs if m in TEACHER):
        for other in (mode.split("+kd")[0], mode.replace("-serial", "")):
            if other != mode and other in runs:
                paired = float(np.median(np.array(runs[mode][2]) / np.array(runs[other][2])))
                print(f"  {mode} / {other}: x{paired:.3f} (median of paired rounds)")
    fastest = max((m for m in results if m != "tensors" and m not in TEACHER), key=lambda m: results[m]["median_img_s"],
                  default=None)
    if fastest:
        print(f"  fastest: {fastest}, {results[fastest]['median_img_s']:.0f} img/s (target >= 500 img/s on 2 quiet cores)")

    # --------------------------------------------------------------- accuracy
    accuracy = {}
    if args.accuracy_epochs > 0:
        xt, yt, xv, yv, described = accuracy_data(args.accuracy_data, args.fashion_mnist_dir)
        dsteps = -(-len(xt) // BATCH)
        print(f"\naccuracy: {described}, {len(xt)} train / {len(xv)} validation images, {args.accuracy_epochs} epoch(s) "
              f"(the workflow's schedule: {TRAIN_DEFAULTS['warmup_epochs']} warm-up epoch, cosine decay), "
              f"seeds 0..{args.accuracy_seeds - 1}")
        for mode in [m for m in modes if m != "tensors" and m not in TEACHER]:  # the teacher modes' is untrained
            per_seed = []
            for seed in range(args.accuracy_seeds):
                keras.utils.set_random_seed(seed)
                model = build(mode, xt, dsteps, args.accuracy_epochs)
                t0 = time.perf_counter()
                model.fit(epoch_batches(tf, xt, yt, BATCH, seed, 0, args.accuracy_epochs), steps_per_epoch=dsteps,
                          epochs=args.accuracy_epochs, verbose=0)
                seconds = time.perf_counter() - t0
                # called eagerly: predict() would trace (and for XLA compile) a function per model
                as_trained = float(np.mean(np.argmax(np.asarray(model(xv, training=False)), -1) == yv))
                saved = architectures.float32_model(model)
                as_saved = float(np.mean(np.argmax(np.asarray(saved(xv, training=False)), -1) == yv))
                per_seed.append({"seed": seed, "val_accuracy": as_trained, "val_accuracy_saved_float32": as_saved,
                                 "train_seconds": seconds})
            acc = np.array([s["val_accuracy_saved_float32"] for s in per_seed])
            accuracy[mode] = {"seeds": per_seed, "mean_saved_float32": float(acc.mean()),
                              "spread_saved_float32": float(acc.max() - acc.min())}
            print(f"  {mode:9s}: validation accuracy of the saved float32 model {100 * acc.mean():5.1f} % "
                  f"(seeds {[round(100 * float(a), 1) for a in acc]}, spread {100 * (acc.max() - acc.min()):.1f} pp); "
                  f"as trained {[round(100 * s['val_accuracy'], 1) for s in per_seed]}; "
                  f"{sum(s['train_seconds'] for s in per_seed):.0f} s incl. compile")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cpu": cpu, "threads": args.threads, "images": images, "rounds": args.rounds, "batch": BATCH,
                       "skipped": {m: reason for m in args.modes if m not in modes}, "tensorflow": tf.__version__,
                       "keras": keras.__version__, "accuracy_data": args.accuracy_data,
                       "speed": results, "accuracy": accuracy}, fh, indent=2)


if __name__ == "__main__":
    main()
