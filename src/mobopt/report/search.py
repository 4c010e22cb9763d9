"""The accuracy-gated search: per device, which candidate to ship for each trained model.

Candidates are every measured variant of a model's *family*: the experiment trained from scratch
(the root) and every experiment made from it (structurally pruned: ``structured_pruning.from``;
distilled: ``distillation.teacher``), transitively, each in all its variants.  The workflow has
already converted, evaluated (test split) and benchmarked each of them under one protocol, so the
search reads results; it measures nothing itself and imports no TensorFlow.

Against the root's float32 variant on the same device (the reference), a candidate *meets the
goal* when its accuracy is at most ``accuracy_budget_pp`` points below the reference's and, if
``max_latency_ratio`` is set, its latency (``latency_key``) is at most that fraction of the
reference's.  The chosen candidate is the fastest that meets the goal (ties: the more accurate),
as Olive's and NNCF's accuracy-aware searches do.  When none meets it (a latency goal nobody
reaches), every candidate is still written and the *closest* is named: the one with the smallest
summed relative shortfall, ``max(0, drop - budget) / budget + max(0, ratio - goal) / goal``.
The Pareto front is over accuracy (higher), latency and size (lower): a candidate is on it when no
other is at least as good on all three and better on one.

Accuracy is measured once, on the host.  An emulated CPU checks that a candidate's output there is
the host's (:mod:`mobopt.bench.emulated`); one whose output differs (ONNX Runtime's static int8 on
an x86 without VNNI, whose 16-bit sums saturate) has an accuracy there that nobody measured, so it
cannot meet the goal on that device (``output_matches_host`` false), though it stays in the table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SEARCH_DEFAULTS: dict[str, Any] = {"accuracy_budget_pp": 0.3, "latency_key": "p50_ms", "max_latency_ratio": None}
COLUMNS = ["family", "experiment", "variant", "accuracy", "drop_pp", "latency_ms", "latency_ratio", "size_bytes",
           "size_ratio", "output_matches_host", "meets_goal", "on_front", "choice"]


def pareto_mask(df: pd.DataFrame) -> list[bool]:
    """Rows no other row dominates on (accuracy up, latency down, size down)."""
    rows = df[["accuracy", "latency_ms", "size_bytes"]].to_numpy(dtype=float)
    out = []
    for i, (acc, lat, size) in enumerate(rows):
        dominated = False
        for j, (a2, l2, s2) in enumerate(rows):
            if j != i and a2 >= acc and l2 <= lat and s2 <= size and (a2 > acc or l2 < lat or s2 < size):
                dominated = True
                break
        out.append(not dominated)
    return out


def choose(candidates: pd.DataFrame, options: dict[str, Any]) -> pd.DataFrame:
    """One family's candidates (``accuracy``, ``latency_ms``, ``size_bytes`` and the reference's in ``ref_*``)
    with the drop, ratios, whether each meets the goal, the front and the choice (chosen / closest / "")."""
    o = {**SEARCH_DEFAULTS, **options}
    budget, goal = float(o["accuracy_budget_pp"]), o["max_latency_ratio"]
    df = candidates.copy()
    df["drop_pp"] = 100.0 * (df["ref_accuracy"] - df["accuracy"])
    df["latency_ratio"] = df["latency_ms"] / df["ref_latency_ms"]
    df["size_ratio"] = df["size_bytes"] / df["ref_size_bytes"]
    meets = df["drop_pp"] <= budget + 1e-9
    if "output_matches_host" not in df:
        df["output_matches_host"] = None
    meets &= df["output_matches_host"].map(lambda v: bool(v) if isinstance(v, (bool, np.bool_)) else True)  # None: unchecked
    if goal is not None:
        meets &= df["latency_ratio"] <= float(goal) + 1e-12
    df["meets_goal"] = meets
    df["on_front"] = pareto_mask(df)
    df["choice"] = ""
    if meets.any():
        best = df[meets].sort_values(["latency_ms", "accuracy"], ascending=[True, False]).index[0]
        df.loc[best, "choice"] = "chosen"
    else:
        shortfall = (df["drop_pp"] - budget).clip(lower=0) / max(budget, 1e-9)
        if goal is not None:
            shortfall += (df["latency_ratio"] - float(goal)).clip(lower=0) / float(goal)
        df["_shortfall"] = shortfall
        best = df.sort_values(["_shortfall", "latency_ms"]).index[0]
        df.loc[best, "choice"] = "closest"
        df = df.drop(columns="_shortfall")
    return df


def _read(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def candidates(entries: list[dict[str, Any]], latency_key: str) -> tuple[pd.DataFrame, list[str]]:
    """Every measured, evaluated candidate of the entries (each carries its ``family``), and notes on the rest."""
    rows, notes = [], []
    for e in entries:
        bench, ev = _read(e["bench"]), _read(e["eval"])
        if bench.get("status", "ok") == "ok" and bench.get(latency_key) is None:
            notes.append(f"{e['experiment']}/{e['variant']}: not a candidate (the device reports no {latency_key})")
            continue
        if bench.get("status", "ok") != "ok" or ev.get("accuracy") is None:
            notes.append(f"{e['experiment']}/{e['variant']}: not a candidate ({bench.get('status', 'not evaluated')})")
            continue
        agrees = (bench.get("output_agreement") or {}).get("agrees")
        if agrees is False:
            notes.append(f"{e['experiment']}/{e['variant']}: its output on this device differs from the host's, where its "
                         "accuracy was measured, so it cannot meet the accuracy budget here")
        rows.append({"family": e["family"], "experiment": e["experiment"], "variant": e["variant"],
                     "accuracy": float(ev["accuracy"]), "latency_ms": float(bench[latency_key]),
                     "size_bytes": int(bench["size_bytes"]), "output_matches_host": agrees})
    return pd.DataFrame(rows), notes


def search(entries: list[dict[str, Any]], options: dict[str, Any]) -> dict[str, Any]:
    """The whole search for one device: per family its reference, every candidate, and the choice."""
    o = {**SEARCH_DEFAULTS, **options}
    df, notes = candidates(entries, o["latency_key"])
    families, tables = [], []
    for family in dict.fromkeys(e["family"] for e in entries):
        sub = df[df["family"] == family] if len(df) else df
        ref = sub[(sub["experiment"] == family) & (sub["variant"] == "float32")] if len(sub) else sub
        if ref.empty:
            notes.append(f"{family}: no measured float32 variant of the family's own experiment, so nothing to "
                         "compare against; add float32 to its variants")
            continue
        r = ref.iloc[0]
        sub = sub.assign(ref_accuracy=r["accuracy"], ref_latency_ms=r["latency_ms"], ref_size_bytes=r["size_bytes"])
        table = choose(sub, o)
        pick = table[table["choice"] != ""].iloc[0]
        families.append({
            "family": family, "reference": {"experiment": family, "variant": "float32", "accuracy": r["accuracy"],
                                            "latency_ms": r["latency_ms"], "size_bytes": int(r["size_bytes"])},
            "met": bool(pick["choice"] == "chosen"), pick["choice"]: _row(pick),
            "front": [_row(x) for _, x in table[table["on_front"]].sort_values("latency_ms").iterrows()],
            "candidates": [_row(x) for _, x in table.iterrows()],
        })
        tables.append(table)
    full = pd.concat(tables)[COLUMNS] if tables else pd.DataFrame(columns=COLUMNS)
    return {"options": o, "families": families, "notes": notes, "table": full}


def _row(x: pd.Series) -> dict[str, Any]:
    return {k: (x[k].item() if hasattr(x[k], "item") else x[k]) for k in COLUMNS if k in x}


def markdown(result: dict[str, Any], device: str) -> str:
    """The search table as Markdown, with what was asked and, per family, the answer in one sentence."""
    o = result["options"]
    goal = f" and at most {o['max_latency_ratio']:g}x its {o['latency_key']}" if o["max_latency_ratio"] else ""
    lines = [f"Search on {device}: the fastest candidate ({o['latency_key']}) within {o['accuracy_budget_pp']:g} pp "
             f"of the family's float32 test accuracy{goal}.", ""]
    cost = "latency" if o["latency_key"].endswith("_ms") else "instructions"
    for f in result["families"]:
        pick = f.get("chosen") or f.get("closest")
        what = "chosen" if f["met"] else "no candidate meets the goal; closest"
        lines.append(f"- **{f['family']}**: {what}: {pick['experiment']} / {pick['variant']} "
                     f"({pick['latency_ratio']:.2f}x {cost}, {pick['drop_pp']:+.2f} pp accuracy drop, "
                     f"{pick['size_ratio']:.2f}x size).")
    lines += [f"- {n}" for n in result["notes"]] + [""]
    t = result["table"].copy()
    if len(t):
        t["accuracy"] = t["accuracy"].map(lambda v: f"{100 * v:.2f} %")
        t["drop_pp"] = t["drop_pp"].map(lambda v: f"{v:+.2f}")
        for c in ("latency_ratio", "size_ratio"):
            t[c] = t[c].map(lambda v: f"{v:.2f}")
        t["latency_ms"] = t["latency_ms"].map(lambda v: f"{v:.3f}" if v < 1e4 else f"{v:,.0f}")
        if not o["latency_key"].endswith("_ms"):  # an emulated CPU's cost is a count, not milliseconds
            t = t.rename(columns={"latency_ms": o["latency_key"]})
    lines.append(t.to_markdown(index=False) if len(t) else "(no candidates)")
    return "\n".join(lines) + "\n"


def figure(result: dict[str, Any], device: str, png: str | Path, svg: str | Path) -> None:
    """Accuracy against latency per family: every candidate, the front, the choice ringed."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from mobopt.report import plots

    plots.style()
    fams = result["families"] or [{"family": "(none)", "candidates": [], "front": []}]
    fig, axes = plt.subplots(1, len(fams), figsize=(4.6 * len(fams), 3.8), squeeze=False)
    for ax, f in zip(axes[0], fams, strict=True):
        df = pd.DataFrame(f["candidates"])
        if len(df):
            sns.scatterplot(data=df, x="latency_ms", y="accuracy", hue="experiment", style="variant", s=60, ax=ax)
            front = pd.DataFrame(f["front"])
            ax.plot(front["latency_ms"], front["accuracy"], color="black", lw=1, ls="--", zorder=0)
            pick = f.get("chosen") or f.get("closest")
            ax.scatter([pick["latency_ms"]], [pick["accuracy"]], s=260, facecolors="none", edgecolors="red", lw=1.5,
                       label=("chosen" if f["met"] else "closest"))
            ax.axhline(f["reference"]["accuracy"] - result["options"]["accuracy_budget_pp"] / 100, color="grey",
                       lw=0.8, ls=":")
            ax.legend(fontsize=6, loc="lower right")
        ax.set_title(f["family"])
        key = result["options"]["latency_key"]
        ax.set_xlabel(f"{key} ({'ms, ' if key.endswith('_ms') else ''}{device})")
        ax.set_ylabel("test accuracy")
    plots.save(fig, png, svg)


def write(entries: list[dict[str, Any]], options: dict[str, Any], device: str, out_json: str | Path,
          out_csv: str | Path, out_md: str | Path, png: str | Path, svg: str | Path) -> dict[str, Any]:
    """Run the search for one device and write its JSON, table (CSV, Markdown) and figure, each atomically."""
    from mobopt.common import provenance
    from mobopt.common.atomic import atomic_path, write_json

    result = search(entries, options)
    table = result.pop("table")
    write_json(out_json, {"device": device, **result, "provenance": provenance.collect()})
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(markdown({**result, "table": table}, device))
    figure(result, device, png, svg)
    return result
