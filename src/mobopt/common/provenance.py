"""Provenance stamped into every result JSON.

A number without its context cannot be trusted or compared: each result says
which code (git commit), which config (hash), which data (checksums), which
software (versions) and which machine (CPU model, threads) produced it.
Versions are read from package metadata, so collecting provenance never
imports TensorFlow (the benchmark process must stay TF-free).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from mobopt.common import cpuinfo

PACKAGES = ("tensorflow", "keras", "ai-edge-litert", "ai-edge-quantizer", "onnxruntime", "tf2onnx", "onnx", "numpy", "snakemake",
            "mobopt")

#: Set by the workflow (common.smk) for every job; read here so the package needs no Snakemake.
ENV_CONFIG_SHA256 = "MOBOPT_CONFIG_SHA256"
ENV_WORKFLOW_DIR = "MOBOPT_WORKFLOW_DIR"


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """Commit hash and whether the work tree had uncommitted changes (``dirty``)."""
    cwd = Path(directory or os.environ.get(ENV_WORKFLOW_DIR) or Path.cwd())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect(**extra: Any) -> dict[str, Any]:
    """Provenance of the current process; ``extra`` adds stage facts (seed, threads, datasets)."""
    prov: dict[str, Any] = {
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": package_versions(),
        "git": git_commit(),
        "config_sha256": os.environ.get(ENV_CONFIG_SHA256),
        "host": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu": cpuinfo.describe(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    prov.update(extra)
    return prov
