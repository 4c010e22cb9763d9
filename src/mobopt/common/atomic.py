"""Atomic writes: a killed job must never leave a file that looks finished.

Every output is written to a temporary sibling and renamed into place
(``os.replace`` is atomic on POSIX within one file system).  Snakemake's
incomplete-file tracking is the second guard.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    The temporary name keeps the final suffix (some writers, like Keras'
    ``model.save``, insist on ``.keras``).  On any exception the temporary
    file is removed and the final name is never created.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    # mkstemp creates the file 0600; results on a shared (cluster) file system must be readable by the group as
    # any file the user writes would be, so give it the mode open() would have given it under the current umask
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.errno in _STORAGE_ERRORS:
            raise _naming(exc, path) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


#: Errors of the storage rather than of the data: reported with the file the user asked for.
_STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error, naming the output being written (a full disk's error names no file at all)."""
    return type(exc)(exc.errno, f"{exc.strerror or exc} (writing {path.name}; nothing was left half-written)", str(path))


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON with sorted keys (stable diffs, stable hashes)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays appear in metrics; convert without importing numpy here.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
