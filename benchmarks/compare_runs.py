"""Compare two result trees of the same config: every model file byte for byte, every JSON and CSV value.

Use: run the same config (e.g. the demo) with two versions of the code into two folders, then

    python benchmarks/compare_runs.py BEFORE_DIR AFTER_DIR

It prints one line per file that differs and a summary, and exits 1 if anything
that must be reproducible differs.  What is allowed to differ between two runs,
and is therefore left out: measured times and rates (any key ending in ``_ms``,
``_s``, ``seconds``, ``_gflops``, ``_gbs``, ``_mb``, CPU %, raw latencies,
confidence intervals and flags derived from them), provenance (versions, git
commit, host, timestamps), and absolute paths.  The graph-optimized variant is
chosen by measured latency among candidates that meet the accuracy budget, so
when the two runs chose differently the files downstream of that choice are
reported as "measured choice differs" rather than as a failure.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import sys
from pathlib import Path

#: Keys whose values are measurements of time, memory or load, or records of where and when.
VOLATILE = re.compile(
    r"(_ms|_s|_us|seconds|_gflops|_gbs|_mb|_mib|cpu_percent|latenc|provenance|_ci|ci_|spread|flags|flagged|"
    r"crosscheck|op_profile|repeats|timestamp|date|time|host|commit|cores|pid|job|runs_pooled|stopped_by|"
    r"relative_difference|within_tolerance|tolerance|memory|rss|peak|load|first_inference|iterations_done|"
    r"candidates|order|reorder|p\d+|mean|std|min$|max$|speed|img_per|throughput|elapsed|duration|_unix|share)",
    re.IGNORECASE)
#: Folders whose files only exist to measure (logs, Snakemake's job statistics).
SKIP_DIRS = {"logs", "jobstats", ".snakemake"}
#: Tables whose rows are ordered by measured time.
SKIP_FILES = {"op_profile.csv", "op_profile.md"}
#: Rows of the paper-vs-reproduced table that compare measured times.
TIMED_METRICS = {"p50", "p95", "load"}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _diff(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if VOLATILE.search(str(key)):
                continue
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'after' if key not in a else 'before'}")
                continue
            _diff(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} items before, {len(b)} after")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{where}[{i}]", out)
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return
    elif isinstance(a, str) and isinstance(b, str) and ("/" in a or "/" in b):
        if Path(a).name != Path(b).name:  # paths differ by folder between the two runs
            out.append(f"{where}: {a!r} != {b!r}")
    elif a != b:
        out.append(f"{where}: {a!r} != {b!r}")


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def compare(before: Path, after: Path) -> tuple[int, list[str], list[str]]:
    """(files compared, differences, differences explained by a measured choice)."""
    files = sorted(p.relative_to(before) for p in before.rglob("*") if p.is_file()
                   and not SKIP_DIRS & set(p.relative_to(before).parts) and p.name not in SKIP_FILES)
    diffs: list[str] = []
    measured_choice: set[str] = set()
    for sel in before.glob("results/graph_opt/*/selection.json"):
        other = after / sel.relative_to(before)
        chosen = [{k: json.loads(f.read_text())["chosen"].get(k) for k in ("k", "sha256")} for f in (sel, other)
                  if f.exists()]
        if len(chosen) == 2 and chosen[0] != chosen[1]:
            measured_choice.add(sel.parent.name)
    explained: list[str] = []
    compared = 0
    for rel in files:
        a, b = before / rel, after / rel
        if rel.suffix not in {".tflite", ".json", ".csv", ".npy", ".keras", ".gz"}:
            continue
        compared += 1
        found: list[str] = []
        if not b.exists():
            found.append(f"{rel}: missing after")
        elif rel.suffix in {".tflite", ".npy", ".gz"}:
            if _sha(a) != _sha(b):
                found.append(f"{rel}: bytes differ")
        elif rel.suffix == ".keras":
            continue  # a zip with timestamps inside; the weights are compared through the .tflite files
        elif rel.suffix == ".json":
            _diff(json.loads(a.read_text()), json.loads(b.read_text()), str(rel), found)
        elif rel.suffix == ".csv":
            ra, rb = ([r for r in _csv_rows(f) if r.get("metric") not in TIMED_METRICS] for f in (a, b))
            _diff(ra, rb, str(rel), found)
        target = explained if any(f"/{name}/" in f"/{rel}" and "graph_opt" in f"{rel}{found}" for name in measured_choice
                                  ) else diffs
        target += found
    return compared, diffs, explained


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path, help="result tree of the first run (holds results/, data/, reports/)")
    p.add_argument("after", type=Path, help="result tree of the second run")
    a = p.parse_args(argv)
    compared, diffs, explained = compare(a.before, a.after)
    for line in diffs:
        print(f"DIFFERS  {line}")
    for line in explained:
        print(f"measured choice differs  {line}")
    tflites = sorted(str(f.relative_to(a.before)) for f in a.before.glob("results/**/*.tflite"))
    print(f"{compared} files compared ({len(tflites)} .tflite); {len(diffs)} differences"
          f"{f', {len(explained)} from a different measured choice' if explained else ''}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
