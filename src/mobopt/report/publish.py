"""Publish a finished run's tables, figures and summary into the repository, dated and labelled by host.

Results in ``docs/results/`` are produced by the workflow and never typed:
this copies what a run wrote (``reports/tables``, ``reports/figures``,
``reports/summary.html``) from a results directory into one folder named by
date, config and CPU, and writes that folder's README from the result files
themselves: the date, the host's CPU model and instruction-set features, the
git commit and packages, the protocol, the headline table and every figure.
Running it again on the same results directory gives the same folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from mobopt import MobOptError
from mobopt.common import cpuinfo
from mobopt.common.atomic import write_text

#: Tables copied (Markdown, for reading on a forge, and CSV, for reuse).
TABLES = ("table1", "table2", "paper_vs_reproduced", "variants", "accuracy", "op_profile", "table2_paper", "cost",
          "second_study", "int8_by_isa")
#: Columns of the headline table in the folder's README.
HEADLINE = ["model", "variant", "device", "size", "accuracy", "p50_ms", "p95_ms", "partitions"]


def _provenance(results: Path) -> dict[str, Any]:
    for path in sorted((results / "results" / "bench").glob("*/*/*.json")):
        prov = json.loads(path.read_text()).get("provenance")
        if prov and prov.get("cpu"):
            return prov
    raise MobOptError(f"{results}/results/bench: no benchmark result with the CPU's description; run the workflow "
                      "(benchmarks included) with this version first")


def folder_name(prov: dict[str, Any], config_name: str) -> str:
    """``<date>-<config>-<cpu model>-<int8 dot product or not>``, e.g. ``2026-12-01-fashion_mnist-amd-epyc-vnni``."""
    date = (prov.get("created_utc") or _dt.date.today().isoformat())[:10]
    cpu = prov["cpu"]
    model = re.sub(r"[^a-z0-9]+", "-", str(cpu.get("model", "cpu")).lower()).strip("-")
    isa = cpu.get("isa") or []
    tag = ("vnni" if "avx512_vnni" in isa or "avx_vnni" in isa else "dotprod" if "asimddp" in isa
           else "avx512" if "avx512f" in isa else "avx2" if "avx2" in isa else cpu.get("arch", "cpu"))
    return f"{date}-{config_name}-{model}-{tag}"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if pd.isna(v) else f"{v:.4g}"
    return "" if v is None else str(v)


def readme(prov: dict[str, Any], table2: pd.DataFrame, figures: list[str], config_name: str, command: str) -> str:
    cpu = prov["cpu"]
    git = prov.get("git") or {}
    packages = ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v)
    rows = table2[[c for c in HEADLINE if c in table2]].to_dict("records")
    head = "| " + " | ".join(HEADLINE) + " |\n|" + "---|" * len(HEADLINE) + "\n"
    body = "".join("| " + " | ".join(_fmt(r.get(c)) for c in HEADLINE) + " |\n" for r in rows)
    figs = "".join(f"![{f}](figures/{f})\n\n" for f in figures)
    return (f"# {config_name}: results of {(prov.get('created_utc') or '')[:10]}\n\n"
            f"Produced by the workflow (`{command}`) and copied here by `mobopt publish-results`; nothing is typed.\n\n"
            f"- CPU: {cpuinfo.summary(cpu)}; {prov.get('cpu_count')} CPUs seen by the jobs\n"
            f"- git commit: {git.get('commit')}{' (with uncommitted changes)' if git.get('dirty') else ''}\n"
            f"- packages: {packages}; Python {prov.get('python')}\n"
            f"- platform: {prov.get('platform')}\n\n"
            "Latency depends on the CPU's instruction set (int8 above all): compare these figures only with runs on a "
            "CPU with the same features.\n\n"
            "## Headline (Table 2 columns)\n\n" + head + body +
            "\nEvery table: `tables/` (Markdown and CSV); what each row means: `summary.html` and the report captions.\n\n"
            "## Figures\n\n" + figs)


def publish(results: str | Path, out_root: str | Path, config_name: str, command: str) -> Path:
    """Copy a run's tables, figures and summary into ``out_root/<folder_name>``; returns that folder."""
    results, out_root = Path(results), Path(out_root)
    reports = results / "reports"
    if not (reports / "tables" / "table2.csv").exists():
        raise MobOptError(f"{reports}/tables/table2.csv: not found; run the workflow to the end in {results} first")
    prov = _provenance(results)
    dest = out_root / folder_name(prov, config_name)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "tables").mkdir(parents=True)
    (dest / "figures").mkdir()
    searches = sorted(p.stem for p in (reports / "tables").glob("search_*.md"))  # one per device
    for name in (*TABLES, *searches):
        for ext in ("md", "csv"):
            src = reports / "tables" / f"{name}.{ext}"
            if src.exists():
                shutil.copy2(src, dest / "tables" / src.name)
    figures = sorted(p.name for p in (reports / "figures").glob("*.png"))
    for name in figures:
        shutil.copy2(reports / "figures" / name, dest / "figures" / name)
    if (reports / "summary.html").exists():
        shutil.copy2(reports / "summary.html", dest / "summary.html")
    (dest / "provenance.json").write_text(json.dumps(prov, indent=2, sort_keys=True) + "\n")
    table2 = pd.read_csv(reports / "tables" / "table2.csv")
    write_text(dest / "README.md", readme(prov, table2, figures, config_name, command))
    return dest
