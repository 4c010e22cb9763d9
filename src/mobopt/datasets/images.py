"""Image folder trees (one sub-folder per class) to fixed-size uint8 ``.npy`` arrays, streaming.

Why this module exists: the image datasets (ASL Alphabet, 87,000 JPEGs;
Imagenette) are far too big to decode into a Python list and ``np.savez`` at
the end, as the IDX datasets are.  At 224 x 224 x 3 the ASL training set is
13 GB of pixels, so the arrays are streamed to disk as they are decoded and
the parent's memory stays bounded whatever the dataset size:

* decoding and resizing run in worker processes, started by ``forkserver``:
  safe even when the parent holds threads (tqdm's monitor, a BLAS pool), at
  the cost of one server start per process (~0.5 s CPU) and the usual rule
  that the main script guards its code with ``if __name__ == "__main__"``.
  Workers decode into slots of a shared-memory buffer, so pixels are never
  pickled through a pipe.  A bounded window of chunks is in flight,
  consumed in submission order: output order is input order, identical for
  any worker count, and a slow disk makes the workers wait instead of piling
  decoded images up in the parent (``Pool.imap`` has no such back-pressure);
* the parent writes each chunk's bytes with plain sequential file writes
  behind a ``.npy`` header of fixed length, then rewrites the header in place
  with the real count (bad images are skipped).  Not ``np.memmap``: pages of
  a mapped file count in the writer's RSS, pages written with ``write`` only
  in the page cache.  ``np.load(path, mmap_mode="r")`` reads the result;
* outputs are written under temporary names and renamed when complete
  (:func:`mobopt.common.atomic.atomic_path`), so an interrupted run leaves nothing
  under the final names.

Bad files are data, not crashes: zero-byte, truncated or undecodable images
are skipped and counted in :class:`Problems`, and :func:`check_problems` fails
the run only when they exceed the configured ``max_bad_fraction``.  So are
images too big to decode safely, before their cost is paid: a file larger
than ``max_bytes`` is not read into memory, and an image that would decode to
more than ``max_pixels`` pixels (``max_image_pixels`` in the config; after a
JPEG's reduced-scale ``draft``, so a big photo that shrinks cheaply still
passes) is not decoded.  PIL's own guard (``Image.MAX_IMAGE_PIXELS``) is
process-wide and only warns below twice its value; this one is per call, so
workers get it as an argument and a test can lower it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import struct
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from mobopt import MobOptError
from mobopt.common.atomic import atomic_path

log = logging.getLogger(__name__)

#: File name suffixes taken as images (compared lower-cased).
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}

#: Kinds of problem :class:`Problems` counts; ``unreadable`` and ``empty`` are the bad images.
PROBLEM_KINDS = ("unreadable", "empty", "converted", "unexpected_folders", "unexpected_files")
MAX_EXAMPLES = 20

#: Decoding limits with their config keys ($defs.images in the schema; a test checks they agree).
#: 89,478,485 pixels is PIL's own threshold (``Image.MAX_IMAGE_PIXELS``, ~0.25 GiB as 24-bit RGB).
IMAGE_DEFAULTS: dict[str, Any] = {"max_image_pixels": 89_478_485}
#: Image files above this size are not read (no photo of a dataset comes near; archives.py caps members the same).
MAX_IMAGE_BYTES = 256 << 20

# What PIL raises for files it cannot decode: not-an-image (UnidentifiedImageError
# is an OSError), truncated data ("image file is truncated" is an OSError), and
# malformed headers in various plugins.  Reading the bytes happens before, outside
# this net, so a vanished file or a full disk is never mistaken for a bad image.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, Image.DecompressionBombError)


# --------------------------------------------------------------------------- problems

@dataclass
class Problems:
    """Counts of what went wrong (or was odd) while scanning and decoding, with example paths.

    ``converted`` images are kept (their pixels converted to RGB); ``unreadable``
    and ``empty`` ones are skipped; ``unexpected_folders``/``unexpected_files`` are
    what a class folder tree held besides class folders and images.
    """

    unreadable: int = 0
    empty: int = 0
    converted: int = 0
    unexpected_folders: int = 0
    unexpected_files: int = 0
    examples: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in PROBLEM_KINDS})

    def add(self, kind: str, example: str, count: int = 1) -> None:
        if kind not in PROBLEM_KINDS:
            raise ValueError(f"unknown problem kind {kind!r}")
        setattr(self, kind, getattr(self, kind) + count)
        if len(self.examples[kind]) < MAX_EXAMPLES:
            self.examples[kind].append(example)

    def merge(self, other: Problems) -> None:
        for kind in PROBLEM_KINDS:
            setattr(self, kind, getattr(self, kind) + getattr(other, kind))
            room = MAX_EXAMPLES - len(self.examples[kind])
            self.examples[kind].extend(other.examples[kind][:max(room, 0)])

    @property
    def bad(self) -> int:
        """Images that were skipped: unreadable plus empty."""
        return self.unreadable + self.empty

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {kind: {"count": getattr(self, kind), "examples": list(self.examples[kind])} for kind in PROBLEM_KINDS}


def check_problems(problems: Problems, total: int, max_bad_fraction: float, label: str) -> None:
    """Raise :class:`MobOptError` when more than ``max_bad_fraction`` of ``total`` images were bad."""
    bad = problems.bad
    if bad == 0 or bad <= max_bad_fraction * total:
        return
    examples = (problems.examples["unreadable"] + problems.examples["empty"])[:5]
    raise MobOptError(
        f"{label}: {bad} of {total} images are bad ({bad / max(total, 1):.2%}: {problems.unreadable} unreadable, "
        f"{problems.empty} empty), more than max_bad_fraction = {max_bad_fraction:g}; e.g. {', '.join(examples)}. "
        "Download/extract the dataset again or remove those files, or raise the config key `max_bad_fraction`"
    )


# --------------------------------------------------------------------------- scanning

class ImageList(Sequence):
    """``(path, label)`` pairs of an image dataset, stored in a few numpy arrays.

    Why not a list of tuples: each ``(Path, int)`` costs ~400 bytes of Python
    objects, 35 MB for ASL Alphabet's 87,000 photos and growing with every
    image, while the prepare step promises memory that does not depend on the
    dataset size.  Here an image costs its path relative to one of a few base
    folders (a fixed-width byte string, ~15 bytes for ``A/A123.jpg``), one
    byte for the base and eight for the label.  Indexing with an int gives a
    ``(Path, int)`` pair; with a slice, an index array or a boolean mask, an
    :class:`ImageList` of those items (for splits), so the whole flow from
    scan to :func:`write_split` stays compact.
    """

    def __init__(self, bases: Sequence[str | os.PathLike], base_index: np.ndarray, relative: np.ndarray,
                 labels: np.ndarray):
        self.bases = tuple(str(b) for b in bases)
        self.base_index = np.asarray(base_index, dtype=np.uint8)
        self.relative = np.asarray(relative, dtype=np.bytes_)
        self.labels = np.asarray(labels, dtype=np.int64)
        if not len(self.base_index) == len(self.relative) == len(self.labels):
            raise ValueError("ImageList arrays differ in length")
        if len(self.bases) > 255:
            raise ValueError("ImageList supports at most 255 base folders")

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str | os.PathLike, int]]) -> ImageList:
        """From explicit ``(path, label)`` pairs: each path relative to its own folder."""
        folders = [str(Path(p).parent) for p, _ in pairs]
        bases = sorted(set(folders))
        index = {b: i for i, b in enumerate(bases)}
        return cls(bases, np.array([index[f] for f in folders], dtype=np.uint8),
                   np.array([os.fsencode(Path(p).name) for p, _ in pairs], dtype=np.bytes_),
                   np.array([int(y) for _, y in pairs], dtype=np.int64))

    @classmethod
    def concat(cls, *lists: ImageList) -> ImageList:
        bases = sorted({b for lst in lists for b in lst.bases})
        index = {b: i for i, b in enumerate(bases)}
        remap = [np.array([index[b] for b in lst.bases], dtype=np.uint8) for lst in lists]
        return cls(bases, np.concatenate([m[lst.base_index] for m, lst in zip(remap, lists, strict=True)]),
                   np.concatenate([lst.relative for lst in lists]), np.concatenate([lst.labels for lst in lists]))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            rel = os.fsdecode(self.relative[key])  # raises IndexError past the end, which ends iteration
            return Path(self.bases[self.base_index[key]]) / rel, int(self.labels[key])
        return ImageList(self.bases, self.base_index[key], self.relative[key], self.labels[key])

    def names(self) -> np.ndarray:
        """File names (no folders), as bytes."""
        return np.array([r.rsplit(b"/", 1)[-1] for r in self.relative], dtype=np.bytes_)

    def relabel(self, mapping: Sequence[int]) -> ImageList:
        """The same images with label ``y`` replaced by ``mapping[y]``."""
        return ImageList(self.bases, self.base_index, self.relative, np.asarray(mapping, dtype=np.int64)[self.labels])

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # mutable arrays inside

    def __repr__(self) -> str:
        return f"ImageList({len(self)} images under {', '.join(self.bases) or 'nothing'})"


def scan_class_tree(root: Path, classes: Sequence[str], problems: Problems) -> ImageList:
    """Every image in ``root/<class>/``, label = index in ``classes``, as a compact :class:`ImageList`.

    Sorted by (label, file name) so the order, and everything derived from it
    (splits, output arrays), does not depend on the file system's listing
    order.  Folders that are not classes and files that are not images are
    counted in ``problems`` and otherwise ignored; sub-folders of class folders
    are not descended into.  A class folder that is missing or holds no image
    is an error: the class list and the data disagree.
    """
    root = Path(root)
    if not root.is_dir():
        raise MobOptError(f"{root}: dataset folder not found; download and extract the dataset first")
    labels = {name: i for i, name in enumerate(classes)}
    if len(labels) != len(classes):
        twice = sorted({c for c in classes if list(classes).count(c) > 1})
        raise MobOptError(f"{root}: the class list names {twice} more than once; fix the dataset's class list")
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.is_dir():
            if entry.name not in labels:
                problems.add("unexpected_folders", f"{entry.path} ({_count_files(entry.path)} files)")
        else:
            problems.add("unexpected_files", entry.path)
    relative: list[np.ndarray] = []
    counts: list[int] = []
    for name in labels:
        folder = root / name
        if not folder.is_dir():
            raise MobOptError(f"{folder}: class folder missing; expected one folder per class ({len(classes)} classes) "
                              f"in {root}; check the extraction or the dataset's class list")
        names = []
        with os.scandir(folder) as it:
            for entry in sorted(it, key=lambda e: e.name):
                if entry.is_dir():
                    problems.add("unexpected_folders", f"{entry.path} ({_count_files(entry.path)} files)")
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                    names.append(os.fsencode(f"{name}/{entry.name}"))
                else:
                    problems.add("unexpected_files", entry.path)
        if not names:
            raise MobOptError(f"{folder}: class folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                              "check the extraction or remove the class from the dataset's class list")
        relative.append(np.array(names, dtype=np.bytes_))  # one class at a time: no list of all paths
        counts.append(len(names))
    rel = np.concatenate(relative) if relative else np.array([], dtype=np.bytes_)
    return ImageList([root], np.zeros(len(rel), np.uint8), rel, np.repeat(np.arange(len(counts)), counts))


def _count_files(folder: str) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


# --------------------------------------------------------------------------- decoding

class BadImage(MobOptError):
    """A file that cannot be used as an image: ``kind`` is ``"empty"`` or ``"unreadable"``."""

    def __init__(self, path: str | os.PathLike, kind: str, detail: str):
        super().__init__(f"{path}: {kind} image ({detail})")
        self.path, self.kind, self.detail = str(path), kind, detail

    def __reduce__(self):  # keep it picklable across processes despite the custom __init__
        return (BadImage, (self.path, self.kind, self.detail))


class Decoded(NamedTuple):
    """What :func:`load_image` returns: the pixels and the file's own colour mode."""

    pixels: np.ndarray  # size x size x 3, uint8
    mode: str  # PIL mode of the file as stored ("RGB", "L", "CMYK", "P", "RGBA", "I;16", ...)

    @property
    def converted(self) -> bool:
        """True when the pixels were converted to RGB from another mode (counted as ``converted``)."""
        return self.mode != "RGB"


def load_image(path: str | os.PathLike, size: int, crop_fraction: float = 1.0, *,
               max_pixels: int = IMAGE_DEFAULTS["max_image_pixels"], max_bytes: int = MAX_IMAGE_BYTES) -> Decoded:
    """Decode ``path`` to ``size`` x ``size`` x 3 uint8: shorter side to ``size / crop_fraction``, centre crop.

    ``crop_fraction`` 1.0 on a square image is a plain resize; 0.875 is the
    usual ImageNet evaluation transform (shorter side 256, centre 224).  The
    resize is bilinear with antialiasing (PIL's), applied to the crop box of
    the source directly, which equals resize-then-crop up to sub-pixel
    centring and does not spend time on pixels that are cropped away.  JPEGs
    that shrink by 2x or more are decoded at a reduced DCT scale first
    (``draft``), never below the size the resize needs.  Other modes (grey,
    palette, CMYK, alpha, 16-bit) are converted to RGB; alpha is dropped, as
    ``PIL``-based loaders commonly do, and 16-bit values are scaled to 8 bits.

    Raises :class:`BadImage` for zero-byte and undecodable (including
    truncated) files and for those over ``max_bytes`` or ``max_pixels``
    (module docstring), and :class:`MobOptError` when the file cannot be read.
    """
    img, mode = _decode(Path(path), size, crop_fraction, max_pixels, max_bytes)
    return Decoded(np.asarray(img), mode)


def _decode(path: Path, size: int, crop_fraction: float, max_pixels: int, max_bytes: int) -> tuple[Image.Image, str]:
    try:
        file_bytes = path.stat().st_size
        if file_bytes > max_bytes:
            raise BadImage(path, "unreadable", f"{file_bytes} bytes, more than {max_bytes}: not read")
        data = path.read_bytes()
    except OSError as exc:
        raise MobOptError(f"{path}: cannot read ({exc.strerror or exc}); did the dataset folder change while "
                          "preparing? Check it and rerun") from exc
    if not data:
        raise BadImage(path, "empty", "zero-byte file")
    target = round(size / crop_fraction)  # shorter side before the crop
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            w, h = img.size
            if img.format == "JPEG" and min(w, h) >= 2 * target:
                scale = target / min(w, h)
                img.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))  # picks a DCT scale >= this size
            if img.size[0] * img.size[1] > max_pixels:  # checked before load(): the pixels are never allocated
                raise BadImage(path, "unreadable", f"{w}x{h} would decode to {img.size[0] * img.size[1]} pixels, more "
                               f"than max_image_pixels = {max_pixels}")
            img.load()  # inside the try: a truncated file fails here, not at open
            rgb = _to_rgb(img)
            w, h = rgb.size
            side = size * min(w, h) / target  # the crop's side in source pixels
            box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
            out = rgb.resize((size, size), Image.Resampling.BILINEAR, box=box)
    except _DECODE_ERRORS as exc:
        raise BadImage(path, "unreadable", f"{type(exc).__name__}: {exc}") from None
    return out, mode


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode == "I" or img.mode.startswith("I;16"):
        # 16-bit grey (PNG/TIFF): PIL's convert would clip at 255 and turn most pixels white.
        grey = np.clip(np.asarray(img).astype(np.int64) >> 8, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if img.mode == "F":
        return Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # PIL wants palette transparency resolved through RGBA
    return img.convert("RGB")


# --------------------------------------------------------------------------- writing

class _NpyStream:
    """Append rows to a ``.npy`` file whose header (of fixed length) is rewritten with the real count at the end."""

    def __init__(self, path: Path, descr: str, row_shape: tuple[int, ...], planned: int):
        self.path, self.descr, self.row_shape = path, descr, row_shape
        self.row_bytes = int(np.dtype(descr).itemsize * math.prod(row_shape))
        self.header_len = len(self._header(planned, None))
        self.count = 0
        self.fh = open(path, "wb")  # closed by __exit__
        self.fh.write(self._header(planned, self.header_len))

    def _header(self, count: int, total_len: int | None) -> bytes:
        """npy format 1.0: magic, version, uint16 header length, dict padded with spaces, "\\n"; total % 64 == 0."""
        text = f"{{'descr': '{self.descr}', 'fortran_order': False, 'shape': {(count, *self.row_shape)!r}, }}"
        if total_len is None:
            total_len = -(-(10 + len(text) + 1) // 64) * 64
        body = text.ljust(total_len - 10 - 1) + "\n"
        if 10 + len(body) != total_len:
            raise ValueError(f"npy header for shape {(count, *self.row_shape)} does not fit in {total_len} bytes")
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1")

    def write(self, data: bytes, rows: int) -> None:
        if len(data) != rows * self.row_bytes:
            raise AssertionError(f"{self.path}: {len(data)} bytes for {rows} rows of {self.row_bytes}")
        self.fh.write(data)
        self.count += rows

    def finish(self) -> None:
        self.fh.seek(0)
        self.fh.write(self._header(self.count, self.header_len))
        self.fh.truncate(self.header_len + self.count * self.row_bytes)
        self.fh.close()

    def __enter__(self) -> _NpyStream:
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def write_split(
    items: Sequence[tuple[Path, int]],
    size: int,
    out_x: Path,
    out_y: Path,
    *,
    crop_fraction: float = 1.0,
    workers: int = 2,
    chunksize: int = 64,
    problems: Problems,
    progress: bool = True,
    max_bad_fraction: float | None = None,
    label: str | None = None,
    max_pixels: int = IMAGE_DEFAULTS["max_image_pixels"],
    max_bytes: int = MAX_IMAGE_BYTES,
) -> int:
    """Decode ``items`` to ``out_x`` (uint8, n x size x size x 3) and ``out_y`` (int64, n), both ``.npy``.

    Output order is ``items`` order minus the bad images, which are skipped and
    counted in ``problems`` (as are images converted to RGB).  ``workers`` > 1
    decodes in that many processes, ``chunksize`` images per task; 1 decodes
    in this process (easier to debug), with identical output.  Existing files
    under the final names are removed first, and the new ones only appear
    when complete, so after a failure neither exists.  With
    ``max_bad_fraction`` the run stops (and writes nothing) as soon as the bad
    images exceed that fraction of ``items`` (see :func:`check_problems`;
    ``label`` names the data in the message, default ``out_x``).  Returns the
    number of images written.  ``max_pixels`` and ``max_bytes`` bound each
    image (:func:`load_image`); one over them counts as unreadable.
    """
    out_x, out_y = Path(out_x), Path(out_y)
    label = label or str(out_x)
    if not items:
        raise MobOptError(f"{label}: no images to write; check the dataset folder and split settings")
    if size < 1:
        raise MobOptError(f"image size must be >= 1, got {size}; check the config key `image_size`")
    if not 0.0 < crop_fraction <= 1.0:
        raise MobOptError(f"crop_fraction must be in (0, 1], got {crop_fraction}; check the config key `crop_fraction`")
    if workers < 1 or chunksize < 1:
        raise MobOptError(f"workers and chunksize must be >= 1, got {workers} and {chunksize}")
    for path in (out_x, out_y):
        path.unlink(missing_ok=True)  # never leave an old array next to a new one of the other kind
        for stale in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
            stale.unlink(missing_ok=True)  # atomic_path's temporary from a killed run (no cleanup runs on SIGKILL)

    from tqdm.auto import tqdm

    local = Problems()
    try:
        with (atomic_path(out_x) as tmp_x, atomic_path(out_y) as tmp_y,  # y is renamed first, x last
              _NpyStream(tmp_x, "|u1", (size, size, 3), len(items)) as xs, _NpyStream(tmp_y, "<i8", (), len(items)) as ys,
              contextlib.closing(_decoded_chunks(items, chunksize, size, crop_fraction, workers, (max_pixels, max_bytes)))
              as results,
              tqdm(total=len(items), unit="img", desc=out_x.name, disable=not progress, mininterval=1.0) as bar):
            for start, (blob, statuses) in zip(range(0, len(items), chunksize), results, strict=True):
                chunk = items[start:start + chunksize]
                kept = []
                for (path, y), (kind, detail) in zip(chunk, statuses, strict=True):
                    if kind == "ok":
                        kept.append(y)
                        if detail != "RGB":
                            local.add("converted", f"{path} ({detail})")
                    else:
                        local.add(kind, f"{path} ({detail})")
                xs.write(blob, len(kept))
                ys.write(np.asarray(kept, dtype="<i8").tobytes(), len(kept))
                bar.update(len(chunk))
                if max_bad_fraction is not None:
                    check_problems(local, len(items), max_bad_fraction, label)
            if xs.count == 0:
                raise MobOptError(f"{label}: none of the {len(items)} images could be decoded; "
                                  f"e.g. {', '.join(local.examples['unreadable'][:3] + local.examples['empty'][:3])}")
            xs.finish()
            ys.finish()
    finally:
        problems.merge(local)
    log.info("%s: %d images written (%d unreadable, %d empty, %d converted to RGB)",
             out_x, xs.count, local.unreadable, local.empty, local.converted)
    return xs.count


_Statuses = list[tuple[str, str]]

#: Shared-memory buffer of a worker process: each task decodes into its own slot of it.
_worker_slots: shared_memory.SharedMemory | None = None


def _decode_into(buf: memoryview, offset: int, paths: list[str], size: int, crop_fraction: float,
                 limits: tuple[int, int]) -> _Statuses:
    """Decode ``paths`` into ``buf`` from ``offset`` on, good images back to back; per path ("ok", mode) or (bad kind, detail).

    ``limits``: (max_pixels, max_bytes) of :func:`load_image`.
    """
    frame = size * size * 3
    statuses = []
    for p in paths:
        try:
            img, mode = _decode(Path(p), size, crop_fraction, *limits)
        except BadImage as exc:
            statuses.append((exc.kind, exc.detail))
            continue
        buf[offset:offset + frame] = img.tobytes()
        offset += frame
        statuses.append(("ok", mode))
    return statuses


def _init_worker(name: str) -> None:
    """Attach the shared slots; exit when the parent dies (a SIGKILLed parent would otherwise leave idle orphans)."""
    global _worker_slots
    _worker_slots = shared_memory.SharedMemory(name=name)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _decode_into_slot(offset: int, paths: list[str], size: int, crop_fraction: float,
                      limits: tuple[int, int]) -> _Statuses:
    return _decode_into(_worker_slots.buf, offset, paths, size, crop_fraction, limits)


def _decoded_chunks(items: Sequence[tuple[Path, int]], chunksize: int, size: int, crop_fraction: float,
                    workers: int, limits: tuple[int, int]) -> Iterator[tuple[memoryview, _Statuses]]:
    """Per chunk of ``chunksize`` items, in order: the good images' pixels (valid until the next one) and the statuses.

    Workers decode into slots of one shared-memory buffer and return only the
    statuses: the pixels cross no pipe and are never pickled, which saves
    about a fifth of the CPU time per image at 224 x 224 on two cores.  There
    are ``2 * workers`` slots, one per chunk in flight; a slot is reused by
    the next chunk submitted after the parent has written it.
    """
    frame = size * size * 3
    chunk_bytes = frame * min(chunksize, len(items))
    tasks = ([str(p) for p, _ in items[i:i + chunksize]] for i in range(0, len(items), chunksize))
    if workers == 1:
        buf = memoryview(bytearray(chunk_bytes))
        for paths in tasks:
            statuses = _decode_into(buf, 0, paths, size, crop_fraction, limits)
            yield from _released(buf, 0, frame, statuses)
        return
    window = 2 * workers
    _check_shm_room(window * chunk_bytes)
    shm = shared_memory.SharedMemory(create=True, size=window * chunk_bytes)
    try:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=worker_context(),
                                   initializer=_init_worker, initargs=(shm.name,))
        pending: deque[tuple[int, Future]] = deque()
        try:
            for i, paths in enumerate(tasks):
                offset = (i % window) * chunk_bytes  # the slot of chunk i - window, written by now
                pending.append((offset, pool.submit(_decode_into_slot, offset, paths, size, crop_fraction, limits)))
                if len(pending) >= window:
                    offset, future = pending.popleft()
                    yield from _released(shm.buf, offset, frame, future.result())
            while pending:
                offset, future = pending.popleft()
                yield from _released(shm.buf, offset, frame, future.result())
        except BrokenProcessPool as exc:
            raise MobOptError(f"an image decoding worker died ({exc}); out of memory? Retry with fewer workers") from exc
        finally:
            # On failure (or an abandoned generator) drop what is queued; running chunks finish in well under a second.
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        shm.close()
        shm.unlink()


def _released(buf: memoryview, offset: int, frame: int, statuses: _Statuses) -> Iterator[tuple[memoryview, _Statuses]]:
    view = buf[offset:offset + frame * sum(kind == "ok" for kind, _ in statuses)]
    try:
        yield view, statuses
    finally:
        view.release()  # the shared memory can only be closed once no view of it is left


def _check_shm_room(needed: int) -> None:
    # Shared memory beyond the size of /dev/shm is not refused up front: writing to it kills the worker with SIGBUS.
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return
    free = st.f_bavail * st.f_frsize
    if free < needed + (16 << 20):
        raise MobOptError(f"/dev/shm has {free >> 20} MB free but decoding needs {needed >> 20} MB there "
                          "(2 x workers x chunksize images); lower `workers` or `chunksize`, or enlarge /dev/shm")


def worker_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` with this module preloaded: workers start fast and never inherit the parent's threads."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mobopt.datasets.images"])
    return ctx
