"""Pretrained weights: which files a model needs, and fetching them before training.

TF-free on purpose: the workflow reads :func:`weight_files` when it builds the
job graph, so a download rule (a local rule: compute nodes often have no
internet) can fetch exactly the files a training job will read, and training
never touches the network.  Keras' own ``get_file`` is not used: it checks no
hash for these files, cannot resume and knows no mirrors; we use the same
download code as the datasets, with an optional sha256 pin per file and the
computed hash recorded in provenance when none is pinned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mobopt import MobOptError
from mobopt.common.atomic import write_json
from mobopt.common.download import RemoteFile, copy_verified, download

log = logging.getLogger(__name__)

IMAGENET_CLASSES = 1000

#: Keras' published MobileNetV2 ImageNet weights exist for these widths and square resolutions.
MOBILENETV2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
MOBILENETV2_ROWS = (96, 128, 160, 192, 224)
MOBILENETV2_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"


def mobilenetv2_weight_files(options: dict[str, Any], input_shape) -> list[str]:
    """The Keras weight file MobileNetV2 needs, named exactly as Keras names it.

    Keras picks the file by width (alpha), head (``_no_top`` without the
    classifier) and resolution; for a resolution it has no weights for (e.g.
    200) it uses the 224 ones, which fit any input size because convolution
    weights do not depend on it.
    """
    weights = options.get("weights", "imagenet")
    if weights in (None, "none"):
        return []
    if weights != "imagenet":
        raise MobOptError(f"model.weights must be `imagenet` or `none`, got {weights!r}")
    alpha = float(options.get("alpha", 1.0))
    if alpha not in MOBILENETV2_ALPHAS:
        raise MobOptError(f"model.alpha {alpha} has no ImageNet weights; choose one of {MOBILENETV2_ALPHAS}")
    h, w = int(input_shape[0]), int(input_shape[1])
    rows = h if h == w and h in MOBILENETV2_ROWS else 224
    suffix = "" if options.get("include_top", False) else "_no_top"
    return [f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}{suffix}.h5"]


#: model name -> function (model options, input shape) -> weight file names.  Models trained
#: from scratch have no entry.
WEIGHT_FILES: dict[str, Callable[[dict[str, Any], Any], list[str]]] = {"mobilenetv2": mobilenetv2_weight_files}


def weight_files(model_options: dict[str, Any], input_shape) -> list[str]:
    """Names of the pretrained weight files the model needs ([] when trained from scratch)."""
    func = WEIGHT_FILES.get(model_options.get("name", ""))
    return func(model_options, input_shape) if func else []


def fetch(name: str, options: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Bring weight file ``name`` into ``out_dir`` from ``options`` (the config's ``pretrained`` entry).

    ``source: url`` downloads from ``mirrors`` (default: Keras' bucket);
    ``source: path`` copies from a folder (e.g. ``~/.keras/models`` of a
    machine with internet).  ``sha256`` maps file names to pinned hashes: a
    pinned file must match; an unpinned one is accepted and its computed hash
    recorded next to it (``<name>.json``) so a later run can pin it.
    """
    out_dir = Path(out_dir)
    pinned = (options.get("sha256") or {}).get(name)
    remote = RemoteFile(name, None, pinned)
    dest = out_dir / name
    source = options.get("source", "url")
    if source == "url":
        mirrors = options.get("mirrors") or [MOBILENETV2_URL]
        digest = download(remote, list(mirrors), dest, retries=options.get("retries", 4),
                          backoff=options.get("backoff", 2.0), timeout=options.get("timeout", 60.0),
                          progress=options.get("progress", True))
        origin: Any = mirrors
    elif source == "path":
        if not options.get("path"):
            raise MobOptError("config key pretrained.path is empty but `source: path` needs the folder holding the weights")
        src = Path(options["path"]).expanduser() / name
        if not src.is_file():
            raise MobOptError(f"{src}: not found; `pretrained.source: path` expects {name} in {src.parent}")
        digest = copy_verified(src, dest, remote)
        origin = str(src)
    else:
        raise MobOptError(f"config key pretrained.source: unknown source {source!r}; use `url` or `path`")
    if pinned is None:
        log.warning("%s has no pinned sha256; computed %s (pin it under pretrained.sha256 to enforce it)", name, digest)
    record = {"file": name, "sha256": digest, "pinned": pinned is not None, "bytes": dest.stat().st_size,
              "origin": origin}
    write_json(dest.with_name(name + ".json"), record)
    return record
