"""Checksummed, resumable, atomic downloads from a list of mirrors.

Why not pooch or ``keras.utils.get_file``: neither resumes an interrupted
transfer (an ImageNet subset is 1.5 GB), neither tries a list of mirrors, and
both retry a checksum mismatch against the same URL, which cannot help.  The
rules implemented here:

* bytes go to ``<name>.part`` and are renamed to ``<name>`` only after the size
  and sha256 match, so a partial file never sits under the final name;
* a broken transfer (connection reset, truncated body, HTTP 5xx, timeout) is
  retried with exponential backoff, resuming with an HTTP ``Range`` request
  when the server supports it;
* a transfer that crawls is broken too: ``timeout`` only counts *silent*
  seconds (it is the socket's read timeout), so a mirror sending one byte per
  second would hold an attempt forever.  An attempt is cut when it delivers
  less than ``min_rate`` bytes/s averaged over ``rate_window`` seconds, or
  runs past ``attempt_timeout`` seconds; the cut counts as a broken transfer
  (retried, resuming from what arrived, then the next mirror).  The body is
  read with ``read1`` (whatever one ``recv`` returns), so the checks run as
  each packet arrives, not once per 64 KiB chunk.  Not covered: a server
  that trickles its *headers* (the HTTP client reads those before we see
  anything); the read timeout bounds each of its silences;
* a permanent answer (HTTP 4xx) or a checksum mismatch moves on to the next
  mirror; when every mirror fails, the error lists what each one did, and a
  mismatch prints the hash that was computed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobopt import MobOptError

log = logging.getLogger(__name__)

#: Small enough that a broken connection loses little (the unfinished chunk is dropped).
CHUNK = 1 << 16

#: Transfer settings of every download, with the meaning the config schema gives them
#: ($defs.fetch in workflow/schemas/config.schema.yaml; tests/test_plan.py checks the two agree).
#: ``min_rate`` is low enough for a 64 kbit/s line (8 kB/s) and still drops a trickling mirror
#: within a minute; ``attempt_timeout`` is off: a slow but steady 1.5 GB transfer may take hours.
FETCH_DEFAULTS: dict[str, Any] = {
    "retries": 4,            # further attempts per mirror after a transient failure
    "backoff": 2.0,          # seconds before retry n: backoff * 2**n
    "timeout": 60,           # seconds without a byte before a transfer counts as broken
    "attempt_timeout": None,  # seconds one attempt may take at most (None: no limit)
    "min_rate": 1024,        # bytes/s an attempt must average over rate_window (0: no minimum)
    "rate_window": 60,       # seconds over which min_rate is averaged
    "progress": True,        # a progress bar in the download log
}


class DownloadError(MobOptError):
    """No mirror delivered the file intact."""


class ChecksumError(MobOptError):
    """The file's size or sha256 differs from the pinned value."""


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch: its name and, when the source publishes them, size and sha256."""

    name: str
    size: int | None = None
    sha256: str | None = None


def sha256sum(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def md5sum(path: str | os.PathLike) -> str:
    """md5 of a file, streamed: only to compare with a checksum a dataset publishes (never as a pin of ours)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | os.PathLike, expected: RemoteFile, *, label: str | None = None) -> str:
    """Check size and sha256 of ``path`` against ``expected``; return the computed sha256.

    ``label`` names the file in the message (defaults to ``path``).
    """
    label = label or str(path)
    size = os.path.getsize(path)
    if expected.size is not None and size != expected.size:
        raise ChecksumError(
            f"{label}: size {size} bytes, expected {expected.size}; the copy is truncated or a different file"
        )
    digest = sha256sum(path)
    if expected.sha256 is not None and digest != expected.sha256.lower():
        raise ChecksumError(
            f"{label}: sha256 mismatch: computed {digest}, expected {expected.sha256}; "
            "the file is corrupt or not the pinned release"
        )
    return digest


def copy_verified(src: str | os.PathLike, dest: str | os.PathLike, expected: RemoteFile) -> str:
    """Copy a local file (``source: path``: a manual download, a shared cache) to ``dest``, checked like a download.

    ``dest`` appears only once the copy matches ``expected``'s size and sha256;
    returns the computed sha256.
    """
    import shutil

    from mobopt.common.atomic import atomic_path

    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
        return verify(tmp, expected, label=str(src))


def transfer_options(options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`download` from a config block (``$defs.fetch``), defaults filled in."""
    return {key: options.get(key, default) for key, default in FETCH_DEFAULTS.items()}


class _Transient(Exception):
    """A failure worth retrying on the same mirror."""


class _Pace:
    """Cuts an attempt that runs past its deadline or averages less than ``min_rate`` bytes/s over ``window`` s."""

    def __init__(self, attempt_timeout: float | None, min_rate: float, window: float) -> None:
        self.start = time.monotonic()
        self.deadline = self.start + attempt_timeout if attempt_timeout else None
        self.attempt_timeout, self.min_rate, self.window = attempt_timeout, min_rate, window
        self.mark_time, self.mark_bytes = self.start, 0

    def check(self, received: int) -> None:
        """``received``: bytes this attempt has delivered so far."""
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise _Transient(f"attempt cut after {now - self.start:.0f} s (attempt_timeout = {self.attempt_timeout:g} s) "
                             f"with {received} bytes received")
        elapsed = now - self.mark_time
        if self.min_rate and elapsed >= self.window:
            got = received - self.mark_bytes
            if got < self.min_rate * elapsed:
                raise _Transient(f"too slow: {got} bytes in the last {elapsed:.0f} s ({got / elapsed:.0f} B/s), "
                                 f"below min_rate = {self.min_rate:g} B/s")
            self.mark_time, self.mark_bytes = now, received


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool, total_hint: int | None,
                pace: _Pace | None = None) -> None:
    """Append the rest of ``url`` to ``part``, resuming from its current size when possible."""
    # Imported here: the workflow reads the dataset registry at every parse, and
    # `snakemake -n` should not pay for an HTTP stack it does not use.
    import requests
    import urllib3
    from tqdm.auto import tqdm

    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = requests.get(url, stream=True, timeout=timeout, headers=headers)
    except requests.RequestException as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    with resp:
        if resp.status_code == 416 and offset:  # we already have everything (or garbage): restart cleanly
            part.unlink()
            raise _Transient("HTTP 416 on resume; restarting from byte 0")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Transient(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise requests.HTTPError(f"HTTP {resp.status_code}", response=resp)
        if offset and resp.status_code != 206:  # server ignored Range: start over
            offset = 0
        length = resp.headers.get("Content-Length")
        expected_total = offset + int(length) if length is not None else total_hint
        mode = "ab" if offset else "wb"
        written = offset
        bar = tqdm(
            total=expected_total, initial=offset, unit="B", unit_scale=True, desc=part.name.removesuffix(".part"),
            disable=not progress, mininterval=1.0,
        )
        pace = pace or _Pace(None, 0, 1)
        # raw bytes, never content-decoded: Range offsets must count what is on disk.  read1 (urllib3 >= 2.3)
        # returns what one recv gave; stream() waits for a whole chunk, so a trickle is only checked per 64 KiB
        read1 = getattr(resp.raw, "read1", None)
        chunks = (iter(lambda: read1(CHUNK, decode_content=False), b"") if read1 is not None
                  else resp.raw.stream(CHUNK, decode_content=False))
        try:
            with open(part, mode) as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
                    pace.check(written - offset)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Transient(f"transfer broken after {written} bytes: {exc}") from exc
        finally:
            bar.close()
        if expected_total is not None and written < expected_total:
            raise _Transient(f"truncated transfer: got {written} of {expected_total} bytes")


def download(
    remote: RemoteFile,
    mirrors: list[str],
    dest: str | os.PathLike,
    *,
    retries: int = FETCH_DEFAULTS["retries"],
    backoff: float = FETCH_DEFAULTS["backoff"],
    timeout: float = FETCH_DEFAULTS["timeout"],
    attempt_timeout: float | None = FETCH_DEFAULTS["attempt_timeout"],
    min_rate: float = FETCH_DEFAULTS["min_rate"],
    rate_window: float = FETCH_DEFAULTS["rate_window"],
    progress: bool = FETCH_DEFAULTS["progress"],
) -> str:
    """Fetch ``remote`` into ``dest`` from the first mirror that delivers it intact.

    ``mirrors`` are base URLs; the file's URL is ``mirror + remote.name``.
    Each mirror gets ``retries`` further attempts after the first, with
    ``backoff * 2**attempt`` seconds between them.  An attempt is broken off
    after ``timeout`` silent seconds, after ``attempt_timeout`` seconds in all
    (None: never), or when it averages less than ``min_rate`` bytes/s over
    ``rate_window`` seconds (0: no minimum).  Returns the sha256.
    """
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    if not mirrors:
        raise DownloadError(f"{dest.name}: no mirror configured; set the dataset's `mirrors` list or use `source: path`")
    for mirror in mirrors:
        url = mirror if mirror.endswith(remote.name) else mirror.rstrip("/") + "/" + remote.name
        # Resume a .part left by an earlier run only when a pinned sha256 will catch a stale
        # prefix; bytes from another mirror are never mixed.
        if failures or remote.sha256 is None:
            part.unlink(missing_ok=True)
        for attempt in range(retries + 1):
            try:
                log.info("fetching %s (attempt %d/%d)", url, attempt + 1, retries + 1)
                _fetch_once(url, part, timeout=timeout, progress=progress, total_hint=remote.size,
                            pace=_Pace(attempt_timeout, min_rate, rate_window))
                digest = verify(part, remote, label=f"{dest.name} from {url}")
            except _Transient as exc:
                log.warning("%s: %s", url, exc)
                if attempt == retries:
                    failures.append(f"{url}: {exc} (gave up after {retries + 1} attempts)")
                    break
                time.sleep(backoff * 2**attempt)
                continue
            except requests.HTTPError as exc:
                failures.append(f"{url}: {exc}")
                break
            except ChecksumError as exc:
                log.error("%s", exc)
                failures.append(str(exc))
                part.unlink(missing_ok=True)
                break
            os.replace(part, dest)
            log.info("saved %s (sha256 %s)", dest, digest)
            return digest
    part.unlink(missing_ok=True)
    raise DownloadError(f"could not download {dest.name}; every mirror failed:\n  " + "\n  ".join(failures))
