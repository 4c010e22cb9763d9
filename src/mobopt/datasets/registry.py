"""Dataset registry: every dataset the workflow knows, by its config key.

Adding a dataset is one :class:`Dataset` entry in :data:`DATASETS` plus a
module named as its key with ``download`` and ``prepare`` functions; what
``prepare`` writes is the contract in :mod:`mobopt.datasets.prepared`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobopt import MobOptError
from mobopt.datasets import asl_alphabet, cifar10, fashion_mnist, imagenet, imagenet_subset, mnist, prepared


def _as_given(options: dict[str, Any]) -> dict[str, Any]:
    return options


@dataclass(frozen=True)
class Dataset:
    """One dataset: its classes, raw files, and the functions that fetch and prepare them.

    ``raw_files(options)`` names the files the download leaves in
    ``data/raw/<name>/`` (they may depend on options, e.g. Imagenette's
    resolution); with ``extracted`` the download also unpacks the archive into
    ``data/raw/<name>/tree``.  ``image_shape(options)`` is the model input
    the prepared data will have (the workflow picks pretrained weights by it).
    ``extra_splits`` are evaluation-only splits
    beside train/val/test (ASL's official 28-image test folder).
    """

    name: str
    description: str
    classes: tuple[str, ...]
    image_shape: Callable[[dict[str, Any]], tuple[int, int, int]]
    raw_files: Callable[[dict[str, Any]], list[str]]
    download: Callable[[dict[str, Any], Path], dict[str, Any]]
    prepare: Callable[[Path, Path, dict[str, Any], int], dict[str, Any]]
    extracted: bool = False
    extra_splits: tuple[str, ...] = ()
    #: Options as the download will use them (a source chosen at run time, like Fashion-MNIST's `auto`).
    resolve_options: Callable[[dict[str, Any]], dict[str, Any]] = _as_given

    @property
    def splits(self) -> tuple[str, ...]:
        return (*prepared.SPLITS, *self.extra_splits)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("test", *self.extra_splits)


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        description="MNIST handwritten digits, 28x28 grey, 60k train / 10k test (IDX files)",
        classes=mnist.CLASSES,
        image_shape=lambda options: (28, 28, 1),
        raw_files=lambda options: [f.name for f in mnist.MNIST_FILES],
        download=mnist.download,
        prepare=mnist.prepare,
    ),
    "fashion_mnist": Dataset(
        name="fashion_mnist",
        description="Fashion-MNIST (Zalando): 10 kinds of clothing, 28x28 grey, 60k train / 10k test (IDX files)",
        classes=fashion_mnist.CLASSES,
        image_shape=fashion_mnist.image_shape,
        raw_files=lambda options: list(fashion_mnist.FILES),
        download=fashion_mnist.download,
        prepare=fashion_mnist.prepare,
        resolve_options=fashion_mnist.resolve_options,
    ),
    "cifar10": Dataset(
        name="cifar10",
        description="CIFAR-10 (Krizhevsky): 10 classes of 32x32 colour photos, 50k train / 10k test (pickled batches)",
        classes=cifar10.CLASSES,
        image_shape=cifar10.image_shape,
        raw_files=lambda options: [cifar10.ARCHIVE.name],
        download=cifar10.download,
        prepare=cifar10.prepare,
        extracted=True,
    ),
    "asl_alphabet": Dataset(
        name="asl_alphabet",
        description="ASL Alphabet (Kaggle grassknoted/asl-alphabet): 29 hand signs, 87,000 200x200 RGB photos",
        classes=asl_alphabet.ASL_CLASSES,
        image_shape=prepared.image_shape,
        raw_files=lambda options: [asl_alphabet.ASL_ZIP],
        download=asl_alphabet.download,
        prepare=asl_alphabet.prepare,
        extracted=True,
        extra_splits=("official_test",),
    ),
    "imagenet_subset": Dataset(
        name="imagenet_subset",
        description="Imagenette (fast.ai): 10 ImageNet classes, scored through ImageNet-1k's 1000-class head",
        classes=imagenet_subset.IMAGENETTE_WNIDS,
        image_shape=prepared.image_shape,
        raw_files=lambda options: [imagenet_subset.imagenette_archive(options).name],
        download=imagenet_subset.download,
        prepare=imagenet_subset.prepare,
        extracted=True,
    ),
    "imagenet": Dataset(
        name="imagenet",
        description="ImageNet-1k (ILSVRC2012) read from a local copy: 1000 classes, 1.28M train / 50k val photos",
        classes=imagenet.WNIDS,
        image_shape=prepared.image_shape,
        raw_files=lambda options: [],  # read in place: the download only checks the copy and records where it is
        download=imagenet.download,
        prepare=imagenet.prepare,
    ),
}


def get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise MobOptError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}") from None

