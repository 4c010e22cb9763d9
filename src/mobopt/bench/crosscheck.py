"""Cross-check our latency against LiteRT's own benchmark tool on the same model and cores.

A harness can be wrong in ways its own tests do not see (timing the wrong
thing, a delegate silently off, Python overhead inside the timed region), so
each host measurement is compared with an independent instrument: the tool
the ai-edge-litert wheel ships, ``python -m
ai_edge_litert.tools.benchmark_litert_model``.  It is run in a fresh process
pinned to the device's cores with the same thread, warm-up and run counts,
and its median is set beside our pooled p50.

Two caveats recorded with the result: the tool runs the model through
LiteRT's newer ``CompiledModel`` API (ours through the classic
``Interpreter``), so a difference can be real rather than an error of either
harness; and it rounds its statistics to 0.01 ms, which limits the comparison
for very fast models.  The two p50s therefore agree when they differ by at most
3 % *or* by at most half the tool's resolution (0.005 ms), whichever is larger;
when the tool's median rounds to 0.00 ms there is no relative difference to
compute, so ``relative_difference`` is null and ``compared_at`` says the check
was made in absolute terms at the tool's resolution.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError
from mobopt.bench import devices

TOOL = "ai_edge_litert.tools.benchmark_litert_model"
#: Relative p50 difference above which the cross-check counts as failed (the harness's target).
TOLERANCE = 0.03
#: The tool prints and stores its statistics rounded to this many milliseconds.
RESOLUTION_MS = 0.01


def run_tool(model_path: str | Path, device: str, *, runs: int, warmup: int, timeout: float = 1800.0) -> dict[str, Any]:
    """Run the wheel's benchmark tool on ``model_path`` pinned like ``device``; returns its result JSON."""
    dev = devices.get(device)
    if dev.kind != "host":
        raise devices.DeviceError(f"device {device}: the cross-check runs on host devices only")
    cores = dev.cores()
    with tempfile.TemporaryDirectory(prefix="mobopt-crosscheck-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", TOOL, f"--model={model_path}", f"--num_runs={runs}", f"--warmup_runs={warmup}",
               f"--num_threads={dev.threads}", f"--result_json={out}"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                                  preexec_fn=lambda: os.sched_setaffinity(0, cores))
        except subprocess.TimeoutExpired:
            raise MobOptError(f"{model_path}: {TOOL} did not finish within {timeout:g} s") from None
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout)[-1500:]
            raise MobOptError(f"{model_path}: {TOOL} failed with exit code {proc.returncode}: {tail}")
        result = json.loads(out.read_text())
    result["cores"] = cores
    return result


def compare(ours_p50_ms: float, tool_results: list[dict[str, Any]]) -> dict[str, Any]:
    """Our p50 next to the median of the tool's medians over its runs, the relative difference and the verdict.

    The tool runs once per repeat, interleaved with our measurements, so a
    disturbance of the machine hits both instruments alike.
    """
    medians = [float(r["latency"]["median_ms"]) for r in tool_results]
    theirs = float(np.median(medians))
    gap = ours_p50_ms - theirs
    # The looser of 3 % and half the tool's rounding step, in milliseconds.
    allowed_ms = max(TOLERANCE * theirs, RESOLUTION_MS / 2)
    within = abs(gap) <= allowed_ms + 1e-12
    if theirs >= RESOLUTION_MS:
        diff: float | None = gap / theirs
        tolerance: float | None = allowed_ms / theirs
        compared_at = "relative"
    else:  # the tool printed 0.00 ms: below its resolution, no ratio exists
        diff = tolerance = None
        compared_at = f"absolute, at the tool's {RESOLUTION_MS:g} ms resolution (its p50 rounds to 0)"
    last = tool_results[-1]
    return {
        "tool": f"python -m {TOOL} (LiteRT CompiledModel API)",
        "tool_p50_ms": theirs,
        "tool_p50_runs_ms": medians,
        "tool_p5_ms": float(np.median([r["latency"]["p5_ms"] for r in tool_results])),
        "tool_p95_ms": float(np.median([r["latency"]["p95_ms"] for r in tool_results])),
        "tool_mean_ms": float(np.median([r["latency"]["avg_ms"] for r in tool_results])),
        "tool_runs": last["latency"].get("num_runs"),
        "tool_init_ms": float(np.median([r["latency"]["init_ms"] for r in tool_results])),
        "tool_fully_accelerated": last.get("fully_accelerated"),
        "ours_p50_ms": ours_p50_ms,
        "absolute_difference_ms": gap,
        "relative_difference": diff,
        "tolerance": tolerance,
        "tolerance_ms": allowed_ms,
        "compared_at": compared_at,
        "within_tolerance": bool(within),
        "resolution_ms": RESOLUTION_MS,
        "cores": last.get("cores"),
    }
