"""Does int8 pay here? Every variant's cost against float32 on every device, with each device's instruction set.

One row per (model, variant); one column per device.  A host or phone gives the measured latency
ratio (``latency_key``, p50 by default) against the same model's float32 on that device; an
emulated CPU (ARM, or x86 without AVX-512) gives the ratio of instructions per invoke (no latency
exists there: QEMU models no pipeline or cache).  Each column names what it measures and the instruction-set facts that
decide the answer: int8 dot-product instructions on x86 (AVX-512 VNNI, AVX-VNNI) or ARM (asimddp),
i8mm, AMX.  The long CSV keeps every number with its device's facts; the Markdown is the wide
table with a legend.  A ratio under 1 is cheaper than float32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mobopt.bench import devices as device_registry

#: x86 and ARM features that decide int8 speed, as :mod:`mobopt.common.cpuinfo` names them.
INT8_FEATURES = ("avx2", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def _load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _facts(bench: dict[str, Any], kind: str) -> tuple[str, str, str]:
    """(what the column measures, the ISA in a few words, the CPU) of one benchmark result."""
    if kind == "emulated":
        emu = bench.get("emulator") or {}
        cpu = str(emu.get("cpu"))
        if emu.get("arch") == "x86_64":  # the model, less the features QEMU cannot emulate
            cpu = cpu.split(",")[0]
        return "instructions per invoke", " ".join(emu.get("isa") or []), f"emulated {cpu}"
    cpu = (bench.get("provenance") or {}).get("cpu") or {}
    isa = [f for f in INT8_FEATURES if f in (cpu.get("isa") or [])]
    return "latency", " ".join(isa) or "no int8 dot product", cpu.get("model") or "?"


def table(entries: list[dict[str, Any]], latency_key: str = "p50_ms") -> pd.DataFrame:
    """The long table: per (experiment, variant, device) the cost, float32's, their ratio and the device's facts."""
    rows = []
    for e in entries:
        kind = device_registry.get(e["device"]).kind
        bench = _load(e["bench"])
        key = "instructions_per_invoke" if kind == "emulated" else latency_key
        measures, isa, cpu = _facts(bench, kind)
        rows.append({"experiment": e["experiment"], "model": e["label"], "variant": e["variant"], "device": e["device"],
                     "device_kind": kind, "measures": measures, "metric": key, "cpu": cpu, "isa": isa,
                     "value": bench.get(key) if bench.get("status", "ok") == "ok" else None,
                     "dot_product_per_invoke": bench.get("dot_per_invoke"), "i8mm_per_invoke": bench.get("i8mm_per_invoke"),
                     "status": bench.get("status", "ok")})
    df = pd.DataFrame(rows, columns=["experiment", "model", "variant", "device", "device_kind", "measures", "metric", "cpu",
                                     "isa", "value", "dot_product_per_invoke", "i8mm_per_invoke", "status"])
    base = {(r.experiment, r.device): r.value for r in df[df.variant == "float32"].itertuples()}
    df["float32_value"] = [base.get((r.experiment, r.device)) for r in df.itertuples()]
    df["ratio_vs_float32"] = [r.value / r.float32_value if r.value and r.float32_value else None for r in df.itertuples()]
    return df


LEGEND = ("Each variant's cost as a multiple of the same model's float32 on that device (under 1: cheaper). Hosts "
          "and phones: measured latency. Emulated CPUs: instructions executed per invoke under QEMU, which "
          "models no pipeline or cache, so they count work, not time. In brackets: the CPU and the instruction-set "
          "features that decide int8 speed (x86 avx512_vnni/avx_vnni/amx_int8, ARM asimddp dot product and i8mm).")


def wide(df: pd.DataFrame) -> pd.DataFrame:
    """A row per model and variant, a column per device headed by what it measures and its ISA; cells are ratios."""
    heads = {}
    for r in df.drop_duplicates("device").itertuples():
        unit = "instructions" if r.device_kind == "emulated" else r.metric.removesuffix("_ms")
        heads[r.device] = f"{r.device}: {unit} ({r.cpu}; {r.isa})"
    shown = df.assign(cell=[("" if pd.isna(x) else f"{x:.2f}") if s == "ok" else s
                            for x, s in zip(df.ratio_vs_float32, df.status, strict=True)])
    table = shown.pivot_table(index=["model", "variant"], columns="device", values="cell", aggfunc="first", sort=False)
    return table.reindex(columns=[d for d in heads if d in table.columns]).rename(columns=heads).reset_index()


def markdown(df: pd.DataFrame) -> str:
    """:func:`wide` with its legend, as Markdown."""
    if df.empty:
        return "No benchmark results.\n"
    return LEGEND + "\n\n" + wide(df).to_markdown(index=False, disable_numparse=True) + "\n"


def write(entries: list[dict[str, Any]], out_csv: str | Path, out_md: str | Path, latency_key: str = "p50_ms") -> pd.DataFrame:
    from mobopt.common.atomic import write_text

    df = table(entries, latency_key)
    write_text(out_csv, df.to_csv(index=False))
    write_text(out_md, markdown(df))
    return df
