"""Stand-in data for the offline demo and the tests, written in the real on-disk formats.

``write_digits_as_mnist`` writes scikit-learn's real handwritten digits as
MNIST's IDX files (the demo's "MNIST"); ``write_fake_class_tree`` writes real
JPEGs in ASL Alphabet's class-folder layout.  Both go through the product's
download and prepare code unchanged.  Nothing in the workflow's product path
imports this module.
"""

from __future__ import annotations

import colorsys
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from mobopt.datasets import images, prepared
from mobopt.datasets.idx import write_idx


def digits_28x28() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits as MNIST-like uint8 images (N, 28, 28) and uint8 labels: each scaled
    to 0..255, upsampled 3x (nearest) to 24x24 and padded to 28x28."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    x = np.kron(x, np.ones((1, 3, 3), dtype=np.uint8))
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    return x, digits.target.astype(np.uint8)


def write_digits_as_mnist(out_dir: str | Path, *, test_fraction: float = 0.2, seed: int = 0) -> dict[str, str]:
    """Write scikit-learn's 8x8 digits (real handwriting, 1,797 images) as MNIST-layout IDX .gz files.

    Each image is scaled to 0..255, upsampled 3x (nearest) to 24x24 and padded
    to 28x28, like MNIST's centred digits.  Used by the offline demo and the
    tests: the files go through the real download/IDX/prepare code.  Returns
    the sha256 of each file written.
    """
    from mobopt.common.download import sha256sum

    x, y = digits_28x28()
    train, test = prepared.stratified_split(y, test_fraction, seed)
    out = Path(out_dir)
    files = {
        "train-images-idx3-ubyte.gz": x[train], "train-labels-idx1-ubyte.gz": y[train],
        "t10k-images-idx3-ubyte.gz": x[test], "t10k-labels-idx1-ubyte.gz": y[test],
    }
    for name, arr in files.items():
        write_idx(out / name, arr)
    return {name: sha256sum(out / name) for name in files}


def write_fake_class_tree(root: Path, classes: Sequence[str], per_class: int, size: tuple[int, int] = (200, 200),
                          seed: int = 0, quality: int = 90, workers: int | None = None) -> int:
    """Write ``per_class`` real JPEGs per class as ``root/<class>/<class><n>.jpg`` (ASL Alphabet layout).

    Each class has its own colour and gradient direction, each image its own
    shift and noise (seeded by ``seed``, class and index, so the files do not
    depend on ``workers``): a classifier can learn the classes, and the JPEGs
    decode like photographs of that size.  ``size`` is (width, height).
    Returns the number of files written.  The tree is test data written in
    place: callers that cache it should mark it complete after this returns.
    """
    root = Path(root)
    tasks = [(str(root / cls), cls, label, len(classes), start, min(start + 500, per_class), size, seed, quality)
             for label, cls in enumerate(classes) for start in range(0, per_class, 500)]
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) == 1:
        return sum(_write_fake_range(*t) for t in tasks)
    with ProcessPoolExecutor(max_workers=workers, mp_context=images.worker_context()) as pool:
        return sum(pool.map(_write_fake_range, *zip(*tasks, strict=True)))


def _write_fake_range(folder: str, cls: str, label: int, n_classes: int, start: int, stop: int,
                      size: tuple[int, int], seed: int, quality: int) -> int:
    # A class template (colour + gradient) with a margin; each image is a seeded window of it plus luma noise.
    # Cheap on purpose (views and one uint8 add): generating 87,000 files should be bound by JPEG encoding.
    w, h = size
    margin = max(w, h) // 8
    base = np.array(colorsys.hsv_to_rgb(label / n_classes, 0.7, 0.8), dtype=np.float32) * 180 + 10
    angle = 2 * math.pi * label / n_classes
    yy, xx = np.mgrid[0:h + 2 * margin, 0:w + 2 * margin].astype(np.float32)
    ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5))[..., None] * 90
    template = np.clip(base + ramp, 0, 223).astype(np.uint8)  # + noise < 32 cannot overflow
    for i in range(start, stop):
        rng = np.random.default_rng([seed, label, i])
        oy, ox = rng.integers(0, 2 * margin + 1, 2)
        noise = rng.integers(0, 32, (h, w, 1), dtype=np.uint8)
        pixels = template[oy:oy + h, ox:ox + w] + noise
        Image.fromarray(pixels).save(os.path.join(folder, f"{cls}{i + 1}.jpg"), "JPEG", quality=quality)
    return stop - start
