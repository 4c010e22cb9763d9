"""The benchmark harness: one measurement, the protocol (repeats, interleaving, intervals, flags),
delegate coverage, the per-op profile, the cross-check, and the phone path over adb."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import ADB_SERIAL, mobopt_cli, write_adb_stand_in, write_benchmark_model_emulator

from mobopt import MobOptError
from mobopt.bench import benchmark_model, crosscheck, devices, stats
from mobopt.bench.protocol import _flags

DATA = Path(__file__).parent / "data"


def _convert(model, path):
    import tensorflow as tf

    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@pytest.fixture(scope="module")
def tiny_tflites(tmp_path_factory):
    """Two tiny float models converted with TF (the benchmark itself never imports it): a conv net and one
    with a LayerNorm and a softmax, like the ViT's blocks."""
    import keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("bench")
    inp = keras.Input((28, 28, 1), batch_size=1)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inp)
    x = keras.layers.Flatten()(x)
    conv = _convert(keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x)), folder / "conv.tflite")
    inp = keras.Input((16, 8), batch_size=1)
    x = keras.layers.LayerNormalization()(inp)
    x = keras.layers.Dense(8, activation="gelu")(x)
    x = keras.layers.Flatten()(x)
    norm = _convert(keras.Model(inp, keras.layers.Dense(10, activation="softmax")(x)), folder / "norm.tflite")
    return {"conv": conv, "norm": norm}


# --------------------------------------------------------------------------- one measurement

def test_one_measurement_reports_every_field(tiny_tflites, tmp_path):
    out = tmp_path / "run.json"
    mobopt_cli("bench-run", "--model", tiny_tflites["conv"], "--device", "host_1t", "--out", out,
               "--options", json.dumps({"iterations": 300, "warmup": 5, "min_seconds": 0.5}))
    r = json.loads(out.read_text())
    assert r["tensorflow_imported"] is False
    # a duration floor: on a fast host 300 runs of this model take a few ms, too short a window for CPU %
    assert r["iterations"] >= 300 and len(r["latencies_ms"]) == r["iterations"]
    assert r["stopped_by"] == "iterations_and_min_seconds" and r["wall_seconds"] >= 0.5
    assert r["threads"] == 1 and len(r["cores"]) == 1
    assert 0 < r["min_ms"] <= r["p5_ms"] <= r["p10_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p95_ms"] <= r["p99_ms"] <= r["max_ms"]
    for q in (5, 10, 50, 90, 95, 99):
        assert r[f"p{q}_ms"] == pytest.approx(float(np.percentile(r["latencies_ms"], q)), rel=1e-4)
    assert 0 < r["cpu_percent"] <= 110  # one pinned thread: at most one core (less, by any amount, on a busy machine)
    assert r["load_ms"] > 0 and r["first_inference_ms"] > 0 and r["import_ms"] > 0
    assert r["rss_delta_mb"] == pytest.approx(r["rss_after_load_mb"] - r["rss_before_load_mb"])
    assert r["peak_rss_mb"] >= r["rss_after_load_mb"] > 0
    assert r["provenance"]["packages"]["ai-edge-litert"] == "2.3.0"
    assert r["started_unix"] < r["finished_unix"]


def test_duration_floor_keeps_running_past_the_iteration_count(tiny_tflites, tmp_path):
    out = tmp_path / "run.json"
    mobopt_cli("bench-run", "--model", tiny_tflites["conv"], "--device", "host_1t", "--out", out,
               "--options", json.dumps({"iterations": 10, "warmup": 1, "min_seconds": 0.3}))
    r = json.loads(out.read_text())
    # the floor holds whatever the host's speed; how many runs fit in it does not matter here
    assert r["wall_seconds"] >= 0.3 and r["iterations"] >= 10 and len(r["latencies_ms"]) == r["iterations"]


def test_unknown_device_and_broken_model_are_named(tiny_tflites, tmp_path):
    proc = mobopt_cli("bench-run", "--model", tiny_tflites["conv"], "--device", "pixel9", "--out", tmp_path / "x.json",
                      check=False)
    assert proc.returncode == 2 and "unknown device 'pixel9'; known: host_1t, host_2t, android" in proc.stderr
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a flatbuffer" * 10)
    proc = mobopt_cli("bench-run", "--model", broken, "--device", "host_1t", "--out", tmp_path / "y.json", check=False)
    assert proc.returncode == 1 and f"{broken}: LiteRT cannot load it" in proc.stderr
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


def test_peak_rss_is_the_benchmarks_own_not_its_parents(tiny_tflites, tmp_path):
    """ru_maxrss survives exec on Linux; a benchmark started from a big parent must not inherit its peak."""
    ballast = bytearray(600 * 2**20)  # make this (parent) process's peak RSS >= 600 MB
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    out = tmp_path / "bench.json"
    mobopt_cli("bench-run", "--model", tiny_tflites["conv"], "--device", "host_1t", "--out", out,
               "--options", json.dumps({"iterations": 50, "warmup": 1}))
    del ballast
    assert json.loads(out.read_text())["peak_rss_mb"] < 400


# --------------------------------------------------------------------------- statistics

def test_bootstrap_interval_is_deterministic_and_widens_when_repeats_disagree():
    rng = np.random.default_rng(0)
    agree = [rng.normal(1.0, 0.01, 1200) for _ in range(3)]
    ci = stats.bootstrap_ci(agree, 50, resamples=500, seed=1)
    assert ci == stats.bootstrap_ci(agree, 50, resamples=500, seed=1)
    assert ci[0] <= np.percentile(np.concatenate(agree), 50) <= ci[1] and ci[1] - ci[0] < 0.01
    disagree = [rng.normal(m, 0.01, 1200) for m in (1.0, 1.0, 1.2)]
    wide = stats.bootstrap_ci(disagree, 50, resamples=500, seed=1)
    assert wide[1] - wide[0] > 5 * (ci[1] - ci[0])
    assert stats.relative_spread([1.0, 1.01, 1.2]) == pytest.approx(0.19 / 1.01)


def test_flags_name_what_went_wrong():
    opts = {"disagreement_threshold": 0.05, "busy_cpu_percent": 90.0, "max_seconds": 600, "iterations": 1200}
    entry = {"threads": 1, "cpu_percent": 70.0, "repeat_p50_spread": 0.08,
             "repeats": [{"p50_ms": 1.0}, {"p50_ms": 1.08}, {"p50_ms": 1.0, "stopped_by": "max_seconds"}],
             "crosscheck": {"within_tolerance": False, "ours_p50_ms": 1.0, "tool_p50_ms": 1.2, "tool": "T",
                            "relative_difference": -1 / 6, "tolerance": 0.03}}
    flags = _flags(entry, opts)
    assert any("repeats disagree" in f and "8.0%" in f for f in flags)
    assert any("busy machine" in f and "70 %" in f for f in flags)
    assert any("max_seconds" in f for f in flags) and any("cross-check" in f and "-16.7%" in f for f in flags)
    quiet = {"threads": 1, "cpu_percent": 99.0, "repeat_p50_spread": 0.01, "repeats": [{"p50_ms": 1.0}],
             "crosscheck": {"within_tolerance": True}}
    assert _flags(quiet, opts) == []


# --------------------------------------------------------------------------- the protocol

@pytest.fixture(scope="module")
def protocol_run(tiny_tflites, tmp_path_factory):
    out = tmp_path_factory.mktemp("protocol")
    broken = out / "broken.tflite"
    broken.write_bytes(b"\x00" * 64)
    models = {"conv": tiny_tflites["conv"], "norm": tiny_tflites["norm"], "broken": broken}
    args = []
    for v, path in models.items():
        args += ["--model", f"{v}={path}", "--out", f"{v}={out / (v + '.json')}"]
    proc = mobopt_cli("bench", "--device", "host_1t", "--experiment", "tiny", *args, "--options",
                      json.dumps({"iterations": 200, "warmup": 5, "repeats": 3, "load_samples": 4, "op_profile_runs": 30,
                                  "bootstrap_resamples": 300}))
    return {v: json.loads((out / f"{v}.json").read_text()) for v in models}, proc


def test_protocol_repeats_interleave_and_pool(protocol_run):
    results, _ = protocol_run
    conv, norm = results["conv"], results["norm"]
    for r in (conv, norm):
        assert r["status"] == "ok" and r["experiment"] == "tiny" and r["repeats_done"] == 3
        assert r["runs_pooled"] == 600 and r["iterations"] == 200
        pooled = np.concatenate([rep["latencies_ms"] for rep in r["repeats"]])
        assert r["p50_ms"] == pytest.approx(float(np.percentile(pooled, 50)))
        assert r["p50_ci_ms"][0] <= r["p50_ms"] <= r["p50_ci_ms"][1]
        assert r["p95_ci_ms"][0] <= r["p95_ms"] <= r["p95_ci_ms"][1]
        assert len(r["load_samples_ms"]) == 4 and r["load_ms"] == pytest.approx(float(np.median(r["load_samples_ms"])))
        assert r["tensorflow_imported"] is False and r["cpu_percent"] > 0 and r["rss_delta_mb"] is not None
        assert isinstance(r["flags"], list) and r["flagged"] == bool(r["flags"])
    # A B A B: each repeat of one variant starts after the previous repeat of the other finished
    starts = sorted((rep["started_unix"], name) for name, r in (("conv", conv), ("norm", norm)) for rep in r["repeats"])
    assert [name for _, name in starts] == ["conv", "norm"] * 3


def test_a_model_that_fails_to_load_does_not_stop_the_others(protocol_run):
    results, proc = protocol_run
    broken = results["broken"]
    assert broken["status"] == "failed" and "broken.tflite: LiteRT cannot load it" in broken["error"]
    assert broken["flagged"] and "p50_ms" not in broken
    assert results["conv"]["status"] == "ok" and "broken on host_1t failed" in proc.stderr


def test_delegation_and_op_profile_explain_the_time(protocol_run):
    results, _ = protocol_run
    norm = results["norm"]
    deleg = norm["delegation"]
    assert deleg["nodes"] == deleg["delegated_nodes"] + len(deleg["undelegated_nodes"])
    assert deleg["partitions"] >= 1 and 0 < deleg["coverage"] <= 1
    prof = norm["op_profile"]
    assert prof["ops_failed"] == 0 and prof["ops_measured"] == deleg["nodes"]
    assert {op["op"] for op in prof["ops"]} >= {"FULLY_CONNECTED", "SOFTMAX"}
    assert sum(r["count"] for r in prof["by_type"]) == deleg["nodes"]
    assert sum(r["share"] for r in prof["by_type"]) == pytest.approx(1.0)
    assert prof["sum_us"] > 0 and prof["whole_model_p50_us"] == pytest.approx(norm["p50_ms"] * 1e3)
    undelegated_in_profile = {op["index"] for op in prof["ops"] if op["delegated"] is False}
    assert undelegated_in_profile == set(deleg["undelegated_nodes"])


def test_crosscheck_against_litert_tool(protocol_run):
    cc = protocol_run[0]["conv"]["crosscheck"]
    assert len(cc["tool_p50_runs_ms"]) == 3 and cc["ours_p50_ms"] == protocol_run[0]["conv"]["p50_ms"]
    assert isinstance(cc["within_tolerance"], bool)
    assert cc["absolute_difference_ms"] == pytest.approx(cc["ours_p50_ms"] - cc["tool_p50_ms"])
    # On a fast host the tool prints 0.00 ms for this tiny model: no ratio exists then.
    if cc["tool_p50_ms"] >= crosscheck.RESOLUTION_MS:
        assert cc["tolerance"] >= 0.03 and cc["compared_at"] == "relative"
        assert cc["relative_difference"] * cc["tool_p50_ms"] == pytest.approx(cc["absolute_difference_ms"])
    else:
        assert cc["relative_difference"] is None and cc["compared_at"].startswith("absolute")


def _tool_run(median_ms):
    return {"latency": {"median_ms": median_ms, "p5_ms": median_ms, "p95_ms": median_ms, "avg_ms": median_ms,
                        "init_ms": 1.0, "num_runs": 10}}


def test_crosscheck_compares_at_the_tools_resolution():
    """LiteRT's tool rounds to 0.01 ms: a 0.00 ms reading is compared in absolute terms, never divided by."""
    zero = crosscheck.compare(0.004, [_tool_run(0.0)] * 3)
    assert zero["relative_difference"] is None and zero["within_tolerance"] is True
    assert zero["tolerance_ms"] == pytest.approx(0.005) and "resolution" in zero["compared_at"]
    assert crosscheck.compare(0.02, [_tool_run(0.0)] * 3)["within_tolerance"] is False
    slow = crosscheck.compare(1.05, [_tool_run(1.0)] * 3)
    assert slow["relative_difference"] == pytest.approx(0.05) and slow["within_tolerance"] is False
    assert crosscheck.compare(0.014, [_tool_run(0.01)] * 3)["within_tolerance"] is True  # 0.004 ms: under half a step
    flags = _flags({"threads": 1, "cpu_percent": 99.0, "repeat_p50_spread": 0.0, "repeats": [{"p50_ms": 0.02}],
                    "crosscheck": crosscheck.compare(0.02, [_tool_run(0.0)] * 3)},
                   {"disagreement_threshold": 0.05, "busy_cpu_percent": 90.0, "max_seconds": 600, "iterations": 1200})
    assert any("cross-check" in f and "resolution" in f for f in flags)


# --------------------------------------------------------------------------- benchmark_model output and phones

def test_parse_benchmark_model_log_with_op_profile():
    """A log in the format of LiteRT's tflite/tools/benchmark (benchmark_model.cc, StatWithPercentiles,
    profile_summarizer): the timed runs' statistics, not the warm-up's, and the timed runs' profile,
    not the initialization's."""
    r = benchmark_model.parse((DATA / "benchmark_model_op_profiling.log").read_text())
    assert r["iterations"] == 1200 and r["warmup_runs"] == 50
    assert (r["p5_ms"], r["p50_ms"], r["p95_ms"]) == (9.16, 9.377, 10.112)
    assert r["p10_ms"] is None and r["p90_ms"] is None and r["p99_ms"] is None
    assert r["load_ms"] == 41.87 and r["first_inference_ms"] == 21.873 and r["mean_ms"] == pytest.approx(9.4726)
    assert r["memory_overall_delta_mb"] == pytest.approx(14.6523)
    prof = r["op_profile"]
    assert [row["node_type"] for row in prof["run_order"]] == ["TfLiteXNNPackDelegate", "MEAN", "SOFTMAX"]
    assert prof["by_node_type"][0]["avg_pct"] == pytest.approx(0.94931)


def test_parse_reports_failures_with_the_log():
    with pytest.raises(MobOptError, match=r"phone X: benchmark_model failed \(Failed to mmap model /data/local/tmp/m\.tflite\)"):
        benchmark_model.parse("INFO: STARTING!\nERROR: Failed to mmap model /data/local/tmp/m.tflite\n", label="phone X")
    with pytest.raises(MobOptError, match="no statistics of the timed runs"):
        benchmark_model.parse("INFO: STARTING!\nINFO: Initialized session in 3ms.\n", label="phone X")


@pytest.fixture
def phone(tmp_path, monkeypatch):
    """A stand-in adb on PATH whose 'phone' is this machine, and the emulated benchmark_model binary."""
    bin_dir = tmp_path / "bin"
    write_adb_stand_in(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_ADB_LOG", str(tmp_path / "adb.log"))
    remote = tmp_path / "phone"
    remote.mkdir()
    return {"binary": write_benchmark_model_emulator(tmp_path / "tools" / "benchmark_model"), "remote": remote,
            "options": {"taskset": "1", "threads": 1, "remote_dir": str(remote), "cpu_sample_interval": 0.05},
            "log": tmp_path / "adb.log"}


def test_android_protocol_over_adb(phone, tiny_tflites, tmp_path):
    out = {v: tmp_path / f"{v}.json" for v in ("conv", "norm")}
    args = []
    for v in out:
        args += ["--model", f"{v}={tiny_tflites[v]}", "--out", f"{v}={out[v]}"]
    mobopt_cli("bench", "--device", "android", *args, "--binary", phone["binary"], "--options",
               json.dumps({"iterations": 1000, "min_seconds": 0.6, "warmup": 10, "repeats": 2, "load_samples": 3,
                           "op_profile_runs": 20, "android": phone["options"]}))
    calls = phone["log"].read_text()
    assert "--num_runs=1000" in calls and "--min_secs=0.6" in calls and "--warmup_min_secs=0" in calls
    assert "taskset 1" in calls and "--dry_run=true" in calls
    for v in out:
        r = json.loads(out[v].read_text())
        assert r["status"] == "ok" and r["device_kind"] == "android" and r["phone_serial"] == ADB_SERIAL
        assert set(r["phone_cpu"]) >= {"model", "isa", "int8_dot_product"}  # the phone's own /proc/cpuinfo
        assert r["iterations"] >= 1000 and r["repeats_done"] == 2
        assert r["p5_ms"] <= r["p50_ms"] <= r["p95_ms"] and r["p10_ms"] is None and r["p50_ci_ms"] is None
        assert r["p50_range_ms"][0] <= r["p50_ms"] <= r["p50_range_ms"][1]
        assert len(r["load_samples_ms"]) == 3 and r["load_ms"] > 0
        assert all(rep["cpu_samples"] >= 2 for rep in r["repeats"]) and 0 < r["cpu_percent"] <= 110
        assert r["peak_rss_mb"] > 10
        assert r["op_profile"]["by_node_type"] and r["delegation"]["nodes"] > 0
        assert r["side_errors"] == [] and r["std_ms"] > 0


def test_android_without_a_phone_or_with_adb_errors_is_named(phone, tiny_tflites, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_ADB_STATE", "none")
    ok, why = devices.availability("android", phone["options"])
    assert not ok and "no phone attached to adb" in why and "skipped" in why
    models = ["--model", f"conv={tiny_tflites['conv']}", "--out", f"conv={tmp_path / 'c.json'}"]
    proc = mobopt_cli("bench", "--device", "android", *models, "--binary", phone["binary"],
                      "--options", json.dumps({"android": phone["options"]}), check=False)
    assert proc.returncode == 1 and "device android: no phone attached to adb" in proc.stderr
    monkeypatch.setenv("STANDIN_ADB_STATE", "unauthorized")
    ok, why = devices.availability("android", phone["options"])
    assert not ok and f"{ADB_SERIAL}: unauthorized" in why
    monkeypatch.setenv("STANDIN_ADB_STATE", "device")
    monkeypatch.setenv("STANDIN_ADB_FAIL_PUSH", "1")
    proc = mobopt_cli("bench", "--device", "android", *models, "--binary", phone["binary"],
                      "--options", json.dumps({"android": phone["options"]}), check=False)
    assert proc.returncode == 1 and f"phone {ADB_SERIAL}: `adb push" in proc.stderr and "No space left" in proc.stderr
    assert not (tmp_path / "c.json").exists()
    monkeypatch.setenv("PATH", "/nonexistent")
    ok, why = devices.availability("android", phone["options"])
    assert not ok and "adb executable 'adb' not found" in why


def test_phone_mean_and_std_pool_the_repeats_exactly():
    """benchmark_model prints each repeat's count, mean and std only; pooled they must equal those of all runs."""
    from mobopt.bench import protocol

    rng = np.random.default_rng(3)
    runs = [rng.gamma(2.0, 1.0, n) + shift for n, shift in ((1200, 5.0), (800, 5.5), (1000, 4.8))]
    repeats = [{"iterations": len(r), "mean_ms": r.mean(), "std_ms": r.std()} for r in runs]
    mean, std = protocol._pooled_mean_std(repeats)
    pooled = np.concatenate(runs)
    assert mean == pytest.approx(pooled.mean(), rel=1e-12) and std == pytest.approx(pooled.std(), rel=1e-12)
    assert protocol._pooled_mean_std([{"iterations": 10, "mean_ms": None, "std_ms": None}]) == (None, None)


def test_failed_extras_are_flagged_apart_from_failed_repeats():
    """A failed load sample, cross-check or explanation is named in the flags; it is not a missing repeat."""
    from mobopt.bench import protocol

    opts = protocol.options({})
    entry = {"repeats": [{"p50_ms": 1.0}] * 3, "repeat_p50_spread": 0.0, "threads": 1, "cpu_percent": 99.0,
             "error": None, "side_errors": ["load sample: m.tflite on host_1t: killed"],
             "crosscheck": {"error": "benchmark_litert_model: exit code 1", "within_tolerance": None},
             "delegation": {"error": "m.tflite: cannot load"}, "op_profile": {"ops": []}}
    flags = protocol._flags(entry, opts)
    assert flags == ["an extra measurement failed: load sample: m.tflite on host_1t: killed",
                     "cross-check failed: benchmark_litert_model: exit code 1",
                     "delegation unavailable: m.tflite: cannot load"]
    assert not any("repeats" in f for f in flags)
