"""What the end of a run tells the user (the Snakefile's ``onsuccess:`` and ``onerror:``).

Every ``mobopt`` command prints a failure as one ``error: <message>`` line on
stderr, which the rules send into the job's log; :func:`failure_lines` brings that
line of each failed job to the terminal with the log's path, and says how to go
on. :func:`success_lines` says where the results are, which variants the
converter refused and which devices were skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mobopt.workflow.plan import Plan

#: Bytes read from the end of a log for its last error line.
TAIL_BYTES = 64 * 1024
#: Longest cause quoted per job.
CAUSE_CHARS = 300
#: Where the failures and their fixes are described.
TROUBLESHOOTING = "docs/troubleshooting.md"

#: A failed job: rule name, wildcards, log files.
Failed = tuple[str, dict[str, str], Sequence[str]]


def last_error(log: str | os.PathLike) -> str | None:
    """The job's own one-line cause: the last ``error:`` line of its log, else its last line (a traceback's end)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - TAIL_BYTES))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    if not lines:
        return None
    cause = next((line for line in reversed(lines) if line.startswith("error:")), lines[-1])
    return cause if len(cause) <= CAUSE_CHARS else cause[: CAUSE_CHARS - 4] + " ..."


def failed_from_logs(since: float, root: str | os.PathLike = "logs") -> list[Failed]:
    """Jobs whose log, written during this run, ends in an ``error:`` line (when Snakemake's own list is not at hand)."""
    found: list[Failed] = []
    for log in sorted(Path(root).rglob("*.log")) if Path(root).is_dir() else []:
        try:
            fresh = log.stat().st_mtime >= since
        except OSError:
            continue
        cause = last_error(log) if fresh else None
        if cause and cause.startswith("error:"):
            found.append((log.parent.name if log.parent != Path(root) else log.stem, {}, [str(log)]))
    return found


def _job(rule: str, wildcards: dict[str, str]) -> str:
    return f"{rule} ({', '.join(f'{k}={v}' for k, v in wildcards.items())})" if wildcards else rule


def start_line(log: str | Sequence[str] | None) -> str:
    """Where the details go while the terminal shows only progress (the profile's ``quiet: [rules]``)."""
    logs = [log] if isinstance(log, str) else list(log or [])
    where = f": {', '.join(map(str, logs))}" if logs else ""
    return f"Each job logs to logs/<stage>/...; every job's inputs, outputs and reason go to the run's log{where}"


def failure_lines(failed: Iterable[Failed] | None, since: float) -> list[str]:
    """The terminal summary of a failed run: each failed job with its cause and log, then how to go on.

    ``failed`` is Snakemake's list of failed jobs; None when it could not be had
    (the logs written since ``since`` are searched instead).
    """
    jobs = list(failed) if failed is not None else failed_from_logs(since)
    out = [f"{len(jobs)} job(s) failed:" if jobs else "The run failed:"]
    for rule, wildcards, logs in jobs:
        causes = [(str(path), last_error(path)) for path in logs]
        shown = [(path, cause) for path, cause in causes if cause] or causes
        if not shown:
            out.append(f"  {_job(rule, wildcards)}: no log; see the error above")
        for path, cause in shown:
            out.append(f"  {_job(rule, wildcards)}: {cause or 'its log is empty'}  [log: {path}]")
    if Path(".snakemake/slurm_logs").is_dir():
        out.append("On SLURM: each job's sbatch log is under .snakemake/slurm_logs/rule_<rule>/, its state in `sacct`.")
    out += [
        "Jobs that finished keep their outputs: fix the cause and run the same command again; it goes on from there.",
        "Tables and figures made so far are under reports/; the HTML report (`make report`) needs them all, so "
        "make it after a run that succeeds.",
        "If a run is killed (kill -9, a closed terminal), the next one stops with 'Directory cannot be locked': "
        "run the same command once with --unlock added.",
        f"More in {TROUBLESHOOTING}.",
    ]
    return out


def _not_supported(plan: Plan, root: Path) -> list[str]:
    out = []
    for experiment, variant in plan.runs():
        try:
            info: dict[str, Any] = json.loads((root / f"results/tflite/{experiment}/{variant}.json").read_text())
        except (OSError, ValueError):
            continue
        if info.get("supported") is False:
            reason = str(info.get("reason") or "").splitlines()[0:1]
            why = f": {reason[0][:120]}" if reason else ""
            out.append(f"  {experiment} {variant} ({info.get('unsupported_stage', 'conversion')}){why}")
    return out


def success_lines(plan: Plan, root: str | os.PathLike = ".") -> list[str]:
    """The terminal summary of a run that succeeded: where to look, what was not supported or skipped."""
    root = Path(root)
    out = []
    if (root / "reports/summary.html").exists():
        out.append("Results: reports/summary.html (start here), tables in reports/tables/, figures in reports/figures/; "
                   "`make report` (snakemake --report reports/report.html) bundles them into one HTML file.")
    else:
        out.append("Outputs are under results/ (the reports/ tables and figures are made by a run of the default target).")
    refused = _not_supported(plan, root)
    if refused:
        out.append("Variants the converter does not support (recorded as 'not supported' in the tables; not an error):")
        out += refused
    skipped = [d for d in plan.configured_devices if d not in plan.devices]
    for warning in plan.warnings:
        if warning.startswith("benchmark.devices") and skipped:
            out.append(f"Skipped device ({', '.join(skipped)}): {warning.split(': ', 1)[-1]}")
    return out
