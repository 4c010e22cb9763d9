"""Throughput and memory of preparing an image folder tree: ASL Alphabet layout to a fixed-size uint8 .npy.

Targets: >= 500 img/s on 2 cores at 224 x 224, peak RSS <= 2 GB, and peak RSS
that does not grow with the dataset (give two ``--images`` counts to check).
A synthetic tree in the ASL Alphabet layout (``asl_alphabet_train/
asl_alphabet_train/<CLASS>/<CLASS><n>.jpg``, 200 x 200 JPEGs of ~15 kB, like
the real ones) is generated once per count in ``--workdir`` and reused.  Each
measurement runs :func:`mobopt.datasets.images.write_split` in a fresh process, so
its peak RSS is the prepare's alone.  Peak RSS is each process's own VmHWM
from ``/proc`` (the parent reads its own at the end; workers, children of the
forkserver, are sampled every 0.1 s while they live): ``ru_maxrss`` of
children is not trusted, as it survives fork and may report the parent's
peak.  Shared memory (the decode slots) is counted in every process that
touched it, so the sum of peaks is an upper bound.  CPU time per image is
printed too, with the CPU that other processes used meanwhile: on a shared
VM wall-clock img/s drifts with other load, CPU time much less.  ``--profile`` adds an in-process breakdown (read, decode,
resize, pixels to bytes, file write) of one worker's work.

Usage: python benchmarks/prepare_throughput.py [--images 10000 87000] [--size 224] [--workers 2]
       [--workdir DIR] [--keep] [--profile]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ASL_CLASSES = [*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "del", "nothing", "space"]
TARGET_IMG_S = 500
TARGET_RSS_MB = 2048


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of a live process, MB."""
    return status_mb(pid, "VmHWM")


def status_mb(pid: int | str, key: str) -> float:
    """One memory line of /proc/<pid>/status (VmHWM, RssAnon, RssShmem...), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / hz, steal / hz


def ensure_tree(workdir: Path, classes: list[str], per_class: int) -> Path:
    """The ASL-layout tree for this count, generated once; a marker file says it is complete."""
    from mobopt.datasets.standins import write_fake_class_tree

    base = workdir / f"asl-{len(classes)}x{per_class}"
    root = base / "asl_alphabet_train" / "asl_alphabet_train"
    marker = base / "COMPLETE"
    if marker.exists():
        return root
    shutil.rmtree(base, ignore_errors=True)  # a half-generated tree from an interrupted run
    t0 = time.perf_counter()
    n = write_fake_class_tree(root, classes, per_class, size=(200, 200), seed=0, quality=90)
    mb = sum(f.stat().st_size for f in root.rglob("*.jpg")) / 1e6
    marker.write_text(json.dumps({"images": n, "seconds": time.perf_counter() - t0, "jpeg_mb": mb}))
    print(f"generated {n} JPEGs ({mb / n * 1000:.1f} kB each) in {time.perf_counter() - t0:.0f} s: {root}", flush=True)
    return root


class ChildSampler(threading.Thread):
    """Samples VmHWM and CPU time of every descendant process until stopped; keeps each pid's last values."""

    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self.me = psutil.Process()
        self.seen: dict[int, dict] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.1):
            self.sample()

    def sample(self):
        for child in self.me.children(recursive=True):
            try:
                cpu = child.cpu_times()
                # RssAnon is the private part (not the shared decode slots, whose pages a worker touches
                # only for the chunks the pool happened to give it); no peak exists for it, so it is sampled.
                anon = max(status_mb(child.pid, "RssAnon"), self.seen.get(child.pid, {}).get("anon_mb", 0.0))
                self.seen[child.pid] = {"worker": child.ppid() != self.me.pid, "hwm_mb": vm_hwm_mb(child.pid),
                                        "anon_mb": anon, "cpu_s": cpu.user + cpu.system}
            except (OSError, ProcessLookupError):
                pass  # exited between listing and reading
            except Exception as exc:  # psutil.NoSuchProcess and friends
                if type(exc).__name__ not in ("NoSuchProcess", "ZombieProcess", "AccessDenied"):
                    raise


def child(spec: dict) -> dict:
    """One measurement, in a fresh process: scan, write_split, peak RSS and CPU time."""
    from mobopt.datasets.images import Problems, scan_class_tree, write_split

    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    problems = Problems()
    t0 = time.perf_counter()
    items = scan_class_tree(Path(spec["root"]), spec["classes"], problems)
    scan_s = time.perf_counter() - t0
    hwm_before = vm_hwm_mb()
    sampler = ChildSampler()
    sampler.start()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    busy0, steal0 = cpu_seconds()
    t0 = time.perf_counter()
    n = write_split(items, spec["size"], out / "x.npy", out / "y.npy", crop_fraction=spec["crop_fraction"],
                    workers=spec["workers"], chunksize=spec["chunksize"], problems=problems, progress=False)
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    busy1, steal1 = cpu_seconds()
    sampler.stop.set()
    sampler.join()
    workers = [v for v in sampler.seen.values() if v["worker"]]
    helpers = [v for v in sampler.seen.values() if not v["worker"]]  # forkserver, resource tracker
    parent_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    ours = parent_cpu + sum(v["cpu_s"] for v in sampler.seen.values())
    return {
        "images": n, "size": spec["size"], "workers": spec["workers"], "seconds": seconds, "img_s": n / seconds,
        "scan_s": scan_s, "parent_hwm_mb": vm_hwm_mb(), "parent_hwm_before_mb": hwm_before,
        "worker_hwm_mb": max((w["hwm_mb"] for w in workers), default=0.0),
        "worker_anon_mb": max((w["anon_mb"] for w in workers), default=0.0),
        "shm_window_mb": 2 * spec["workers"] * spec["chunksize"] * spec["size"] ** 2 * 3 / 2**20,
        "helper_hwm_mb": sum(h["hwm_mb"] for h in helpers),
        "cpu_ms_per_img": ours / n * 1000,
        "parent_cpu_ms_per_img": parent_cpu / n * 1000,
        "output_bytes": (out / "x.npy").stat().st_size + (out / "y.npy").stat().st_size,
        "other_cores": max(busy1 - busy0 - ours, 0.0) / seconds, "steal_cores": (steal1 - steal0) / seconds,
        "problems_bad": problems.bad,
    }


def profile(root: Path, classes: list[str], size: int, crop_fraction: float, n: int) -> dict[str, float]:
    """ms per image of each step of mobopt.datasets.images._decode plus the write, in this process (one core)."""
    import io
    import math

    from PIL import Image

    from mobopt.datasets.images import _to_rgb

    files = sorted((root / classes[0]).iterdir())[:n]
    steps = dict.fromkeys(("read", "decode", "resize", "tobytes", "write"), 0.0)
    target = round(size / crop_fraction)
    with tempfile.TemporaryFile(dir=root.parent) as sink:
        for f in files:
            t0 = time.perf_counter()
            data = f.read_bytes()
            t1 = time.perf_counter()
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if img.format == "JPEG" and min(w, h) >= 2 * target:
                scale = target / min(w, h)
                img.draft("RGB", (math.ceil(w * scale), math.ceil(h * scale)))
            img.load()
            img = _to_rgb(img)
            t2 = time.perf_counter()
            w, h = img.size
            side = size * min(w, h) / target
            out = img.resize((size, size), Image.Resampling.BILINEAR,
                             box=((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2))
            t3 = time.perf_counter()
            raw = out.tobytes()
            t4 = time.perf_counter()
            sink.write(raw)
            t5 = time.perf_counter()
            for key, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                steps[key] += dt
    return {k: v / len(files) * 1000 for k, v in steps.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, nargs="+", default=[87000], help="dataset sizes to measure (one run each)")
    ap.add_argument("--classes", type=int, default=29)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--crop-fraction", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunksize", type=int, default=64)
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "mobopt-prepare-throughput"),
                    help="where the generated trees are cached (one per count) and outputs written")
    ap.add_argument("--keep", action="store_true", help="keep the output arrays (default: deleted after measuring)")
    ap.add_argument("--profile", action="store_true", help="also time each step of one worker's work in-process")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    classes = ASL_CLASSES[:args.classes] if args.classes <= len(ASL_CLASSES) else [f"c{i}" for i in range(args.classes)]
    workdir = Path(args.workdir)
    rows = []
    for count in args.images:
        per_class = count // len(classes)
        root = ensure_tree(workdir, classes, per_class)
        out = workdir / f"out-{len(classes)}x{per_class}-{args.size}"
        spec = {"root": str(root), "classes": classes, "size": args.size, "crop_fraction": args.crop_fraction,
                "workers": args.workers, "chunksize": args.chunksize, "out": str(out)}
        try:
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], check=True,
                                  capture_output=True, text=True)
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        except subprocess.CalledProcessError as exc:
            sys.exit(f"measurement failed:\n{exc.stderr[-3000:]}")
        finally:
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        if args.profile:
            steps = profile(root, classes, args.size, args.crop_fraction, 1000)
            print(f"one worker's ms/img at {args.size}: " + ", ".join(f"{k} {v:.3f}" for k, v in steps.items())
                  + f" = {sum(steps.values()):.3f}", flush=True)

    print(f"\nwrite_split, {args.workers} workers, chunksize {args.chunksize}, crop_fraction {args.crop_fraction}, "
          f"{os.cpu_count()} CPUs")
    print("| images | size | workers | seconds | img/s | CPU ms/img (parent) | parent peak RSS MB (after scan) "
          "| max worker peak RSS MB | output bytes | other load, steal (cores) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['images']} | {r['size']} | {r['workers']} | {r['seconds']:.1f} | {r['img_s']:.0f} | "
              f"{r['cpu_ms_per_img']:.2f} ({r['parent_cpu_ms_per_img']:.2f}) | "
              f"{r['parent_hwm_mb']:.0f} ({r['parent_hwm_before_mb']:.0f}) | "
              f"{r['worker_hwm_mb']:.0f} | {r['output_bytes']:,} | {r['other_cores']:.2f}, {r['steal_cores']:.2f} |")
    print("CPU ms/img: parent + workers + forkserver; other load: CPU used by processes outside this measurement "
          "(kernel writeback included); on a quiet host img/s approaches 1000 * CPUs / (CPU ms/img).\n"
          "Parent peak RSS after scan: before write_split, holding the scanned image list (an ImageList: ~20 bytes per image)\n")
    for r in rows:
        total = r["parent_hwm_mb"] + r["workers"] * r["worker_hwm_mb"] + r["helper_hwm_mb"]
        print(f"{r['images']} images: throughput {r['img_s']:.0f} img/s (target >= {TARGET_IMG_S}) "
              f"{'PASS' if r['img_s'] >= TARGET_IMG_S else 'FAIL'}; peak RSS parent + workers + helpers "
              f"{total:.0f} MB (target <= {TARGET_RSS_MB}) {'PASS' if total <= TARGET_RSS_MB else 'FAIL'}")
    if len(rows) >= 2:
        small, large = min(rows, key=lambda r: r["images"]), max(rows, key=lambda r: r["images"])
        for r in rows:
            r["write_split_mb"] = r["parent_hwm_mb"] - r["parent_hwm_before_mb"]
        for key, label in (("parent_hwm_mb", "parent peak RSS"), ("write_split_mb", "parent peak RSS minus after-scan"),
                           ("worker_hwm_mb", "worker peak RSS"), ("worker_anon_mb", "worker private (RssAnon) peak")):
            growth = large[key] - small[key]
            ok = growth <= max(16.0, 0.05 * small[key])
            print(f"{label} {small[key]:.0f} MB at {small['images']} images, {large[key]:.0f} MB at "
                  f"{large['images']}: growth {growth:+.0f} MB (target: independent of size, <= 5 % or 16 MB) "
                  f"{'PASS' if ok else 'FAIL'}")
        print(f"(worker peak RSS includes the shared decode slots it touched: at most {large['shm_window_mb']:.0f} MB "
              "for any dataset size, how much of it depends on which chunks the pool gave the worker)")


if __name__ == "__main__":
    main()
