"""Benchmark stages: .tflite models in, latency and CPU-peak results out.

These commands must never import TensorFlow: the protocol runs ``bench-run`` and
``op-profile`` in fresh processes whose memory and timing would carry it.  They are
hidden from ``mobopt --help`` because only the protocol calls them.
"""

from __future__ import annotations

from mobopt.cli._args import DEVICES, add_command, add_options, add_registry, add_seed, pairs, require


def cmd_bench(a):
    models, outputs = pairs(a.model, "--model"), pairs(a.out, "--out")
    from mobopt.bench.protocol import run

    run(models, a.device, outputs, a.options, binary=a.binary, toolchain=a.toolchain,
        context={"experiment": a.experiment} if a.experiment else None)


def cmd_bench_run(a):
    require(a.model)
    from mobopt.bench.measurement import measure_to_file

    measure_to_file(a.model, a.device, a.out, a.options, load_only=a.load_only)


def cmd_op_profile(a):
    require(a.model)
    from mobopt.bench import devices, opprofile
    from mobopt.common.atomic import write_json

    dev = devices.get(a.device)
    cores = dev.apply()
    if str(a.model).endswith(".onnx"):  # ONNX Runtime profiles in its executor
        from mobopt.onnxrt import profile as ort_profile

        result = ort_profile.profile(a.model, threads=dev.threads, runs=a.runs, seed=a.seed)
    else:
        result = opprofile.profile(a.model, threads=dev.threads, runs=a.runs, seed=a.seed)
    write_json(a.out, {**result, "model": a.model, "device": a.device, "cores": cores})


def cmd_fetch_benchmark_model(a):
    from mobopt.bench.tools import fetch_benchmark_model

    fetch_benchmark_model(a.options, a.out)


def cmd_fetch_arm_toolchain(a):
    from mobopt.bench import arm_toolchain, devices

    arm_toolchain.setup(a.out, [d for d in devices.DEVICES.values() if d.kind == "emulated"])


def cmd_cpu_peak(a):
    require(a.float32, a.int8)
    from mobopt.bench import peak
    from mobopt.common.atomic import write_json
    from mobopt.common.provenance import collect

    result = peak.measure({"float32": a.float32, "int8": a.int8}, a.device)
    write_json(a.out, {**result, "provenance": collect(threads=result["threads"])})


def register(sub) -> None:
    s = add_command(sub, "bench", cmd_bench, "the benchmark protocol: every variant of one experiment on one device, interleaved")
    s.add_argument("--model", action="append", required=True, metavar="VARIANT=PATH", help="model file per variant (repeatable)")
    s.add_argument("--out", action="append", required=True, metavar="VARIANT=PATH", help="result JSON per variant (repeatable)")
    add_registry(s, "--device", DEVICES, "device to measure on")
    add_options(s, "the config's `benchmark` options")
    s.add_argument("--experiment", default=None, help="recorded in every result")
    s.add_argument("--binary", default=None, help="LiteRT benchmark_model binary (android devices)")
    s.add_argument("--toolchain", default=None, help="the arm emulation toolchain's record (emulated devices)")

    s = add_command(sub, "bench-run", cmd_bench_run,
                    "one measurement in this (fresh, TF-free) process; the protocol's inner step", hidden=True)
    s.add_argument("--model", required=True, help=".tflite or .onnx to measure")
    add_registry(s, "--device", DEVICES, "device to measure on")
    s.add_argument("--out", required=True, help="result file to write (JSON)")
    add_options(s, "measurement options (iterations, warmup, min_seconds, ...)")
    s.add_argument("--load-only", action="store_true", help="only the timed cold load")

    s = add_command(sub, "op-profile", cmd_op_profile, "per-op time profile from isolated single-op models (host devices)",
                    hidden=True)
    s.add_argument("--model", required=True, help=".tflite or .onnx to profile")
    add_registry(s, "--device", DEVICES, "device to profile on")
    s.add_argument("--out", required=True, help="profile file to write (JSON)")
    s.add_argument("--runs", type=int, default=200, help="timed runs per op (default: %(default)s)")
    add_seed(s, "seed of the random inputs")

    s = add_command(sub, "fetch-benchmark-model", cmd_fetch_benchmark_model,
                    "fetch LiteRT's benchmark_model binary for Android (checksummed, atomic)")
    s.add_argument("--out", required=True, help="path of the binary to write (made executable)")
    add_options(s, "the config's `benchmark.android` options (binary_url or binary_path, binary_sha256)")

    s = add_command(sub, "setup-arm-emulation", cmd_fetch_arm_toolchain,
                    "set up the emulated CPUs: qemu-user, an arm64 Python, the aarch64 LiteRT wheel, the counting plugin")
    s.add_argument("--out", required=True, help="the toolchain's record to write (JSON); the toolchain goes beside it")

    s = add_command(sub, "cpu-peak", cmd_cpu_peak, "measure this CPU's GEMM peaks and memory bandwidth on a host device")
    s.add_argument("--float32", required=True, help="float32 GEMM model (from peak-models)")
    s.add_argument("--int8", required=True, help="int8 GEMM model (from peak-models)")
    add_registry(s, "--device", DEVICES, "host device to measure on")
    s.add_argument("--out", required=True, help="peak results to write (JSON)")
