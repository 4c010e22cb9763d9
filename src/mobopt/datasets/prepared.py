"""The prepared-data contract every dataset writes and every later stage reads.

Prepared data is the same for every dataset: per split ``<split>_x.npy`` (uint8, N x H x W x C) and
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

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mobopt import MobOptError
from mobopt.common.atomic import atomic_path

if TYPE_CHECKING:
    from mobopt.datasets import images

log = logging.getLogger(__name__)

#: Splits every dataset has; a dataset may add evaluation-only splits (``Dataset.extra_splits``).
SPLITS = ("train", "val", "test")
SOURCE_RECORD = "SOURCE.json"
#: Folder under ``data/raw/<dataset>`` an archive is extracted into.
TREE = "tree"


def split_files(split: str) -> tuple[str, str]:
    """File names of a prepared split: images and labels."""
    return f"{split}_x.npy", f"{split}_y.npy"


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


def source_note(message: str, raw_dir: Path, record: dict[str, Any]) -> str:
    """What to add to an error ``message`` about raw files that ``source: path`` copied: the user's originals.

    The files in ``raw_dir`` are the workflow's copies; deleting one, as a
    message about a corrupt download suggests, does not help when the
    original is the broken file.  Names the copies ``message`` mentions (all
    of them when it only mentions ``raw_dir``, e.g. the tree extracted from an
    archive) with their originals, from ``record`` (SOURCE.json); ``""`` when
    there is nothing to add.
    """
    if record.get("source") != "path":
        return ""
    copies = [(str(raw_dir / name), entry["origin"]) for name, entry in record.get("files", {}).items()
              if isinstance(entry, dict) and isinstance(entry.get("origin"), str)]
    named = [(copy, origin) for copy, origin in copies if copy in message] or (copies if str(raw_dir) in message else [])
    if not named:
        return ""
    which = "; ".join(f"{copy} is the workflow's copy of {origin}" for copy, origin in named)
    return f" [{which} (`source: path`): fix or replace that original instead, then rerun: the download rule copies it again]"


@contextlib.contextmanager
def naming_sources(raw_dir: str | Path, record: dict[str, Any] | None = None) -> Iterator[None]:
    """Add the user's original files (:func:`source_note`) to a :class:`MobOptError` raised inside.

    ``record`` defaults to ``raw_dir``'s SOURCE.json, read only if an error occurs.
    """
    try:
        yield
    except MobOptError as exc:
        raw_dir = Path(raw_dir)
        try:
            note = source_note(str(exc), raw_dir, read_source(raw_dir) if record is None else record)
        except (OSError, ValueError, KeyError, TypeError):
            note = ""  # an unreadable record must not hide the error itself
        if note:
            exc.args = (f"{exc}{note}",)
        raise


def image_shape(options: dict[str, Any]) -> tuple[int, int, int]:
    size = int(options.get("image_size", 224))
    return (size, size, 3)


def write_image_splits(splits: dict[str, images.ImageList], out_dir: Path, options: dict[str, Any],
                        problems: images.Problems, label: str) -> dict[str, int]:
    """Decode every split to ``<split>_{x,y}.npy``; on too many bad images remove what was written and fail."""
    from mobopt.datasets import images

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
                max_pixels=options.get("max_image_pixels", images.IMAGE_DEFAULTS["max_image_pixels"]),
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


def image_meta(name: str, classes: tuple[str, ...], options: dict[str, Any], counts: dict[str, int], seed: int,
                raw_dir: Path, problems: images.Problems, **extra: Any) -> dict[str, Any]:
    source = read_source(raw_dir)
    return {
        "dataset": name,
        "classes": list(classes),
        "image_shape": list(image_shape(options)),
        "counts": counts,
        "split_seed": seed,
        "validation_fraction": options.get("validation_fraction", 0.1),
        "crop_fraction": options.get("crop_fraction", 1.0),
        "raw_sha256": {k: v["sha256"] for k, v in source.get("files", {}).items()},
        "problems": problems.as_dict(),
        **extra,
    }

