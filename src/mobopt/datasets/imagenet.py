"""ImageNet-1k (ILSVRC2012) read in place from a local copy: 1.28 M training and 50,000 validation photos, 1000 classes.

There is no download: the images are only given out to holders of an account
at image-net.org (or Kaggle's ``imagenet-object-localization-challenge``), under
terms each user accepts.  ``source: path`` names the folder holding

* ``train/<wnid>/*.JPEG``: one folder per class, named by its WordNet id;
* ``val/<wnid>/*.JPEG`` (the common re-sorted layout), or ``val/*.JPEG`` flat
  (``ILSVRC2012_val_00000001.JPEG`` ...), labelled by either the devkit's
  ``ILSVRC2012_validation_ground_truth.txt`` (one 1-based ILSVRC2012_ID per
  image, in file-number order, mapped to wnids by the devkit's ``meta.mat``) or
  Kaggle's ``LOC_val_solution.csv`` (``ImageId,PredictionString`` with the wnid
  first).

Nothing is copied into ``data/raw``: the download step checks the layout and
records where it is, and the prepare step decodes straight from the copy.

Labels are ImageNet-1k indices: a wnid's position among the 1000 sorted wnids
(:data:`WNIDS`, the order of Keras' and torchvision's pretrained heads), so a
1000-class head is scored as it is.  The official validation images are the test
split (the test set's labels were never published); the validation split is held
out from train, seeded and stratified.  The class decoding, resizing and
streaming are :mod:`mobopt.datasets.images`', as for Imagenette.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.common.atomic import write_json
from mobopt.datasets import images, prepared

log = logging.getLogger(__name__)


def _read_class_file() -> tuple[tuple[str, ...], dict[str, str]]:
    """The 1000 wnids in label order and the name of each (the first of its WordNet words).

    ``data/imagenet1k_classes.txt`` is Kaggle's ``LOC_synset_mapping.txt``
    (``<wnid> <words>`` per line, in sorted-wnid order).
    """
    text = (resources.files("mobopt.datasets") / "data" / "imagenet1k_classes.txt").read_text()
    pairs = [line.split(" ", 1) for line in text.splitlines()]
    wnids = tuple(w for w, _ in pairs)
    if len(wnids) != 1000 or list(wnids) != sorted(set(wnids)):
        raise MobOptError("mobopt/datasets/data/imagenet1k_classes.txt is damaged: it must list 1000 sorted, distinct "
                          "wnids; reinstall the package")
    return wnids, {w: words.split(",")[0].strip() for w, words in pairs}


#: The 1000 ImageNet-1k wnids; a label is a position in this tuple.
WNIDS, NAMES = _read_class_file()
INDEX = {w: i for i, w in enumerate(WNIDS)}
WNID = re.compile(r"^n\d{8}$")
DEVKIT = "ILSVRC2012_devkit_t12"
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"
META_MAT = "meta.mat"
KAGGLE_SOLUTION = "LOC_val_solution.csv"
VAL_FILE = re.compile(r"^ILSVRC2012_val_(\d{8})$")
#: This dataset's own keys and their defaults (the schema documents the same; a test checks).
IMAGENET_DEFAULTS: dict[str, Any] = {"val_labels": None, "train_images_per_class": None, "test_images_per_class": None}
NO_DOWNLOAD = ("ImageNet-1k cannot be downloaded by the workflow: its images are only given to holders of an account "
               "at image-net.org (or Kaggle's imagenet-object-localization-challenge). Download ILSVRC2012 there, "
               "then set datasets.imagenet.path to the folder holding train/ and val/")


@dataclass(frozen=True)
class Layout:
    """What :func:`check_layout` found in a copy: its root, the train classes and how val is labelled."""

    root: Path
    classes: tuple[str, ...]  # the train folder's wnids, sorted (all 1000 in a full copy)
    val_layout: str  # "class folders" or "flat"
    val_labels: str | None  # the labels file of a flat val folder


def root_of(options: dict[str, Any]) -> Path:
    if options.get("source", "path") != "path":
        raise MobOptError(f"datasets.imagenet.source: {options['source']!r}; ImageNet-1k is only read from a local "
                          "copy (`source: path`). " + NO_DOWNLOAD)
    if not options.get("path"):
        raise MobOptError("datasets.imagenet.path is not set. " + NO_DOWNLOAD)
    root = Path(options["path"]).expanduser()
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise MobOptError(f"{root}: no train/ and val/ folders there (datasets.imagenet.path). {NO_DOWNLOAD}; "
                          "with Kaggle's copy that folder is ILSVRC/Data/CLS-LOC")
    return root


def _subfolders(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir())


def _wnid_folders(folder: Path) -> list[str]:
    """The wnid-named sub-folders of ``folder``; one that looks like a wnid but is none of the 1000 is an error."""
    found = [name for name in _subfolders(folder) if WNID.match(name)]
    unknown = [name for name in found if name not in INDEX]
    if unknown:
        raise MobOptError(f"{folder / unknown[0]}: {unknown[0]} is not one of ImageNet-1k's 1000 classes "
                          f"({len(unknown)} such folders); is this ImageNet-21k or another dataset? Point "
                          "datasets.imagenet.path at an ILSVRC2012 copy, or remove those folders")
    return found


def check_layout(options: dict[str, Any]) -> Layout:
    """The copy's layout, checked: known wnids, all 1000 of them with ``verify`` (a subset without), and a
    val folder that is either one folder per train class or flat images with a labels file found for it."""
    root = root_of(options)
    classes = tuple(_wnid_folders(root / "train"))
    if not classes:
        raise MobOptError(f"{root / 'train'}: no class folders named by wnid (n01440764 ...); not ImageNet's layout")
    if options.get("verify", True) and len(classes) != len(WNIDS):
        missing = [w for w in WNIDS if w not in set(classes)]
        raise MobOptError(f"{root / 'train'}: {len(classes)} of ImageNet-1k's 1000 class folders, missing "
                          f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; an incomplete copy? "
                          "(for a subset of the classes set `verify: false` under datasets.imagenet)")
    val_classes = _wnid_folders(root / "val")
    if val_classes:
        if val_classes != list(classes):
            only_val, only_train = sorted(set(val_classes) - set(classes)), sorted(set(classes) - set(val_classes))
            raise MobOptError(f"{root / 'val'}: its class folders differ from train/'s (only in val: "
                              f"{', '.join(only_val[:5]) or 'none'}; only in train: {', '.join(only_train[:5]) or 'none'})")
        return Layout(root, classes, "class folders", None)
    labels = _find_val_labels(root, options.get("val_labels"))
    return Layout(root, classes, "flat", str(labels))


def _find_val_labels(root: Path, given: str | None) -> Path:
    """The labels of a flat val folder: ``val_labels`` when set, else the first of the usual places found."""
    if given:
        path = Path(given).expanduser()
        if not path.exists():
            raise MobOptError(f"{path}: not found (datasets.imagenet.val_labels)")
        return path
    candidates = [folder / KAGGLE_SOLUTION for folder in (root, *list(root.parents)[:3])]  # Kaggle: 3 levels up
    candidates += [root / DEVKIT / "data" / GROUND_TRUTH, root / f"{DEVKIT}.tar.gz", root / GROUND_TRUTH]
    for path in candidates:
        if path.exists():
            return path
    raise MobOptError(
        f"{root / 'val'}: the validation images lie flat (no class folders) and no labels for them were found; "
        f"looked for {', '.join(str(c) for c in candidates)}. Put the devkit ({DEVKIT}.tar.gz, or its extracted "
        f"folder: {GROUND_TRUTH} with {META_MAT}) or Kaggle's {KAGGLE_SOLUTION} there, or set "
        "datasets.imagenet.val_labels to one of them")


# --------------------------------------------------------------------------- validation labels

def val_labels(path: Path) -> dict[str, str]:
    """Image stem (``ILSVRC2012_val_00000001``) -> wnid, from a Kaggle solution file, a ground-truth file (with
    ``meta.mat`` beside it), an extracted devkit folder or the devkit archive."""
    if path.is_dir():  # the extracted devkit
        path = path / "data" / GROUND_TRUTH
        if not path.is_file():
            raise MobOptError(f"{path}: not found; the devkit's data/ folder holds {GROUND_TRUTH} and {META_MAT}")
    name = path.name.lower()
    if name.endswith(".csv"):
        return _from_kaggle(path)
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        truth, meta = _from_devkit_archive(path)
        return _from_ground_truth(truth, meta, path)
    return _from_ground_truth(path.read_bytes(), _read_meta_beside(path), path)


def _read_meta_beside(truth: Path) -> bytes:
    meta = truth.parent / META_MAT
    if not meta.is_file():
        raise MobOptError(f"{meta}: not found; {GROUND_TRUTH} gives ILSVRC2012_IDs, which only the devkit's "
                          f"{META_MAT} (in the same data/ folder) maps to wnids. Put it beside, or use Kaggle's "
                          f"{KAGGLE_SOLUTION} instead (datasets.imagenet.val_labels)")
    return meta.read_bytes()


def _from_devkit_archive(path: Path) -> tuple[bytes, bytes]:
    """The ground truth and meta.mat read from the devkit archive itself (nothing is extracted)."""
    wanted = {f"{DEVKIT}/data/{GROUND_TRUTH}": None, f"{DEVKIT}/data/{META_MAT}": None}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if member.name in wanted and member.isreg():
                    fh = tar.extractfile(member)
                    wanted[member.name] = fh.read() if fh else None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise MobOptError(f"{path}: cannot read the devkit archive ({exc}); download it again") from exc
    absent = [name for name, data in wanted.items() if data is None]
    if absent:
        raise MobOptError(f"{path}: not the ILSVRC2012 devkit, it lacks {', '.join(absent)}")
    truth, meta = wanted.values()
    return truth, meta


def _from_kaggle(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(path, newline="") as fh:
            rows = csv.reader(fh)
            header = next(rows, None)
            if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
                raise MobOptError(f"{path}: not Kaggle's {KAGGLE_SOLUTION}: the first line must be "
                                  f"'ImageId,PredictionString', found {header!r}")
            for line, row in enumerate(rows, start=2):
                if len(row) < 2 or not row[1].split():
                    raise MobOptError(f"{path}, line {line}: expected ImageId,PredictionString with the wnid first, "
                                      f"found {row!r}")
                out[row[0].strip()] = _known(row[1].split()[0], f"{path}, line {line}")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MobOptError(f"{path}: cannot read ({exc})") from exc
    return out


def _from_ground_truth(truth: bytes, meta: bytes, where: Path) -> dict[str, str]:
    id_to_wnid = _meta_mat_wnids(meta, where)
    out: dict[str, str] = {}
    for number, text in enumerate(truth.decode("ascii", "replace").split(), start=1):
        if not text.isdigit() or int(text) not in id_to_wnid:
            raise MobOptError(f"{where}, line {number}: {text!r} is not an ILSVRC2012_ID of {META_MAT} (1..1000)")
        out[f"ILSVRC2012_val_{number:08d}"] = id_to_wnid[int(text)]
    return out


def _meta_mat_wnids(data: bytes, where: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid of the 1000 leaf synsets in the devkit's meta.mat (a MATLAB struct array)."""
    import scipy.io  # only a flat val folder with the devkit needs it

    try:
        synsets = scipy.io.loadmat(io.BytesIO(data), squeeze_me=True)["synsets"]
        ids, wnids = np.atleast_1d(synsets["ILSVRC2012_ID"]), np.atleast_1d(synsets["WNID"])
        leaves = np.atleast_1d(synsets["num_children"]) == 0 if "num_children" in synsets.dtype.names else None
    except (ValueError, KeyError, TypeError, OSError, IndexError) as exc:
        raise MobOptError(f"{where}: the devkit's {META_MAT} is unreadable or not ILSVRC2012's "
                          f"({type(exc).__name__}: {exc}); download the devkit again") from exc
    out = {}
    for i, (ident, wnid) in enumerate(zip(ids, wnids, strict=True)):
        if leaves is None or leaves[i]:
            out[int(ident)] = _known(str(wnid), f"{where} ({META_MAT}, ILSVRC2012_ID {int(ident)})")
    return out


def _known(wnid: str, where: str) -> str:
    if wnid not in INDEX:
        raise MobOptError(f"{where}: {wnid!r} is not one of ImageNet-1k's 1000 wnids; not ILSVRC2012's labels?")
    return wnid


def _flat_val(layout: Layout, problems: images.Problems) -> images.ImageList:
    """The flat val folder's images, labelled (as positions in ``layout.classes``) from the labels file."""
    folder = layout.root / "val"
    labels = val_labels(Path(layout.val_labels))
    position = {w: i for i, w in enumerate(layout.classes)}
    pairs = []
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        stem, ext = os.path.splitext(entry.name)
        if not entry.is_file() or ext.lower() not in images.IMAGE_EXTENSIONS:
            problems.add("unexpected_files", entry.path)
            continue
        wnid = labels.get(stem)
        if wnid is None:
            raise MobOptError(f"{entry.path}: no label for it in {layout.val_labels}; is that the labels file of "
                              "these validation images? (datasets.imagenet.val_labels)")
        if wnid not in position:
            raise MobOptError(f"{entry.path}: labelled {wnid} ({NAMES[wnid]}) in {layout.val_labels}, a class "
                              f"train/ has no folder for")
        pairs.append((Path(entry.path), position[wnid]))
    if not pairs:
        raise MobOptError(f"{folder}: no validation images ({', '.join(sorted(images.IMAGE_EXTENSIONS))})")
    return images.ImageList.from_pairs(pairs)


# --------------------------------------------------------------------------- the two steps

def download(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Check the local copy's layout (and that the validation labels read) and record where it is; copy nothing."""
    layout = check_layout(options)
    if layout.val_labels:
        labels = val_labels(Path(layout.val_labels))
        log.info("%s: labels of %d validation images", layout.val_labels, len(labels))
    record = {"source": "path", "path": str(layout.root.absolute()), "classes": len(layout.classes),
              "val_layout": layout.val_layout, "val_labels": layout.val_labels,
              "verified_against_pins": False, "verified_layout": options.get("verify", True),
              "note": "read in place: ImageNet is not copied into data/raw"}
    write_json(out_dir / prepared.SOURCE_RECORD, record)
    return record


def _take_per_class(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` items per class, drawn by ``seed`` (all, in order, when ``limit`` is None)."""
    if limit is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:int(limit)] for c in np.unique(labels)]
    return np.sort(np.concatenate(chosen))


def prepare(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Decode train (less a seeded, stratified validation split) and the official validation images (the test
    split) to ``image_size``; ``train_images_per_class`` and ``test_images_per_class`` take a seeded sample
    of each class, to size a run."""
    layout = check_layout(options)
    problems = images.Problems()
    train = images.scan_class_tree(layout.root / "train", layout.classes, problems)
    if layout.val_layout == "class folders":
        test = images.scan_class_tree(layout.root / "val", layout.classes, problems)
    else:
        test = _flat_val(layout, problems)
    train = train[_take_per_class(train.labels, options.get("train_images_per_class"), seed)]
    test = test[_take_per_class(test.labels, options.get("test_images_per_class"), seed + 1)]
    keep, held = prepared.stratified_split(train.labels, options.get("validation_fraction", 0.1), seed)
    to_imagenet = [INDEX[w] for w in layout.classes]
    splits = {"train": train[keep].relabel(to_imagenet), "val": train[held].relabel(to_imagenet),
              "test": test.relabel(to_imagenet)}
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = prepared.write_image_splits(splits, out_dir, options, problems, f"{layout.root} (imagenet)")
    meta = prepared.image_meta(
        "imagenet", layout.classes, options, counts, seed, raw_dir, problems,
        class_names=[NAMES[w] for w in layout.classes], label_indices=to_imagenet, num_outputs=len(WNIDS),
        label_space="ImageNet-1k (Keras' sorted-wnid order)", source_path=str(layout.root.absolute()),
        val_layout=layout.val_layout, val_labels=layout.val_labels,
        **{key: options.get(key, default) for key, default in IMAGENET_DEFAULTS.items() if key != "val_labels"})
    write_json(out_dir / "meta.json", meta)
    return meta
