"""Training throughput of the paper's ViT at batch 128, and the cost of the workflow's input pipeline.

Compares one epoch of ``model.fit`` on in-memory float tensors (Keras slices
them itself) with one epoch fed by :func:`mobopt.models.train.epoch_batches` (uint8
in memory, per-epoch seeded permutation, cast per batch), after a warm-up that
excludes tracing.  The two are interleaved (A B A B ...) in one process with
one compiled train step, and medians are reported: on a shared VM the CPU time
available drifts by up to 2x from minute to minute, which only interleaving
cancels.  Images are random: throughput does not depend on content.

Usage: python benchmarks/train_throughput.py [--images 3840] [--threads 2] [--rounds 5]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3840)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    import numpy as np

    from mobopt.models.runtime import configure_tensorflow
    from mobopt.models.train import TRAIN_DEFAULTS, epoch_batches

    tf = configure_tensorflow(0, args.threads)
    import keras

    from mobopt.models import architectures

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, args.images).astype(np.int64)
    model = architectures.build({"name": "vit"}, (28, 28, 1), 10, x[:1024])
    assert model.count_params() == 870_937
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=TRAIN_DEFAULTS["weight_decay"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    bs = 128
    steps = args.images // bs
    xf = x.astype("float32")

    def tensors():
        model.fit(xf, y, batch_size=bs, epochs=1, verbose=0, shuffle=True)

    def pipeline():
        model.fit(epoch_batches(tf, x, y, bs, 0, 0, 1), steps_per_epoch=steps, epochs=1, verbose=0)

    runs = {"in-memory tensors": (tensors, []), "workflow pipeline": (pipeline, [])}
    for fn, _ in runs.values():
        fn()  # warm-up: tracing and first-call allocation
    for _ in range(args.rounds):
        for fn, rates in runs.values():
            t0 = time.perf_counter()
            fn()
            rates.append(args.images / (time.perf_counter() - t0))
    for name, (_, rates) in runs.items():
        print(f"{name:18s}: median {np.median(rates):6.1f} img/s, best {max(rates):6.1f}, "
              f"all {[round(r) for r in rates]}")
    a, b = (np.array(r) for _, r in runs.values())
    overhead = 100 * (np.median(a / b) - 1)
    print(f"paper ViT, batch {bs}, {args.threads} threads: workflow pipeline median {np.median(b):.0f} img/s, "
          f"best {b.max():.0f} (target >= 200); input pipeline overhead, median of paired rounds, "
          f"{overhead:+.1f} % (target <= 5 %)")


if __name__ == "__main__":
    main()
