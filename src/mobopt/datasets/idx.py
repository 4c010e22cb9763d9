"""Reading and writing the IDX format used by MNIST (optionally gzip-compressed).

Layout (big-endian): two zero bytes, a type code, the number of dimensions,
one int32 per dimension, then the raw data in C order.  Every check names the
file, because a truncated or mislabelled download is the usual cause.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from mobopt import MobOptError

#: IDX type codes -> numpy dtype (big-endian for multi-byte types).
DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
CODES = {v.newbyteorder(">") if v.itemsize > 1 else v: k for k, v in DTYPES.items()}


class IdxError(MobOptError):
    """The file is not a well-formed IDX file."""


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def read_idx(path: str | os.PathLike, *, expect_ndim: int | None = None) -> np.ndarray:
    """Parse an IDX file into an array, checking magic number, dimensions and length."""
    path = Path(path)
    try:
        with _open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise IdxError(f"{path}: cannot read ({exc}); the file is corrupt or truncated, delete it and download again") from exc
    if len(data) < 4:
        raise IdxError(f"{path}: only {len(data)} bytes, too short for an IDX header")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in DTYPES:
        raise IdxError(f"{path}: bad magic number 0x{data[:4].hex()}; not an IDX file (expected 0x0000 + type code + ndim)")
    if expect_ndim is not None and ndim != expect_ndim:
        raise IdxError(f"{path}: {ndim} dimensions, expected {expect_ndim} (magic 0x{data[:4].hex()})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: header truncated ({len(data)} bytes, need {header} for {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}i", data[4:header])
    if any(d < 0 for d in dims):
        raise IdxError(f"{path}: negative dimension in {dims}")
    dtype = DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        raise IdxError(f"{path}: {actual} data bytes but dimensions {dims} need {expected}; the file is truncated or corrupt")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as IDX (gzip-compressed when the name ends in .gz); used by tests and the demo."""
    from mobopt.common.atomic import atomic_path

    array = np.asarray(array)
    be = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if be not in CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = struct.pack(">HBB", 0, CODES[be], array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    path = Path(path)
    with atomic_path(path) as tmp:
        # mtime=0: identical arrays give identical .gz bytes, so checksums are reproducible.
        raw = header + array.astype(be).tobytes()
        if path.suffix == ".gz":
            with open(tmp, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
                gz.write(raw)
        else:
            tmp.write_bytes(raw)
