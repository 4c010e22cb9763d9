"""Tables built only from result JSONs, so every number is traceable to a file.

Table 2 follows the paper's columns (size, RAM, CPU %, p95/p90/p50/p10
latency, load time) and adds what a reader needs to judge them: the variant,
the device, gzip size, accuracy and loss.  RAM is the benchmark process's
peak resident set size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mobopt.atomic import write_text

#: CSV column -> the paper's header in the Markdown table.
PAPER_COLUMNS = {
    "model": "model", "variant": "variant", "device": "device", "size": "size", "ram_mb": "RAM MB",
    "cpu_percent": "CPU %", "p95_ms": "p95", "p90_ms": "p90", "p50_ms": "p50", "p10_ms": "p10",
    "load_ms": "load ms", "accuracy": "accuracy", "loss": "loss",
}


def human_size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} KB"


def _load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def table2(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per entry: ``{experiment, label, variant, device, bench, tflite_info, eval}`` (paths)."""
    rows = []
    for e in entries:
        bench, info, ev = _load(e["bench"]), _load(e["tflite_info"]), _load(e["eval"])
        rows.append({
            "experiment": e["experiment"], "model": e["label"], "variant": e["variant"], "device": e["device"],
            "size": human_size(info["size_bytes"]), "size_bytes": info["size_bytes"],
            "size_gzip_bytes": info["size_gzip_bytes"], "ram_mb": bench["peak_rss_mb"],
            "cpu_percent": bench["cpu_percent"], "p95_ms": bench["p95_ms"], "p90_ms": bench["p90_ms"],
            "p50_ms": bench["p50_ms"], "p10_ms": bench["p10_ms"], "load_ms": bench["load_ms"],
            "accuracy": ev["accuracy"], "loss": ev["loss"], "iterations": bench["iterations"],
        })
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame) -> str:
    shown = df[list(PAPER_COLUMNS)].rename(columns=PAPER_COLUMNS)
    return shown.to_markdown(index=False, floatfmt=".4g") + "\n"


def write_table2(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    df = table2(entries)
    write_text(out_csv, df.to_csv(index=False))
    write_text(out_md, to_markdown(df))
    return df
