"""Does a teacher help? A student trained with knowledge distillation against the same student trained alone.

The honest baseline for distillation is not the teacher but the same student, same data, same schedule,
same seed, without the teacher.  For each of ``--seeds`` seeds this trains both with the workflow's own
training code (:func:`mobopt.models.train.train`; the distilled one with ``teacher=``), scores both on the
test split, and prints the per-seed accuracies, the mean paired difference (distilled - alone) with its 95 %
confidence interval (Student's t over the seeds) and the verdict: "helps" when the interval lies above 0,
"hurts" when below, else "no difference shown".

Data: ``--data`` a prepared dataset folder (e.g. ``data/prepared/fashion_mnist`` after a workflow run);
without it scikit-learn's digits are written as MNIST IDX files and prepared by the real fetch and prepare
code, as the tests do (1,617 training images: small, so only large differences show).
Teacher: ``--teacher`` a trained model.keras (e.g. ``results/models/vit_fashion_mnist/model.keras``);
without it one is trained here with ``--teacher-spec`` (default: the tests' tiny ViT, 30 epochs).
Student: ``--student-spec`` (JSON with ``model`` and ``train``; default: the tiny ViT at half width,
``--epochs`` epochs).

Usage: python benchmarks/distillation.py [--data DIR] [--teacher MODEL] [--seeds 3] [--epochs 10]
       [--temperature 4] [--alpha 0.5] [--json out.json]
"""

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY_VIT = {"name": "vit", "patch_size": 7, "dim": 48, "depth": 2, "heads": 2, "mlp_dim": 96, "head_hidden": 32,
            "dropout": 0.0}
TEACHER_SPEC = {"model": TINY_VIT,
                "train": {"epochs": 30, "batch_size": 64, "learning_rate": 0.002, "warmup_epochs": 2, "threads": 2}}


def prepared_digits(root: Path) -> Path:
    from mobopt.datasets import fetch, mnist
    from mobopt.datasets.standins import write_digits_as_mnist

    idx, raw, out = root / "idx", root / "raw", root / "prepared"
    for d in (idx, raw, out):
        d.mkdir(parents=True)
    write_digits_as_mnist(idx)
    fetch.fetch_files(mnist.MNIST_FILES, {"source": "path", "path": str(idx), "verify": False}, raw)
    mnist.prepare(raw, out, {"validation_fraction": 0.1}, seed=1)
    return out


def test_accuracy(model_path: Path, data: Path) -> float:
    import numpy as np

    from mobopt.datasets.prepared import load_split
    from mobopt.models import architectures

    x, y = load_split(data, "test")
    probs = architectures.load(model_path).predict(np.asarray(x, dtype="float32"), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(probs, axis=1) == y))


def mean_ci(diffs: list[float]) -> tuple[float, float]:
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    from scipy import stats

    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="a prepared dataset folder (default: scikit-learn's digits, prepared here)")
    p.add_argument("--teacher", help="a trained model.keras (default: one trained here by --teacher-spec)")
    p.add_argument("--teacher-spec", type=json.loads, default=TEACHER_SPEC)
    p.add_argument("--student-spec", type=json.loads, default=None,
                   help='JSON {"model": ..., "train": ...} (default: the tiny ViT at half width)')
    p.add_argument("--epochs", type=int, default=10, help="student epochs with the default student spec")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--json", help="write every figure here")
    a = p.parse_args()

    from mobopt.common import cpuinfo
    from mobopt.models.train import train

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="distill-"))
    data = Path(a.data) if a.data else prepared_digits(work)
    teacher = Path(a.teacher) if a.teacher else None
    if teacher is None:
        train(data, work / "teacher", "teacher", a.teacher_spec, 0)
        teacher = work / "teacher" / "model.keras"
    student = a.student_spec or {"model": {**TINY_VIT, "dim": 24, "mlp_dim": 48},
                                 "train": {**TEACHER_SPEC["train"], "epochs": a.epochs}}
    cpu = cpuinfo.describe()
    print(f"host: {cpu.get('model')} ({cpuinfo.summary(cpu)})")
    print(f"data: {data}; teacher: {teacher} (test accuracy {test_accuracy(teacher, data):.4f})")
    print(f"student: {json.dumps(student)}; distillation T={a.temperature} alpha={a.alpha}")
    rows = []
    for seed in range(a.seeds):
        acc = {}
        for arm in ("alone", "distilled"):
            spec = dict(student)
            kwargs = {}
            if arm == "distilled":
                spec["distillation"] = {"temperature": a.temperature, "alpha": a.alpha}
                kwargs["teacher"] = teacher
            out = work / f"{arm}-{seed}"
            train(data, out, f"student_{arm}", spec, seed, **kwargs)
            acc[arm] = test_accuracy(out / "model.keras", data)
        rows.append({"seed": seed, **acc, "difference": acc["distilled"] - acc["alone"]})
        print(f"seed {seed}: alone {acc['alone']:.4f}  distilled {acc['distilled']:.4f}  "
              f"difference {100 * rows[-1]['difference']:+.2f} pp", flush=True)
    mean, half = mean_ci([r["difference"] for r in rows])
    verdict = ("helps" if mean - half > 0 else "hurts" if mean + half < 0 else "no difference shown") \
        if not math.isnan(half) else "one seed: no interval"
    print(f"mean difference {100 * mean:+.2f} pp, 95 % CI +/- {100 * half:.2f} pp over {len(rows)} seeds: {verdict}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if a.json:
        Path(a.json).write_text(json.dumps({"host": cpu, "data": str(data), "teacher": str(teacher),
                                            "student": student, "temperature": a.temperature, "alpha": a.alpha,
                                            "seeds": rows, "mean_difference": mean, "ci95_half_width": half,
                                            "verdict": verdict}, indent=2))


if __name__ == "__main__":
    main()
