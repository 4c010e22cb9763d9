"""Device registry: where a benchmark runs and how.

Three kinds of entry, one result schema:

* a host profile fixes the interpreter's thread count and pins the process to
  that many cores (the highest-numbered ones, away from core 0 where the
  scheduler and interrupts tend to land);
* ``android`` is a phone over adb running LiteRT's ``benchmark_model`` binary
  (:mod:`mobopt.bench.android`); which phone, which cores (a ``taskset`` mask, the
  big cluster), how many threads and where the binary comes from are settings
  under ``benchmark.android`` in the config, since they differ per phone;
* an emulated CPU (``arm_a53``, ``arm_a76``, ``arm_i8mm``; ``x86_avx2``) runs LiteRT under QEMU user
  mode (the aarch64 wheel, or the host's own x86-64 one on a CPU model without AVX-512) and counts
  the instructions of each invoke (:mod:`mobopt.bench.emulated`): no latency, but deterministic
  work per instruction set, the int8 question answered without a phone or an older PC.

Adding a device is one entry here.  :func:`availability` says, without
running a benchmark, whether a device can be measured now, so the workflow can
skip a phone that is not attached with a clear message instead of failing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from mobopt import MobOptError


class DeviceError(MobOptError):
    """A device cannot be used (too few cores, not attached, adb failed); the message names the device."""


@dataclass(frozen=True)
class HostDevice:
    name: str
    description: str
    threads: int
    kind: str = "host"

    def cores(self) -> list[int]:
        """The cores this profile pins to; fails clearly when the machine has too few."""
        available = sorted(os.sched_getaffinity(0))
        if len(available) < self.threads:
            raise DeviceError(
                f"device {self.name} needs {self.threads} cores but this process may use only {available}"
            )
        return available[-self.threads:]

    def apply(self) -> list[int]:
        cores = self.cores()
        os.sched_setaffinity(0, cores)
        return cores


@dataclass(frozen=True)
class AndroidDevice:
    name: str
    description: str
    kind: str = "android"


@dataclass(frozen=True)
class EmulatedDevice:
    """A CPU emulated by QEMU user mode (:mod:`mobopt.bench.emulated`): counts instructions, measures no time.

    ``arch`` is the guest architecture (``aarch64`` or ``x86_64``: QEMU's ``qemu-<arch>``), ``cpu``
    QEMU's ``-cpu`` value and ``isa`` the instruction-set facts the tables show.  An ARM CPU also has
    ``midr``, the Main ID Register its fake /proc/cpuinfo carries (XNNPACK picks some kernels by it),
    and ``features``, that file's Features line (as Linux prints the HWCAP QEMU sets); an x86 CPU
    needs neither, since XNNPACK reads its features from CPUID, which QEMU answers for the model."""

    name: str
    description: str
    cpu: str
    isa: tuple[str, ...]
    midr: int = 0
    features: tuple[str, ...] = ()
    arch: str = "aarch64"
    kind: str = "emulated"


_V8_0 = ("fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "cpuid")
_V8_2 = (*_V8_0, "atomics", "fphp", "asimdhp", "asimdrdm", "lrcpc", "dcpop", "asimddp")


DEVICES: dict[str, HostDevice | AndroidDevice | EmulatedDevice] = {
    d.name: d
    for d in (
        HostDevice("host_1t", "this machine, 1 interpreter thread pinned to 1 core", threads=1),
        HostDevice("host_2t", "this machine, 2 interpreter threads pinned to 2 cores", threads=2),
        AndroidDevice("android", "an Android phone over adb, LiteRT's benchmark_model pinned to the cores of "
                                 "benchmark.android.taskset"),
        EmulatedDevice("arm_a53", "an emulated Cortex-A53 (ARMv8.0, no int8 dot product), QEMU user mode, 1 thread: "
                       "instructions per invoke", cpu="cortex-a53", midr=0x410FD034, features=_V8_0,
                       isa=("armv8.0-a", "asimd")),
        EmulatedDevice("arm_a76", "an emulated Cortex-A76 (ARMv8.2 with int8 dot product, the paper phone's big core), "
                       "QEMU user mode, 1 thread: instructions per invoke", cpu="cortex-a76", midr=0x414FD0B1,
                       features=_V8_2, isa=("armv8.2-a", "asimd", "asimddp")),
        EmulatedDevice("arm_i8mm", "an emulated ARMv8.6+ core with int8 matrix multiply (QEMU's max CPU without SME), "
                       "QEMU user mode, 1 thread: instructions per invoke", cpu="max,sme=off", midr=0x000F0510,
                       features=(*_V8_2, "sve", "asimdfhm", "sve2", "i8mm", "bf16"),
                       isa=("armv8.6-a+", "asimd", "asimddp", "i8mm", "sve2")),
        EmulatedDevice("x86_avx2", "an emulated x86-64 CPU with AVX2 and FMA but no AVX-512 or VNNI (QEMU's Haswell), "
                       "QEMU user mode, 1 thread: instructions per invoke", arch="x86_64",
                       cpu="Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid",  # less what QEMU's TCG cannot emulate
                       isa=("x86-64-v3", "avx2", "fma")),
    )
}


def get(name: str) -> HostDevice | AndroidDevice | EmulatedDevice:
    try:
        return DEVICES[name]
    except KeyError:
        raise DeviceError(f"unknown device {name!r}; known: {', '.join(DEVICES)}") from None


def availability(name: str, options: dict[str, Any] | None = None, timeout: float = 15.0) -> tuple[bool, str]:
    """(usable now, why not): host profiles need enough cores; ``android`` needs adb and exactly one device
    (or the configured ``serial``) in the ``device`` state."""
    dev = get(name)
    if isinstance(dev, HostDevice):
        available = len(os.sched_getaffinity(0))
        if available < dev.threads:
            return False, f"device {name} needs {dev.threads} cores, this machine offers {available}"
        return True, ""
    if isinstance(dev, EmulatedDevice):
        from mobopt.bench import arm_toolchain

        if arm_toolchain.qemu_version(f"qemu-{dev.arch}") is not None:
            return True, ""
        ok, why = arm_toolchain.can_install()
        return (True, "") if ok else (False, f"device {name}: qemu-{dev.arch} is not installed and cannot be ({why}); "
                                             "install Debian's qemu-user 7.2 to count on emulated CPUs; skipped")
    opts = options or {}
    adb = opts.get("adb", "adb")
    exe = shutil.which(adb)
    if exe is None:
        return False, (f"device {name}: adb executable {adb!r} not found (install Android platform-tools or set "
                       "benchmark.android.adb); its benchmarks are skipped")
    try:
        proc = subprocess.run([exe, "devices"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"device {name}: `{adb} devices` failed ({exc}); its benchmarks are skipped"
    attached = parse_adb_devices(proc.stdout)
    ready = [s for s, state in attached.items() if state == "device"]
    serial = opts.get("serial")
    if serial:
        if attached.get(serial) == "device":
            return True, ""
        state = attached.get(serial, "not attached")
        return False, f"device {name}: phone {serial} is {state} (adb devices lists {attached or 'none'}); skipped"
    if len(ready) == 1:
        return True, ""
    if not ready:
        extra = f" ({', '.join(f'{s}: {st}' for s, st in attached.items())})" if attached else ""
        return False, f"device {name}: no phone attached to adb{extra}; its benchmarks are skipped"
    return False, (f"device {name}: several phones attached ({', '.join(ready)}); set benchmark.android.serial "
                   "to choose one")


def parse_adb_devices(text: str) -> dict[str, str]:
    """``adb devices`` output -> {serial: state} (``device``, ``unauthorized``, ``offline``...)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(("List of devices", "*")):
            out[parts[0]] = parts[1]
    return out
