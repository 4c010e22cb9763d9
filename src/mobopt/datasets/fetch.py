"""Bring a dataset's raw files into ``data/raw/<dataset>`` from the configured source.

``source: url`` downloads from the dataset's mirrors (retries, resume, pinned
size and sha256: :mod:`mobopt.common.download`); ``source: path`` copies a
local file or folder and checks it the same way; ``source: kaggle`` runs the
Kaggle client.  Every download writes ``SOURCE.json`` recording where each
file came from and its checksum.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mobopt import MobOptError
from mobopt.common.atomic import atomic_path, write_json
from mobopt.common.download import RemoteFile, copy_verified, download, transfer_options, verify
from mobopt.datasets import prepared

log = logging.getLogger(__name__)


def local_file(options: dict[str, Any], name: str) -> Path:
    """Where ``source: path`` takes the raw file ``name`` from: ``path`` itself when it is a file, else ``path/name``.

    The workflow makes these files inputs of the download rule
    (:meth:`mobopt.workflow.plan.Plan.source_inputs`), so a fixed or replaced
    original is copied again by the next run.
    """
    src = Path(options["path"]).expanduser()
    return src if src.is_file() else src / name


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
    extra: dict[str, Any] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    if source == "url":
        digest = download(remote, list(options.get("mirrors", [])), dest, **transfer_options(options))
        origin: Any = options.get("mirrors")
    elif source == "path":
        if not options.get("path"):
            raise MobOptError("config key `path` is empty but `source: path` needs the folder holding the files")
        src = local_file(options, remote.name)
        if not src.is_file():
            raise MobOptError(f"{src}: not found; `source: path` expects {remote.name} (or the folder holding it)")
        digest = copy_verified(src, dest, remote)
        origin = str(src.absolute())  # what a later error names as the file to fix (prepared.naming_sources)
    elif source == "kaggle" and kaggle_slug:
        from mobopt.datasets import kaggle

        cli = options.get("kaggle_cli", "kaggle")
        exe = kaggle.resolve_cli(cli) or cli  # none found: download_dataset says so
        with atomic_path(dest) as tmp:
            kaggle.download_dataset(kaggle_slug, tmp, cli=exe, staging=kaggle.staging_folder(dest))
            digest = verify(tmp, remote, label=f"{remote.name} from Kaggle {kaggle_slug}")
        origin = f"kaggle:{kaggle_slug}"
        extra["kaggle_cli"] = exe  # which executable ran, as the log says too
    else:
        raise MobOptError(f"config key `source`: unknown source {source!r} for {remote.name}")
    log.info("%s ok (sha256 %s)", remote.name, digest)
    return {"sha256": digest, "bytes": dest.stat().st_size, "origin": origin,
            "pinned_sha256": remote.sha256 is not None, **extra}


def fetch_files(files: tuple[RemoteFile, ...], options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch ``files`` (each checked against its pins unless ``verify: false``) and write SOURCE.json."""
    verify_pins = options.get("verify", True)
    record: dict[str, Any] = {"source": options.get("source", "url"), "verified_against_pins": verify_pins, "files": {}}
    for remote in files:
        pinned = remote if verify_pins else RemoteFile(remote.name)
        record["files"][remote.name] = fetch_file(pinned, options, out_dir)
    write_json(out_dir / prepared.SOURCE_RECORD, record)
    return record

