"""Benchmarks on an Android phone over adb, with LiteRT's ``benchmark_model`` binary.

The phone runs the same C++ tool LiteRT documents for on-device measurement,
the way its README recommends: pushed to ``/data/local/tmp``, pinned to the
big cores with ``taskset <mask>``, and forced to exactly N timed runs
(``--num_runs=N --min_secs=0 --max_secs=<large>``: by default the tool stops
by time, not count).  Each measurement is one fresh ``benchmark_model``
process, started in the background so that, while it runs, its CPU time and
memory can be sampled from ``/proc/<pid>/stat`` and ``/proc/<pid>/status``
on the phone (the tool reports neither CPU % nor, without an extra monitoring
thread that disturbs the timing, peak memory).  Its log is then fetched and
parsed (:mod:`mobopt.bench.benchmark_model`).

Every adb failure becomes a :class:`mobopt.bench.devices.DeviceError` that names
the phone (serial) and what was being done.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobopt.bench import benchmark_model, devices
from mobopt.bench.devices import DeviceError

log = logging.getLogger(__name__)

#: Settings under ``benchmark.android`` in the config (the schema documents each).
ANDROID_DEFAULTS: dict[str, Any] = {
    "adb": "adb",
    "serial": None,
    "taskset": "f0",
    "threads": 4,
    "remote_dir": "/data/local/tmp/mobopt",
    "cpu_sample_interval": 0.5,
    "timeout": 1800.0,
    "command_timeout": 120.0,
}
#: Clock ticks per second of /proc/<pid>/stat on Linux and Android (USER_HZ, fixed by the kernel ABI).
CLK_TCK = 100


@dataclass
class Adb:
    """One phone: ``adb -s <serial> ...`` with timeouts and errors that name the phone."""

    exe: str = "adb"
    serial: str | None = None
    timeout: float = 120.0
    _resolved: str = field(default="", repr=False)

    @classmethod
    def connect(cls, options: dict[str, Any]) -> Adb:
        """The configured phone, or the only one attached; fails clearly when there is none or several."""
        opts = {**ANDROID_DEFAULTS, **options}
        ok, why = devices.availability("android", opts)
        if not ok:
            raise DeviceError(why)
        adb = cls(opts["adb"], opts.get("serial"), opts["command_timeout"])
        if adb.serial is None:
            out = adb.run("devices", use_serial=False).stdout
            adb.serial = next(s for s, state in devices.parse_adb_devices(out).items() if state == "device")
        return adb

    def run(self, *args: str, timeout: float | None = None, use_serial: bool = True,
            check: bool = True) -> subprocess.CompletedProcess:
        exe = shutil.which(self.exe) or self.exe
        cmd = [exe, *(["-s", self.serial] if use_serial and self.serial else []), *args]
        what = " ".join(args[:2])
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False,
                                  timeout=timeout or self.timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"phone {self.serial or '?'}: `adb {what}` did not answer within "
                              f"{timeout or self.timeout:g} s; is the phone still attached and unlocked?") from None
        except OSError as exc:
            raise DeviceError(f"phone {self.serial or '?'}: cannot run adb ({exc})") from None
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip()[-800:]
            raise DeviceError(f"phone {self.serial or '?'}: `adb {what}` failed with exit code {proc.returncode}: {detail}")
        return proc

    def shell(self, command: str, *, timeout: float | None = None, check: bool = True) -> str:
        return self.run("shell", command, timeout=timeout, check=check).stdout

    def push(self, local: str | Path, remote: str) -> None:
        if not Path(local).is_file():
            raise DeviceError(f"phone {self.serial}: cannot push {local}: no such file")
        self.run("push", str(local), remote, timeout=max(self.timeout, 600))


def _proc_sample(adb: Adb, pid: int) -> dict[str, float] | None:
    """Device uptime, CPU ticks and memory of ``pid``, or None when the process has ended."""
    out = adb.shell(f"cat /proc/uptime; cat /proc/{pid}/stat 2>/dev/null && grep -E '^(VmHWM|VmRSS):' /proc/{pid}/status",
                    check=False)
    lines = out.strip().splitlines()
    if len(lines) < 2:
        return None
    try:
        uptime = float(lines[0].split()[0])
        # /proc/<pid>/stat: "pid (comm) state ...": fields after the closing parenthesis; utime, stime are 14, 15
        fields = lines[1].rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        if fields[0] == "Z":  # a zombie has finished
            return None
    except (IndexError, ValueError):
        return None
    mem = {ln.split(":")[0]: float(ln.split()[1]) / 1024.0 for ln in lines[2:] if ":" in ln}
    return {"uptime": uptime, "ticks": ticks, "vmhwm_mb": mem.get("VmHWM", 0.0), "vmrss_mb": mem.get("VmRSS", 0.0)}


def run_benchmark_model(adb: Adb, binary: str, model: str, options: dict[str, Any], *, extra_flags: list[str] | None = None,
                        label: str = "") -> dict[str, Any]:
    """One ``benchmark_model`` process on the phone; returns the parsed result plus sampled CPU % and memory."""
    opts = {**ANDROID_DEFAULTS, **options}
    remote_log = f"{opts['remote_dir']}/run-{time.time_ns()}.log"
    flags = [f"--graph={model}", f"--num_threads={opts['threads']}", *(extra_flags or [])]
    cmd = (f"cd {shlex.quote(opts['remote_dir'])} && nohup taskset {shlex.quote(str(opts['taskset']))} "
           f"{shlex.quote(binary)} {' '.join(shlex.quote(f) for f in flags)} > {shlex.quote(remote_log)} 2>&1 "
           "< /dev/null & echo $!")
    out = adb.shell(cmd).strip().splitlines()
    try:
        pid = int(out[-1])
    except (IndexError, ValueError):
        raise DeviceError(f"phone {adb.serial}: could not start benchmark_model for {label or model} "
                          f"(shell said {out!r})") from None
    samples = []
    started = time.monotonic()
    while True:
        sample = _proc_sample(adb, pid)
        if sample is None:
            break
        samples.append(sample)
        if time.monotonic() - started > opts["timeout"]:
            adb.shell(f"kill {pid}", check=False)
            raise DeviceError(f"phone {adb.serial}: benchmark_model on {label or model} ran longer than "
                              f"{opts['timeout']:g} s (benchmark.android.timeout) and was stopped")
        time.sleep(opts["cpu_sample_interval"])
    text = adb.shell(f"cat {shlex.quote(remote_log)}; rm -f {shlex.quote(remote_log)}", check=False)
    result = benchmark_model.parse(text, label=f"phone {adb.serial}: {label or model}")
    if len(samples) >= 2 and samples[-1]["uptime"] > samples[0]["uptime"]:
        span = samples[-1]["uptime"] - samples[0]["uptime"]
        result["cpu_percent"] = 100.0 * (samples[-1]["ticks"] - samples[0]["ticks"]) / CLK_TCK / span
        result["cpu_sampled_seconds"] = span
    else:
        result["cpu_percent"] = None  # the run ended before two samples: too short to sample
        result["cpu_sampled_seconds"] = 0.0
    result["peak_rss_mb"] = max((s["vmhwm_mb"] for s in samples), default=None)
    result["cpu_samples"] = len(samples)
    result["log"] = text[-20000:]
    return result


def prepare(adb: Adb, binary: str | Path, models: dict[str, str | Path], options: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """Push the tool and the models into ``remote_dir``; returns (remote tool, {variant: remote model})."""
    opts = {**ANDROID_DEFAULTS, **options}
    remote_dir = opts["remote_dir"]
    adb.shell(f"mkdir -p {shlex.quote(remote_dir)}")
    remote_bin = f"{remote_dir}/benchmark_model"
    adb.push(binary, remote_bin)
    adb.shell(f"chmod 755 {shlex.quote(remote_bin)}")
    remote_models = {}
    for variant, path in models.items():
        remote = f"{remote_dir}/{Path(path).parent.name}_{variant}.tflite"
        adb.push(path, remote)
        remote_models[variant] = remote
    return remote_bin, remote_models


def timed_flags(options: dict[str, Any]) -> list[str]:
    """Exactly ``iterations`` timed runs after ``warmup`` (0 s floors; ``max_seconds`` only as a safety cap)."""
    return [f"--num_runs={options['iterations']}", f"--min_secs={options.get('min_seconds', 0.0):g}",
            f"--max_secs={options.get('max_seconds', 600.0):g}", f"--warmup_runs={options['warmup']}",
            "--warmup_min_secs=0"]
