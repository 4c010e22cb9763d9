"""Time the offline demo end to end on 2 cores from an empty folder, then a no-op dry run.

Usage: python benchmarks/workflow_time.py [--cores 2]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mobopt-demo-"))
    try:
        subprocess.run([sys.executable, "-m", "mobopt", "digits-idx", str(work / "data/demo/digits-idx")], check=True,
                       capture_output=True)
        base = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
                "--configfile", str(REPO / "config/demo.yaml"), "--cores", str(args.cores)]
        t0 = time.perf_counter()
        subprocess.run(base, check=True, capture_output=True)
        full = time.perf_counter() - t0
        dry = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = subprocess.run([*base, "-n"], check=True, capture_output=True, text=True)
            dry.append(time.perf_counter() - t0)
            assert "Nothing to be done" in out.stdout + out.stderr
        print(f"demo end to end on {args.cores} cores: {full:.1f} s (target <= 300 s)")
        print(f"snakemake -n with everything done: median {sorted(dry)[1]:.2f} s of {[round(d, 2) for d in dry]} "
              "(target <= 3 s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
