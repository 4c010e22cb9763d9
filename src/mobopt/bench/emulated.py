"""Instruction counts of a .tflite model on an emulated CPU: the work of each invoke, per instruction set.

One count runs LiteRT under ``qemu-<arch> -cpu <model>`` with mobopt's plugin (:file:`data/icount.c`,
set up by :mod:`mobopt.bench.arm_toolchain`) and the guest script :file:`data/guest_count.py`, one
interpreter thread, XNNPACK on, as an app would run it.  On an ARM CPU the guest is the aarch64
LiteRT wheel in an arm64 Python; on the x86 CPU (``x86_avx2``) it is this very Python and LiteRT,
whose kernels XNNPACK then chooses for the emulated CPU's CPUID (AVX2, no AVX-512): the int8
question for an older PC, asked on any x86 host.  The guest marks five points; from the plugin's
snapshots:

* ``instructions_per_invoke`` = (after the timed invokes - after the first invoke) / invokes:
  start-up (~1.6 G instructions of Python and imports) and the first invoke (~100 M, XNNPACK's
  one-time packing) are excluded, as they must be: they would swamp a small model;
* on an ARM CPU, the int8 dot-product (SDOT/UDOT), i8mm (SMMLA/UMMLA), SVE and SME instructions per
  invoke, which show which kernels XNNPACK chose on that CPU (None on x86, whose count is total only);
* ``load_instructions`` (interpreter construction and allocation) and ``first_invoke_instructions``.

Determinism: ``PYTHONHASHSEED=0``, address randomisation off (``setarch -R``), one thread and
``OPENBLAS_NUM_THREADS=1``; two counts of the same .tflite on the same CPU then agree to the
instruction (ONNX Runtime's only on a quiet host: they move with its load), and every repeat is
kept so the result says whether they did; a spread beyond :func:`repeats_agree`'s tolerance is flagged.

The guest's output for a fixed input is compared with the host's LiteRT run of the same file: an
integer output may differ by at most one quantization step, a float output by at most
:data:`FLOAT_TOLERANCE`, or :data:`HYBRID_TOLERANCE` for a float model with int8 inside (dynamic range, or an
ONNX QDQ graph: its kernels quantize activations, and their rounding differs between instruction sets).
An .onnx model (ONNX Runtime variants) is counted on the x86 CPU only: the ARM guests have no
onnxruntime.

No wall-clock latency is reported: QEMU translates instructions but models no pipeline, cache or
issue width, so its time says nothing about a phone's.  Counts are work executed, comparable
between variants on one emulated CPU (does int8 pay here?), not milliseconds.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError, litert
from mobopt.bench import arm_toolchain, devices
from mobopt.bench.measurement import random_input
from mobopt.common import provenance

log = logging.getLogger(__name__)

#: ``benchmark.emulation`` defaults: timed invokes per count (after the first) and counts per variant
#: (two, so the result shows the count repeats to the instruction).
EMULATION_DEFAULTS: dict[str, Any] = {"invokes": 10, "repeats": 2, "timeout": 1800.0}
#: Largest absolute difference of a float output (probabilities) between the guest and the host.
FLOAT_TOLERANCE = 1e-5
#: The same for a float model with int8 weights (dynamic range): its kernels quantize activations at run time,
#: and how they round differs between instruction sets (measured up to 0.0015 on MobileNetV2, Cortex-A76).
HYBRID_TOLERANCE = 1e-2
#: How far a variant's repeated counts may differ before they are flagged: 0.1 % of the count or
#: :data:`REPEAT_FLOOR` instructions per invoke, whichever is larger.  LiteRT's repeat to the instruction;
#: ONNX Runtime's do not: something inside it depends on time, so its counts moved by up to 2,900
#: instructions per invoke (0.05 % of 6.4 M) when other work loaded the host, and by none on a quiet one.
#: The floor keeps that jitter from flagging a small model, whose count it would be a larger share of.
REPEAT_TOLERANCE = 1e-3
REPEAT_FLOOR = 10_000
#: Marker numbers written by the guest script.
MARKERS = {"python": 1, "imports": 2, "loaded": 3, "first_invoke": 4, "invokes": 5}
CLASSES = ("dot", "i8mm", "sve", "sme")
_LINE = re.compile(r"^ICOUNT marker=(\S+) (.*)$")


class EmulationError(MobOptError):
    """The model could not be counted on the emulated CPU; the message carries the emulator's words."""


def parse(stderr: str) -> dict[str, dict[str, int]]:
    """The plugin's ``ICOUNT`` lines -> {marker: {total, dot, i8mm, sve, sme}}."""
    found: dict[str, dict[str, int]] = {}
    for line in stderr.splitlines():
        m = _LINE.match(line.strip())
        if m:
            found[m.group(1)] = {k: int(v) for k, v in (kv.split("=") for kv in m.group(2).split())}
    return found


def per_invoke(markers: dict[str, dict[str, int]], invokes: int) -> dict[str, Any]:
    """The counts of one run, from its markers (see the module docstring)."""
    need = [str(MARKERS[k]) for k in ("imports", "loaded", "first_invoke", "invokes")]
    missing = [k for k in need if k not in markers]
    if missing:
        raise EmulationError(f"the guest did not reach markers {', '.join(missing)}")
    m2, m3, m4, m5 = (markers[k] for k in need)
    out = {"instructions_per_invoke": (m5["total"] - m4["total"]) / invokes,
           "startup_instructions": m2["total"], "load_instructions": m3["total"] - m2["total"],
           "first_invoke_instructions": m4["total"] - m3["total"], "invokes": invokes}
    for c in CLASSES:
        out[f"{c}_per_invoke"] = (m5[c] - m4[c]) / invokes
    return out


def command(device, toolchain: dict[str, Any], model: Path, inp: Path, out: Path, invokes: int) -> list[str]:
    """The count's command line: address randomisation off, the device's CPU model (and on ARM its prefix and
    the arm64 Python; on x86 this process's own Python), the plugin."""
    qemu = ["setarch", "-R", f"qemu-{device.arch}", "-cpu", device.cpu, "-plugin", toolchain["plugin"]]
    guest = [str(arm_toolchain.GUEST_SCRIPT), str(model), str(inp), str(out), str(invokes)]
    if device.arch == "x86_64":
        return [*qemu, sys.executable, *guest]
    prefix = toolchain["prefixes"].get(device.name)
    if prefix is None:
        raise EmulationError(f"device {device.name}: the arm emulation set-up has no prefix for it; rerun fetch_arm_toolchain")
    return [*qemu, "-L", prefix, toolchain["python"], *guest]


def guest_environment(device, toolchain: dict[str, Any]) -> dict[str, str]:
    """The guest's environment: deterministic hashing and one BLAS thread; on ARM, the aarch64 wheels' folder."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if device.arch == "aarch64":
        env["PYTHONPATH"] = toolchain["site"]
        env.pop("PYTHONHOME", None)
    return env


def count_once(model: Path, device, toolchain: dict[str, Any], inp: Path, out: Path, invokes: int,
               timeout: float) -> dict[str, Any]:
    for what in ("python", "plugin", "site") if device.arch == "aarch64" else ("plugin",):
        if not Path(toolchain[what]).exists():
            raise EmulationError(f"{model} on {device.name}: the emulation toolchain's {what} {toolchain[what]} is "
                                 "missing; rerun fetch_arm_toolchain (delete data/tools/arm/toolchain.json)")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(command(device, toolchain, model, inp, out, invokes), capture_output=True, text=True,
                              timeout=timeout, env=guest_environment(device, toolchain), check=False)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"{model} on {device.name}: no result within {timeout:g} s under emulation") from None
    markers = parse(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join(ln for ln in (proc.stderr + proc.stdout).splitlines() if not ln.startswith("ICOUNT"))[-1500:]
        raise EmulationError(f"{model} on {device.name} ({device.cpu}): the emulated run failed with exit code "
                             f"{proc.returncode}: {tail.strip() or 'no message'}")
    counts = per_invoke(markers, invokes)
    if device.arch != "aarch64":  # the plugin classifies A64 instruction words only
        counts.update({f"{c}_per_invoke": None for c in CLASSES})
    return {**counts, "wall_seconds": time.perf_counter() - t0}


def repeats_agree(counts: list[float]) -> bool:
    """Whether repeated counts of one variant agree: within :data:`REPEAT_TOLERANCE` of the smallest or
    :data:`REPEAT_FLOOR` instructions, whichever is larger."""
    return max(counts) - min(counts) <= max(REPEAT_TOLERANCE * min(counts), REPEAT_FLOOR)


def host_reference(model: Path, seed: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The benchmark's seeded input, the host's output for it (LiteRT, or ONNX Runtime for an .onnx) and whether the
    model is hybrid: float in and out with int8 inside, whose run-time activation quantization rounds per ISA."""
    if model.suffix == ".onnx":
        from mobopt.bench.measurement import _OrtRunner

        it = _OrtRunner(model, threads=1)
        detail = it.get_input_details()[0]
        x = random_input(detail, np.random.default_rng(seed))
        it.set_tensor(detail["index"], x)
        it.invoke()
        # an ONNX file names each node's op type in plain text: a quantized graph is known without the onnx package
        quantized = any(op in model.read_bytes() for op in (b"QuantizeLinear", b"MatMulInteger", b"ConvInteger"))
        return x, it.binding.copy_outputs_to_cpu()[0].copy(), quantized
    it = litert.interpreter(model, threads=1)
    detail = it.get_input_details()[0]
    x = random_input(detail, np.random.default_rng(seed))
    it.set_tensor(detail["index"], x)
    it.invoke()
    host = it.get_tensor(it.get_output_details()[0]["index"]).copy()
    hybrid = np.dtype(detail["dtype"]).kind == "f" and any(np.dtype(t["dtype"]) == np.int8 for t in it.get_tensor_details())
    return x, host, hybrid


def agreement(guest: np.ndarray, host: np.ndarray, hybrid: bool = False) -> dict[str, Any]:
    """Whether the emulated CPU computed what the host computed: exact or one step for integers, a tolerance for floats
    (a looser one for a ``hybrid`` model, whose activations are quantized at run time)."""
    diff = np.abs(guest.astype(np.float64) - host.astype(np.float64))
    integer = np.dtype(host.dtype).kind in "iu"
    limit = 1.0 if integer else HYBRID_TOLERANCE if hybrid else FLOAT_TOLERANCE
    return {"dtype": np.dtype(host.dtype).name, "max_abs_difference": float(diff.max()) if diff.size else 0.0,
            "tolerance": limit, "unit": "quantization steps" if integer else "absolute",
            "agrees": bool(diff.max() <= limit) if diff.size else True}


def measure(model: str | Path, device_name: str, toolchain: dict[str, Any], options: dict[str, Any],
            seed: int = 0) -> dict[str, Any]:
    """Count ``model`` on the emulated CPU ``repeats`` times and check its output against the host's
    (the input drawn from ``seed`` as the host benchmark draws it)."""
    model = Path(model)
    device = devices.get(device_name)
    options = {**EMULATION_DEFAULTS, **options}
    invokes, repeats = int(options["invokes"]), int(options["repeats"])
    x, host, hybrid = host_reference(model, seed)
    runs, outputs = [], []
    with tempfile.TemporaryDirectory(prefix="mobopt-emu-") as tmp:
        np.save(Path(tmp) / "input.npy", x)
        for r in range(repeats):
            out = Path(tmp) / f"output{r}.npy"
            runs.append(count_once(model, device, toolchain, Path(tmp) / "input.npy", out, invokes, options["timeout"]))
            outputs.append(np.load(out))
            log.info("%s on %s, count %d/%d: %.0f instructions per invoke (%s dot-product)", model, device_name, r + 1,
                     repeats, runs[-1]["instructions_per_invoke"], runs[-1]["dot_per_invoke"])
    counts = [r["instructions_per_invoke"] for r in runs]
    first = runs[0]
    return {
        **{k: first[k] for k in ("instructions_per_invoke", "startup_instructions", "load_instructions",
                                 "first_invoke_instructions", "invokes", *(f"{c}_per_invoke" for c in CLASSES))},
        "repeat_counts": counts,
        "repeatable": len(set(counts)) == 1,
        "repeat_spread": (max(counts) - min(counts)) / min(counts) if min(counts) > 0 else 0.0,
        "output_agreement": agreement(outputs[0], host, hybrid),
        "wall_seconds_per_count": [r["wall_seconds"] for r in runs],
        "emulator": {"qemu": toolchain.get("qemu"), "arch": device.arch, "cpu": device.cpu,
                     "midr": f"0x{device.midr:08x}" if device.arch == "aarch64" else None, "isa": list(device.isa),
                     "guest_versions": toolchain.get("guest_versions") if device.arch == "aarch64"
                     else provenance.package_versions(("ai-edge-litert", "numpy", "onnxruntime"))},
        "latency_note": "no latency: QEMU models no pipeline or cache, so an emulated CPU's time is not a real one's; "
                        "instructions per invoke are the work executed",
    }
