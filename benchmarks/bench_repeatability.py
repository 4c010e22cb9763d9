"""Repeatability of the benchmark: p50 of 3 fresh-process runs per variant at 1 thread.

Builds the paper-size ViT (870,937 parameters; seeded random weights, since
latency does not depend on weight values), converts it to float32 and int8
with the workflow's own converter, then runs ``python -m mobopt bench`` three
times per variant, interleaved (A B A B A B) so drift hits both alike.

Usage: python benchmarks/bench_repeatability.py [--device host_1t] [--iterations 1200] [--keep DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_models(work: Path) -> dict[str, Path]:
    import numpy as np

    from mobopt.convert import convert
    from mobopt.datasets import save_split
    from mobopt.models import build
    from mobopt.train import configure_tensorflow

    configure_tensorflow(0, 1)
    rng = np.random.default_rng(0)
    prepared = work / "prepared"
    prepared.mkdir(parents=True)
    x = rng.integers(0, 256, (600, 28, 28, 1), dtype=np.uint8)
    save_split(prepared, "train", x, rng.integers(0, 10, 600))
    (prepared / "meta.json").write_text(json.dumps({"classes": [str(i) for i in range(10)], "image_shape": [28, 28, 1]}))
    model = build({"name": "vit"}, (28, 28, 1), 10, x)
    model.save(work / "paper_vit.keras")
    out = {}
    for variant in ("float32", "int8"):
        out[variant] = work / f"{variant}.tflite"
        convert(work / "paper_vit.keras", prepared, variant, out[variant], work / f"{variant}.json",
                {"representative_samples": 300}, seed=0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="host_1t")
    ap.add_argument("--iterations", type=int, default=1200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", help="folder to keep the models and JSONs in")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="mobopt-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tflites = build_models(work)
    runs: dict[str, list[dict]] = {v: [] for v in tflites}
    for r in range(args.repeats):
        for variant, path in tflites.items():
            out = work / f"{variant}.bench{r}.json"
            subprocess.run([sys.executable, "-m", "mobopt", "bench", "--model", str(path), "--device", args.device,
                            "--out", str(out), "--options", json.dumps({"iterations": args.iterations})],
                           check=True, capture_output=True)
            runs[variant].append(json.loads(out.read_text()))
    print(f"paper-size ViT on {args.device}, {args.iterations} iterations, {args.repeats} fresh processes each")
    for variant, rs in runs.items():
        p50 = [r["p50_ms"] for r in rs]
        mid = sorted(p50)[len(p50) // 2]
        spread = max(abs(p - mid) / mid * 100 for p in p50)
        size = tflites[variant].stat().st_size
        print(f"{variant:8s} size {size / 1e6:5.2f} MB  p50 {[round(p, 3) for p in p50]} ms  max deviation from median "
              f"{spread:.2f} % (target <= 2 %)  p95 {[round(r['p95_ms'], 3) for r in rs]}  load "
              f"{[round(r['load_ms'], 1) for r in rs]} ms  peak RSS {rs[0]['peak_rss_mb']:.0f} MB  "
              f"CPU {rs[0]['cpu_percent']:.0f} %")


if __name__ == "__main__":
    main()
