"""Device registry: where a benchmark runs and how.

A host profile fixes the interpreter's thread count and pins the process to
that many cores (the highest-numbered ones, away from core 0 where the
scheduler and interrupts tend to land).  Adding a device is one entry; a
phone over adb will be another kind of entry with the same result schema.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mobopt import MobOptError


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
            raise MobOptError(
                f"device {self.name} needs {self.threads} cores but this process may use only {available}"
            )
        return available[-self.threads:]

    def apply(self) -> list[int]:
        cores = self.cores()
        os.sched_setaffinity(0, cores)
        return cores


DEVICES: dict[str, HostDevice] = {
    d.name: d
    for d in (
        HostDevice("host_1t", "this machine, 1 interpreter thread pinned to 1 core", threads=1),
        HostDevice("host_2t", "this machine, 2 interpreter threads pinned to 2 cores", threads=2),
    )
}


def get(name: str) -> HostDevice:
    try:
        return DEVICES[name]
    except KeyError:
        raise MobOptError(f"unknown device {name!r}; known: {', '.join(DEVICES)}") from None
