"""MNIST: the four gzip-compressed IDX files, checked against their published sizes and sha256.

The prepared splits are the official 60k train (less a seeded, stratified
validation split) and 10k test images, 28x28x1 uint8.  :func:`prepare_idx`
serves every dataset in MNIST's file layout (Fashion-MNIST too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.common.atomic import write_json
from mobopt.common.download import RemoteFile
from mobopt.datasets import fetch, prepared
from mobopt.datasets.idx import read_idx

CLASSES = tuple(str(i) for i in range(10))

#: Sizes and sha256 of the canonical gzip-compressed IDX files (as the mirrors serve them).
MNIST_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", 9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    RemoteFile("train-labels-idx1-ubyte.gz", 28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    RemoteFile("t10k-images-idx3-ubyte.gz", 1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", 4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
)



def download(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    return fetch.fetch_files(MNIST_FILES, options, out_dir)


def _read_pair(raw_dir: Path, images: str, labels: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(raw_dir / images, expect_ndim=3)
    y = read_idx(raw_dir / labels, expect_ndim=1)
    if x.shape[0] != y.shape[0]:
        raise MobOptError(f"{raw_dir / images} has {x.shape[0]} images but {raw_dir / labels} has {y.shape[0]} labels")
    if x.dtype != np.uint8:
        raise MobOptError(f"{raw_dir / images}: pixel type {x.dtype}, expected uint8")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise MobOptError(f"{raw_dir / labels}: labels span {y.min()}..{y.max()}, expected 0..{num_classes - 1}")
    return x[..., None], y.astype(np.int64)


def prepare(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Parse the IDX files, hold out a seeded stratified validation split, write the splits + meta."""
    return prepare_idx(raw_dir, out_dir, options, seed, name="mnist", classes=CLASSES)


def fit_images(x: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Grey images (N x h x w x 1) centred on a ``size`` x ``size`` canvas of zeros, the grey plane repeated
    ``channels`` times.

    Padding, never resizing: a 28x28 digit or garment on a 32x32 black canvas
    is the same picture, so a model built for 32x32x3 inputs (CIFAR-10's) can
    run on it unchanged and the pixels it sees are the original ones.  An odd
    difference puts the extra row and column after the image.
    """
    h, w = x.shape[1:3]
    if size < max(h, w):
        raise MobOptError(f"image_size {size} is smaller than the images ({h}x{w}); they are only ever padded, "
                          f"never shrunk: use an image_size of at least {max(h, w)}")
    if channels not in (1, 3):
        raise MobOptError(f"channels must be 1 (grey) or 3 (the grey plane repeated as RGB), got {channels}")
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((len(x), size, size, channels), dtype=x.dtype)
    out[:, top:top + h, left:left + w, :] = x
    return out


def prepare_idx(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int, *, name: str,
                classes: tuple[str, ...], image_size: int | None = None, channels: int = 1,
                **meta_extra: Any) -> dict[str, Any]:
    """The train/val/test splits of a dataset in MNIST's four-file IDX layout.

    ``image_size`` and ``channels`` other than the files' own (28, 1) pad and
    repeat the images (:func:`fit_images`); meta.json then says from what.
    """
    n = len(classes)
    x_train, y_train = _read_pair(raw_dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", n)
    x_test, y_test = _read_pair(raw_dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", n)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise MobOptError(f"{raw_dir}: train images are {x_train.shape[1:3]} but test images {x_test.shape[1:3]}")
    original = list(x_train.shape[1:])
    size = x_train.shape[1] if image_size is None else int(image_size)
    if [size, size, channels] != original:
        x_train, x_test = fit_images(x_train, size, channels), fit_images(x_test, size, channels)
        meta_extra = {**meta_extra, "padded_from": original}
    keep, held = prepared.stratified_split(y_train, options.get("validation_fraction", 0.1), seed)
    source = prepared.read_source(raw_dir)
    splits = {"train": (x_train[keep], y_train[keep]), "val": (x_train[held], y_train[held]), "test": (x_test, y_test)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, (x, y) in splits.items():
        prepared.save_split(out_dir, split, x, y)
    meta = {
        "dataset": name,
        "classes": list(classes),
        "image_shape": list(x_train.shape[1:]),
        "counts": {split: int(len(y)) for split, (_, y) in splits.items()},
        "split_seed": seed,
        "validation_fraction": options.get("validation_fraction", 0.1),
        "raw_sha256": {k: v["sha256"] for k, v in source.get("files", {}).items()},
        **meta_extra,
    }
    write_json(out_dir / "meta.json", meta)
    return meta
