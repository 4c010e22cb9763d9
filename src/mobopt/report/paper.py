"""The paper's published numbers (``data/paper.yaml``) and how ours compare with them.

The numbers are data in the repository, never typed into a table, and every
comparison is computed: for each of our experiments and devices, each
optimized variant against float32 of the same experiment, the relative change
of size, p50, p95 and load time, and the change of accuracy, next to the same
change in the paper's Table 2 rows for the same architecture and dataset (or
the dataset an experiment names as ``paper_dataset``: the paper's ViT rows are
on MNIST, and a ViT on Fashion-MNIST is set beside them).

The verdict, in plain words, per metric:

* **reproduced**: same direction as the paper (or both unchanged) and, for a
  change, within ``tolerance`` (10 percentage points) of the paper's size;
* **reproduced (stronger)** / **reproduced (weaker)**: the same direction, but
  larger / smaller than the paper's by more than the tolerance;
* **reversed**: the paper saw a change one way, we measured a significant
  change the other way (e.g. the paper's int8 ViT was faster than float, ours
  is slower);
* **no change**: the paper saw a change, ours is within noise (not
  significant, or under ``flat``);
* **not reproduced**: the paper saw no change and we measured a significant one;
* **no paper figure** / **not measured** when either side is missing.

A change of less than ``flat`` (3 %) counts as no change; our latency change
counts only when it is significant, i.e. the confidence intervals of the two
variants do not overlap (on a phone, without intervals: when it exceeds 5 %).
Accuracy changes are in percentage points, with 1 pp as "no change" (the
paper says only that quantization left accuracy "~unchanged").
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).parent / "data" / "paper.yaml"
TOLERANCE = 0.10
FLAT = 0.03
ACCURACY_FLAT_PP = 1.0
#: Where no confidence intervals exist (a phone's benchmark_model prints no runs), a latency change counts as
#: significant when larger than this.
SIGNIFICANT_WITHOUT_CI = 0.05
#: Metrics compared, with how each is read from our Table 2 row and from the paper's row.
METRICS = ("size", "p50", "p95", "load", "accuracy")


@cache
def published() -> dict[str, Any]:
    return yaml.safe_load(DATA.read_text())


def row(model: str, dataset: str, variant: str) -> dict[str, Any] | None:
    """The paper's Table 2 row for this architecture, dataset and variant, or None."""
    for r in published()["table2"]:
        if (r["model"], r["dataset"], r["variant"]) == (model, dataset, variant):
            return r
    return None


def accuracy_row(model: str, dataset: str, variant: str) -> dict[str, Any] | None:
    for r in published().get("accuracy", []):
        if (r["model"], r["dataset"], r["variant"]) == (model, dataset, variant):
            return r
    return None


def _paper_value(r: dict[str, Any] | None, metric: str) -> float | None:
    if r is None:
        return None
    return {"size": r["size"]["mb"], "p50": r["p50_ms"], "p95": r["p95_ms"], "load": r["load_ms"]}.get(metric)


def _sign(x: float, flat: float) -> int:
    return 0 if abs(x) < flat else (1 if x > 0 else -1)


def verdict(ours: float | None, paper: float | None, *, significant: bool = True, tolerance: float = TOLERANCE,
            flat: float = FLAT) -> str:
    """Plain-words verdict comparing our change with the paper's (both relative, or both in pp)."""
    if paper is None or (isinstance(paper, float) and math.isnan(paper)):
        return "no paper figure"
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return "not measured"
    sp = _sign(paper, flat)
    so = _sign(ours, flat) if significant else 0
    if sp == 0:
        return "reproduced" if so == 0 else "not reproduced"
    if so == 0:
        return "no change"
    if sp != so:
        return "reversed"
    if abs(ours - paper) <= tolerance:
        return "reproduced"
    return "reproduced (stronger)" if abs(ours) > abs(paper) else "reproduced (weaker)"


#: Every verdict :func:`verdict` can give, in the order a legend lists them.
VERDICTS = ("reproduced", "reproduced (stronger)", "reproduced (weaker)", "no change", "reversed", "not reproduced",
            "no paper figure", "not measured")


def legend() -> str:
    """How to read the verdicts, from the thresholds :func:`verdict` and :func:`compare` use."""
    return (f"Changes are relative to float32 of the same experiment (accuracy: percentage points). reproduced: "
            f"same direction as the paper's and within {TOLERANCE:.0%} of it (accuracy: {ACCURACY_FLAT_PP:g} pp), "
            f"or both unchanged (within {FLAT:.0%}; accuracy {ACCURACY_FLAT_PP:g} pp); reproduced (stronger) / "
            f"(weaker): the same direction, larger / smaller than the paper's by more than that; no change: the "
            f"paper saw a change, ours is within noise; reversed: a significant change in the other direction; "
            f"not reproduced: a significant change where the paper saw none. n.s.: not significant (p50/p95: the "
            f"confidence intervals overlap; where there are none, as on a phone, a change under "
            f"{SIGNIFICANT_WITHOUT_CI:.0%}). See src/mobopt/report/paper.py.")


def format_change(value, unit: str) -> str:
    """A change as the tables show it: ``+1.2 pp`` for accuracy, ``-43%`` for relative changes, ``--`` for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    return f"{value:+.1f} pp" if unit == "pp" else f"{value:+.0%}"


def _ci_apart(a: dict[str, Any], b: dict[str, Any], metric: str) -> bool | None:
    lo_a, hi_a = a.get(f"{metric}_ci_low_ms"), a.get(f"{metric}_ci_high_ms")
    lo_b, hi_b = b.get(f"{metric}_ci_low_ms"), b.get(f"{metric}_ci_high_ms")
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (lo_a, hi_a, lo_b, hi_b)):
        return None
    return hi_a < lo_b or hi_b < lo_a


def compare(rows: list[dict[str, Any]], baseline: str = "float32") -> list[dict[str, Any]]:
    """Paper vs reproduced, one record per (experiment, device, optimized variant, metric).

    ``rows`` are Table 2 records (CSV columns) with ``model_name`` and
    ``dataset`` added, so they can be matched to the paper's rows.
    """
    out = []
    by_key = {(r["experiment"], r["device"], r["variant"]): r for r in rows}
    for r in rows:
        if r["variant"] == baseline or r.get("status", "ok") != "ok":
            continue
        base = by_key.get((r["experiment"], r["device"], baseline))
        if base is None or base.get("status", "ok") != "ok":
            continue
        paper_dataset = r.get("paper_dataset") or r["dataset"]
        p_opt = row(r["model_name"], paper_dataset, r["variant"])
        p_base = row(r["model_name"], paper_dataset, baseline)
        for metric in METRICS:
            rec = {"experiment": r["experiment"], "model": r["model"], "device": r["device"], "variant": r["variant"],
                   "baseline": baseline, "metric": metric,
                   "paper_rows": " vs ".join(x["row"] for x in (p_opt, p_base) if x) or None}
            if metric == "accuracy":
                ours_base, ours_opt = base["accuracy"] * 100, r["accuracy"] * 100
                ours_change = ours_opt - ours_base
                pa = accuracy_row(r["model_name"], paper_dataset, r["variant"])
                paper_change = pa.get("accuracy_change_pp") if pa else None
                rec.update(unit="pp", ours_baseline=ours_base, ours_optimized=ours_opt, ours_change=ours_change,
                           paper_baseline=None, paper_optimized=None, paper_change=paper_change,
                           paper_note=pa.get("accuracy_note") if pa else None, significant=True,
                           verdict=verdict(ours_change, paper_change, flat=ACCURACY_FLAT_PP, tolerance=ACCURACY_FLAT_PP))
            else:
                col = {"size": "size_bytes", "p50": "p50_ms", "p95": "p95_ms", "load": "load_ms"}[metric]
                ours_base, ours_opt = base.get(col), r.get(col)
                ours_change = (ours_opt / ours_base - 1) if ours_base and ours_opt is not None else None
                pb, po = _paper_value(p_base, metric), _paper_value(p_opt, metric)
                paper_change = (po / pb - 1) if pb and po is not None else None
                significant = True
                if metric in ("p50", "p95"):
                    apart = _ci_apart(base, r, metric)
                    significant = apart if apart is not None else (ours_change is not None
                                                                   and abs(ours_change) > SIGNIFICANT_WITHOUT_CI)
                rec.update(unit="relative", ours_baseline=ours_base, ours_optimized=ours_opt, ours_change=ours_change,
                           paper_baseline=pb, paper_optimized=po, paper_change=paper_change, paper_note=None,
                           significant=significant, verdict=verdict(ours_change, paper_change, significant=significant))
            out.append(rec)
    return out
