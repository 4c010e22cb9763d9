"""The benchmark protocol: repeated fresh-process measurements, interleaved variants, intervals, flags.

One call measures every variant of one experiment on one device and writes one
result JSON per variant.  The rules, after LiteRT's ``benchmark_model`` and
MLPerf's:

* **one fresh, TF-free process per measurement** (``python -m mobopt
  bench-run``, pinned to the device's cores; on a phone, one
  ``benchmark_model`` process), so no measurement inherits another's caches,
  allocator state or JIT'd delegate;
* **repeats interleaved across variants** (A B A B ...): slow drift of the
  machine (thermal state, a noisy neighbour on a shared VM) hits every
  variant alike instead of biasing whichever ran last;
* **cold load** measured in every process, plus extra load-only processes up
  to ``load_samples``; the median is reported;
* **headline statistics over the pooled runs** of all repeats (p5 ... p99,
  mean, std, min, max) with **two-level bootstrap confidence intervals** for
  p50 and p95 (:func:`mobopt.bench.stats.bootstrap_ci`);
* **flags instead of silent averages**: repeats whose p50 differ from their
  median by more than ``disagreement_threshold``, a single-thread run that
  got less than ``busy_cpu_percent`` of its core (it waited: the machine was
  busy), a run cut short by ``max_seconds``, and a cross-check outside
  tolerance are listed in ``flags`` and shown in Table 2;
* **explanation**: delegate coverage (:func:`mobopt.litert.interpreter.delegation`) and a
  per-op profile (host: :mod:`mobopt.bench.opprofile`; phone: ``benchmark_model
  --enable_op_profiling``), and on hosts a cross-check against the
  ai-edge-litert wheel's own tool (:mod:`mobopt.bench.crosscheck`);
* **failures stay local**: a variant whose model fails to load is recorded
  with ``status: failed`` and the error, and the other variants are still
  measured.  A device that is not there fails the whole call with a message
  naming it (nothing could be measured).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError, litert
from mobopt.bench import devices, stats
from mobopt.common import cpuinfo, provenance
from mobopt.common.atomic import write_json
from mobopt.litert import unsupported

log = logging.getLogger(__name__)

PROTOCOL_DEFAULTS: dict[str, Any] = {
    "iterations": 1200,
    "warmup": 50,
    "min_seconds": 0.0,
    "max_seconds": 600.0,
    "repeats": 3,
    "load_samples": 5,
    "bootstrap_resamples": 2000,
    "ci_level": 0.95,
    "disagreement_threshold": 0.05,
    "busy_cpu_percent": 90.0,
    "op_profile": True,
    "op_profile_runs": 200,
    "crosscheck": True,
    "seed": 0,
    "timeout": 1800.0,
}


class MeasurementError(MobOptError):
    """One measurement process failed; the message carries its error."""


def options(raw: dict[str, Any] | None) -> dict[str, Any]:
    opts = {**PROTOCOL_DEFAULTS, **(raw or {})}
    if opts["repeats"] < 1 or opts["iterations"] < 1:
        raise MobOptError("benchmark.repeats and benchmark.iterations must be >= 1")
    return opts


def _spawn(args: list[str], timeout: float, what: str) -> dict[str, Any]:
    """Run ``python -m mobopt <args> --out <tmp>`` in a fresh process and return the JSON it wrote."""
    with tempfile.TemporaryDirectory(prefix="mobopt-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "mobopt", *args, "--out", str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise MeasurementError(f"{what}: no result within {timeout:g} s (benchmark.timeout)") from None
        if proc.returncode != 0 or not out.exists():
            lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
            detail = lines[-1][7:] if lines else proc.stderr.strip()[-1500:]
            raise MeasurementError(f"{what}: {detail or f'exit code {proc.returncode}'}")
        return json.loads(out.read_text())


def _host_measure(model: Path, device: str, opts: dict[str, Any], *, load_only: bool = False) -> dict[str, Any]:
    bench_opts = {k: opts[k] for k in ("iterations", "warmup", "min_seconds", "max_seconds", "seed")}
    args = ["bench-run", "--model", str(model), "--device", device, "--options", json.dumps(bench_opts)]
    return _spawn([*args, "--load-only"] if load_only else args, opts["timeout"], f"{model} on {device}")


def _median(values: list[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.median(v)) if v else None


def _flags(entry: dict[str, Any], opts: dict[str, Any]) -> list[str]:
    flags = []
    spread = entry.get("repeat_p50_spread")
    if spread is not None and spread > opts["disagreement_threshold"]:
        p50s = ", ".join(f"{r['p50_ms']:.4g}" for r in entry["repeats"])
        flags.append(f"repeats disagree: p50 of the {len(entry['repeats'])} repeats ({p50s} ms) deviate up to "
                     f"{spread:.1%} from their median (threshold {opts['disagreement_threshold']:.0%})")
    cpu = entry.get("cpu_percent")
    if entry.get("threads") == 1 and cpu is not None and cpu < opts["busy_cpu_percent"]:
        flags.append(f"busy machine: the single-thread benchmark got {cpu:.0f} % of its core (< "
                     f"{opts['busy_cpu_percent']:.0f} %); it waited for the CPU, latencies are inflated")
    if any(r.get("stopped_by") == "max_seconds" for r in entry.get("repeats", [])):
        flags.append(f"a repeat was cut short by max_seconds ({opts['max_seconds']:g} s) before "
                     f"{opts['iterations']} runs")
    if entry.get("error"):
        flags.append(f"only {len(entry['repeats'])} of {opts['repeats']} repeats: a measurement failed ({entry['error']})")
    for err in entry.get("side_errors", []):  # load-only samples, the phone's op-profile run
        flags.append(f"an extra measurement failed: {err}")
    cc = entry.get("crosscheck")
    if cc and cc.get("within_tolerance") is False:
        by = (f"{cc['relative_difference']:+.1%} (tolerance {cc['tolerance']:.0%})" if cc.get("relative_difference") is not None
              else f"{cc['absolute_difference_ms']:+.4g} ms (tolerance {cc['tolerance_ms']:.4g} ms, {cc['compared_at']})")
        flags.append(f"cross-check: our p50 {cc['ours_p50_ms']:.4g} ms differs from {cc['tool']}'s "
                     f"{cc['tool_p50_ms']:.4g} ms by {by}")
    elif cc and cc.get("error"):
        flags.append(f"cross-check failed: {cc['error']}")
    for key in ("delegation", "op_profile"):
        if isinstance(entry.get(key), dict) and entry[key].get("error"):
            flags.append(f"{key.replace('_', ' ')} unavailable: {entry[key]['error']}")
    return flags


def _host_summary(repeats: list[dict[str, Any]], opts: dict[str, Any]) -> dict[str, Any]:
    lat = [r["latencies_ms"] for r in repeats]
    pooled = np.concatenate([np.asarray(x) for x in lat])
    ci = {}
    for q in (50, 95):
        lo, hi = stats.bootstrap_ci(lat, q, resamples=opts["bootstrap_resamples"], level=opts["ci_level"],
                                    seed=opts["seed"])
        ci[f"p{q}_ci_ms"] = [lo, hi]
    return {
        **stats.summarize(pooled),
        **ci,
        "ci_level": opts["ci_level"],
        "ci_method": "two-level bootstrap over repeats and runs",
        "runs_pooled": int(pooled.size),
        "repeat_p50_spread": stats.relative_spread([r["p50_ms"] for r in repeats]),
    }


def _pooled_mean_std(repeats: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """Mean and (population) std of all runs of all repeats, exactly, from each repeat's count, mean and std:
    the same quantities the host's pooled runs give, although the phone reports no single run."""
    rs = [r for r in repeats if r.get("mean_ms") is not None and r.get("std_ms") is not None and r.get("iterations")]
    if not rs:
        return None, None
    n = np.array([r["iterations"] for r in rs], dtype=float)
    m = np.array([r["mean_ms"] for r in rs])
    sd = np.array([r["std_ms"] for r in rs])
    mean = float((n * m).sum() / n.sum())
    var = float((n * (sd**2 + (m - mean) ** 2)).sum() / n.sum())
    return mean, var**0.5


def _android_summary(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for key in ("p5_ms", "p50_ms", "p95_ms"):  # percentiles cannot be pooled without the runs: median of repeats
        out[key] = _median([r.get(key) for r in repeats])
    out["mean_ms"], out["std_ms"] = _pooled_mean_std(repeats)
    out.update(p10_ms=None, p90_ms=None, p99_ms=None, min_ms=min(r["min_ms"] for r in repeats),
               max_ms=max(r["max_ms"] for r in repeats))
    p50s = [r["p50_ms"] for r in repeats]
    out.update(p50_ci_ms=None, p95_ci_ms=None, ci_level=None,
               ci_method="not available: benchmark_model prints no per-run latencies; see p50_range_ms",
               p50_range_ms=[min(p50s), max(p50s)], runs_pooled=int(sum(r["iterations"] for r in repeats)),
               repeat_p50_spread=stats.relative_spread(p50s),
               unavailable={"p10_ms, p90_ms, p99_ms": "benchmark_model reports only p5, median and p95"})
    return out


def _assemble(variant: str, model: Path, device: str, kind: str, threads: int | None, repeats: list[dict[str, Any]],
              loads: list[float], errors: list[str], extras: dict[str, Any], opts: dict[str, Any],
              side_errors: list[str] = ()) -> dict[str, Any]:
    dev = devices.get(device)
    base: dict[str, Any] = {
        "model": str(model), "variant": variant, "device": device, "device_kind": kind,
        "device_description": dev.description, "threads": threads,
        "protocol": {k: opts[k] for k in PROTOCOL_DEFAULTS},
        "size_bytes": model.stat().st_size if model.exists() else None,
    }
    if errors and not repeats:
        return {**base, "status": "failed", "error": errors[0], "flags": [f"failed: {errors[0]}"], "flagged": True,
                "provenance": provenance.collect(seed=opts["seed"], threads=threads)}
    summary = _host_summary(repeats, opts) if kind == "host" else _android_summary(repeats)
    entry = {
        **base,
        "status": "ok",
        "error": errors[0] if errors else None,
        "iterations": int(np.median([r["iterations"] for r in repeats])),
        "repeats_done": len(repeats),
        "side_errors": list(side_errors),
        **summary,
        "load_ms": _median(loads),
        "load_samples_ms": loads,
        "first_inference_ms": _median([r.get("first_inference_ms") for r in repeats]),
        "cpu_percent": _median([r.get("cpu_percent") for r in repeats]),
        "peak_rss_mb": max((r["peak_rss_mb"] for r in repeats if r.get("peak_rss_mb") is not None), default=None),
        "rss_before_load_mb": _median([r.get("rss_before_load_mb") for r in repeats]),
        "rss_after_load_mb": _median([r.get("rss_after_load_mb") for r in repeats]),
        "rss_delta_mb": _median([r.get("rss_delta_mb") for r in repeats]),
        "tensorflow_imported": any(r.get("tensorflow_imported") for r in repeats),
        "cores": repeats[0].get("cores"),
        "started_unix": min(r["started_unix"] for r in repeats),
        "finished_unix": max(r["finished_unix"] for r in repeats),
        **{k: v for k, v in extras.items() if k != "crosscheck_tool"},
        "repeats": repeats,
    }
    if isinstance(entry.get("op_profile"), dict) and "sum_us" in entry["op_profile"]:
        entry["op_profile"]["whole_model_p50_us"] = entry["p50_ms"] * 1e3
    tools = extras.get("crosscheck_tool")
    if tools:
        from mobopt.bench import crosscheck

        ok = [t for t in tools if "latency" in t]
        entry["crosscheck"] = (crosscheck.compare(entry["p50_ms"], ok) if ok
                               else {**tools[-1], "within_tolerance": None})  # every run failed: its error, flagged
    entry["flags"] = _flags(entry, opts)
    entry["flagged"] = bool(entry["flags"])
    entry["provenance"] = provenance.collect(seed=opts["seed"], threads=threads)
    return entry


def _explain(model: Path, device: str, opts: dict[str, Any]) -> dict[str, Any]:
    """Delegate coverage, isolated per-op profile and the cross-check tool's result, for one host variant."""
    extras: dict[str, Any] = {}
    dev = devices.get(device)
    try:
        if model.suffix == ".tflite":  # ONNX Runtime has no delegate: its CPU execution provider runs every node
            extras["delegation"] = litert.delegation(model, threads=dev.threads)
    except MobOptError as exc:
        extras["delegation"] = {"error": str(exc)}
    if opts["op_profile"]:
        try:
            extras["op_profile"] = _spawn(
                ["op-profile", "--model", str(model), "--device", device, "--runs", str(opts["op_profile_runs"]),
                 "--seed", str(opts["seed"])], opts["timeout"], f"op profile of {model} on {device}")
        except MeasurementError as exc:
            extras["op_profile"] = {"error": str(exc)}
    return extras


def _crosscheck_run(model: Path, device: str, opts: dict[str, Any]) -> dict[str, Any]:
    from mobopt.bench import crosscheck

    if model.suffix == ".onnx":
        from mobopt.onnxrt.profile import NO_CROSSCHECK

        return {"tool": None, "unavailable": NO_CROSSCHECK}
    try:
        return crosscheck.run_tool(model, device, runs=opts["iterations"], warmup=opts["warmup"], timeout=opts["timeout"])
    except MobOptError as exc:
        return {"error": str(exc)}


def measure_host(models: dict[str, Path], device: str, opts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    dev = devices.get(device)
    ok, why = devices.availability(device)
    if not ok:
        raise devices.DeviceError(why)
    order = list(models)
    repeats: dict[str, list] = {v: [] for v in order}
    loads: dict[str, list] = {v: [] for v in order}
    errors: dict[str, list] = {v: [] for v in order}
    tools: dict[str, list] = {v: [] for v in order}
    side: dict[str, list] = {v: [] for v in order}
    for r in range(opts["repeats"]):
        for v in order:
            if errors[v]:
                continue
            try:
                rep = _host_measure(models[v], device, opts)
            except MeasurementError as exc:
                log.error("%s: %s", v, exc)
                errors[v].append(str(exc))
                continue
            rep["repeat"] = r
            repeats[v].append(rep)
            loads[v].append(rep["load_ms"])
            log.info("repeat %d/%d %s on %s: p50 %.4f ms", r + 1, opts["repeats"], v, device, rep["p50_ms"])
            if opts["crosscheck"]:  # the independent tool right after ours: both see the machine in the same state
                tools[v].append(_crosscheck_run(models[v], device, opts))
    for _ in range(max(0, opts["load_samples"] - opts["repeats"])):
        for v in order:
            if not errors[v]:
                try:
                    loads[v].append(_host_measure(models[v], device, opts, load_only=True)["load_ms"])
                except MeasurementError as exc:
                    log.error("%s (load sample): %s", v, exc)
                    side[v].append(f"load sample: {exc}")
    return {v: _assemble(v, models[v], device, "host", dev.threads, repeats[v], loads[v], errors[v],
                         {**_explain(models[v], device, opts), "crosscheck_tool": tools[v]} if repeats[v] else {}, opts,
                         side[v])
            for v in order}


def measure_android(models: dict[str, Path], device: str, opts: dict[str, Any], binary: Path | None) -> dict[str, dict]:
    from mobopt.bench import android

    aopts = {**android.ANDROID_DEFAULTS, **opts.get("android", {})}
    if binary is None or not Path(binary).is_file():
        raise devices.DeviceError(f"device {device}: LiteRT's benchmark_model binary {binary} not found; the "
                                  "download_benchmark_model rule fetches it (benchmark.android.binary_url or binary_path)")
    adb = android.Adb.connect(aopts)
    remote_bin, remote_models = android.prepare(adb, binary, models, aopts)
    run_opts = {**aopts, "iterations": opts["iterations"], "warmup": opts["warmup"],
                "min_seconds": opts["min_seconds"], "max_seconds": opts["max_seconds"]}
    order = list(models)
    repeats: dict[str, list] = {v: [] for v in order}
    loads: dict[str, list] = {v: [] for v in order}
    errors: dict[str, list] = {v: [] for v in order}
    side: dict[str, list] = {v: [] for v in order}

    def attempt(v: str, flags: list[str], what: str, failures: dict[str, list]):
        try:
            return android.run_benchmark_model(adb, remote_bin, remote_models[v], aopts, extra_flags=flags,
                                               label=f"{Path(models[v]).parent.name}/{v} ({what})")
        except MobOptError as exc:
            log.error("%s: %s", v, exc)
            failures[v].append(str(exc))
            return None

    for r in range(opts["repeats"]):
        for v in order:
            if errors[v]:
                continue
            t0 = time.time()
            rep = attempt(v, android.timed_flags(run_opts), f"repeat {r + 1}", errors)
            if rep is not None:
                rep.update(repeat=r, started_unix=t0, finished_unix=time.time(), threads=aopts["threads"],
                           cores=f"taskset {aopts['taskset']}", tensorflow_imported=False)
                repeats[v].append(rep)
                loads[v].append(rep.get("load_ms"))
    for _ in range(max(0, opts["load_samples"] - opts["repeats"])):
        for v in order:
            if not errors[v]:
                try:
                    text = adb.shell(f"cd {aopts['remote_dir']} && taskset {aopts['taskset']} {remote_bin} "
                                     f"--graph={remote_models[v]} --num_threads={aopts['threads']} --dry_run=true 2>&1")
                    loads[v].append(parse_load_ms(text, label=f"phone {adb.serial}: {v} (load only)"))
                except MobOptError as exc:
                    log.error("%s (load sample): %s", v, exc)
                    side[v].append(f"load sample: {exc}")
    # the phone's own CPU and its instruction-set features (int8 dot product or not), as every host result records its own
    phone_cpu = cpuinfo.parse(adb.shell("cat /proc/cpuinfo", check=False))
    results = {}
    for v in order:
        extras: dict[str, Any] = {"phone_serial": adb.serial, "phone_cpu": phone_cpu}
        if repeats[v]:
            try:
                extras["delegation"] = {**litert.delegation(models[v], threads=aopts["threads"]),
                                        "note": "computed with this host's LiteRT; the phone's benchmark_model may differ"}
            except MobOptError as exc:
                extras["delegation"] = {"error": str(exc)}
            if opts["op_profile"]:
                failed = len(side[v])
                prof = attempt(v, [*android.timed_flags({**run_opts, "iterations": opts["op_profile_runs"]}),
                                   "--enable_op_profiling=true"], "op profile", side)
                if prof is None:  # its error is flagged as a side error: keep it out of the op_profile flag
                    extras["op_profile"] = {"unavailable": side[v][failed]}
                else:
                    extras["op_profile"] = prof.get("op_profile") or {"error": "benchmark_model printed no op profile"}
        loads_ok = [x for x in loads[v] if x is not None]
        results[v] = _assemble(v, models[v], device, "android", aopts["threads"], repeats[v], loads_ok, errors[v],
                               extras, opts, side[v])
    return results


def parse_load_ms(text: str, label: str) -> float:
    m = re.search(r"Initialized session in ([\d.]+)\s*ms", text)
    if not m:
        raise MobOptError(f"{label}: benchmark_model --dry_run printed no 'Initialized session' line:\n{text[-800:]}")
    return float(m.group(1))


def measure_emulated(models: dict[str, Path], device: str, opts: dict[str, Any],
                     toolchain: Path | None) -> dict[str, dict[str, Any]]:
    """Instruction counts on an emulated CPU (:mod:`mobopt.bench.emulated`); a variant that fails under emulation is
    recorded as failed with the emulator's message and the others go on."""
    from mobopt.bench import emulated

    if toolchain is None or not Path(toolchain).exists():
        raise devices.DeviceError(f"device {device}: the emulation toolchain is missing; the fetch_arm_toolchain rule "
                                  "builds it (data/tools/arm/toolchain.json)")
    tools = json.loads(Path(toolchain).read_text())
    dev = devices.get(device)
    results = {}
    for v, model in models.items():
        base = {"model": str(model), "variant": v, "device": device, "device_kind": dev.kind,
                "device_description": dev.description, "threads": 1,
                "protocol": {k: opts[k] for k in PROTOCOL_DEFAULTS}, "size_bytes": model.stat().st_size}
        try:
            counts = emulated.measure(model, device, tools, opts.get("emulation") or {}, seed=opts["seed"])
        except MobOptError as exc:
            log.error("%s on %s: %s", v, device, exc)
            results[v] = {**base, "status": "failed", "error": str(exc), "flags": [f"failed: {exc}"], "flagged": True,
                          "provenance": provenance.collect(seed=opts["seed"], threads=1)}
            continue
        flags = []
        if not emulated.repeats_agree(counts["repeat_counts"]):
            flags.append(f"counts differ between repeats by {counts['repeat_spread']:.2%}: {counts['repeat_counts']}")
        agree = counts["output_agreement"]
        if not agree["agrees"]:
            flags.append(f"output differs from the host's by {agree['max_abs_difference']:.3g} {agree['unit']} "
                         f"(tolerance {agree['tolerance']:g})")
        results[v] = {**base, "status": "ok", **counts, "flags": flags, "flagged": bool(flags),
                      "provenance": provenance.collect(seed=opts["seed"], threads=1)}
    return results


def run(models: dict[str, str | Path], device: str, outputs: dict[str, str | Path], raw_options: dict[str, Any] | None,
        *, binary: str | Path | None = None, toolchain: str | Path | None = None,
        context: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Measure ``models`` ({variant: .tflite}) on ``device`` and write ``outputs`` ({variant: result JSON})."""
    if set(models) != set(outputs):
        raise MobOptError(f"benchmark: models {sorted(models)} and outputs {sorted(outputs)} name different variants")
    opts = options(raw_options)
    paths = {v: Path(p) for v, p in models.items()}
    dev = devices.get(device)
    t0 = time.time()
    # a variant the converter refused (an empty .tflite recorded as not supported): nothing to measure
    refused = {v: unsupported.record(p) for v, p in paths.items()}
    results = {v: not_supported(v, paths[v], device, record, opts) for v, record in refused.items() if record}
    measured = {v: p for v, p in paths.items() if not refused[v]}
    if dev.kind != "host" and getattr(dev, "arch", None) != "x86_64":
        # a phone and an emulated ARM CPU run LiteRT only; ONNX Runtime runs on hosts and the emulated x86 CPU
        onnx = {v: p for v, p in measured.items() if p.suffix == ".onnx"}
        runs_what = "LiteRT's benchmark_model" if dev.kind == "android" else "the aarch64 LiteRT wheel"
        results.update({v: not_supported(v, p, device, {"reason": f"ONNX Runtime variants are measured on host devices "
                                                        f"and x86_avx2 only; {device} runs {runs_what}"}, opts)
                        for v, p in onnx.items()})
        measured = {v: p for v, p in measured.items() if v not in onnx}
    if measured and dev.kind == "host":
        results.update(measure_host(measured, device, opts))
    elif measured and dev.kind == "emulated":
        results.update(measure_emulated(measured, device, opts, Path(toolchain) if toolchain else None))
    elif measured:
        results.update(measure_android(measured, device, opts, Path(binary) if binary else None))
    for v, result in results.items():
        result.update(context or {})
        result["protocol_seconds"] = time.time() - t0
        write_json(outputs[v], result)
        if result["status"] == "ok" and dev.kind == "emulated":
            dot = result["dot_per_invoke"]
            log.info("%s on %s: %.0f instructions per invoke (%s int8 dot-product)%s", v, device,
                     result["instructions_per_invoke"], "not counted" if dot is None else f"{dot:.0f}",
                     f"; FLAGS: {'; '.join(result['flags'])}" if result["flags"] else "")
        elif result["status"] == "ok":
            log.info("%s on %s: p50 %.4f ms p95 %.4f ms, load %.2f ms%s", v, device, result["p50_ms"], result["p95_ms"],
                     result["load_ms"] or float("nan"), f"; FLAGS: {'; '.join(result['flags'])}" if result["flags"] else "")
        elif result["status"] == unsupported.STATUS:
            log.warning("%s: not supported (%s); recorded without numbers", v, result["reason"])
        else:
            log.error("%s on %s failed: %s", v, device, result["error"])
    return {v: results[v] for v in models}


def not_supported(variant: str, model: Path, device: str, record: dict[str, Any], opts: dict[str, Any]) -> dict[str, Any]:
    """The result of a variant that was never made: its reason, no numbers."""
    dev = devices.get(device)
    return {"model": str(model), "variant": variant, "device": device, "device_kind": dev.kind,
            "device_description": dev.description, **unsupported.result_fields(record),
            "protocol": {k: opts[k] for k in PROTOCOL_DEFAULTS},
            "provenance": provenance.collect(seed=opts["seed"])}
