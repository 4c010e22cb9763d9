"""Fashion-MNIST (Zalando): 70,000 28x28 grey photos of 10 kinds of clothing, in MNIST's IDX layout.

Two sources, and one check that both pass and nothing else does:

* ``path``: Debian and Ubuntu ship the real files (``apt-get install
  dataset-fashion-mnist``) in ``/usr/share/datasets/fashion-mnist``; with
  ``source: auto`` (the default) that folder is used when it holds the four
  files, and the official mirror otherwise.
* ``url``: the official mirror; each ``.gz`` is checked against the md5 the
  dataset's README publishes (the only checksum it publishes).

Debian recompressed the files, so their ``.gz`` bytes differ from the
official ones: what is pinned is the *decompressed* IDX content, size and
sha256, which every copy must match (``verify: true``).  A file whose content
differs fails, naming the file and printing both hashes.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import zlib
from pathlib import Path
from typing import Any

from mobopt import MobOptError
from mobopt.common.atomic import write_json
from mobopt.common.download import RemoteFile, md5sum
from mobopt.datasets import fetch, mnist, prepared

log = logging.getLogger(__name__)

#: Where Debian's and Ubuntu's `dataset-fashion-mnist` package puts the four files.
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: The class names, in label order (the dataset's README).
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: md5 of the official .gz files, as the dataset's README publishes them.
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
#: Size and sha256 of each file's decompressed IDX content: the same for every correct copy.
CONTENT = {
    "train-images-idx3-ubyte.gz": (47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte.gz": (60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte.gz": (7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte.gz": (10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
FILES = tuple(CONTENT)
#: The shape options and their defaults, the files' own shape (the schema documents the same; a test checks).
#: ``image_size: 32, channels: 3`` makes Fashion-MNIST a stand-in for CIFAR-10's 32x32x3 input.
SHAPE_DEFAULTS: dict[str, Any] = {"image_size": 28, "channels": 1}


def image_shape(options: dict[str, Any]) -> tuple[int, int, int]:
    """The prepared images' shape: 28x28 grey, or padded to ``image_size`` and repeated to ``channels``."""
    size = int(options.get("image_size", SHAPE_DEFAULTS["image_size"]))
    return (size, size, int(options.get("channels", SHAPE_DEFAULTS["channels"])))


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    """``source: auto`` made concrete: Debian's copy when it is installed, the official mirror otherwise."""
    if options.get("source", "auto") != "auto":
        return options
    debian = Path(options.get("path") or DEBIAN_DIR)
    if all((debian / name).is_file() for name in FILES):
        return {**options, "source": "path", "path": str(debian)}
    return {**options, "source": "url"}


def content_digest(path: Path) -> tuple[int, str]:
    """Size and sha256 of a .gz file's decompressed content, streamed."""
    digest, size = hashlib.sha256(), 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise MobOptError(f"{path}: not a readable gzip file ({exc}); the file is corrupt or truncated") from exc
    return size, digest.hexdigest()


def check_file(path: Path, source: str, origin: Any = None) -> dict[str, Any]:
    """Check one fetched file against the pinned content (and the official md5 for a download)."""
    name = path.name
    where = f"{path} (copied from {origin})" if source == "path" and origin else str(path)
    size, sha = content_digest(path)
    want_size, want_sha = CONTENT[name]
    if (size, sha) != (want_size, want_sha):
        raise MobOptError(f"{where}: its content is not Fashion-MNIST's {name[:-3]}: sha256 {sha} ({size} bytes) "
                          f"but expected {want_sha} ({want_size} bytes); replace the file with a correct copy")
    record: dict[str, Any] = {"content_bytes": size, "content_sha256": sha}
    if source == "url":
        md5 = md5sum(path)
        if md5 != OFFICIAL_MD5[name]:
            raise MobOptError(f"{where}: md5 {md5} but the dataset publishes {OFFICIAL_MD5[name]} for {name}")
        record["md5"] = md5
    return record


def download(options: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Fetch the four files from the resolved source, check each and write SOURCE.json."""
    opts = resolve_options(options)
    if opts["source"] == "url" and not opts.get("mirrors"):
        opts = {**opts, "mirrors": [MIRROR]}
    verify = opts.get("verify", True)
    record: dict[str, Any] = {"source": opts["source"], "verified_against_pins": verify,
                              "pins": "decompressed IDX content (size, sha256); official .gz md5 for downloads", "files": {}}
    for name in FILES:
        entry = fetch.fetch_file(RemoteFile(name), opts, out_dir)
        if verify:
            try:
                entry.update(check_file(out_dir / name, opts["source"], entry.get("origin")))
            except MobOptError:
                (out_dir / name).unlink(missing_ok=True)  # a wrong file never stays under the final name
                raise
        record["files"][name] = entry
        log.info("%s: %s", name, "content matches the pinned sha256" if verify else "not checked (verify: false)")
    write_json(out_dir / prepared.SOURCE_RECORD, record)
    return record


def prepare(raw_dir: Path, out_dir: Path, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """The same splits as MNIST: 54k train / 6k validation (seeded, stratified) / the official 10k test,
    padded to ``image_size`` and repeated to ``channels`` when those are set (:func:`mnist.fit_images`)."""
    size, _, channels = image_shape(options)
    return mnist.prepare_idx(raw_dir, out_dir, options, seed, name="fashion_mnist", classes=CLASSES,
                             image_size=size, channels=channels)
