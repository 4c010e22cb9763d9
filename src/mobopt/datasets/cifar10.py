"""CIFAR-10 (Krizhevsky 2009): 60,000 32x32 colour photos of 10 classes, from the "python version" archive.

``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/`` with five training
batches (``data_batch_1`` .. ``data_batch_5``), ``test_batch`` and
``batches.meta``, each a pickled dict: ``b"data"`` is an N x 3072 uint8 array
(per image the red, green and blue 32x32 planes, row-major) and ``b"labels"``
a list of N class indices; ``batches.meta`` names the classes.

Pinned: the archive's size and the md5 the dataset page publishes (its only
checksum), and its sha256 (the value Keras' own CIFAR-10 loader pins), which
also lets an interrupted download resume safely.

Why not ``pickle.load``: unpickling runs whatever callables the file names,
so a tampered or damaged batch could execute code.  :class:`_BatchUnpickler`
resolves only the three names a pickled uint8 numpy array refers to, each to
a stand-in of ours that checks its arguments; the pixels become an array
through ``np.frombuffer`` alone.  Any other name is refused, naming the file.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.common.atomic import write_json
from mobopt.common.download import RemoteFile, md5sum
from mobopt.datasets import fetch, prepared

log = logging.getLogger(__name__)

URL = "https://www.cs.toronto.edu/~kriz/"
ARCHIVE = RemoteFile("cifar-10-python.tar.gz", 170498071,
                     "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")
#: The md5 the dataset page (https://www.cs.toronto.edu/~kriz/cifar.html) publishes for the archive.
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
#: The class names in label order, as batches.meta lists them.
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SIDE = 32
ROW = 3 * SIDE * SIDE  # one image: three colour planes of 32x32


def image_shape(options: dict[str, Any]) -> tuple[int, int, int]:
    return (SIDE, SIDE, 3)


def download(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch the archive (checked against its size, sha256 and the published md5), extract it safely, check
    that every batch file is there and write SOURCE.json.

    A wrong archive is deleted and the extracted tree only appears complete
    (:func:`mobopt.datasets.archives.safe_extract`); a tree without CIFAR-10's
    files is removed again, so a failed download leaves nothing that looks done.
    """
    from mobopt.datasets import archives

    verify_pins = options.get("verify", True)
    opts = {"mirrors": [URL], **options}
    entry = fetch.fetch_file(ARCHIVE if verify_pins else RemoteFile(ARCHIVE.name), opts, out_dir)
    archive = out_dir / ARCHIVE.name
    tree = out_dir / prepared.TREE
    source = opts.get("source", "url")
    with prepared.naming_sources(out_dir, {"source": source, "files": {ARCHIVE.name: entry}}):
        if verify_pins:
            md5 = md5sum(archive)
            if md5 != MD5:
                archive.unlink(missing_ok=True)  # a wrong file never stays under the final name
                raise MobOptError(f"{archive}: md5 {md5} but the dataset page publishes {MD5} for {ARCHIVE.name}; "
                                  "the file is corrupt or not the CIFAR-10 python archive: download it again")
            entry["md5"] = md5
        extracted = archives.safe_extract(archive, tree, progress=opts.get("progress", True),
                                          **archives.extract_options(opts))
        missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH, META) if not (tree / FOLDER / name).is_file()]
        if missing:
            shutil.rmtree(tree, ignore_errors=True)
            raise MobOptError(f"{archive}: not the CIFAR-10 python archive: {FOLDER}/ lacks {', '.join(missing)}; "
                              f"download {URL}{ARCHIVE.name} again")
    record = {"source": source, "verified_against_pins": verify_pins,
              "pins": "archive size and sha256; the md5 the dataset page publishes",
              "files": {ARCHIVE.name: entry}, "extracted_files": extracted}
    write_json(out_dir / prepared.SOURCE_RECORD, record)
    return record


def prepare(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """The five training batches less a seeded, stratified validation split; ``test_batch`` as the test split.

    Every batch is read and checked before the first array is written, and the
    arrays written are removed again if a later one fails, so a failure leaves
    no split beside an older one.
    """
    folder = raw_dir / prepared.TREE / FOLDER
    classes = read_class_names(folder / META)
    parts = [read_batch(folder / name) for name in TRAIN_BATCHES]
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    del parts
    x_test, y_test = read_batch(folder / TEST_BATCH)
    fraction = options.get("validation_fraction", 0.1)
    keep, held = prepared.stratified_split(y_train, fraction, seed)
    splits = {"train": (x_train[keep], y_train[keep]), "val": (x_train[held], y_train[held]), "test": (x_test, y_test)}
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for split, (x, y) in splits.items():
            written += [out_dir / name for name in prepared.split_files(split)]
            prepared.save_split(out_dir, split, x, y)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    source = prepared.read_source(raw_dir)
    meta = {
        "dataset": "cifar10",
        "classes": list(classes),
        "image_shape": [SIDE, SIDE, 3],
        "counts": {split: int(len(y)) for split, (_, y) in splits.items()},
        "split_seed": seed,
        "validation_fraction": fraction,
        "raw_sha256": {k: v["sha256"] for k, v in source.get("files", {}).items()},
    }
    write_json(out_dir / "meta.json", meta)
    return meta


# --------------------------------------------------------------------------- reading the batches

def _again(path: Path) -> str:
    """What to do about a bad file of the extracted tree: extract the (checked) archive again."""
    tree = path.parent.parent
    return f"remove {tree} and rerun: the download extracts the archive again (download it again if it fails the same way)"


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as images (N x 32 x 32 x 3 uint8, NHWC) and labels (N int64), every field checked."""
    batch = load_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        found = list(batch)[:6] if isinstance(batch, dict) else type(batch).__name__
        raise MobOptError(f"{path}: not a CIFAR-10 batch (expected a dict with b'data' and b'labels', found {found}); "
                          + _again(path))
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != ROW:
        shape = data.shape if isinstance(data, np.ndarray) else type(data).__name__
        raise MobOptError(f"{path}: b'data' has shape {shape}, expected (N, {ROW}): per image 3 colour planes of "
                          f"{SIDE}x{SIDE} bytes; " + _again(path))
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise MobOptError(f"{path}: b'labels' is not a list of integers; " + _again(path))
    if len(labels) != len(data):
        raise MobOptError(f"{path}: {len(data)} images but {len(labels)} labels; " + _again(path))
    y = np.asarray(labels, dtype=np.int64)
    bad = np.flatnonzero((y < 0) | (y >= len(CLASSES)))
    if bad.size:
        raise MobOptError(f"{path}: label {labels[bad[0]]} of image {bad[0]} is out of range 0..{len(CLASSES) - 1} "
                          f"({bad.size} such labels); " + _again(path))
    # row-major planes R, G, B of 32x32: (N, 3, 32, 32), then channels last
    x = np.ascontiguousarray(data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1))
    return x, y


def read_class_names(path: Path) -> tuple[str, ...]:
    """batches.meta's ``label_names``, which must be CIFAR-10's ten classes in their order."""
    meta = load_pickle(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, bytes) for n in names):
        raise MobOptError(f"{path}: no b'label_names' list of names; not CIFAR-10's batches.meta; " + _again(path))
    decoded = tuple(n.decode("latin-1") for n in names)
    if decoded != CLASSES:
        raise MobOptError(f"{path}: the classes are {list(decoded)}, not CIFAR-10's {list(CLASSES)}; "
                          "is this CIFAR-100 or another dataset? " + _again(path))
    return decoded


def load_pickle(path: Path) -> Any:
    """Unpickle a CIFAR-10 file with :class:`_BatchUnpickler`: plain data and uint8 arrays only."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MobOptError(f"{path}: cannot read ({exc.strerror or exc}); " + _again(path)) from exc
    try:
        obj = _BatchUnpickler(io.BytesIO(data)).load()
    except _Refused as exc:
        raise MobOptError(f"{path}: refused to unpickle: {exc}; a CIFAR-10 batch holds only plain data and uint8 "
                          "arrays, so the file is not CIFAR-10's (or was tampered with); " + _again(path)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, OverflowError, RecursionError) as exc:
        raise MobOptError(f"{path}: corrupt or not a pickle ({type(exc).__name__}: {exc}); " + _again(path)) from None
    return _resolve(obj)


def _resolve(obj: Any) -> Any:
    """The unpickled structure with each array stand-in replaced by its array."""
    if isinstance(obj, _Array):
        return obj.value()
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v) for v in obj)
    return obj


class _Refused(Exception):
    """The pickle names something other than the pieces of a uint8 array."""


class _NdarrayType:
    """Stands for ``numpy.ndarray`` (only ever compared with, never called)."""


class _DType:
    """Stands for ``numpy.dtype('u1', 0, 1)``: the one element type a CIFAR-10 array has."""

    def __init__(self, spec: Any, align: Any = 0, copy: Any = 1) -> None:
        if spec not in ("u1", b"u1"):
            raise _Refused(f"an array of element type {spec!r}; CIFAR-10 arrays are uint8 ('u1')")

    def __setstate__(self, state: Any) -> None:
        """Byte order and the rest of a dtype's state mean nothing for single bytes."""


class _Array:
    """What ``numpy.core.multiarray._reconstruct`` would return; its state (``BUILD``) is the array."""

    array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        # ndarray.__reduce__'s state: (version, shape, dtype, is_fortran, raw bytes); version 0 lacks the first
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise pickle.UnpicklingError(f"array state of unexpected form {type(state).__name__}")
        shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DType):
            raise _Refused("an array whose element type is not a plain uint8 dtype")
        if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape) and len(shape) <= 4):
            raise pickle.UnpicklingError(f"array shape {shape!r} is not a tuple of sizes")
        if not isinstance(raw, bytes) or len(raw) != math.prod(shape):
            got = len(raw) if isinstance(raw, bytes) else type(raw).__name__
            raise pickle.UnpicklingError(f"array of shape {shape} has {got} bytes of data, expected {math.prod(shape)}")
        self.array = np.frombuffer(raw, dtype=np.uint8).reshape(shape, order="F" if fortran else "C")

    def value(self) -> np.ndarray:
        if self.array is None:
            raise pickle.UnpicklingError("an array without its data")
        return self.array


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _Array:
    if subtype is not _NdarrayType:
        raise _Refused("an array of a subclass of numpy.ndarray")
    return _Array()


#: The only names a CIFAR-10 pickle may refer to (numpy 1.x writes numpy.core, numpy 2 numpy._core).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy", "dtype"): _DType,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR-10's files: Python 2 strings as bytes (as they were written), and every global
    resolved through :data:`_ALLOWED` or refused."""

    def __init__(self, fh: io.BytesIO) -> None:
        super().__init__(fh, encoding="bytes")

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"it names {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("it refers to a persistent object")
