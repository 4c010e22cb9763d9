"""ASL Alphabet (Kaggle grassknoted/asl-alphabet): 29 hand signs, 87,000 200x200 RGB photos.

The Kaggle zip holds a train tree (3,000 images per class) and the official
test folder (28 images, one per class except ``del``), which is scored as its
own evaluation split ``official_test``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mobopt import MobOptError
from mobopt.common.atomic import write_json
from mobopt.common.download import RemoteFile
from mobopt.datasets import fetch, images, prepared

log = logging.getLogger(__name__)

# ASL Alphabet: Kaggle grassknoted/asl-alphabet
ASL_SLUG = "grassknoted/asl-alphabet"
ASL_ZIP = "asl-alphabet.zip"
ASL_CLASSES = (*(chr(c) for c in range(ord("A"), ord("Z") + 1)), "del", "nothing", "space")
ASL_TRAIN_DIR = "asl_alphabet_train/asl_alphabet_train"
ASL_TEST_DIR = "asl_alphabet_test/asl_alphabet_test"
ASL_PER_CLASS = 3000
ASL_TEST_IMAGES = 28  # one per class except `del`


def check_asl_layout(tree: Path, strict: bool) -> dict[str, Any]:
    """Check the extracted archive is Kaggle's ASL Alphabet: Kaggle publishes no checksum, so the
    structure is what can be verified (29 class folders x 3,000 images, 28 official test images).

    ``strict: false`` (a stand-in or a subset) only requires every class folder to hold images.
    """
    from mobopt.datasets import images

    train, test = tree / ASL_TRAIN_DIR, tree / ASL_TEST_DIR
    if not train.is_dir():
        raise MobOptError(f"{tree}: no {ASL_TRAIN_DIR}/ folder; the archive is not Kaggle's {ASL_SLUG}")

    def n_images(folder: Path) -> int:
        return sum(1 for f in folder.iterdir() if f.suffix.lower() in images.IMAGE_EXTENSIONS) if folder.is_dir() else 0

    per_class = {c: n_images(train / c) for c in ASL_CLASSES}
    unexpected = sorted(d.name for d in train.iterdir() if d.is_dir() and d.name not in ASL_CLASSES)
    official = n_images(test)
    faults = []
    if empty := [c for c, n in per_class.items() if n == 0]:
        faults.append(f"class folders missing or empty: {', '.join(empty)}")
    if strict:
        if wrong := {c: n for c, n in per_class.items() if n != ASL_PER_CLASS}:
            faults.append(f"expected {ASL_PER_CLASS} images per class, found {wrong}")
        if official != ASL_TEST_IMAGES:
            faults.append(f"expected {ASL_TEST_IMAGES} images in {ASL_TEST_DIR}/, found {official}")
        if unexpected:
            faults.append(f"unexpected class folders: {', '.join(unexpected)}")
    if faults:
        raise MobOptError(f"{tree}: not the expected ASL Alphabet layout: {'; '.join(faults)}. For a stand-in or a "
                          "subset set `verify: false` under datasets.asl_alphabet")
    return {"train_images": sum(per_class.values()), "per_class": per_class, "official_test_images": official,
            "unexpected_folders": unexpected, "checked_strictly": strict}


def download(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch the zip (Kaggle CLI, a mirror or a local copy), record its sha256, extract safely, check the layout."""
    from mobopt.datasets import archives

    remote = RemoteFile(ASL_ZIP, None, options.get("sha256"))
    entry = fetch.fetch_file(remote, options, out_dir, kaggle_slug=options.get("kaggle_dataset", ASL_SLUG))
    if remote.sha256 is None:
        log.warning("%s: sha256 %s (not pinned; set datasets.asl_alphabet.sha256 to enforce it)", ASL_ZIP, entry["sha256"])
    tree = out_dir / prepared.TREE
    source = options.get("source", "kaggle")
    with prepared.naming_sources(out_dir, {"source": source, "files": {ASL_ZIP: entry}}):
        extracted = archives.safe_extract(out_dir / ASL_ZIP, tree, progress=options.get("progress", True),
                                          **archives.extract_options(options))
        layout = check_asl_layout(tree, strict=options.get("verify", True))
    record = {"source": source, "files": {ASL_ZIP: entry}, "extracted_files": extracted, "layout": layout}
    write_json(out_dir / prepared.SOURCE_RECORD, record)
    return record


def _asl_official_test(folder: Path, problems: images.Problems) -> images.ImageList:
    """The official test images, ``<CLASS>_test.jpg``, labelled by their name."""
    from mobopt.datasets import images

    items = []
    if not folder.is_dir():
        return images.ImageList.from_pairs(items)
    for f in sorted(folder.iterdir()):
        cls = f.stem.removesuffix("_test")
        if f.is_file() and f.suffix.lower() in images.IMAGE_EXTENSIONS and f.stem.endswith("_test") and cls in ASL_CLASSES:
            items.append((f, ASL_CLASSES.index(cls)))
        else:
            problems.add("unexpected_files", str(f))
    return images.ImageList.from_pairs(sorted(items, key=lambda item: (item[1], item[0].name)))


def prepare(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Seeded stratified train/val/test split of the 87,000 training photos; the official test folder apart.

    The official folder has 28 images (one per class, none for `del`): far too
    few to rank variants, so it is scored separately (split ``official_test``)
    and the main test split is held out from the training folder.
    """
    from mobopt.datasets import images

    tree = raw_dir / prepared.TREE
    problems = images.Problems()
    items = images.scan_class_tree(tree / ASL_TRAIN_DIR, ASL_CLASSES, problems)
    labels = items.labels
    test_fraction = options.get("test_fraction", 0.1)
    val_fraction = options.get("validation_fraction", 0.1)
    if test_fraction + val_fraction >= 1:
        raise MobOptError("datasets.asl_alphabet: validation_fraction + test_fraction must stay below 1")
    pool, test = prepared.stratified_split(labels, test_fraction, seed)
    keep, held = prepared.stratified_split(labels[pool], val_fraction / (1 - test_fraction), seed + 1)
    splits = {
        "train": items[pool[keep]],
        "val": items[pool[held]],
        "test": items[test],
        "official_test": _asl_official_test(tree / ASL_TEST_DIR, problems),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = prepared.write_image_splits(splits, out_dir, options, problems, f"{tree} (asl_alphabet)")
    meta = prepared.image_meta("asl_alphabet", ASL_CLASSES, options, counts, seed, raw_dir, problems,
                       test_fraction=test_fraction)
    write_json(out_dir / "meta.json", meta)
    return meta


