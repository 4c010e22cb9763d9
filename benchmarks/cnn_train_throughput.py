"""Training throughput and MACs of the second study's four CNNs at 32x32, to size the lightweight_cnns configs.

Builds each experiment's model as the config names it (``--config``, default the CPU-sized
``config/lightweight_cnns_cpu.yaml``; every experiment in it), counts its parameters and MACs
(:mod:`mobopt.models.cost`), compiles it with the training code itself (``train._compile``: the
config's optimizer and schedule, ``train.precision`` resolved for this CPU as training resolves it)
and times ``--steps`` training steps after one untimed warm-up step (tracing), ``--rounds`` times,
on random 32x32x3 images (speed does not depend on content).  Prints img/s per model (the median of
the rounds) and the projected training time of the config's epochs on CIFAR-10's 45,000 training
images (50,000 less the 10 % validation split), validation not included (~5-10 % more).

On a busy machine the figures are lower bounds on the speed, so the time is an upper bound.

Usage: python benchmarks/cnn_train_throughput.py [--config config/lightweight_cnns_cpu.yaml] [--steps 5]
       [--rounds 3] [--macs-only]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CIFAR_TRAIN = 45_000
SHAPE = (32, 32, 3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="config/lightweight_cnns_cpu.yaml")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--macs-only", action="store_true", help="count parameters and MACs, time nothing")
    args = ap.parse_args()

    import numpy as np
    import yaml

    from mobopt.common import cpuinfo
    from mobopt.models.runtime import configure_tensorflow, device_info

    config = yaml.safe_load(open(args.config))
    experiments = config["experiments"]
    threads = next(iter(experiments.values())).get("train", {}).get("threads", 2)
    tf = configure_tensorflow(0, threads)
    import keras

    from mobopt.models import architectures, cost, train

    total_seconds = 0.0
    for name, exp in experiments.items():
        tspec = {**train.TRAIN_DEFAULTS, **exp.get("train", {})}
        precision = train.resolve_precision(tspec["precision"], device_info(tf), cpuinfo.describe())
        with train.precision_policy(keras, precision):
            model = architectures.build(exp["model"], SHAPE, 10)
        totals = cost.summarize(cost.count(model))["total"]
        line = f"{name:34s} {totals['trainable_params'] / 1e6:5.2f} M params {totals['macs'] / 1e6:7.1f} M MACs"
        if args.macs_only:
            print(line, flush=True)
            continue
        batch = tspec["batch_size"]
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (batch, *SHAPE)).astype("float32")
        y = rng.integers(0, 10, batch)
        steps = -(-CIFAR_TRAIN // batch)
        train._compile(keras, model, train.phases(tspec)[0], tspec, steps)
        model.train_on_batch(x, y)  # tracing
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            times.append(time.perf_counter() - t0)
        rate = batch * args.steps / float(np.median(times))
        seconds = tspec["epochs"] * CIFAR_TRAIN / rate
        total_seconds += seconds
        print(f"{line} {rate:7.1f} img/s ({precision}, batch {batch}, {threads} threads): "
              f"{tspec['epochs']} epochs {seconds / 60:5.1f} min", flush=True)
    if not args.macs_only:
        print(f"{args.config}: {total_seconds / 60:.0f} min of training for all experiments on this CPU "
              f"(validation adds ~5-10 %)")


if __name__ == "__main__":
    main()
