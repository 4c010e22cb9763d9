"""Training throughput of MobileNetV2 (alpha 1.0) for ASL Alphabet, to say what each config costs.

Builds the workflow's transfer-learning model (random weights: speed does not
depend on their values) at the paper config's 224 px and the CPU config's
96 px, and times training steps in both phases: ``frozen`` (only the new head
learns; the backbone still runs forward) and ``fine_tune`` (backbone layers
from 100 on learn too).  Each measurement is the median of ``--rounds`` timed
blocks of ``--steps`` steps after a warm-up step that excludes tracing.  Prints
images/s and the projected time of each config's schedule on the ASL training
split (87,000 x 0.8 images).

Usage: python benchmarks/mobilenet_train_throughput.py [--sizes 224 96] [--threads 2] [--steps 5]
"""

import argparse
import os
import time

#: Layers (with weights) kept frozen in the fine-tuning phase, as train.fine_tune_from does.
FINE_TUNE_FROM = 100

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ASL_TRAIN = int(87_000 * 0.8)
#: (config, image size, frozen epochs, total epochs)
SCHEDULES = (("config/config.yaml", 224, 10, 100), ("config/cpu.yaml", 96, 3, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 96])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import numpy as np

    from mobopt.models.runtime import configure_tensorflow

    configure_tensorflow(0, args.threads)
    import keras

    from mobopt.models import architectures

    rates = {}
    for size in args.sizes:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (args.batch, size, size, 3)).astype("float32")
        y = rng.integers(0, 29, args.batch)
        # the workflow's model nests Keras' pretrained network as `backbone`; weights: none builds the same
        # layers unnested, so freeze them here as set_trainable freezes the backbone (speed does not depend
        # on the weights, and no weights file is needed)
        model = architectures.build({"name": "mobilenetv2", "alpha": 1.0, "weights": "none", "stem": "imagenet"},
                                    (size, size, 3), 29)
        body = [layer for layer in model.layers if layer.weights and layer.name != "classifier"]
        for name, frozen in (("frozen", True), ("fine_tune", False)):
            for i, layer in enumerate(body):
                layer.trainable = not frozen and i >= FINE_TUNE_FROM
            model.compile(optimizer=keras.optimizers.AdamW(1e-4), loss="sparse_categorical_crossentropy")
            model.train_on_batch(x, y)  # tracing
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    model.train_on_batch(x, y)
                times.append(time.perf_counter() - t0)
            rates[size, name] = args.batch * args.steps / float(np.median(times))
            print(f"MobileNetV2 1.0 @ {size} px, {name:9s}: {rates[size, name]:6.1f} img/s "
                  f"(batch {args.batch}, {args.threads} threads)", flush=True)
    for config, size, frozen, total in SCHEDULES:
        if (size, "frozen") not in rates:
            continue
        seconds = ASL_TRAIN * (frozen / rates[size, "frozen"] + (total - frozen) / rates[size, "fine_tune"])
        print(f"{config}: {frozen} frozen + {total - frozen} fine-tune epochs on {ASL_TRAIN} images at {size} px: "
              f"{seconds / 3600:.1f} h of training on this CPU (validation adds ~10 %)")


if __name__ == "__main__":
    main()
