"""Parse the output of LiteRT's C++ ``benchmark_model`` tool into our result schema.

The tool (``tflite/tools/benchmark`` in LiteRT, the same code on Android and
on desktop) logs, among other lines, and each possibly behind an ``INFO: ``
prefix:

* ``Initialized session in 36.4ms.``: model load plus delegate set-up;
* one statistics line per phase (warm-up, then the timed runs), in
  microseconds: ``count=1200 first=... curr=... min=... max=... avg=... std=...
  p5=... median=... p95=...`` (``StatWithPercentiles::OutputToStream``;
  percentiles are the nearest rank below, no interpolation);
* ``Inference timings in us: Init: ..., First inference: ..., Warmup (avg): ...,
  Inference (avg): ...``;
* ``Memory footprint delta from the start of the tool (MB): init=... overall=...``
  and, with ``--report_peak_memory_footprint``, ``Overall peak memory footprint
  (MB) via periodic monitoring: ...``;
* with ``--enable_op_profiling=true``, tables per phase: ``Run Order``, ``Top by
  Computation Time`` and ``Summary by node type`` (tab-separated, a header row
  of ``[column]`` names).

It prints no per-run latencies, so p10, p90 and p99 cannot be computed from
its output; they are recorded as unavailable rather than estimated.
"""

from __future__ import annotations

import re
from typing import Any

from mobopt import MobOptError

_PREFIX = re.compile(r"^(?:INFO|WARNING|WARN|ERROR|VERBOSE):\s*")
_STATS = re.compile(r"count=(?P<count>\d+)(?P<rest>.*)")
_KV = re.compile(r"(\w+)=(-?[\d.]+(?:e[+-]?\d+)?)")
_SECTION = re.compile(r"^=+\s*(?P<name>[^=]+?)\s*=+$")
_NUMBER = re.compile(r"^-?[\d.]+%?$")

#: Markers of a failed run in the tool's log.
FAILURE_MARKERS = ("Benchmarking failed", "Failed to mmap model", "Failed to load model", "Failed to apply",
                   "Failed to allocate tensors", "Failed to invoke", "Aborted", "Segmentation fault")


def _lines(text: str) -> list[str]:
    return [_PREFIX.sub("", line.rstrip("\r")) for line in text.splitlines()]


def _stats(line: str) -> dict[str, float] | None:
    m = _STATS.search(line)
    if not m:
        return None
    values = {k: float(v) for k, v in _KV.findall(line)}
    values["count"] = int(m.group("count"))
    return values


def _column(cell: str) -> str:
    """``[avg ms]`` -> ``avg_ms``, ``[%]`` -> ``pct``, ``[cdf%]`` -> ``cdf_pct``, ``[Node type]`` -> ``node_type``."""
    name = cell.strip().strip("[]").strip().lower()
    if name == "%":
        return "pct"
    return name.replace(" %", "%").replace("%", "_pct").replace(" ", "_")


def _table(lines: list[str], start: int) -> tuple[list[dict[str, Any]], int]:
    """Rows of the tab-separated table whose ``[header]`` row is at ``start``; returns (rows, index after it)."""
    header = [_column(c) for c in lines[start].split("\t") if c.strip()]
    rows = []
    i = start + 1
    while i < len(lines) and lines[i].strip() and not _SECTION.match(lines[i].strip()):
        cells = [c.strip() for c in lines[i].split("\t") if c.strip()]
        if len(cells) == len(header):
            row: dict[str, Any] = {}
            for key, cell in zip(header, cells, strict=True):
                if _NUMBER.match(cell):
                    value = float(cell.rstrip("%"))
                    row[key] = value / 100.0 if cell.endswith("%") else value
                else:
                    row[key] = cell.strip("[]")
            rows.append(row)
        i += 1
    return rows, i


def parse(text: str, *, label: str = "benchmark_model") -> dict[str, Any]:
    """What one run of ``benchmark_model`` measured (times in ms, memory in MB).

    Raises :class:`MobOptError` naming ``label`` when the log shows a failure
    or lacks the timed-run statistics.
    """
    lines = _lines(text)
    failures = [ln for ln in lines if any(m in ln for m in FAILURE_MARKERS)]
    phases = [s for s in (_stats(ln) for ln in lines) if s is not None]
    if failures or len(phases) < 2:
        tail = "\n".join(ln for ln in lines if ln.strip())[-1500:]
        reason = failures[0] if failures else "no statistics of the timed runs in its output"
        raise MobOptError(f"{label}: benchmark_model failed ({reason}). Output:\n{tail}")
    warm, timed = phases[0], phases[1]
    out: dict[str, Any] = {
        "iterations": timed["count"],
        "warmup_runs": warm["count"],
        "first_ms": timed.get("first", 0.0) / 1e3,
        "min_ms": timed["min"] / 1e3, "max_ms": timed["max"] / 1e3,
        "mean_ms": timed["avg"] / 1e3, "std_ms": timed.get("std", 0.0) / 1e3,
        "p5_ms": timed["p5"] / 1e3 if "p5" in timed else None,
        "p50_ms": timed["median"] / 1e3 if "median" in timed else None,
        "p95_ms": timed["p95"] / 1e3 if "p95" in timed else None,
        "p10_ms": None, "p90_ms": None, "p99_ms": None,
        "first_inference_ms": warm.get("first", 0.0) / 1e3,
        "warmup_mean_ms": warm["avg"] / 1e3,
    }
    for ln in lines:
        if m := re.search(r"Initialized session in ([\d.]+)\s*ms", ln):
            out["load_ms"] = float(m.group(1))
        elif m := re.search(r"input model file size \(MB\):\s*([\d.]+)", ln):
            out["model_size_mb"] = float(m.group(1))
        elif m := re.search(r"First inference:\s*([\d.]+)", ln):
            out["first_inference_ms"] = float(m.group(1)) / 1e3
        elif m := re.search(r"Memory footprint delta from the start of the tool \(MB\):\s*init=([\d.]+)\s+overall=([\d.]+)", ln):
            out["memory_init_delta_mb"], out["memory_overall_delta_mb"] = float(m.group(1)), float(m.group(2))
        elif m := re.search(r"Overall peak memory footprint \(MB\) via periodic monitoring:\s*([\d.]+)", ln):
            out["tool_peak_memory_mb"] = float(m.group(1))
    if out.get("p50_ms") is None:
        raise MobOptError(f"{label}: benchmark_model printed no percentiles (an old version?); use a current "
                          "LiteRT benchmark_model")
    profile = parse_op_profile(lines)
    if profile:
        out["op_profile"] = profile
    return out


def parse_op_profile(lines: list[str] | str) -> dict[str, Any] | None:
    """The op-profiling tables of the timed runs (the last ``Run Order`` and ``Summary by node type``), or None."""
    if isinstance(lines, str):
        lines = _lines(lines)
    start = 0
    for i, ln in enumerate(lines):  # newer versions label the phases; the timed runs' tables come last
        if "Profiling Info for Regular Benchmark Runs" in ln:
            start = i
    tables: dict[str, list[dict[str, Any]]] = {}
    i = start
    while i < len(lines):
        m = _SECTION.match(lines[i].strip())
        if m and i + 1 < len(lines) and "[" in lines[i + 1]:
            rows, i = _table(lines, i + 1)
            tables[m.group("name").lower()] = rows
            continue
        i += 1
    if "run order" not in tables and "summary by node type" not in tables:
        return None
    return {
        "method": "LiteRT benchmark_model --enable_op_profiling (in-graph, per node)",
        "run_order": tables.get("run order", []),
        "by_node_type": tables.get("summary by node type", []),
    }
