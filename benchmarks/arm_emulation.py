"""Emulated CPUs (ARM; x86 without AVX-512): set-up time, and each variant's instructions per invoke per count.

Times the set-up (``mobopt setup-arm-emulation``: qemu-user, the arm64 Python, the aarch64 wheels,
the plugin; a fresh ``--toolchain`` folder measures a first set-up, an existing one only the check),
then counts every .tflite given on every emulated CPU with the benchmark protocol's own code
(:func:`mobopt.bench.protocol.measure_emulated`), and prints per model and CPU: instructions per
invoke, its ratio to the float32 file of the same folder, dot-product and i8mm instructions per
invoke, whether the repeats agreed to the instruction, whether the output matched the host's, and
the wall time of each count.  Targets: set-up <= 2 min on a fresh machine; each count of the paper
ViT <= 60 s.

Usage: python benchmarks/arm_emulation.py MODEL.tflite [MODEL.tflite ...] [--devices arm_a53 arm_a76 x86_avx2]
       [--invokes 10] [--repeats 2] [--toolchain data/tools/arm/toolchain.json]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--devices", nargs="+", default=["arm_a53", "arm_a76", "x86_avx2"])
    ap.add_argument("--invokes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--toolchain", default="data/tools/arm/toolchain.json")
    args = ap.parse_args()

    from mobopt.bench import protocol
    from mobopt.common import cpuinfo

    print("host:", cpuinfo.summary(cpuinfo.describe()))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mobopt", "setup-arm-emulation", "--out", args.toolchain], check=True)
    print(f"set-up: {time.perf_counter() - t0:.1f} s (toolchain {args.toolchain})")
    opts = protocol.options({"emulation": {"invokes": args.invokes, "repeats": args.repeats}})
    models = {Path(m).parent.name + "/" + Path(m).stem: Path(m) for m in args.models}
    print(f"{'model':34} {'cpu':9} {'instr/invoke':>14} {'vs f32':>7} {'dot':>11} {'i8mm':>9} {'repeat':>7} {'output':>7} "
          "wall s per count")
    for device in args.devices:
        results = protocol.measure_emulated(models, device, opts, Path(args.toolchain))
        for name, r in results.items():
            if r["status"] != "ok":
                print(f"{name:34} {device:9} FAILED: {r['error']}")
                continue
            f32 = results.get(name.rsplit("/", 1)[0] + "/float32", {}).get("instructions_per_invoke")
            ratio = f"{r['instructions_per_invoke'] / f32:.2f}" if f32 else "-"
            dot, mm = (("-" if r[k] is None else f"{r[k]:,.0f}") for k in ("dot_per_invoke", "i8mm_per_invoke"))
            print(f"{name:34} {device:9} {r['instructions_per_invoke']:>14,.0f} {ratio:>7} {dot:>11} {mm:>9} "
                  f"{str(r['repeatable']):>7} {str(r['output_agreement']['agrees']):>7} "
                  f"{', '.join(f'{s:.1f}' for s in r['wall_seconds_per_count'])}")
            if not r["output_agreement"]["agrees"]:
                print(f"{'':44} output differs by {r['output_agreement']['max_abs_difference']:.3g} "
                      f"{r['output_agreement']['unit']}")
    print(json.dumps({"invokes": args.invokes, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
