"""One sentence per variant: why it is fast or slow on the CPU it was measured on.

The reasons are the ones the measurements can show.  How much of the graph
XNNPACK runs, and in how many pieces (every partition boundary is a hand-over
to LiteRT's own reference kernels and back); and whether the CPU has int8
dot-product instructions (x86: AVX-512 VNNI, AVX-VNNI, AMX; Arm: the
dot-product extension, I8MM), which XNNPACK's int8 matrix kernels use when they
are present.  Without them an int8 matrix product widens to 16 bits and gains
little over float32, so the answer to "does int8 pay?" differs by CPU, and
every sentence names the CPU's features.
"""

from __future__ import annotations

import math
from typing import Any

#: Variants whose matrix products run in int8.
INT8_VARIANTS = {"int8", "dynamic_int8", "graph_opt_int8"}
#: Ratio of p50s within which two variants count as equally fast.
SAME = 0.05


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _speed(ratio: float | None) -> str:
    if ratio is None:
        return "not timed"
    if ratio < 1 - SAME:
        return f"{1 / ratio:.2f}x faster than float32"
    if ratio > 1 + SAME:
        return f"{ratio:.2f}x slower than float32"
    return "as fast as float32 (within 5 %)"


def _graph(row: dict[str, Any], base: dict[str, Any] | None) -> str:
    nodes, delegated, parts = (_num(row.get(k)) for k in ("nodes", "delegated_nodes", "partitions"))
    if nodes is None or delegated is None or parts is None:
        return ""
    base_parts = _num(base.get("partitions")) if base else None
    if delegated == 0:
        return "XNNPACK runs none of its ops, so every op runs on LiteRT's reference kernels"
    outside = int(nodes - delegated)
    text = f"XNNPACK runs it in {int(parts)} partition{'s' if parts != 1 else ''}"
    if base_parts is not None and base is not row:
        text += f" (float32: {int(base_parts)})"
    if outside:
        text += f", with {outside} of {int(nodes)} ops on LiteRT's own kernels in between"
    return text


def _cpu(variant: str, cpu: dict[str, Any]) -> str:
    if "isa" not in cpu:  # a device whose CPU was not recorded (a phone): say nothing about it
        return ""
    if variant in INT8_VARIANTS:
        dot = cpu.get("int8_dot_product") or []
        if dot:
            return f"this CPU has int8 dot-product instructions ({', '.join(dot)}), which XNNPACK's int8 kernels use"
        return ("this CPU has no int8 dot-product instructions, so an int8 matrix product widens to 16 bits and "
                "gains little over float32")
    if variant == "float16":
        fp16 = "avx512_fp16" in (cpu.get("isa") or []) or "asimdhp" in (cpu.get("isa") or [])
        return ("the float16 weights are widened to float32 when the model loads" if not fp16 else
                "the CPU has float16 arithmetic, but XNNPACK widens the weights to float32 at load by default")
    if variant == "int16x8":
        return "XNNPACK has no 16x8 kernels, so LiteRT's reference kernels run it"
    return ""


def sentence(row: dict[str, Any], base: dict[str, Any] | None, cpu: dict[str, Any]) -> str:
    """Why ``row``'s variant is as fast as it is, against ``base`` (float32 of the same experiment and device)."""
    variant = row["variant"]
    if row.get("status") not in (None, "ok"):
        return f"{variant}: {str(row.get('flags') or row.get('status')).rstrip('.')}."
    p50, base_p50 = _num(row.get("p50_ms")), _num(base.get("p50_ms")) if base else None
    ratio = p50 / base_p50 if p50 is not None and base_p50 else None
    head = f"{variant} ({p50:.3g} ms p50)" if p50 is not None else variant
    if variant == "float32":
        reasons = [_graph(row, None)]
        return f"{head}: the reference; " + "; ".join(r for r in reasons if r) + "."
    reasons = [r for r in (_graph(row, base), _cpu(variant, cpu)) if r]
    return f"{head} is {_speed(ratio)}: " + "; ".join(reasons) + "."


def sentences(rows: list[dict[str, Any]], cpus: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """``(experiment label, device, sentence)`` for every Table 2 row, float32 first within each experiment;
    ``cpus`` maps a device to the CPU it ran on (:func:`mobopt.common.cpuinfo.parse`)."""
    base = {(r["experiment"], r["device"]): r for r in rows if r["variant"] == "float32"}
    out = []
    for r in sorted(rows, key=lambda r: (r["experiment"], r["device"], r["variant"] != "float32")):
        why = sentence(r, base.get((r["experiment"], r["device"])), cpus.get(r["device"], {}))
        out.append((str(r.get("model", r["experiment"])), r["device"], why))
    return out
