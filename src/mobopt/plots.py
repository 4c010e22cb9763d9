"""Figures with seaborn in one style, saved as PNG (for reading) and SVG (for papers).

SVG output is made reproducible (fixed hash salt, no date) so rerunning the
workflow does not produce spurious diffs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from mobopt.atomic import atomic_path  # noqa: E402

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
