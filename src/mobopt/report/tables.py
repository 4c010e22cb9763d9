"""Tables built only from result JSONs, so every number is traceable to a file.

Table 2 follows the paper's columns (size, RAM, CPU %, p95/p90/p50/p10
latency, load time) and adds what a reader needs to judge them: the variant
and device, p5/p99, the confidence intervals of p50 and p95, how much of the
graph XNNPACK took, the cross-check against LiteRT's own tool, the flags the
protocol raised, accuracy and loss.  RAM is the benchmark process's peak
resident set size; latencies are over the pooled runs of all repeats.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mobopt.common.atomic import write_text
from mobopt.report import paper

#: CSV column -> the paper's header in the Markdown table (the paper's columns first, then ours).
PAPER_COLUMNS = {
    "model": "model", "variant": "variant", "device": "device", "size": "size", "ram_mb": "RAM MB",
    "cpu_percent": "CPU %", "p95_ms": "p95", "p90_ms": "p90", "p50_ms": "p50", "p10_ms": "p10",
    "load_ms": "load ms", "p5_ms": "p5", "p99_ms": "p99", "p50_ci": "p50 CI", "p95_ci": "p95 CI",
    "xnnpack": "XNNPACK nodes (partitions)", "crosscheck": "LiteRT tool p50", "accuracy": "accuracy", "loss": "loss",
    "flag": "flags",
}


def human_size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} KB"


def _load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


#: Numbers copied from the benchmark JSON into Table 2's CSV (None when the device cannot report them).
BENCH_COLUMNS = ("p95_ms", "p90_ms", "p50_ms", "p10_ms", "p5_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms",
                 "load_ms", "first_inference_ms", "cpu_percent", "rss_delta_mb", "iterations", "repeats_done",
                 "repeat_p50_spread")


def _ci(bench: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    ci = bench.get(key)
    return (ci[0], ci[1]) if ci else (None, None)


def table2(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per entry: ``{experiment, label, variant, device, bench, tflite_info, eval}`` (paths)."""
    rows = []
    for e in entries:
        bench, info, ev = _load(e["bench"]), _load(e["tflite_info"]), _load(e["eval"])
        if info.get("supported") is False:  # recorded by conversion: a row with the reason, no numbers
            rows.append({"experiment": e["experiment"], "model": e["label"], "variant": e["variant"],
                         "runtime": info.get("runtime", "litert"),
                         "device": e["device"], "status": "not supported", "size": "not supported",
                         "flags": f"not supported: {info.get('reason')}"})
            continue
        deleg = bench.get("delegation") or {}
        cc = bench.get("crosscheck") or {}
        p50_lo, p50_hi = _ci(bench, "p50_ci_ms")
        p95_lo, p95_hi = _ci(bench, "p95_ci_ms")
        rows.append({
            "experiment": e["experiment"], "model": e["label"], "variant": e["variant"],
            "runtime": info.get("runtime", "litert"), "device": e["device"], "status": bench.get("status", "ok"),
            "size": human_size(info["size_bytes"]), "size_bytes": info["size_bytes"],
            "size_gzip_bytes": info["size_gzip_bytes"], "ram_mb": bench.get("peak_rss_mb"),
            **{k: bench.get(k) for k in BENCH_COLUMNS},
            "p50_ci_low_ms": p50_lo, "p50_ci_high_ms": p50_hi, "p95_ci_low_ms": p95_lo, "p95_ci_high_ms": p95_hi,
            "nodes": deleg.get("nodes"), "delegated_nodes": deleg.get("delegated_nodes"),
            "partitions": deleg.get("partitions"), "delegate_coverage": deleg.get("coverage"),
            "crosscheck_p50_ms": cc.get("tool_p50_ms"), "crosscheck_difference": cc.get("relative_difference"),
            "accuracy": ev["accuracy"], "loss": ev["loss"],
            "flags": " | ".join(bench.get("flags", [])),
        })
    return pd.DataFrame(rows, columns=TABLE2_CSV_COLUMNS)


#: Table 2's CSV columns, in order (also for an empty table).
TABLE2_CSV_COLUMNS = [
    "experiment", "model", "variant", "runtime", "device", "status", "size", "size_bytes", "size_gzip_bytes", "ram_mb",
    *BENCH_COLUMNS, "p50_ci_low_ms", "p50_ci_high_ms", "p95_ci_low_ms", "p95_ci_high_ms", "nodes", "delegated_nodes",
    "partitions", "delegate_coverage", "crosscheck_p50_ms", "crosscheck_difference", "accuracy", "loss", "flags",
]


def op_profile(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """Per (experiment, variant, device) and op type: count, time, share, and whether XNNPACK ran it."""
    rows = []
    for e in entries:
        bench = _load(e["bench"])
        prof = bench.get("op_profile") or {}
        for r in prof.get("by_type", []):  # host: isolated single-op models
            rows.append({"experiment": e["experiment"], "model": e["label"], "variant": e["variant"],
                         "device": e["device"], "op": r["op"], "delegated": r["delegated"], "count": r["count"],
                         "total_us": r["total_us"], "share": r["share"],
                         "method": "ONNX Runtime profiler" if prof.get("runtime") == "onnxruntime"
                         else "isolated single-op models"})
        for r in prof.get("by_node_type", []):  # phone: benchmark_model's in-graph profile
            rows.append({"experiment": e["experiment"], "model": e["label"], "variant": e["variant"],
                         "device": e["device"], "op": r.get("node_type"), "delegated": None, "count": r.get("count"),
                         "total_us": (r.get("avg_ms") or 0.0) * 1e3, "share": r.get("avg_pct"),
                         "method": "benchmark_model --enable_op_profiling"})
    return pd.DataFrame(rows, columns=["experiment", "model", "variant", "device", "op", "delegated", "count",
                                       "total_us", "share", "method"])


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


#: The accuracy table's CSV columns, in order: top-1 with the class-balanced scores beside it, then top-5 and loss.
ACCURACY_COLUMNS = ["experiment", "model", "variant", "split", "samples", "accuracy", "macro_recall", "macro_f1",
                    "macro_precision", "top5_accuracy", "loss", "outputs", "note"]
#: CSV column -> the Markdown header (macro precision stays in the CSV).
ACCURACY_HEADERS = {"model": "model", "variant": "variant", "split": "split", "samples": "samples",
                    "accuracy": "accuracy (top-1)", "macro_recall": "macro recall", "macro_f1": "macro F1",
                    "top5_accuracy": "top-5", "loss": "loss", "note": "note"}


def accuracy(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """Accuracy per ``{experiment, label, variant, split, eval}``: every split a model was scored on.

    Top-1 accuracy with macro recall and macro F1 beside it (means over the dataset's classes, each class
    counting the same: see :func:`mobopt.evaluate.class_scores`), top-5 (top-k for a head of fewer than 5
    outputs) and cross-entropy.  An evaluation written before the macro scores existed leaves them empty."""
    rows = []
    for e in entries:
        ev = _load(e["eval"])
        base = {"experiment": e["experiment"], "model": e["label"], "variant": e["variant"], "split": e["split"]}
        if ev.get("supported") is False:
            rows.append({**base, "note": "not supported: " + str(ev.get("reason"))})
            continue
        top5 = next((v for k, v in ev.items() if k.startswith("top") and k.endswith("_accuracy")), None)
        rows.append({**base, "samples": ev["samples"], "accuracy": ev["accuracy"],
                     **{k: ev.get(k) for k in ("macro_recall", "macro_f1", "macro_precision")},
                     "top5_accuracy": top5, "loss": ev["loss"], "outputs": ev.get("outputs")})
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def accuracy_markdown(df: pd.DataFrame) -> str:
    shown = df[list(ACCURACY_HEADERS)]
    if shown["note"].isna().all():
        shown = shown.drop(columns=["note"])
    return shown.rename(columns=ACCURACY_HEADERS).to_markdown(index=False, floatfmt=".4g") + "\n"


def _write(df: pd.DataFrame, out_csv: str | Path, out_md: str | Path, md: str | None = None,
           out_tex: str | Path | None = None, tex_df: pd.DataFrame | None = None, caption: str | None = None) -> pd.DataFrame:
    """CSV (every column, full precision), Markdown (for reading) and optionally LaTeX (for papers)."""
    write_text(out_csv, df.to_csv(index=False))
    write_text(out_md, md if md is not None else df.to_markdown(index=False, floatfmt=".4g") + "\n")
    if out_tex is not None:
        shown = df if tex_df is None else tex_df
        write_text(out_tex, shown.to_latex(index=False, float_format="{:.4g}".format, na_rep="--", caption=caption,
                                           escape=True))
    return df


def write_table1(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path,
                 out_tex: str | Path | None = None) -> pd.DataFrame:
    df = table1(entries)
    shown = df.drop(columns=["experiment"])
    return _write(df, out_csv, out_md, shown.to_markdown(index=False) + "\n", out_tex, shown,
                  "Models and datasets (paper Table 1, reproduced)")


def write_accuracy(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    df = accuracy(entries)
    return _write(df, out_csv, out_md, accuracy_markdown(df))


def _interval(lo, hi) -> str:
    return "" if lo is None or pd.isna(lo) else f"{lo:.4g}-{hi:.4g}"


def to_markdown(df: pd.DataFrame) -> str:
    """The paper's columns first, then ours; flagged rows point to the notes under the table."""
    shown = df.copy()
    shown["p50_ci"] = [_interval(lo, hi) for lo, hi in zip(df["p50_ci_low_ms"], df["p50_ci_high_ms"], strict=True)]
    shown["p95_ci"] = [_interval(lo, hi) for lo, hi in zip(df["p95_ci_low_ms"], df["p95_ci_high_ms"], strict=True)]
    shown["xnnpack"] = ["" if pd.isna(n) else f"{int(d)}/{int(n)} ({int(p)})"
                        for d, n, p in zip(df["delegated_nodes"], df["nodes"], df["partitions"], strict=True)]
    shown["crosscheck"] = ["" if pd.isna(c) else f"{c:.4g}" if pd.isna(d) else f"{c:.4g} ({d:+.1%})"
                           for c, d in zip(df["crosscheck_p50_ms"], df["crosscheck_difference"], strict=True)]
    notes = []
    marks = []
    for _, row in df.iterrows():
        if row["flags"]:
            notes.append(row["flags"])
            marks.append(f"[{len(notes)}]")
        else:
            marks.append("")
    shown["flag"] = marks
    text = shown[list(PAPER_COLUMNS)].rename(columns=PAPER_COLUMNS).to_markdown(index=False, floatfmt=".4g") + "\n"
    if notes:
        text += "\n" + "\n".join(f"[{i}] {note}" for i, note in enumerate(notes, 1)) + "\n"
    return text


def write_table2(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path,
                 out_tex: str | Path | None = None) -> pd.DataFrame:
    df = table2(entries)
    tex = df[["model", "variant", "device", "size", "ram_mb", "cpu_percent", "p95_ms", "p90_ms", "p50_ms", "p10_ms",
              "load_ms", "accuracy"]].rename(columns=PAPER_COLUMNS)
    return _write(df, out_csv, out_md, to_markdown(df), out_tex, tex, "Size, memory, CPU load and latency (ms) of every "
                  "variant (paper Table 2, reproduced)")


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2 exactly as published (src/mobopt/data/paper.yaml), ranges as low-high."""
    rows = []
    for r in paper.published()["table2"]:
        rows.append({"row": r["row"], "model_name": r["model"], "dataset": r["dataset"], "variant": r["variant"],
                     "size": r["size"]["text"], "size_mb": r["size"]["mb"],
                     "ram_mb": "{}-{}".format(*r["ram_mb"]), "cpu_percent": "{}-{}".format(*r["cpu_percent"]),
                     "p95_ms": r["p95_ms"], "p90_ms": r["p90_ms"], "p50_ms": r["p50_ms"], "p10_ms": r["p10_ms"],
                     "load_ms": r["load_ms"]})
    return pd.DataFrame(rows)


def write_paper_table2(out_csv: str | Path, out_md: str | Path, out_tex: str | Path) -> pd.DataFrame:
    df = paper_table2()
    shown = df.drop(columns=["model_name", "dataset", "variant", "size_mb"]).rename(columns={
        "row": "model", "ram_mb": "RAM MB", "cpu_percent": "CPU %", "p95_ms": "p95", "p90_ms": "p90", "p50_ms": "p50",
        "p10_ms": "p10", "load_ms": "load ms"})
    md = shown.to_markdown(index=False) + f"\n\nAs published: {paper.published()['citation']}; {paper.published()['device']}.\n"
    return _write(df, out_csv, out_md, md, out_tex, shown, "Table 2 as published in the paper")


#: What each verdict-table metric is, for the Markdown and LaTeX headers.
METRIC_LABELS = {"size": "size", "p50": "p50 latency", "p95": "p95 latency", "load": "load time", "accuracy": "accuracy"}


def paper_vs_reproduced(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """Per experiment, device and optimized variant: change against float32 of each metric, ours and the paper's,
    with a verdict (:func:`mobopt.report.paper.compare`).  ``entries`` are Table 2's plus ``model_name`` and ``dataset``."""
    df = table2(entries)
    extra = {(e["experiment"], e["variant"], e["device"]): (e["model_name"], e["dataset"], e.get("paper_dataset"))
             for e in entries}
    rows = df.to_dict("records")
    for r in rows:
        r["model_name"], r["dataset"], r["paper_dataset"] = extra[(r["experiment"], r["variant"], r["device"])]
    columns = ["experiment", "model", "device", "variant", "baseline", "metric", "unit", "ours_baseline", "ours_optimized",
               "ours_change", "significant", "paper_baseline", "paper_optimized", "paper_change", "paper_note", "verdict",
               "paper_rows"]
    return pd.DataFrame(paper.compare(rows), columns=columns)


def write_paper_vs_reproduced(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path,
                              out_tex: str | Path) -> pd.DataFrame:
    df = paper_vs_reproduced(entries)
    shown = pd.DataFrame({
        "model": df["model"], "optimized": df["variant"] + " vs " + df["baseline"],
        "metric": df["metric"].map(METRIC_LABELS),
        "paper": [paper.format_change(v, u) if not (isinstance(n, str) and pd.isna(v)) else n
                  for v, u, n in zip(df["paper_change"], df["unit"], df["paper_note"], strict=True)],
        "ours": [paper.format_change(v, u) + ("" if sig else " (n.s.)")
                 for v, u, sig in zip(df["ours_change"], df["unit"], df["significant"], strict=True)],
        "verdict": df["verdict"], "device": df["device"],
    })
    md = shown.to_markdown(index=False) + (
        f"\n{paper.legend()} The paper measured on a phone (see its Table 2); the device column says where ours "
        "were measured.\n")
    return _write(df, out_csv, out_md, md, out_tex, shown, "Paper vs reproduced: effect of each optimization")


def write_op_profile(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path) -> pd.DataFrame:
    return _write(op_profile(entries), out_csv, out_md)


#: The per-variant table of the graph-optimization study (reports/tables/variants.*).
VARIANT_COLUMNS = ("model", "variant", "runtime", "device", "size_bytes", "size_gzip_bytes", "size_vs_float32", "accuracy",
                   "loss", "p50_ms", "p50_vs_float32", "p95_ms", "p95_vs_float32", "ops", "xnnpack_partitions",
                   "higher_precision_layers",
                   "weight_sparsity", "note")


def variants_table(entries: list[dict[str, Any]]) -> pd.DataFrame:
    """Per (experiment, variant, device): the runtime (LiteRT or ONNX Runtime), size raw and gzip, accuracy and loss,
    latency, op count and histogram, layers kept in higher precision, weight sparsity of the file; ratios against
    the experiment's (LiteRT) float32 row."""
    rows = []
    for e in entries:
        bench, info, ev = _load(e["bench"]), _load(e["tflite_info"]), _load(e["eval"])
        row: dict[str, Any] = {"experiment": e["experiment"], "model": e["label"], "variant": e["variant"],
                               "runtime": info.get("runtime", "litert"), "device": e["device"]}
        if info.get("supported") is False:
            row["note"] = "not supported: " + str(info.get("reason"))
            rows.append(row)
            continue
        go = info.get("graph_opt") or {}
        higher = [h["layer"] for h in go.get("higher_precision_layers", [])]
        row.update({
            "size_bytes": info["size_bytes"], "size_gzip_bytes": info["size_gzip_bytes"], "accuracy": ev["accuracy"],
            "loss": ev["loss"], "p50_ms": bench.get("p50_ms"), "p95_ms": bench.get("p95_ms"), "ops": info["op_count"],
            "xnnpack_partitions": info.get("xnnpack_partitions"),
            "op_histogram": json.dumps(info["op_histogram"], sort_keys=True),
            "higher_precision_layers": ", ".join(higher) if go else None,
            "weight_sparsity": (info.get("weight_sparsity") or {}).get("sparsity"),
            "note": "; ".join(f"{name} {'ok' if c['ok'] else 'NOT ok'}" for name, c in
                              (info.get("fusion") or {}).get("checks", {}).items()),
        })
        rows.append(row)
    df = pd.DataFrame(rows)
    # every runtime's variants against LiteRT's float32, the paper's reference: runtimes side by side
    for col, ref in (("size_vs_float32", "size_bytes"), ("p50_vs_float32", "p50_ms"), ("p95_vs_float32", "p95_ms")):
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
