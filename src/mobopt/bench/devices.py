"""Device registry: where a benchmark runs and how.

Two kinds of entry, one result schema:

* a host profile fixes the interpreter's thread count and pins the process to
  that many cores (the highest-numbered ones, away from core 0 where the
  scheduler and interrupts tend to land);
* ``android`` is a phone over adb running LiteRT's ``benchmark_model`` binary
  (:mod:`mobopt.bench.android`); which phone, which cores (a ``taskset`` mask, the
  big cluster), how many threads and where the binary comes from are settings
  under ``benchmark.android`` in the config, since they differ per phone.

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


DEVICES: dict[str, HostDevice | AndroidDevice] = {
    d.name: d
    for d in (
        HostDevice("host_1t", "this machine, 1 interpreter thread pinned to 1 core", threads=1),
        HostDevice("host_2t", "this machine, 2 interpreter threads pinned to 2 cores", threads=2),
        AndroidDevice("android", "an Android phone over adb, LiteRT's benchmark_model pinned to the cores of "
                                 "benchmark.android.taskset"),
    )
}


def get(name: str) -> HostDevice | AndroidDevice:
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
