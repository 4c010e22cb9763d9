"""The report's landing page: what was reproduced, in plain words, and how the run was made.

Snakemake's report renders a static description (workflow/report/workflow.rst)
that cannot read results, so the verdicts live in a page of their own, built
from the paper-vs-reproduced table and the results' provenance, and bundled
into the report as its first item.  Self-contained HTML (no scripts, no
external files), so it opens anywhere.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mobopt.common import cpuinfo
from mobopt.common.atomic import write_text
from mobopt.report import explain, isa, paper

CSS = r"""
body { font-family: system-ui, sans-serif; max-width: 70em; margin: 1.5em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
td.reproduced, td.reproduced-stronger { background: #e5f5e0; } td.reversed { background: #fde0dd; }
td.not-reproduced, td.reproduced-weaker, td.no-change { background: #fff3cd; }
.note { color: #555; font-size: 0.9em; } pre { background: #f7f7f7; padding: 0.8em; overflow: auto; font-size: 0.8em; }
"""


def _verdict_cell(verdict: str) -> str:
    css = re.sub(r"[^a-z]+", "-", verdict.lower()).strip("-")
    return f'<td class="{css}">{html.escape(verdict)}</td>'


def render(verdicts: pd.DataFrame, table2: pd.DataFrame, provenance: dict[str, Any], config: dict[str, Any],
           isa_table: pd.DataFrame | None = None) -> str:
    pub = paper.published()
    counts = verdicts["verdict"].value_counts().to_dict() if len(verdicts) else {}
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>mobopt: paper vs reproduced</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>ML models and optimization strategies on mobile devices, reproduced</h1>",
             f"<p>Reproduction of {html.escape(pub['citation'])}. The paper measured on a {html.escape(pub['device'])}; "
             "ours ran on the devices named in each row. Every number below is computed from the result files of "
             "this run (Tables 1 and 2, the figures and their JSON sources are in the report's other sections).</p>",
             "<h2>Verdicts</h2><p>" + ", ".join(f"<b>{n}</b> {html.escape(v)}" for v, n in sorted(counts.items()))
             + " (one per optimized variant, metric and device).</p>",
             "<table><tr><th>model</th><th>optimized</th><th>metric</th><th>paper</th><th>ours</th><th>verdict</th>"
             "<th>device</th></tr>"]
    for _, r in verdicts.iterrows():
        paper_cell = paper.format_change(r["paper_change"], r["unit"])
        if paper_cell == "--" and isinstance(r.get("paper_note"), str):
            paper_cell = r["paper_note"]
        ours = paper.format_change(r["ours_change"], r["unit"]) + ("" if r["significant"] else " (n.s.)")
        parts.append(f"<tr><td>{html.escape(str(r['model']))}</td><td>{html.escape(r['variant'])} vs "
                     f"{html.escape(r['baseline'])}</td><td>{html.escape(r['metric'])}</td><td>{html.escape(paper_cell)}</td>"
                     f"<td>{html.escape(ours)}</td>{_verdict_cell(r['verdict'])}<td>{html.escape(r['device'])}</td></tr>")
    parts.append(f"</table><p class='note'>{html.escape(paper.legend())}</p>")
    parts.append("<h2>The paper's headline claims</h2><ul>"
                 + "".join(f"<li>{html.escape(c)}</li>" for c in pub.get("claims", [])) + "</ul>")
    cpu = provenance.get("cpu") or {}
    if cpu:
        parts.append("<h2>Why each variant is fast or slow here</h2>"
                     f"<p>Host CPU: {html.escape(cpuinfo.summary(cpu))}. int8 speed depends on the int8 dot-product "
                     "instructions: the same model can be faster in int8 on one CPU and slower on another.</p><ul>")
        host_devices = {d for d in table2.get("device", []) if str(d).startswith("host")}
        rows = [{k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in r.items()}
                for r in table2.to_dict("records")]
        for model, device, why in explain.sentences(rows, {d: cpu for d in host_devices}):
            parts.append(f"<li>{html.escape(model)}, {html.escape(device)}: {html.escape(why)}</li>")
        parts.append("</ul>")
    if isa_table is not None and len(isa_table):
        parts.append("<h2>Does int8 pay here? Per instruction set</h2>"
                     + isa.wide(isa_table).to_html(index=False, escape=True, border=0)
                     + f"<p class='note'>{html.escape(isa.LEGEND)}</p>")
    flagged = table2[table2["flags"].fillna("") != ""] if "flags" in table2 else table2.iloc[0:0]
    if len(flagged):
        parts.append("<h2>Measurements flagged by the protocol</h2><ul>" + "".join(
            f"<li>{html.escape(str(r['model']))} {html.escape(r['variant'])} on {html.escape(r['device'])}: "
            f"{html.escape(r['flags'])}</li>" for _, r in flagged.iterrows()) + "</ul>")
    git = provenance.get("git", {})
    packages = provenance.get("packages", {})
    meta = [("git commit", f"{git.get('commit')}{' (uncommitted changes)' if git.get('dirty') else ''}"),
            ("config sha256", provenance.get("config_sha256")), ("python", provenance.get("python")),
            *((name, version) for name, version in packages.items()),
            ("CPU", cpuinfo.summary(cpu) if cpu else provenance.get("cpu_model")),
            ("CPUs", provenance.get("cpu_count")), ("host", provenance.get("host")),
            ("platform", provenance.get("platform")), ("SLURM job", provenance.get("slurm_job_id") or "none"),
            ("benchmark devices", ", ".join(config.get("benchmark", {}).get("devices", []))),
            ("benchmark protocol", "{repeats} repeats x {iterations} runs, warm-up {warmup}".format(
                **{k: config.get("benchmark", {}).get(k, "?") for k in ("repeats", "iterations", "warmup")}))]
    parts.append("<h2>Run metadata</h2><table>" + "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta) + "</table>")
    parts.append("<h2>Configuration</h2><pre>" + html.escape(yaml.safe_dump(config, sort_keys=False)) + "</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write(verdicts_csv: str | Path, table2_csv: str | Path, bench_json: str | Path, config: dict[str, Any],
          out_html: str | Path, isa_csv: str | Path | None = None) -> None:
    provenance = json.loads(Path(bench_json).read_text()).get("provenance", {})
    verdicts = pd.read_csv(verdicts_csv)
    table2 = pd.read_csv(table2_csv, keep_default_na=True)
    isa_table = pd.read_csv(isa_csv) if isa_csv else None
    write_text(out_html, render(verdicts, table2, provenance, config, isa_table))
