"""Safe, atomic extraction of downloaded dataset archives.

Why not ``shutil.unpack_archive``: it trusts member names, so a crafted (or
merely sloppy) archive can write outside the target folder through ``../``
paths, absolute paths or symlinks, and a killed or failed extraction leaves a
half-filled folder that looks like a finished dataset.  The rules here:

* every member must land inside ``dest``.  Tar archives go through Python's
  ``filter="data"`` extraction filter (PEP 706), and on top of it symlink and
  hard-link members are refused: datasets do not need them, and the filter of
  some Python patch releases (3.11.7 among them) has known link-based bypasses
  (CVE-2025-4517 and friends, fixed in 3.11.13).  Zip members are all checked
  *before* anything is written: no absolute path, drive letter, ``..``
  component or symlink;
* extraction goes to ``<dest>.partial`` and is renamed to ``dest`` only when
  every member was written, so ``dest`` is either complete or absent;
* a corrupt or truncated archive is reported as such, naming the archive and
  saying to download it again, instead of a traceback from ``zlib``.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from mobopt import MobOptError

log = logging.getLogger(__name__)

_SUFFIXES = (".zip", ".tgz", ".tar.gz", ".tar")
_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, *, progress: bool = True) -> int:
    """Extract ``archive`` (``.zip``, ``.tgz``, ``.tar.gz`` or ``.tar``) into the folder ``dest``.

    Returns the number of regular files extracted.  Members are written to the
    sibling ``<dest>.partial`` (a leftover from a killed run is removed first),
    which replaces ``dest`` only after every member was extracted.  An existing
    ``dest`` is replaced as a whole: it is moved aside to ``<dest>.old`` and
    deleted once the new folder is in place, so stale files from an older
    extraction never mix with new ones.  On any failure the staging folder is
    removed and ``dest`` is left as it was (or absent).
    """
    archive = Path(archive)
    dest = Path(dest)
    kind = _kind(archive)
    if not archive.is_file():
        raise MobOptError(f"{archive}: archive not found; download it first")
    if archive.resolve().is_relative_to(dest.resolve()):
        raise MobOptError(f"{archive}: the archive lies inside {dest}, which extraction replaces as a whole; "
                          "extract into a different folder")
    staging = dest.parent / (dest.name + ".partial")
    aside = dest.parent / (dest.name + ".old")
    for leftover in (staging, aside):
        _remove(leftover)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir()
    try:
        count = _extract_zip(archive, staging, progress) if kind == "zip" else _extract_tar(archive, staging, progress)
    except MobOptError:
        _remove(staging)
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        _remove(staging)
        raise _translate(exc, archive, dest) from exc
    except BaseException:
        _remove(staging)
        raise
    if dest.exists() or dest.is_symlink():
        os.replace(dest, aside)
    os.replace(staging, dest)
    _remove(aside)
    log.info("extracted %d files from %s into %s", count, archive, dest)
    return count


def _translate(exc: BaseException, archive: Path, dest: Path) -> MobOptError:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
        # our side, not the archive's: deleting the download would not help
        return MobOptError(f"{archive}: extracting into {dest} failed: {exc}; check free space and permissions")
    return MobOptError(
        f"{archive}: corrupt or truncated archive ({type(exc).__name__}: {exc}); delete it and download it again"
    )


def _kind(archive: Path) -> str:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_SUFFIXES):
        return "tar"
    raise MobOptError(f"{archive}: unsupported archive type; expected a name ending in {', '.join(_SUFFIXES)}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _bar(total: int | None, archive: Path, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc=archive.name, disable=not progress, mininterval=1.0)


def _zip_problem(info: zipfile.ZipInfo) -> str | None:
    """Why the zip member ``info`` must not be extracted, or None when it is safe."""
    name = info.filename
    if name.startswith(("/", "\\")):
        return "has an absolute path"
    if _DRIVE.match(name):
        return "has a drive letter"
    if ".." in re.split(r"[/\\]", name):
        return "has a '..' component"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symlink"
    if "\x00" in name:
        return "has a NUL byte in its name"
    return None


def _extract_zip(archive: Path, staging: Path, progress: bool) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # all checked before the first byte is written
            problem = _zip_problem(info)
            if problem:
                raise MobOptError(f"{archive}: member {info.filename!r} {problem}; refusing to extract")
        count = 0
        with _bar(len(infos), archive, progress) as bar:
            for info in infos:
                zf.extract(info, staging)
                count += not info.is_dir()
                bar.update(1)
    return count


def _extract_tar(archive: Path, staging: Path, progress: bool) -> int:
    count = 0

    def data_without_links(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        nonlocal count
        member = tarfile.data_filter(member, path)  # raises FilterError for anything unsafe
        if member.issym() or member.islnk():
            raise MobOptError(
                f"{archive}: member {member.name!r} is a {'symlink' if member.issym() else 'hard link'} "
                f"(to {member.linkname!r}); links are not allowed in dataset archives, refusing to extract"
            )
        count += member.isreg()
        return member

    with tarfile.open(archive, "r:*") as tar, _bar(None, archive, progress) as bar:
        tar.errorlevel = 1  # FilterError and OSError raise instead of being logged and skipped

        def members():  # streamed: one pass over a compressed archive, not two
            for member in tar:
                yield member
                bar.update(1)

        try:
            tar.extractall(staging, members=members(), filter=data_without_links)
        except tarfile.FilterError as exc:
            name = exc.tarinfo.name if exc.tarinfo is not None else "?"
            raise MobOptError(f"{archive}: member {name!r} {_describe(exc)}; refusing to extract") from exc
    return count


def _describe(exc: tarfile.FilterError) -> str:
    """The filter's reason, without its repetition of the member name."""
    info = exc.tarinfo
    if isinstance(exc, tarfile.AbsolutePathError):
        return "has an absolute path"
    if isinstance(exc, tarfile.OutsideDestinationError):
        return "would be written outside the destination"
    if isinstance(exc, tarfile.AbsoluteLinkError):
        return f"is a link to the absolute path {info.linkname!r}"
    if isinstance(exc, tarfile.LinkOutsideDestinationError):
        return f"is a link pointing outside the destination ({info.linkname!r})"
    if isinstance(exc, tarfile.SpecialFileError):
        return "is a special file (device or FIFO)"
    return str(exc)
