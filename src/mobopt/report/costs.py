"""The cost table: what each model computes (parameters and MACs by layer kind) against how fast it runs.

The second study argues from arithmetic: a depthwise-separable convolution costs about 8.7x fewer
multiply-accumulates (MACs) than the standard one it replaces (K=3, C_in=128, C_out=256).  This table
puts that argument next to measurements, every number read from a file: per experiment the
parameters and MACs by layer kind (``results/models/<exp>/cost.json``, counted from the trained model
by ``mobopt model-cost``), the total, the float32 variant's median latency on each benchmarked device
(``results/bench/<device>/<exp>/float32.json``) and the MACs per millisecond that makes; below it the
study's example as counted from real Keras layers, and for each ablation pair in the config (the same
network with and without depthwise-separable convolutions, or with and without channel shuffle) the
ratio of MACs beside the ratio of latencies.  A model that does 8.7x fewer MACs is not 8.7x faster
when its depthwise convolutions run at a lower MAC rate; the last column shows by how much.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mobopt.common.atomic import write_text

#: Layer kinds of :mod:`mobopt.models.cost` shown as columns (``other`` holds no MACs and few parameters).
KINDS = ("standard conv", "depthwise conv", "pointwise conv", "dense", "attention")
#: Ablations the table pairs up: model name -> (option, its default, what setting it otherwise means).
ABLATIONS: dict[str, tuple[str, Any, str]] = {
    "mobilenetv2": ("depthwise_separable", True, "standard convolutions instead of depthwise-separable"),
    "shufflenetv2": ("channel_shuffle", True, "no channel shuffle"),
}


def _load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _col(kind: str) -> str:
    return kind.replace(" ", "_")


def _p50(path: str | Path | None) -> float | None:
    if path is None or not Path(path).exists():
        return None
    value = _load(path).get("p50_ms")
    return float(value) if value else None


def cost_table(entries: list[dict[str, Any]], devices: list[str]) -> pd.DataFrame:
    """One row per ``{experiment, label, model, cost, bench: {device: float32 bench JSON}}``."""
    rows = []
    for e in entries:
        summary = _load(e["cost"])["by_kind"]
        row: dict[str, Any] = {"experiment": e["experiment"], "model": e["label"],
                               "params": summary["total"]["params"],
                               "trainable_params": summary["total"]["trainable_params"]}
        for kind in KINDS:
            row[f"{_col(kind)}_params"] = summary[kind]["params"]
            row[f"{_col(kind)}_macs"] = summary[kind]["macs"]
        row["macs"] = summary["total"]["macs"]
        for device in devices:
            p50 = _p50((e.get("bench") or {}).get(device))
            row[f"p50_ms_{device}"] = p50
            row[f"macs_per_ms_{device}"] = row["macs"] / p50 if p50 else None
        rows.append(row)
    columns = ["experiment", "model", "params", "trainable_params",
               *[f"{_col(k)}_{what}" for k in KINDS for what in ("params", "macs")], "macs",
               *[f"{what}_{d}" for d in devices for what in ("p50_ms", "macs_per_ms")]]
    return pd.DataFrame(rows, columns=columns)


def example(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The study's standard vs depthwise-separable example, as ``mobopt model-cost`` counted it (any cost.json)."""
    for e in entries:
        found = _load(e["cost"]).get("separable_vs_standard")
        if found:
            return found
    return None


def _options(entry: dict[str, Any]) -> tuple[str, Any, dict[str, Any]] | None:
    """(model name, the ablation option's value, every other option) when the model has an ablation."""
    model = dict(entry.get("model") or {})
    name = model.pop("name", None)
    if name not in ABLATIONS:
        return None
    key, default, _ = ABLATIONS[name]
    return name, model.pop(key, default), model


def ablation_pairs(entries: list[dict[str, Any]], devices: list[str]) -> pd.DataFrame:
    """Each experiment with an ablation switched away from its default, beside the one that differs only there
    (same dataset): MACs, parameters and float32 p50 per device of the ablated model over the original's."""
    by_name = {e["experiment"]: e for e in entries}
    rows = []
    for e in entries:
        mine = _options(e)
        if mine is None or mine[1] == ABLATIONS[mine[0]][1]:
            continue
        base = next((b for b in entries if b is not e and b.get("dataset") == e.get("dataset")
                     and _options(b) == (mine[0], ABLATIONS[mine[0]][1], mine[2])), None)
        if base is None:
            continue
        ablated, original = _load(e["cost"])["by_kind"]["total"], _load(by_name[base["experiment"]]["cost"])["by_kind"]["total"]
        row: dict[str, Any] = {"ablation": ABLATIONS[mine[0]][2], "model": e["label"], "compared_with": base["label"],
                               "macs": ablated["macs"], "compared_macs": original["macs"],
                               "mac_ratio": ablated["macs"] / original["macs"] if original["macs"] else None,
                               "param_ratio": ablated["params"] / original["params"] if original["params"] else None}
        for device in devices:
            a, b = _p50((e.get("bench") or {}).get(device)), _p50((base.get("bench") or {}).get(device))
            row[f"latency_ratio_{device}"] = a / b if a and b else None
        rows.append(row)
    columns = ["ablation", "model", "compared_with", "macs", "compared_macs", "mac_ratio", "param_ratio",
               *[f"latency_ratio_{d}" for d in devices]]
    return pd.DataFrame(rows, columns=columns)


def _millions(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{value / 1e6:.3g} M" if value else "0"


def _number(value: Any, fmt: str = ".4g") -> str:
    return "" if value is None or pd.isna(value) else format(value, fmt)


def to_markdown(df: pd.DataFrame, pairs: pd.DataFrame, ex: dict[str, Any] | None, devices: list[str]) -> str:
    shown = pd.DataFrame({"model": df["model"], "parameters": df["params"].map(_millions)})
    for kind in KINDS:
        if df[f"{_col(kind)}_macs"].any() or df[f"{_col(kind)}_params"].any():
            shown[f"{kind} params / MACs"] = [f"{_millions(p)} / {_millions(m)}" for p, m in
                                              zip(df[f"{_col(kind)}_params"], df[f"{_col(kind)}_macs"], strict=True)]
    shown["MACs"] = df["macs"].map(_millions)
    for device in devices:
        shown[f"float32 p50 ms ({device})"] = df[f"p50_ms_{device}"].map(_number)
        shown[f"M MACs per ms ({device})"] = (df[f"macs_per_ms_{device}"] / 1e6).map(lambda v: _number(v, ".3g"))
    text = ("MACs are multiply-accumulates of one image (batch 1), counted from the trained Keras model; latency is the "
            "float32 LiteRT variant's median.\n\n" + shown.to_markdown(index=False) + "\n")
    if ex:
        text += (f"\nThe study's example, counted from Keras layers: a standard {ex['k']}x{ex['k']} convolution from "
                 f"{ex['c_in']} to {ex['c_out']} channels costs {ex['standard_macs']:,} MACs per output pixel; the "
                 f"depthwise-separable pair costs {ex['depthwise_macs']:,} (depthwise) + {ex['pointwise_macs']:,} "
                 f"(pointwise) = {ex['separable_macs']:,}, a ratio of {ex['ratio']:.2f} (the study: about 8.7).\n")
    if len(pairs):
        shown = pd.DataFrame({"ablation": pairs["ablation"], "model": pairs["model"], "against": pairs["compared_with"],
                              "MACs": [f"{_millions(a)} vs {_millions(b)}" for a, b in
                                       zip(pairs["macs"], pairs["compared_macs"], strict=True)],
                              "MAC ratio": pairs["mac_ratio"].map(lambda v: _number(v, ".3g"))})
        for device in devices:
            shown[f"latency ratio ({device})"] = pairs[f"latency_ratio_{device}"].map(lambda v: _number(v, ".3g"))
        text += ("\nWhole networks, ablated against the original (float32 p50): the MAC ratio is what the arithmetic "
                 "predicts, the latency ratio what the device measured.\n\n" + shown.to_markdown(index=False) + "\n")
    return text


def write_cost_table(entries: list[dict[str, Any]], devices: list[str], out_csv: str | Path,
                     out_md: str | Path) -> pd.DataFrame:
    """CSV: one row per experiment, every column; Markdown: the table in millions, the example, the ablations."""
    df = cost_table(entries, devices)
    write_text(out_csv, df.to_csv(index=False))
    write_text(out_md, to_markdown(df, ablation_pairs(entries, devices), example(entries), devices))
    return df
