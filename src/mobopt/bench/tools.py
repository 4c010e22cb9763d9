"""External tools the workflow fetches: LiteRT's ``benchmark_model`` binary for Android phones.

Fetched by a download rule (a local rule: compute nodes often have no
internet) into ``data/tools/``, never during a benchmark.  Google publishes a
nightly build at a fixed URL and no checksum, so, as for the pretrained
weights, the computed sha256 is recorded next to the file and enforced when
``benchmark.android.binary_sha256`` pins one (pin it for a reproducible study:
"latest" changes every night).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from mobopt import MobOptError
from mobopt.common.atomic import write_json
from mobopt.common.download import RemoteFile, copy_verified, download

log = logging.getLogger(__name__)

BENCHMARK_MODEL_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
                       "nightly/latest/android_aarch64_benchmark_model")


def fetch_benchmark_model(options: dict[str, Any], out: str | os.PathLike) -> dict[str, Any]:
    """Bring the binary to ``out`` (executable) from ``binary_path`` if set, else from ``binary_url``."""
    out = Path(out)
    pinned = options.get("binary_sha256")
    remote = RemoteFile(out.name, None, pinned)
    if options.get("binary_path"):
        src = Path(options["binary_path"]).expanduser()
        if not src.is_file():
            raise MobOptError(f"{src}: not found; benchmark.android.binary_path must name LiteRT's benchmark_model "
                              "binary for the phone (e.g. android_aarch64_benchmark_model)")
        digest = copy_verified(src, out, remote)
        origin: Any = str(src)
    else:
        url = options.get("binary_url") or BENCHMARK_MODEL_URL
        base, name = url.rsplit("/", 1)
        digest = download(RemoteFile(name, None, pinned), [base + "/"], out.parent / name,
                          retries=options.get("retries", 4), backoff=options.get("backoff", 2.0),
                          timeout=options.get("download_timeout", 60.0), progress=options.get("progress", True))
        if name != out.name:
            os.replace(out.parent / name, out)
        origin = url
    out.chmod(out.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if pinned is None:
        log.warning("%s has no pinned sha256; computed %s (set benchmark.android.binary_sha256 to enforce it)", out, digest)
    record = {"file": out.name, "sha256": digest, "pinned": pinned is not None, "bytes": out.stat().st_size,
              "origin": origin}
    write_json(out.with_name(out.name + ".json"), record)
    return record
