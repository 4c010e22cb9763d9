"""The emulated CPUs' toolchain: QEMU user mode, an arm64 Python, the aarch64 LiteRT wheel, the counting plugin.

Built once by the ``fetch_arm_toolchain`` rule into ``data/tools/arm/`` (a local rule: it needs
the package registries), never into the host.  The emulated x86 CPU (``x86_avx2``) needs only
QEMU and the plugin: its guest is the benchmark's own Python and LiteRT, run by ``qemu-x86_64``
on a CPU model without AVX-512.  For the ARM CPUs:

* ``qemu-aarch64`` from Debian's ``qemu-user`` 7.2, installed with apt-get when missing (the one
  step that changes the host, and only as root); its version is checked because the plugin is
  written for QEMU 7.2's plugin API v1 (QEMU 8 moved to v2, 9 dropped per-instruction inline ops);
* ``sysroot/``: an arm64 Python 3.11 unpacked from Debian packages (``apt-get download`` +
  ``dpkg -x``: nothing is installed);
* ``site/``: the aarch64 wheels of ai-edge-litert and its dependencies at the versions installed
  on the host (one source of pins: constraints.txt), downloaded with pip and unzipped;
* ``libicount.so``: :file:`data/icount.c` compiled with the host's gcc;
* ``root-<device>/``: per emulated CPU, the ``-L`` prefix QEMU reads before the host's files: links
  to the sysroot plus a one-CPU ``proc/cpuinfo`` with the CPU's MIDR and a small
  ``sys/devices/system/cpu`` tree.  LiteRT's cpuinfo crashes on the host's x86 /proc/cpuinfo, and
  XNNPACK chooses kernels by the MIDR (A53-tuned float kernels on an A53); the ISA features
  themselves come from the HWCAP QEMU sets for ``-cpu``.

Why by hand: no packaged tool sets up a foreign-architecture Python with pinned wheels and a
TCG plugin; each step is a stock tool (apt-get, dpkg, pip, gcc) called with its documented flags.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from mobopt import MobOptError
from mobopt.common.atomic import write_json

log = logging.getLogger(__name__)

#: Where the rule builds it.
TOOLCHAIN_DIR = "data/tools/arm"
#: The QEMU whose plugin API the counting plugin is written for.
QEMU_SERIES = "7.2"
#: Debian packages of the arm64 Python 3.11 and the libraries it and numpy load (bookworm names).
ARM64_DEBS = (
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11", "libc6", "zlib1g", "libexpat1",
    "libffi8", "libssl3", "libstdc++6", "libgcc-s1", "libbz2-1.0", "liblzma5", "libsqlite3-0", "libncursesw6",
    "libtinfo6", "libreadline8", "libuuid1", "libnsl2", "libtirpc3", "libdb5.3", "libcrypt1", "libgdbm6",
)
#: The wheels the guest needs: ai-edge-litert and what it requires, at the host's installed versions.
GUEST_PACKAGES = ("ai-edge-litert", "numpy", "flatbuffers", "backports.strenum", "tqdm", "typing_extensions", "protobuf",
                  "ml_dtypes")
#: pip platform tags of the aarch64 wheels (ai-edge-litert's is manylinux_2_27).
WHEEL_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_27_aarch64", "manylinux_2_28_aarch64")
PLUGIN_SOURCE = Path(__file__).with_name("data") / "icount.c"
GUEST_SCRIPT = Path(__file__).with_name("data") / "guest_count.py"


class ToolchainError(MobOptError):
    """A step of the set-up failed; the message names the step, the command and what to do."""


def _run(cmd: list[str], step: str, *, timeout: float = 600.0, cwd: str | Path | None = None) -> str:
    log.info("%s: %s", step, " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"arm emulation set-up, {step}: `{' '.join(cmd)}` could not run ({exc})") from exc
    if proc.returncode != 0:
        raise ToolchainError(f"arm emulation set-up, {step}: `{' '.join(cmd)}` failed with exit code {proc.returncode}: "
                             f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc.stdout


def qemu_version(exe: str = "qemu-aarch64") -> str | None:
    """``7.2.22`` for the installed qemu-aarch64, None when there is none."""
    path = shutil.which(exe)
    if path is None:
        return None
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"version (\d+\.\d+(?:\.\d+)?)", out)
    return found.group(1) if found else None


def can_install() -> tuple[bool, str]:
    """Whether :func:`ensure_qemu` could install qemu-user here (root and apt-get), and why not."""
    if shutil.which("apt-get") is None:
        return False, "no apt-get on this machine"
    if os.geteuid() != 0:
        return False, "apt-get needs root"
    return True, ""


def _apt_install(packages: list[str]) -> None:
    ok, why = can_install()
    if not ok:
        raise ToolchainError(f"arm emulation set-up: {', '.join(packages)} missing and cannot be installed ({why}); "
                             f"install Debian's qemu-user {QEMU_SERIES} and gcc, or leave the arm_* devices out of "
                             "benchmark.devices")
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    _run([*env_cmd, "apt-get", "install", "-y", "-qq", *packages], f"install {' '.join(packages)}", timeout=900)


def ensure_qemu() -> str:
    """qemu-aarch64 and qemu-x86_64 of the 7.2 series (installed when missing); the version."""
    missing = sorted({pkg for exe, pkg in (("qemu-aarch64", "qemu-user"), ("qemu-x86_64", "qemu-user"), ("gcc", "gcc"),
                                           ("setarch", "util-linux")) if shutil.which(exe) is None})
    if missing:
        _apt_install(missing)
    version = qemu_version()
    if version is None:
        raise ToolchainError("arm emulation set-up: qemu-aarch64 is still not on PATH after installing qemu-user")
    if not version.startswith(QEMU_SERIES + "."):
        raise ToolchainError(f"arm emulation set-up: qemu-aarch64 is version {version}; the counting plugin is written "
                             f"for QEMU {QEMU_SERIES}'s plugin API v1 (Debian 12's qemu-user)")
    return version


def build_sysroot(root: Path) -> list[str]:
    """The arm64 Python unpacked into ``root/sysroot`` from Debian packages; the .deb file names."""
    sysroot, debs = root / "sysroot", root / "debs"
    if (sysroot / "usr/bin/python3.11").exists():
        return sorted(p.name for p in debs.glob("*.deb"))
    if "arm64" not in _run(["dpkg", "--print-foreign-architectures"], "foreign architectures").split():
        if os.geteuid() != 0:
            raise ToolchainError("arm emulation set-up: apt cannot download arm64 packages (run `dpkg "
                                 "--add-architecture arm64 && apt-get update` as root once)")
        _run(["dpkg", "--add-architecture", "arm64"], "add the arm64 architecture to apt's lists")
        _run(["apt-get", "update", "-qq"], "apt-get update", timeout=900)
    debs.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "download", "-qq", *(f"{p}:arm64" for p in ARM64_DEBS), "media-types"], "download arm64 debs",
         cwd=debs, timeout=900)
    tmp = root / "sysroot.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(tmp)], f"unpack {deb.name}")
    os.replace(tmp, sysroot)
    return sorted(p.name for p in debs.glob("*.deb"))


def guest_pins() -> dict[str, str]:
    """The guest wheels' versions: the host's installed ones."""
    try:
        return {name: importlib.metadata.version(name) for name in GUEST_PACKAGES}
    except importlib.metadata.PackageNotFoundError as exc:
        raise ToolchainError(f"arm emulation set-up: {exc.name} is not installed on the host, so its version for the "
                             "guest is unknown; run `make setup`") from exc


def fetch_wheels(root: Path, pins: dict[str, str]) -> list[str]:
    """The aarch64 wheels downloaded (no install) and unzipped into ``root/site``; their file names."""
    wheels, site = root / "wheels", root / "site"
    pinned = "\n".join(f"{name}=={version}" for name, version in sorted(pins.items()))
    if (site / "ai_edge_litert").is_dir() and (root / "site.pins").exists() and (root / "site.pins").read_text() == pinned:
        return sorted(p.name for p in wheels.glob("*.whl"))
    shutil.rmtree(wheels, ignore_errors=True)  # other pins (the host upgraded): fetch the guest's anew
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps", "--python-version", "3.11",
           "--implementation", "cp", "-d", str(wheels)]
    for tag in WHEEL_PLATFORMS:
        cmd += ["--platform", tag]
    _run([*cmd, *(f"{name}=={version}" for name, version in pins.items())], "download the aarch64 wheels", timeout=900)
    tmp = root / "site.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            z.extractall(tmp)
    shutil.rmtree(site, ignore_errors=True)
    os.replace(tmp, site)
    (root / "site.pins").write_text(pinned)
    return sorted(p.name for p in wheels.glob("*.whl"))


def build_plugin(root: Path) -> Path:
    """``libicount.so`` from :data:`PLUGIN_SOURCE` (rebuilt when the source changed)."""
    out = root / "libicount.so"
    source = root / "icount.c"
    if out.exists() and source.exists() and source.read_bytes() == PLUGIN_SOURCE.read_bytes():
        return out
    shutil.copyfile(PLUGIN_SOURCE, source)
    _run(["gcc", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", str(source), "-o", str(out) + ".partial"],
         "build the counting plugin")
    os.replace(str(out) + ".partial", out)
    return out


def cpuinfo_text(device) -> str:
    """A one-CPU aarch64 /proc/cpuinfo for ``device`` (its MIDR split into the fields Linux prints)."""
    midr = device.midr
    return (f"processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: {' '.join(device.features)}\n"
            f"CPU implementer\t: 0x{midr >> 24 & 0xFF:02x}\nCPU architecture: 8\nCPU variant\t: 0x{midr >> 20 & 0xF:x}\n"
            f"CPU part\t: 0x{midr >> 4 & 0xFFF:03x}\nCPU revision\t: {midr & 0xF}\n\n")


def write_prefix(root: Path, device) -> Path:
    """``root/root-<device>``: QEMU's ``-L`` prefix with the sysroot's folders and the CPU's fake proc and sys files."""
    prefix = root / f"root-{device.name}"
    tmp = root / f"root-{device.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for folder in ("usr", "lib", "etc"):
        (tmp / folder).symlink_to(Path("..") / "sysroot" / folder)
    (tmp / "proc").mkdir()
    (tmp / "proc/cpuinfo").write_text(cpuinfo_text(device))
    cpu = tmp / "sys/devices/system/cpu"
    (cpu / "cpu0/topology").mkdir(parents=True)
    for name in ("kernel_max", "possible", "present", "online"):
        (cpu / name).write_text("0\n")
    for name in ("physical_package_id", "cluster_cpus_list", "core_siblings_list", "thread_siblings_list"):
        (cpu / "cpu0/topology" / name).write_text("0\n")
    shutil.rmtree(prefix, ignore_errors=True)
    os.replace(tmp, prefix)
    return prefix


def setup(out: str | Path, devices: list) -> dict[str, Any]:
    """Build (or complete) the toolchain under the folder of ``out`` and write ``out``, its record."""
    out = Path(out)
    root = out.parent
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    version = ensure_qemu()
    debs = build_sysroot(root)
    pins = guest_pins()
    wheels = fetch_wheels(root, pins)
    plugin = build_plugin(root)
    prefixes = {d.name: str(write_prefix(root, d)) for d in devices if d.arch == "aarch64"}
    record = {"qemu": version, "qemu_series": QEMU_SERIES, "plugin": str(plugin), "plugin_api": 1,
              "python": str(root / "sysroot/usr/bin/python3.11"), "site": str(root / "site"), "debs": debs,
              "wheels": wheels, "guest_versions": pins, "prefixes": prefixes, "seconds": time.perf_counter() - t0}
    write_json(out, record)
    log.info("arm emulation ready in %.0f s: QEMU %s, %d debs, %d wheels, prefixes for %s", record["seconds"], version,
             len(debs), len(wheels), ", ".join(prefixes))
    return record
