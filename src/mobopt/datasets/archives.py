"""Safe, atomic extraction of downloaded dataset archives.

Why not ``shutil.unpack_archive``: it trusts member names, so a crafted (or
merely sloppy) archive can write outside the target folder through ``../``
paths, absolute paths or symlinks, and a killed or failed extraction leaves a
half-filled folder that looks like a finished dataset.  The rules here:

* every member must land inside ``dest``.  Tar archives go through Python's
  ``filter="data"`` extraction filter (PEP 706), and on top of it symlink and
  hard-link members are refused: datasets do not need them, and the filter of
  some Python patch releases (3.11.7 among them) has known link-based bypasses
  (CVE-2025-4517 and friends, fixed in 3.11.13).  A tar member with an
  absolute path is refused too, as in a zip (the data filter would merely
  strip the leading ``/`` and write ``tree/tmp/...``: an archive that names
  absolute paths was not made for extraction into a dataset folder).  Zip
  members are all checked *before* anything is written: no absolute path,
  drive letter, ``..`` component or symlink;
* sizes are bounded before bytes are written, so an archive bomb fails fast,
  naming the member, instead of filling the disk (and, later, the memory of
  the image decoder): a member larger than ``max_member_bytes`` is refused;
  so is a zip member that would grow more than ``max_compression_ratio``
  times, and a tar whose members add up to more than that ratio times the
  archive's size (a tar has no per-member compressed size).  The ratio is
  only checked above :data:`RATIO_FLOOR` bytes: tiny files of zeros compress
  absurdly well and harm nobody;
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
from typing import Any

from mobopt import MobOptError

log = logging.getLogger(__name__)

_SUFFIXES = (".zip", ".tgz", ".tar.gz", ".tar")
_DRIVE = re.compile(r"^[A-Za-z]:")

#: Limits on what an archive may unpack to (config keys of $defs.archive in the schema; a test checks they agree).
#: Dataset members are photos and small text files: 256 MiB is far above any of them, and a JPEG or PNG barely
#: compresses further (ratio ~1), while a zip bomb's ratio is in the thousands.
EXTRACT_DEFAULTS: dict[str, Any] = {
    "max_member_bytes": 256 << 20,
    "max_compression_ratio": 100,
}
#: Members (or tar totals) below this many bytes are not held to the compression ratio.
RATIO_FLOOR = 1 << 20


def extract_options(options: dict[str, Any]) -> dict[str, Any]:
    """The limits of :func:`safe_extract` from a dataset's config block, defaults filled in."""
    return {key: options.get(key, default) for key, default in EXTRACT_DEFAULTS.items()}


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike, *, progress: bool = True,
                 max_member_bytes: int = EXTRACT_DEFAULTS["max_member_bytes"],
                 max_compression_ratio: float = EXTRACT_DEFAULTS["max_compression_ratio"]) -> int:
    """Extract ``archive`` (``.zip``, ``.tgz``, ``.tar.gz`` or ``.tar``) into the folder ``dest``.

    A member larger than ``max_member_bytes``, or growing more than
    ``max_compression_ratio`` times, is refused with its name (module docstring).

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
    limits = _Limits(max_member_bytes, max_compression_ratio)
    try:
        if kind == "zip":
            count = _extract_zip(archive, staging, progress, limits)
        else:
            count = _extract_tar(archive, staging, progress, limits)
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


class _Limits:
    def __init__(self, max_member_bytes: int, max_ratio: float) -> None:
        self.max_member_bytes, self.max_ratio = max_member_bytes, max_ratio

    def size_problem(self, size: int) -> str | None:
        if size > self.max_member_bytes:
            return (f"is {size} bytes uncompressed, more than max_member_bytes = {self.max_member_bytes} "
                    "(raise that config key if the archive is genuine)")
        return None

    def ratio_problem(self, size: int, packed: int, what: str) -> str | None:
        if size > RATIO_FLOOR and size > self.max_ratio * max(packed, 1):
            return (f"{what} {size} bytes from {packed} compressed (ratio {size / max(packed, 1):.0f}), more than "
                    f"max_compression_ratio = {self.max_ratio:g}: an archive bomb? (raise that config key if the "
                    "archive is genuine)")
        return None


def _zip_problem(info: zipfile.ZipInfo, limits: _Limits) -> str | None:
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
    # zipfile never writes more than the declared file_size (the CRC check fails first), so checking it is enough
    return limits.size_problem(info.file_size) or limits.ratio_problem(info.file_size, info.compress_size, "would unpack to")


def _extract_zip(archive: Path, staging: Path, progress: bool, limits: _Limits) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # all checked before the first byte is written
            problem = _zip_problem(info, limits)
            if problem:
                raise MobOptError(f"{archive}: member {info.filename!r} {problem}; refusing to extract")
        count = 0
        with _bar(len(infos), archive, progress) as bar:
            for info in infos:
                zf.extract(info, staging)
                count += not info.is_dir()
                bar.update(1)
    return count


def _extract_tar(archive: Path, staging: Path, progress: bool, limits: _Limits) -> int:
    count = 0
    total = 0
    packed = archive.stat().st_size

    def data_without_links(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        nonlocal count, total
        if member.name.startswith(("/", "\\")) or _DRIVE.match(member.name):
            raise MobOptError(f"{archive}: member {member.name!r} has an absolute path; refusing to extract")
        if member.isreg():
            total += member.size
            problem = limits.size_problem(member.size) or limits.ratio_problem(
                total, packed, "brings the extracted total to")
            if problem:
                raise MobOptError(f"{archive}: member {member.name!r} {problem}; refusing to extract")
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
