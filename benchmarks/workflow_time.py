"""Time a whole workflow run on N cores from an empty folder, per stage, then a no-op dry run.

Usage:
  python benchmarks/workflow_time.py [--cores 2]
      the offline demo (config/demo.yaml, digits written first): target <= 5 min
  python benchmarks/workflow_time.py --configfile config/fashion_mnist.yaml --target-minutes 75 [--keep DIR]
      any config, e.g. the paper ViT on the real Fashion-MNIST for 25 epochs (Debian's
      ``dataset-fashion-mnist`` or the official mirror): target <= 75 min on 2 cores

The wall time covers everything Snakemake runs, downloads and preparation included.  The per-stage
lines add up each job's own wall time from the rules' ``benchmark:`` files (results/jobstats/<stage>/),
so they say where the time goes; with more than one core jobs overlap and the stages add up to more
than the wall time.  The host's CPU model and ISA are printed with the figures: they differ between
hosts, and a time is comparable only with runs on the same kind of CPU.  ``--keep DIR`` runs in DIR
(which must not exist) and leaves the results there, e.g. to publish them with ``mobopt publish-results``.
"""

import argparse
import csv
import datetime
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from mobopt.common import cpuinfo

REPO = Path(__file__).resolve().parents[1]
DEMO = "config/demo.yaml"


def stage_seconds(work: Path) -> dict[str, tuple[int, float]]:
    """Jobs and summed wall seconds per stage (first folder under results/jobstats, train per experiment)."""
    stages: dict[str, list[float]] = defaultdict(list)
    for tsv in sorted((work / "results/jobstats").rglob("*.tsv")):
        parts = tsv.relative_to(work / "results/jobstats").parts
        name = f"train {tsv.stem}" if parts[0] == "train" else \
            f"graph_opt {tsv.stem}" if parts[0] == "graph_opt" else parts[0]
        with tsv.open() as fh:
            stages[name] += [float(row["s"]) for row in csv.DictReader(fh, delimiter="\t")]
    return {name: (len(s), sum(s)) for name, s in stages.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--configfile", default=DEMO, help="a config relative to the repository (default: the demo)")
    ap.add_argument("--target-minutes", type=float, help="the target to print beside the time (demo: 5)")
    ap.add_argument("--keep", type=Path, help="run in this new folder and keep it (default: a temporary one, deleted)")
    args = ap.parse_args()
    target = args.target_minutes if args.target_minutes is not None else 5.0 if args.configfile == DEMO else None
    if args.keep is not None and args.keep.exists():
        sys.exit(f"{args.keep}: exists; give a new folder to --keep")
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="mobopt-time-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"host: {cpuinfo.summary(cpuinfo.describe())}; {args.cores} cores; config {args.configfile}; in {work}",
          flush=True)
    try:
        if args.configfile == DEMO:
            subprocess.run([sys.executable, "-m", "mobopt", "digits-idx", str(work / "data/demo/digits-idx")],
                           check=True, capture_output=True)
        base = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work),
                "--configfile", str(REPO / args.configfile), "--cores", str(args.cores)]
        started = datetime.datetime.now(datetime.UTC)
        t0 = time.perf_counter()
        with (work / "workflow_time.log").open("w") as log:
            done = subprocess.run(base, stdout=log, stderr=subprocess.STDOUT)
        full = time.perf_counter() - t0
        if done.returncode:
            sys.exit(f"snakemake failed after {full / 60:.1f} min; its log: {work / 'workflow_time.log'}")
        print(f"{args.configfile} end to end on {args.cores} cores: {full:.0f} s = {full / 60:.1f} min "
              f"(started {started:%Y-%m-%d %H:%M:%S} UTC"
              + (f"; target <= {target:g} min: {'met' if full <= 60 * target else 'NOT met'})" if target else ")"))
        for name, (jobs, seconds) in sorted(stage_seconds(work).items(), key=lambda kv: -kv[1][1]):
            print(f"  {name:<32} {jobs:>3} job(s) {seconds / 60:7.1f} min")
        dry = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = subprocess.run([*base, "-n"], check=True, capture_output=True, text=True)
            dry.append(time.perf_counter() - t0)
            if "Nothing to be done" not in out.stdout + out.stderr:
                print("snakemake -n after the run still has jobs to do:\n" + out.stdout[-2000:])
        print(f"snakemake -n with everything done: median {sorted(dry)[1]:.2f} s of {[round(d, 2) for d in dry]} "
              "(target <= 3 s)")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
