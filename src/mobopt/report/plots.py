"""Figures with seaborn in one style, saved as PNG (for reading) and SVG (for papers).

SVG output is made reproducible (fixed hash salt, no date) so rerunning the
workflow does not produce spurious diffs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from mobopt.common.atomic import atomic_path  # noqa: E402

log = logging.getLogger(__name__)

plt.rcParams["svg.hashsalt"] = "mobopt"


def style() -> None:
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)


def save(fig, png: str | Path, svg: str | Path) -> None:
    for path, fmt in ((png, "png"), (svg, "svg")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    plt.close(fig)


def training_curves(history_csv: str | Path, title: str, png: str | Path, svg: str | Path) -> None:
    """Paper Fig. 1/4: training and validation loss and accuracy per epoch."""
    style()
    hist = pd.read_csv(history_csv)
    if hist.empty:
        raise ValueError(f"{history_csv}: no epochs recorded")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=False):
        long = hist.melt(id_vars="epoch", value_vars=[metric, f"val_{metric}"], var_name="split", value_name="value")
        long["split"] = long["split"].map({metric: "train", f"val_{metric}": "validation"})
        sns.lineplot(data=long, x="epoch", y="value", hue="split", marker="o", ax=ax)
        ax.set_ylabel(metric)
        ax.set_title(f"{title}: {metric}")
    save(fig, png, svg)


def evaluation_bars(entries: list[dict[str, Any]], metric: str, png: str | Path, svg: str | Path) -> None:
    """Paper Figs. 2-3: test accuracy or loss per model, Keras vs each TFLite variant.

    Loss goes on a log axis when it spans more than a decade (the paper's values
    run from 1e-8 to 1e-6); otherwise bars start at zero so their heights compare honestly.
    """
    style()
    results = [(e, json.loads(Path(e["eval"]).read_text())) for e in entries]
    # variants recorded as not supported have no numbers: they are absent from the figure, named in the tables
    rows = [{"model": e["label"], "variant": e["variant"], metric: r[metric]} for e, r in results if metric in r]
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(max(5, 2.2 * df["model"].nunique() + 2), 3.8))
    sns.barplot(data=df, x="model", y=metric, hue="variant", ax=ax)
    positive = df[metric][df[metric] > 0]
    if metric == "loss" and len(positive) and positive.max() / positive.min() > 10:
        ax.set_yscale("log")
    elif metric == "accuracy":
        ax.set_ylim(max(0.0, df[metric].min() - 0.05), 1.0)
    for container in ax.containers:
        ax.bar_label(container, fmt="%.4g", fontsize=7, padding=2)
    ax.set_title(f"test {metric}: Keras float vs TFLite variants")
    ax.set_xlabel("")
    save(fig, png, svg)


def _measured(entries: list[dict[str, Any]]):
    """(entry, benchmark result) of every variant that was measured; failed and unsupported ones are left out
    (the tables name them)."""
    for entry in entries:
        bench = json.loads(Path(entry["bench"]).read_text())
        if bench.get("status", "ok") == "ok":
            yield entry, bench


def latency_distributions(entries: list[dict[str, Any]], png: str | Path, svg: str | Path) -> None:
    """ECDF of every timed run (all repeats pooled) per variant, one panel per model: the whole distribution
    behind Table 2's percentiles, with p50 and p95 marked."""
    style()
    frames = []
    for e, bench in _measured(entries):
        lat = np.concatenate([np.asarray(r["latencies_ms"]) for r in bench.get("repeats", []) if r.get("latencies_ms")]
                             or [np.array([])])
        if lat.size:
            frames.append(pd.DataFrame({"model": e["label"], "variant": e["variant"], "latency (ms)": lat}))
    if not frames:
        raise ValueError("no benchmark has raw latencies (phones report none); nothing to plot")
    df = pd.concat(frames, ignore_index=True)
    grid = sns.displot(data=df, x="latency (ms)", hue="variant", col="model", kind="ecdf", col_wrap=min(3, df["model"].nunique()),
                       height=3.2, aspect=1.3, facet_kws={"sharex": False})
    for ax in grid.axes.flat:
        for q in (0.5, 0.95):
            ax.axhline(q, color="grey", lw=0.6, ls=":")
        ax.set_xscale("log")
    grid.figure.suptitle(f"latency distribution over all timed runs ({entries[0]['device']})", y=1.02)
    save(grid.figure, png, svg)


def size_bars(entries: list[dict[str, Any]], png: str | Path, svg: str | Path) -> None:
    """Model size raw and gzip-compressed (the download size) per variant, one panel per model."""
    style()
    rows = []
    for e in entries:
        info = json.loads(Path(e["tflite_info"]).read_text())
        if info.get("supported") is False:  # nothing was made: named in the tables, absent here
            continue
        rows += [{"model": e["label"], "variant": e["variant"], "kind": "raw", "MB": info["size_bytes"] / 1e6},
                 {"model": e["label"], "variant": e["variant"], "kind": "gzip", "MB": info["size_gzip_bytes"] / 1e6}]
    df = pd.DataFrame(rows).drop_duplicates()
    grid = sns.catplot(data=df, x="variant", y="MB", hue="kind", col="model", kind="bar", sharey=False, height=3.2,
                       aspect=1.2, col_wrap=min(3, df["model"].nunique()))
    for ax in grid.axes.flat:
        for container in ax.containers:
            ax.bar_label(container, fmt="%.2f", fontsize=7, padding=2)
    grid.figure.suptitle("model size: raw .tflite and gzip-compressed", y=1.02)
    save(grid.figure, png, svg)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Rows not dominated by another (lower latency and higher accuracy), sorted by latency."""
    pts = points.sort_values(["p50_ms", "accuracy"], ascending=[True, False])
    front, best = [], -np.inf
    for _, row in pts.iterrows():
        if row["accuracy"] > best:
            front.append(row)
            best = row["accuracy"]
    return pd.DataFrame(front)


def accuracy_latency_pareto(entries: list[dict[str, Any]], png: str | Path, svg: str | Path) -> None:
    """Test accuracy against p50 latency per variant, one panel per model, the Pareto front drawn through the
    variants no other variant beats on both."""
    style()
    rows = []
    for e, bench in _measured(entries):
        ev = json.loads(Path(e["eval"]).read_text())
        rows.append({"model": e["label"], "variant": e["variant"], "p50_ms": bench["p50_ms"], "accuracy": ev["accuracy"]})
    df = pd.DataFrame(rows)
    models = list(dict.fromkeys(df["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        sub = df[df["model"] == model]
        sns.scatterplot(data=sub, x="p50_ms", y="accuracy", hue="variant", s=70, ax=ax, legend=False)
        front = pareto_front(sub)
        ax.plot(front["p50_ms"], front["accuracy"], color="black", lw=1, ls="--", zorder=0, label="Pareto front")
        for _, r in sub.iterrows():
            ax.annotate(r["variant"], (r["p50_ms"], r["accuracy"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
        ax.set_title(model)
        ax.set_xlabel(f"p50 latency (ms, {entries[0]['device']})")
    save(fig, png, svg)


def roofline(entries: list[dict[str, Any]], peak_json: str | Path, png: str | Path, svg: str | Path) -> None:
    """Achieved GFLOP/s (int8: GOP/s) of every variant at its p50 against arithmetic intensity, under this CPU's
    measured ceilings: the float32 and int8 GEMM peaks LiteRT reaches here, and memory bandwidth."""
    style()
    peak = json.loads(Path(peak_json).read_text())
    rows, missing = [], []
    for e, bench in _measured(entries):
        compute = json.loads(Path(e["tflite_info"]).read_text()).get("compute")
        if not compute:  # written by an older version: reconvert to count its FLOPs
            missing.append(f"{e['label']} {e['variant']}")
            continue
        rows.append({"model": e["label"], "variant": e["variant"], "intensity": compute["arithmetic_intensity"],
                     "GFLOP/s": compute["flops"] / (bench["p50_ms"] / 1e3) / 1e9})
    df = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    lo = min(0.5, df["intensity"].min() / 2) if len(df) else 0.5
    hi = max(1000.0, df["intensity"].max() * 2) if len(df) else 1000.0
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    bw = peak["memory_bandwidth_gbs"]
    for key, label, ls in (("float32_gflops", "float32 GEMM peak", "-"), ("int8_gflops", "int8 GEMM peak", "--")):
        if peak.get(key):
            ax.plot(x, np.minimum(peak[key], bw * x), color="black", ls=ls, lw=1,
                    label=f"{label} {peak[key]:.0f} G/s, memory {bw:.0f} GB/s")
    sns.scatterplot(data=df, x="intensity", y="GFLOP/s", hue="variant", style="model", s=80, ax=ax)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte of weights + activations)")
    ax.set_ylabel("achieved GFLOP/s at p50 (int8: GOP/s)")
    ax.set_title(f"roofline: achieved vs this CPU's measured peak ({peak['device']}, {peak['threads']} thread(s))")
    ax.legend(fontsize=7, loc="lower right")
    if missing:
        log.warning("roofline: no FLOP count in the variant JSON of %s; rerun their convert jobs", ", ".join(missing))
        ax.text(0.01, 0.99, "not shown (no FLOP count, reconvert): " + ", ".join(missing), transform=ax.transAxes,
                fontsize=7, va="top", color="firebrick")
    save(fig, png, svg)


def sensitivity_bars(sensitivity_json: str | Path, selection_json: str | Path, title: str, png: str | Path,
                     svg: str | Path) -> None:
    """Per-layer quantization sensitivity in graph order, stacked features + attention maps, chosen layers marked."""
    style()
    sens = json.loads(Path(sensitivity_json).read_text())
    sel = json.loads(Path(selection_json).read_text())
    chosen = set(sel["chosen"]["higher_precision"])
    df = pd.DataFrame(sens["ranking"]).sort_values("position")
    df["kept"] = ["higher precision" if layer in chosen else "int8" for layer in df["layer"]]
    fig, ax = plt.subplots(figsize=(max(6, 0.28 * len(df) + 2), 4.2))
    colors = sns.color_palette("colorblind")
    from matplotlib.patches import Patch

    ax.bar(df["layer"], df["feature_error"], color=[colors[1] if k != "int8" else colors[0] for k in df["kept"]])
    ax.bar(df["layer"], df["attention_error"], bottom=df["feature_error"], color=colors[2])
    ax.set_ylabel(f"relative {sens['norm']} norm of the error")
    ax.set_xlabel("layer (graph order)")
    ax.set_title(f"{title}: quantization sensitivity per layer ({sel['chosen']['k']} kept in higher precision)")
    ax.tick_params(axis="x", rotation=90, labelsize=7)
    ax.legend(handles=[Patch(color=colors[0], label="output features, layer int8"),
                       Patch(color=colors[1], label="output features, layer kept in higher precision"),
                       Patch(color=colors[2], label="attention maps")], fontsize=8)
    save(fig, png, svg)
