"""The CPU a result was measured on: its model and the instruction-set features that decide int8 speed.

``/proc/cpuinfo``'s model name can say as little as "AMD EPYC", yet the same
int8 model is 1.9x slower than float32 on one EPYC and twice as fast on
another: what differs is whether the CPU has int8 dot-product instructions
(x86: AVX-512 VNNI, AVX-VNNI, AMX; Arm: the dot-product extension, I8MM),
which XNNPACK's int8 kernels use when present.  So every result records the
features below, read from the same ``/proc/cpuinfo`` text on a host or a phone
(``adb shell cat /proc/cpuinfo``).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

#: x86 flags that matter to LiteRT's kernels, in the order a reader compares them.
X86_FEATURES = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")
#: Arm features (/proc/cpuinfo names): asimddp is the dot-product extension (SDOT/UDOT).
ARM_FEATURES = ("asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2")
#: Features that give int8 matrix products a dot-product instruction.
INT8_DOT = {"avx512_vnni": "AVX-512 VNNI (vpdpbusd)", "avx_vnni": "AVX-VNNI", "amx_int8": "AMX-INT8",
            "asimddp": "Arm dot product (SDOT/UDOT)", "i8mm": "Arm I8MM (SMMLA)"}


def parse(text: str, machine: str | None = None) -> dict[str, Any]:
    """Model, architecture and the features of interest from the text of a ``/proc/cpuinfo``."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and key not in fields:
            fields[key] = value.strip()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    arm = "Features" in fields or "CPU implementer" in fields
    wanted = ARM_FEATURES if arm else X86_FEATURES
    isa = [f for f in wanted if f in flags]
    dot = [INT8_DOT[f] for f in isa if f in INT8_DOT]
    info: dict[str, Any] = {
        "model": fields.get("model name") or fields.get("Hardware") or fields.get("Processor") or platform.processor(),
        "arch": machine or ("aarch64" if arm else platform.machine()),
        "isa": isa,
        "int8_dot_product": dot,
    }
    if arm:
        info["implementer"], info["part"] = fields.get("CPU implementer"), fields.get("CPU part")
    else:
        info["family"], info["model_number"] = fields.get("cpu family"), fields.get("model")
    return info


def describe(path: str = "/proc/cpuinfo") -> dict[str, Any]:
    """This machine's CPU (see :func:`parse`); an empty description where /proc/cpuinfo cannot be read."""
    try:
        text = Path(path).read_text()
    except OSError:
        text = ""
    return parse(text, platform.machine())


def summary(info: dict[str, Any]) -> str:
    """One line for tables and figures: ``AMD EPYC (x86_64: avx2, fma, avx512_vnni...; int8 dot product: ...)``."""
    dot = ", ".join(info.get("int8_dot_product") or []) or "none"
    return f"{info.get('model')} ({info.get('arch')}: {', '.join(info.get('isa') or []) or 'no listed features'}; " \
           f"int8 dot product: {dot})"
