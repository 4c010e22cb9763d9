"""Data stages: raw files and pretrained weights in, prepared arrays out; none needs TensorFlow."""

from __future__ import annotations

from pathlib import Path

from mobopt.cli._args import DATASETS, add_command, add_options, add_registry, add_seed, require


def cmd_download(a):
    from mobopt import datasets

    datasets.get(a.dataset).download(a.options, Path(a.out))


def cmd_prepare(a):
    from mobopt import datasets
    from mobopt.datasets import prepared

    require(a.raw)
    options = a.options if a.workers is None else {**a.options, "workers": a.workers}
    with prepared.naming_sources(a.raw):  # a bad copy of the user's file: name that file too
        datasets.get(a.dataset).prepare(Path(a.raw), Path(a.out), options, a.seed)


def cmd_fetch_weights(a):
    from mobopt.models.pretrained import fetch

    for name in a.name:
        fetch(name, a.options, Path(a.out))


def cmd_digits_idx(a):
    from mobopt.datasets.standins import write_digits_as_mnist

    for name, digest in write_digits_as_mnist(a.out).items():
        print(f"{digest}  {Path(a.out) / name}")


def register(sub) -> None:
    s = add_command(sub, "download", cmd_download, "fetch a dataset's raw files (checksummed, atomic)")
    add_registry(s, "--dataset", DATASETS, "dataset to fetch")
    s.add_argument("--out", required=True, help="folder for the raw files (data/raw/<dataset>)")
    add_options(s, "the dataset's config entry (source, mirrors, checksums)")

    s = add_command(sub, "prepare", cmd_prepare, "decode raw files into <split>_{x,y}.npy + meta.json")
    add_registry(s, "--dataset", DATASETS, "dataset to prepare")
    s.add_argument("--raw", required=True, help="folder of the downloaded raw files")
    s.add_argument("--out", required=True, help="folder for the prepared arrays (data/prepared/<dataset>)")
    add_options(s, "the dataset's config entry (splits, image size, workers)")
    add_seed(s, "seed of the train/validation split")
    s.add_argument("--workers", type=int, default=None, help="decoding processes (default: the dataset's `workers`)")

    s = add_command(sub, "fetch-weights", cmd_fetch_weights, "fetch pretrained weight files (checksummed, atomic)")
    s.add_argument("--name", action="append", required=True, help="weight file name (repeatable)")
    s.add_argument("--out", required=True, help="folder for the weight files (data/weights)")
    add_options(s, "the config's `pretrained` entry (source, mirrors, sha256)")

    s = add_command(sub, "digits-idx", cmd_digits_idx, "write scikit-learn's digits as MNIST-layout IDX files (offline demo)")
    s.add_argument("out", help="folder to write the IDX .gz files into")
