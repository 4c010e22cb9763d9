"""Imagenette (fast.ai): 10 ImageNet classes, scored through ImageNet-1k's 1000-class head.

By default only the ``ILSVRC2012_val_*`` images are scored, so the result is
on ImageNet's own validation images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.common.atomic import write_json
from mobopt.common.download import RemoteFile
from mobopt.datasets import fetch, images, prepared

# Imagenette (fast.ai): pinned sizes and sha256 of the three archives.
IMAGENETTE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/"
IMAGENETTE_ARCHIVES = {
    "full": RemoteFile("imagenette2.tgz", 1557161267, "6cbfac238434d89fe99e651496f0812ebc7a10fa62bd42d6874042bf01de4efd"),
    "320": RemoteFile("imagenette2-320.tgz", 341663724, "569b4497c98db6dd29f335d1f109cf315fe127053cedf69010d047f0188e158c"),
    "160": RemoteFile("imagenette2-160.tgz", 99003388, "64d0c4859f35a461889e0147755a999a48b49bf38a7e0f9bd27003f10db02fe5"),
}
#: wnid -> (ImageNet-1k index in Keras' sorted-wnid order, name).
IMAGENETTE_CLASSES = {
    "n01440764": (0, "tench"), "n02102040": (217, "English springer"), "n02979186": (482, "cassette player"),
    "n03000684": (491, "chain saw"), "n03028079": (497, "church"), "n03394916": (566, "French horn"),
    "n03417042": (569, "garbage truck"), "n03425413": (571, "gas pump"), "n03445777": (574, "golf ball"),
    "n03888257": (701, "parachute"),
}
IMAGENETTE_WNIDS = tuple(IMAGENETTE_CLASSES)
ILSVRC_VAL_PREFIX = "ILSVRC2012_val_"


def imagenette_archive(options: dict[str, Any]) -> RemoteFile:
    key = str(options.get("resolution", "320"))
    if key not in IMAGENETTE_ARCHIVES:
        raise MobOptError(f"datasets.imagenet_subset.resolution: {key!r}; choose one of {', '.join(IMAGENETTE_ARCHIVES)}")
    return IMAGENETTE_ARCHIVES[key]


def _imagenette_root(tree: Path, archive: RemoteFile) -> Path:
    return tree / archive.name.removesuffix(".tgz")


def download(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch the pinned Imagenette archive, extract it safely and check its layout."""
    from mobopt.datasets import archives

    archive = imagenette_archive(options)
    verify_pins = options.get("verify", True)
    opts = {"mirrors": [IMAGENETTE_URL], **options}
    entry = fetch.fetch_file(archive if verify_pins else RemoteFile(archive.name), opts, out_dir)
    tree = out_dir / prepared.TREE
    source = options.get("source", "url")
    root = _imagenette_root(tree, archive)
    with prepared.naming_sources(out_dir, {"source": source, "files": {archive.name: entry}}):
        extracted = archives.safe_extract(out_dir / archive.name, tree, progress=options.get("progress", True),
                                          **archives.extract_options(options))
        missing = [f"{split}/{wnid}" for split in ("train", "val") for wnid in IMAGENETTE_WNIDS
                   if not (root / split / wnid).is_dir()]
        if missing:
            raise MobOptError(f"{root}: not the Imagenette layout, missing {', '.join(missing[:5])}"
                              f"{' ...' if len(missing) > 5 else ''}")
    record = {"source": source, "verified_against_pins": verify_pins,
              "files": {archive.name: entry}, "extracted_files": extracted}
    write_json(out_dir / prepared.SOURCE_RECORD, record)
    return record


def prepare(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Test split: Imagenette's val folder, by default only its ILSVRC2012_val_* images (ImageNet's own
    validation images; the others are ImageNet training images a pretrained model has seen).  Everything
    else is the training pool (calibration images for int8), with a seeded stratified validation split.
    Labels are ImageNet-1k indices, so the 1000-class head is scored as it is."""

    archive = imagenette_archive(options)
    root = _imagenette_root(raw_dir / prepared.TREE, archive)
    problems = images.Problems()
    to_imagenet = [IMAGENETTE_CLASSES[w][0] for w in IMAGENETTE_WNIDS]
    train_items = images.scan_class_tree(root / "train", IMAGENETTE_WNIDS, problems)
    val_items = images.scan_class_tree(root / "val", IMAGENETTE_WNIDS, problems)
    only_val = options.get("ilsvrc_val_only", True)
    if only_val:
        from_val = np.char.startswith(val_items.names(), ILSVRC_VAL_PREFIX.encode())
        test = val_items[from_val]
        pool = images.ImageList.concat(train_items, val_items[~from_val])
        if not len(test):
            raise MobOptError(f"{root / 'val'}: no {ILSVRC_VAL_PREFIX}* images to score; set "
                              "datasets.imagenet_subset.ilsvrc_val_only: false to score the whole val folder")
    else:
        test, pool = val_items, train_items
    keep, held = prepared.stratified_split(pool.labels, options.get("validation_fraction", 0.1), seed)
    splits = {"train": pool[keep].relabel(to_imagenet), "val": pool[held].relabel(to_imagenet),
              "test": test.relabel(to_imagenet)}
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = prepared.write_image_splits(splits, out_dir, options, problems, f"{root} (imagenet_subset)")
    meta = prepared.image_meta("imagenet_subset", IMAGENETTE_WNIDS, options, counts, seed, raw_dir, problems,
                       class_names=[IMAGENETTE_CLASSES[w][1] for w in IMAGENETTE_WNIDS], label_indices=to_imagenet,
                       num_outputs=1000, label_space="ImageNet-1k (Keras' sorted-wnid order)",
                       ilsvrc_val_only=only_val, archive=archive.name)
    write_json(out_dir / "meta.json", meta)
    return meta

