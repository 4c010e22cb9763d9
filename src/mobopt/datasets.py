"""Dataset registry: how each dataset is downloaded and prepared.

Adding a dataset is one :class:`Dataset` entry in :data:`DATASETS` plus its
``download`` and ``prepare`` functions.  Prepared data is the same for every
dataset: ``{train,val,test}.npz`` holding ``x`` (uint8, N x H x W x C) and
``y`` (int64), plus ``meta.json`` (classes, counts, split seed, checksums of
the raw files).  Models take raw 0..255 pixels and normalise inside the
graph, so TFLite models see exactly what the app would feed them.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.atomic import atomic_path, write_json
from mobopt.download import RemoteFile, download, verify
from mobopt.idx import read_idx, write_idx

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SOURCE_RECORD = "SOURCE.json"


@dataclass(frozen=True)
class Dataset:
    name: str
    description: str
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int]
    raw_files: tuple[str, ...]
    download: Callable[[dict[str, Any], Path], dict[str, Any]]
    prepare: Callable[[Path, Path, dict[str, Any], int], dict[str, Any]]


# --------------------------------------------------------------------------- MNIST

#: REFERENCE.md §2: sizes and sha256 of the canonical gzip-compressed IDX files.
MNIST_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", 9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    RemoteFile("train-labels-idx1-ubyte.gz", 28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    RemoteFile("t10k-images-idx3-ubyte.gz", 1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", 4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
)


def fetch_files(files: tuple[RemoteFile, ...], options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Bring ``files`` into ``out_dir`` from the configured source and record what came.

    ``source: url`` downloads from ``mirrors`` in order; ``source: path`` copies
    from a local folder (a manual download, a shared cache).  With ``verify``
    (default) size and sha256 must match the pins; with ``verify: false`` (a
    stand-in dataset such as the offline demo's) they are only recorded.
    """
    source = options.get("source", "url")
    verify_pins = options.get("verify", True)
    out_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"source": source, "verified_against_pins": verify_pins, "files": {}}
    for remote in files:
        pinned = remote if verify_pins else RemoteFile(remote.name)
        dest = out_dir / remote.name
        if source == "url":
            digest = download(
                pinned, list(options.get("mirrors", [])), dest,
                retries=options.get("retries", 4), backoff=options.get("backoff", 1.0),
                timeout=options.get("timeout", 60.0), progress=options.get("progress", True),
            )
            origin = options.get("mirrors")
        elif source == "path":
            if not options.get("path"):
                raise MobOptError("config key `path` is empty but `source: path` needs the folder holding the files")
            src = Path(options["path"]).expanduser() / remote.name
            if not src.is_file():
                raise MobOptError(f"{src}: not found; `source: path` expects {remote.name} in {src.parent}")
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
                digest = verify(tmp, pinned, label=str(src))
            origin = str(src)
        else:
            raise MobOptError(f"unknown source {source!r}; use `url` or `path`")
        record["files"][remote.name] = {"sha256": digest, "bytes": dest.stat().st_size, "origin": origin}
        log.info("%s ok (sha256 %s)", remote.name, digest)
    write_json(out_dir / SOURCE_RECORD, record)
    return record


def download_mnist(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    return fetch_files(MNIST_FILES, options, out_dir)


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of every class held out, chosen by ``seed``."""
    if not 0.0 <= fraction < 1.0:
        raise MobOptError(f"validation_fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_held = int(round(fraction * len(idx)))
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


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


def save_split(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    if len(x) == 0:
        raise MobOptError(f"{path}: the split would be empty; check the dataset and validation_fraction")
    with atomic_path(path) as tmp:
        np.savez(tmp, x=x, y=y)


def load_split(prepared_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    path = Path(prepared_dir) / f"{split}.npz"
    try:
        with np.load(path) as data:
            return data["x"], data["y"]
    except (OSError, KeyError, ValueError) as exc:
        raise MobOptError(f"{path}: cannot load prepared split ({exc}); rerun the prepare rule") from exc


def load_meta(prepared_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(prepared_dir) / "meta.json").read_text())


def prepare_mnist(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Parse the IDX files, hold out a seeded stratified validation split, write npz + meta."""
    spec = DATASETS["mnist"]
    n = len(spec.classes)
    x_train, y_train = _read_pair(raw_dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", n)
    x_test, y_test = _read_pair(raw_dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", n)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise MobOptError(f"{raw_dir}: train images are {x_train.shape[1:3]} but test images {x_test.shape[1:3]}")
    keep, held = stratified_split(y_train, options.get("validation_fraction", 0.1), seed)
    source = json.loads((raw_dir / SOURCE_RECORD).read_text()) if (raw_dir / SOURCE_RECORD).exists() else {}
    splits = {"train": (x_train[keep], y_train[keep]), "val": (x_train[held], y_train[held]), "test": (x_test, y_test)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in splits.items():
        save_split(out_dir / f"{name}.npz", x, y)
    meta = {
        "dataset": "mnist",
        "classes": list(spec.classes),
        "image_shape": list(x_train.shape[1:]),
        "counts": {name: int(len(y)) for name, (_, y) in splits.items()},
        "split_seed": seed,
        "validation_fraction": options.get("validation_fraction", 0.1),
        "raw_sha256": {k: v["sha256"] for k, v in source.get("files", {}).items()},
    }
    write_json(out_dir / "meta.json", meta)
    return meta


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        description="MNIST handwritten digits, 28x28 grey, 60k train / 10k test (IDX files)",
        classes=tuple(str(i) for i in range(10)),
        image_shape=(28, 28, 1),
        raw_files=tuple(f.name for f in MNIST_FILES),
        download=download_mnist,
        prepare=prepare_mnist,
    ),
}


def get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise MobOptError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None


# ----------------------------------------------------------- offline stand-in data

def write_digits_as_mnist(out_dir: str | Path, *, test_fraction: float = 0.2, seed: int = 0) -> dict[str, str]:
    """Write scikit-learn's 8x8 digits (real handwriting, 1,797 images) as MNIST-layout IDX .gz files.

    Each image is scaled to 0..255, upsampled 3x (nearest) to 24x24 and padded
    to 28x28, like MNIST's centred digits.  Used by the offline demo and the
    tests: the files go through the real download/IDX/prepare code.  Returns
    the sha256 of each file written.
    """
    from sklearn.datasets import load_digits

    from mobopt.download import sha256sum

    digits = load_digits()
    x = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    x = np.kron(x, np.ones((1, 3, 3), dtype=np.uint8))
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    y = digits.target.astype(np.uint8)
    train, test = stratified_split(y, test_fraction, seed)
    out = Path(out_dir)
    files = {
        "train-images-idx3-ubyte.gz": x[train], "train-labels-idx1-ubyte.gz": y[train],
        "t10k-images-idx3-ubyte.gz": x[test], "t10k-labels-idx1-ubyte.gz": y[test],
    }
    for name, arr in files.items():
        write_idx(out / name, arr)
    return {name: sha256sum(out / name) for name in files}
