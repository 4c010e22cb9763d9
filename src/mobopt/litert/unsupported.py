"""The "variant not supported" record: written once by conversion, read by every later stage.

A variant the converter refuses for a model (int16x8 for the ViT: no 16x8
kernel for NEG), or one LiteRT cannot run, is a result, not an error: the
conversion leaves an **empty** ``.tflite`` and a JSON beside it with
``"supported": false``, the stage that refused it and the tool's own words.
Evaluation and benchmark then write results that say "not supported" with the
reason and no numbers, so tables show why a cell is empty.  Why files and not
a Snakemake checkpoint: the DAG stays known at start (``snakemake -n`` shows
every job), caching stays per file, and a converter upgrade that adds support
reruns exactly what depends on it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from mobopt.common import provenance
from mobopt.common.atomic import write_bytes, write_json

log = logging.getLogger(__name__)

STATUS = "not supported"


def write_variant(variant: str, description: str, stage: str, reason: str, model_path: str | os.PathLike,
                  out_tflite: str | os.PathLike, out_json: str | os.PathLike, extra: dict[str, Any]) -> dict[str, Any]:
    """Conversion's record: an empty .tflite and its JSON naming ``stage`` (converter or runtime) and ``reason``."""
    info = {"variant": variant, "description": description, "supported": False, "unsupported_stage": stage,
            "reason": reason, "source_model": str(model_path), **extra}
    write_bytes(out_tflite, b"")
    write_json(out_json, info)
    log.warning("%s: variant %s not supported (%s): %s", model_path, variant, stage, reason)
    return info


def record(model: str | os.PathLike) -> dict[str, Any] | None:
    """The conversion record of a variant recorded as unsupported, or None for a real model file."""
    path = Path(model)
    info = path.with_suffix(".json")
    if path.suffix not in (".tflite", ".onnx") or not path.exists() or path.stat().st_size or not info.exists():
        return None
    found = json.loads(info.read_text())
    return found if found.get("supported") is False else None


def result_fields(found: dict[str, Any]) -> dict[str, Any]:
    """What every later result of an unsupported variant says, whatever the stage."""
    return {"status": STATUS, "supported": False, "reason": found.get("reason"),
            "flags": [f"{STATUS}: {found.get('reason')}"], "flagged": True}


def write_result(model: str | os.PathLike, out: str | os.PathLike, **facts: Any) -> bool:
    """For a stage that reads ``model``: if it is unsupported, write ``out`` saying so (no numbers) and return True."""
    found = record(model)
    if found is None:
        return False
    write_json(out, {"model": str(model), "variant": found.get("variant"), "supported": False, "reason": found.get("reason"),
                     **facts, "provenance": provenance.collect()})
    log.warning("%s: %s (%s); wrote %s without numbers", model, STATUS, found.get("reason"), out)
    return True
