"""Dataset registry: how each dataset is downloaded and prepared.

Adding a dataset is one :class:`Dataset` entry in :data:`DATASETS` plus its
``download`` and ``prepare`` functions.  Prepared data is the same for every
dataset: per split ``<split>_x.npy`` (uint8, N x H x W x C) and
``<split>_y.npy`` (int64), plus ``meta.json`` (classes, counts, split seed,
checksums of the raw files, problems met).  Plain ``.npy`` rather than
``.npz`` because it can be memory-mapped: ASL Alphabet at 224 px is 13 GB,
more than a training job should hold in RAM.  Models take raw 0..255 pixels
and normalise inside the graph, so TFLite models see exactly what the app
would feed them.

Labels are indices into the model's output.  For a dataset that is a subset
of a larger label space (Imagenette inside ImageNet-1k) ``meta.json`` says so:
``label_indices`` gives the output index of each class and ``num_outputs``
the size of the head, so a 1000-class model is scored through its own head.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mobopt import MobOptError
from mobopt.atomic import atomic_path, write_json
from mobopt.download import RemoteFile, copy_verified, download, verify
from mobopt.idx import read_idx, write_idx

if TYPE_CHECKING:
    from mobopt import images

log = logging.getLogger(__name__)

#: Splits every dataset has; a dataset may add evaluation-only splits (``Dataset.extra_splits``).
SPLITS = ("train", "val", "test")
SOURCE_RECORD = "SOURCE.json"
#: Folder under ``data/raw/<dataset>`` an archive is extracted into.
TREE = "tree"


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

    @property
    def splits(self) -> tuple[str, ...]:
        return (*SPLITS, *self.extra_splits)

    @property
    def eval_splits(self) -> tuple[str, ...]:
        return ("test", *self.extra_splits)


def split_files(split: str) -> tuple[str, str]:
    """File names of a prepared split: images and labels."""
    return f"{split}_x.npy", f"{split}_y.npy"


# --------------------------------------------------------------------------- MNIST

#: Sizes and sha256 of the canonical gzip-compressed IDX files (as the mirrors serve them).
MNIST_FILES = (
    RemoteFile("train-images-idx3-ubyte.gz", 9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    RemoteFile("train-labels-idx1-ubyte.gz", 28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    RemoteFile("t10k-images-idx3-ubyte.gz", 1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    RemoteFile("t10k-labels-idx1-ubyte.gz", 4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
)


def fetch_file(remote: RemoteFile, options: dict[str, Any], out_dir: Path, *, kaggle_slug: str | None = None
               ) -> dict[str, Any]:
    """Bring one raw file into ``out_dir`` from the configured source; return what was recorded about it.

    ``source: url`` downloads from ``mirrors`` in order; ``source: path``
    copies a local file (``path`` is the file itself or the folder holding it:
    a manual download, a shared cache); ``source: kaggle`` runs the official
    kaggle CLI for ``kaggle_slug``.  The file only appears under its final
    name once its size and sha256 match the pins (pins of ``remote``; none for
    a stand-in dataset checked with ``verify: false``).
    """
    source = options.get("source", "kaggle" if kaggle_slug else "url")
    dest = out_dir / remote.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if source == "url":
        digest = download(
            remote, list(options.get("mirrors", [])), dest,
            retries=options.get("retries", 4), backoff=options.get("backoff", 1.0),
            timeout=options.get("timeout", 60.0), progress=options.get("progress", True),
        )
        origin: Any = options.get("mirrors")
    elif source == "path":
        if not options.get("path"):
            raise MobOptError("config key `path` is empty but `source: path` needs the folder holding the files")
        src = Path(options["path"]).expanduser()
        if not src.is_file():
            src = src / remote.name
        if not src.is_file():
            raise MobOptError(f"{src}: not found; `source: path` expects {remote.name} (or the folder holding it)")
        digest = copy_verified(src, dest, remote)
        origin = str(src)
    elif source == "kaggle" and kaggle_slug:
        from mobopt import kaggle

        with atomic_path(dest) as tmp:
            kaggle.download_dataset(kaggle_slug, tmp, cli=options.get("kaggle_cli", "kaggle"))
            digest = verify(tmp, remote, label=f"{remote.name} from Kaggle {kaggle_slug}")
        origin = f"kaggle:{kaggle_slug}"
    else:
        raise MobOptError(f"config key `source`: unknown source {source!r} for {remote.name}")
    log.info("%s ok (sha256 %s)", remote.name, digest)
    return {"sha256": digest, "bytes": dest.stat().st_size, "origin": origin,
            "pinned_sha256": remote.sha256 is not None}


def fetch_files(files: tuple[RemoteFile, ...], options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch ``files`` (each checked against its pins unless ``verify: false``) and write SOURCE.json."""
    verify_pins = options.get("verify", True)
    record: dict[str, Any] = {"source": options.get("source", "url"), "verified_against_pins": verify_pins, "files": {}}
    for remote in files:
        pinned = remote if verify_pins else RemoteFile(remote.name)
        record["files"][remote.name] = fetch_file(pinned, options, out_dir)
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


def save_split(out_dir: Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    """Write one split atomically (for datasets small enough to hold in memory; images stream instead)."""
    x_name, y_name = split_files(split)
    if len(x) == 0:
        raise MobOptError(f"{Path(out_dir) / x_name}: the split would be empty; check the dataset and split fractions")
    for name, arr in ((x_name, x), (y_name, np.asarray(y, dtype=np.int64))):
        with atomic_path(Path(out_dir) / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr)


def load_split(prepared_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images memory-mapped read-only (they may not fit in RAM), labels in memory."""
    x_name, y_name = split_files(split)
    path = Path(prepared_dir) / x_name
    try:
        x = np.load(path, mmap_mode="r")
        path = Path(prepared_dir) / y_name
        y = np.load(path)
    except (OSError, ValueError) as exc:
        raise MobOptError(f"{path}: cannot load prepared split ({exc}); rerun the prepare rule") from exc
    if len(x) != len(y):
        raise MobOptError(f"{prepared_dir}: split {split} has {len(x)} images but {len(y)} labels; rerun the prepare rule")
    return x, y


def load_meta(prepared_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(prepared_dir) / "meta.json").read_text())


def num_outputs(meta: dict[str, Any]) -> int:
    """Size of the classifier head the dataset's labels index into."""
    return int(meta.get("num_outputs", len(meta["classes"])))


def read_source(raw_dir: Path) -> dict[str, Any]:
    path = raw_dir / SOURCE_RECORD
    return json.loads(path.read_text()) if path.exists() else {}


def prepare_mnist(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Parse the IDX files, hold out a seeded stratified validation split, write npz + meta."""
    spec = DATASETS["mnist"]
    n = len(spec.classes)
    x_train, y_train = _read_pair(raw_dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", n)
    x_test, y_test = _read_pair(raw_dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", n)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise MobOptError(f"{raw_dir}: train images are {x_train.shape[1:3]} but test images {x_test.shape[1:3]}")
    keep, held = stratified_split(y_train, options.get("validation_fraction", 0.1), seed)
    source = read_source(raw_dir)
    splits = {"train": (x_train[keep], y_train[keep]), "val": (x_train[held], y_train[held]), "test": (x_test, y_test)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in splits.items():
        save_split(out_dir, name, x, y)
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


# ------------------------------------------------------------------ image datasets

def _image_shape(options: dict[str, Any]) -> tuple[int, int, int]:
    size = int(options.get("image_size", 224))
    return (size, size, 3)


def _write_image_splits(splits: dict[str, images.ImageList], out_dir: Path, options: dict[str, Any],
                        problems: images.Problems, label: str) -> dict[str, int]:
    """Decode every split to ``<split>_{x,y}.npy``; on too many bad images remove what was written and fail."""
    from mobopt import images

    size = int(options.get("image_size", 224))
    total = sum(len(items) for items in splits.values())
    written: list[Path] = []
    counts = {}
    try:
        for split, items in splits.items():
            out_x, out_y = (out_dir / name for name in split_files(split))
            log.info("%s: decoding %d images to %dx%d", split, len(items), size, size)
            counts[split] = images.write_split(
                items, size, out_x, out_y, crop_fraction=options.get("crop_fraction", 1.0),
                workers=options.get("workers", 2), problems=problems, progress=options.get("progress", True),
                max_bad_fraction=options.get("max_bad_fraction", 0.001), label=label,
            )
            written += [out_x, out_y]
            if counts[split] == 0:
                raise MobOptError(f"{label}: split {split} has no readable images")
        images.check_problems(problems, total, options.get("max_bad_fraction", 0.001), label)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return counts


def _image_meta(name: str, classes: tuple[str, ...], options: dict[str, Any], counts: dict[str, int], seed: int,
                raw_dir: Path, problems: images.Problems, **extra: Any) -> dict[str, Any]:
    source = read_source(raw_dir)
    return {
        "dataset": name,
        "classes": list(classes),
        "image_shape": list(_image_shape(options)),
        "counts": counts,
        "split_seed": seed,
        "validation_fraction": options.get("validation_fraction", 0.1),
        "crop_fraction": options.get("crop_fraction", 1.0),
        "raw_sha256": {k: v["sha256"] for k, v in source.get("files", {}).items()},
        "problems": problems.as_dict(),
        **extra,
    }


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
    from mobopt import images

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


def download_asl_alphabet(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch the zip (Kaggle CLI, a mirror or a local copy), record its sha256, extract safely, check the layout."""
    from mobopt import archives

    remote = RemoteFile(ASL_ZIP, None, options.get("sha256"))
    entry = fetch_file(remote, options, out_dir, kaggle_slug=options.get("kaggle_dataset", ASL_SLUG))
    if remote.sha256 is None:
        log.warning("%s: sha256 %s (not pinned; set datasets.asl_alphabet.sha256 to enforce it)", ASL_ZIP, entry["sha256"])
    tree = out_dir / TREE
    extracted = archives.safe_extract(out_dir / ASL_ZIP, tree, progress=options.get("progress", True))
    record = {"source": options.get("source", "kaggle"), "files": {ASL_ZIP: entry}, "extracted_files": extracted,
              "layout": check_asl_layout(tree, strict=options.get("verify", True))}
    write_json(out_dir / SOURCE_RECORD, record)
    return record


def _asl_official_test(folder: Path, problems: images.Problems) -> images.ImageList:
    """The official test images, ``<CLASS>_test.jpg``, labelled by their name."""
    from mobopt import images

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


def prepare_asl_alphabet(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Seeded stratified train/val/test split of the 87,000 training photos; the official test folder apart.

    The official folder has 28 images (one per class, none for `del`): far too
    few to rank variants, so it is scored separately (split ``official_test``)
    and the main test split is held out from the training folder.
    """
    from mobopt import images

    tree = raw_dir / TREE
    problems = images.Problems()
    items = images.scan_class_tree(tree / ASL_TRAIN_DIR, ASL_CLASSES, problems)
    labels = items.labels
    test_fraction = options.get("test_fraction", 0.1)
    val_fraction = options.get("validation_fraction", 0.1)
    if test_fraction + val_fraction >= 1:
        raise MobOptError("datasets.asl_alphabet: validation_fraction + test_fraction must stay below 1")
    pool, test = stratified_split(labels, test_fraction, seed)
    keep, held = stratified_split(labels[pool], val_fraction / (1 - test_fraction), seed + 1)
    splits = {
        "train": items[pool[keep]],
        "val": items[pool[held]],
        "test": items[test],
        "official_test": _asl_official_test(tree / ASL_TEST_DIR, problems),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = _write_image_splits(splits, out_dir, options, problems, f"{tree} (asl_alphabet)")
    meta = _image_meta("asl_alphabet", ASL_CLASSES, options, counts, seed, raw_dir, problems,
                       test_fraction=test_fraction)
    write_json(out_dir / "meta.json", meta)
    return meta


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


def download_imagenet_subset(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch the pinned Imagenette archive, extract it safely and check its layout."""
    from mobopt import archives

    archive = imagenette_archive(options)
    verify_pins = options.get("verify", True)
    opts = {"mirrors": [IMAGENETTE_URL], **options}
    entry = fetch_file(archive if verify_pins else RemoteFile(archive.name), opts, out_dir)
    tree = out_dir / TREE
    extracted = archives.safe_extract(out_dir / archive.name, tree, progress=options.get("progress", True))
    root = _imagenette_root(tree, archive)
    missing = [f"{split}/{wnid}" for split in ("train", "val") for wnid in IMAGENETTE_WNIDS
               if not (root / split / wnid).is_dir()]
    if missing:
        raise MobOptError(f"{root}: not the Imagenette layout, missing {', '.join(missing[:5])}"
                          f"{' ...' if len(missing) > 5 else ''}")
    record = {"source": options.get("source", "url"), "verified_against_pins": verify_pins,
              "files": {archive.name: entry}, "extracted_files": extracted}
    write_json(out_dir / SOURCE_RECORD, record)
    return record


def prepare_imagenet_subset(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """Test split: Imagenette's val folder, by default only its ILSVRC2012_val_* images (ImageNet's own
    validation images; the others are ImageNet training images a pretrained model has seen).  Everything
    else is the training pool (calibration images for int8), with a seeded stratified validation split.
    Labels are ImageNet-1k indices, so the 1000-class head is scored as it is."""
    from mobopt import images

    archive = imagenette_archive(options)
    root = _imagenette_root(raw_dir / TREE, archive)
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
    keep, held = stratified_split(pool.labels, options.get("validation_fraction", 0.1), seed)
    splits = {"train": pool[keep].relabel(to_imagenet), "val": pool[held].relabel(to_imagenet),
              "test": test.relabel(to_imagenet)}
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = _write_image_splits(splits, out_dir, options, problems, f"{root} (imagenet_subset)")
    meta = _image_meta("imagenet_subset", IMAGENETTE_WNIDS, options, counts, seed, raw_dir, problems,
                       class_names=[IMAGENETTE_CLASSES[w][1] for w in IMAGENETTE_WNIDS], label_indices=to_imagenet,
                       num_outputs=1000, label_space="ImageNet-1k (Keras' sorted-wnid order)",
                       ilsvrc_val_only=only_val, archive=archive.name)
    write_json(out_dir / "meta.json", meta)
    return meta


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        description="MNIST handwritten digits, 28x28 grey, 60k train / 10k test (IDX files)",
        classes=tuple(str(i) for i in range(10)),
        image_shape=lambda options: (28, 28, 1),
        raw_files=lambda options: [f.name for f in MNIST_FILES],
        download=download_mnist,
        prepare=prepare_mnist,
    ),
    "asl_alphabet": Dataset(
        name="asl_alphabet",
        description="ASL Alphabet (Kaggle grassknoted/asl-alphabet): 29 hand signs, 87,000 200x200 RGB photos",
        classes=ASL_CLASSES,
        image_shape=_image_shape,
        raw_files=lambda options: [ASL_ZIP],
        download=download_asl_alphabet,
        prepare=prepare_asl_alphabet,
        extracted=True,
        extra_splits=("official_test",),
    ),
    "imagenet_subset": Dataset(
        name="imagenet_subset",
        description="Imagenette (fast.ai): 10 ImageNet classes, scored through ImageNet-1k's 1000-class head",
        classes=IMAGENETTE_WNIDS,
        image_shape=_image_shape,
        raw_files=lambda options: [imagenette_archive(options).name],
        download=download_imagenet_subset,
        prepare=prepare_imagenet_subset,
        extracted=True,
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
