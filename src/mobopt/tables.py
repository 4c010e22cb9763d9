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
        if info.get("supported") is False:  # recorded by conversion: a row with the reason, no numbers
            rows.append({"experiment": e["experiment"], "model": e["label"], "variant": e["variant"],
                         "device": e["device"], "size": "not supported", "note": info.get("reason")})
            continue
        rows.append({
            "experiment": e["experiment"], "model": e["label"], "variant": e["variant"], "device": e["device"],
            "size": human_size(info["size_bytes"]), "size_bytes": info["size_bytes"],
            "size_gzip_bytes": info["size_gzip_bytes"], "ram_mb": bench["peak_rss_mb"],
            "cpu_percent": bench["cpu_percent"], "p95_ms": bench["p95_ms"], "p90_ms": bench["p90_ms"],
            "p50_ms": bench["p50_ms"], "p10_ms": bench["p10_ms"], "load_ms": bench["load_ms"],
            "accuracy": ev["accuracy"], "loss": ev["loss"], "iterations": bench["iterations"],
        })
    return pd.DataFrame(rows)


def _architecture(model: dict[str, Any]) -> str:
    """A short description of the model options that define its size."""
    name = model["name"]
    if name == "vit":
        keys = ("patch_size", "dim", "depth", "heads", "mlp_dim")
        return "ViT " + " ".join(f"{k}={model[k]}" for k in keys if k in model)
    if name == "mobilenetv2":
        head = "ImageNet 1000-class head" if model.get("include_top") else "new head"
        return f"MobileNetV2 alpha={model.get('alpha', 1.0)}, {model.get('weights', 'imagenet')} weights, {head}"
    return name


def table1(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """Paper Table 1: one row per experiment, ``{experiment, label, dataset, variants, metrics, meta}``."""
    rows = []
    for e in entries:
        metrics, meta = _load(e["metrics"]), _load(e["meta"])
        train = {p["name"]: p["last"] - p["first"] for p in metrics.get("phases", [])}
        rows.append({
            "experiment": e["experiment"], "model": e["label"], "architecture": _architecture(metrics["spec"]["model"]),
            "parameters": metrics["parameters"], "dataset": e["dataset"],
            "input": "x".join(str(d) for d in meta["image_shape"]), "classes": len(meta["classes"]),
            "outputs": meta.get("num_outputs", len(meta["classes"])),
            "train_images": meta["counts"]["train"], "val_images": meta["counts"]["val"],
            "test_images": meta["counts"]["test"],
            "training": ", ".join(f"{n} {k} epochs" for k, n in train.items()) or "pretrained, not trained",
            "variants": ", ".join(e["variants"]),
        })
    return pd.DataFrame(rows)


def accuracy(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """Accuracy per ``{experiment, label, variant, split, eval}``: every split a model was scored on."""
    rows = []
    for e in entries:
        ev = _load(e["eval"])
        if ev.get("supported") is False:
            rows.append({"experiment": e["experiment"], "model": e["label"], "variant": e["variant"], "split": e["split"],
                         "note": "not supported: " + str(ev.get("reason"))})
            continue
        top5 = next((v for k, v in ev.items() if k.startswith("top") and k.endswith("_accuracy")), None)
        rows.append({"experiment": e["experiment"], "model": e["label"], "variant": e["variant"], "split": e["split"],
                     "samples": ev["samples"], "accuracy": ev["accuracy"], "top5_accuracy": top5, "loss": ev["loss"]})
    return pd.DataFrame(rows)


def _write(df: pd.DataFrame, out_csv: str | Path, out_md: str | Path, md: str | None = None) -> pd.DataFrame:
    write_text(out_csv, df.to_csv(index=False))
    write_text(out_md, md if md is not None else df.to_markdown(index=False, floatfmt=".4g") + "\n")
    return df


def write_table1(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    df = table1(entries)
    return _write(df, out_csv, out_md, df.drop(columns=["experiment"]).to_markdown(index=False) + "\n")


def write_accuracy(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    return _write(accuracy(entries), out_csv, out_md)


def to_markdown(df: pd.DataFrame) -> str:
    shown = df.reindex(columns=list(PAPER_COLUMNS)).rename(columns=PAPER_COLUMNS)
    return shown.to_markdown(index=False, floatfmt=".4g") + "\n"


def write_table2(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    df = table2(entries)
    return _write(df, out_csv, out_md, to_markdown(df))


#: The per-variant table of the graph-optimization study (reports/tables/variants.*).
VARIANT_COLUMNS = ("model", "variant", "device", "size_bytes", "size_gzip_bytes", "size_vs_float32", "accuracy", "loss",
                   "p50_ms", "p95_ms", "p95_vs_float32", "ops", "xnnpack_partitions", "higher_precision_layers",
                   "weight_sparsity", "note")


def variants_table(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """Per (experiment, variant, device): size raw and gzip, accuracy and loss, latency, op count and histogram,
    layers kept in higher precision, weight sparsity of the file; ratios against the experiment's float32 row."""
    rows = []
    for e in entries:
        bench, info, ev = _load(e["bench"]), _load(e["tflite_info"]), _load(e["eval"])
        row: dict[str, Any] = {"experiment": e["experiment"], "model": e["label"], "variant": e["variant"],
                               "device": e["device"]}
        if info.get("supported") is False:
            row["note"] = "not supported: " + str(info.get("reason"))
            rows.append(row)
            continue
        go = info.get("graph_opt") or {}
        higher = [h["layer"] for h in go.get("higher_precision_layers", [])]
        row.update({
            "size_bytes": info["size_bytes"], "size_gzip_bytes": info["size_gzip_bytes"], "accuracy": ev["accuracy"],
            "loss": ev["loss"], "p50_ms": bench["p50_ms"], "p95_ms": bench["p95_ms"], "ops": info["op_count"],
            "xnnpack_partitions": info.get("xnnpack_partitions"),
            "op_histogram": json.dumps(info["op_histogram"], sort_keys=True),
            "higher_precision_layers": ", ".join(higher) if go else None,
            "weight_sparsity": (info.get("weight_sparsity") or {}).get("sparsity"),
            "note": "; ".join(f"{name} {'ok' if c['ok'] else 'NOT ok'}" for name, c in
                              (info.get("fusion") or {}).get("checks", {}).items()),
        })
        rows.append(row)
    df = pd.DataFrame(rows)
    for col, ref in (("size_vs_float32", "size_bytes"), ("p95_vs_float32", "p95_ms")):
        if ref not in df:
            df[col] = None
            continue
        base = {(r.experiment, r.device): getattr(r, ref) for r in df[df.variant == "float32"].itertuples()}
        df[col] = [getattr(r, ref) / base[(r.experiment, r.device)] if (r.experiment, r.device) in base else None
                   for r in df.itertuples()]
    return df


def write_variants(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    df = variants_table(entries)
    shown = df.reindex(columns=list(VARIANT_COLUMNS))
    return _write(df, out_csv, out_md, shown.to_markdown(index=False, floatfmt=".4g") + "\n")


def write_sensitivity_md(sensitivity_csv: str | Path, out_md: str | Path) -> None:
    df = pd.read_csv(sensitivity_csv)
    write_text(out_md, df.to_markdown(index=False, floatfmt=".4g") + "\n")
