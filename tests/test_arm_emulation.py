"""Emulated CPUs: the counting plugin's lines parse, the fake ARM CPU files carry the MIDR, the x86 CPU runs this
very Python, and, where qemu-user can be had, a real count under QEMU: deterministic to the instruction,
dot-product instructions only where the ARM CPU has them, the output the host's, and a model that fails under
emulation recorded as failed."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import mobopt_cli

from mobopt import MobOptError
from mobopt.bench import arm_toolchain, devices, emulated, protocol

EMULATED = [d for d in devices.DEVICES.values() if d.kind == "emulated"]

STDERR = """some guest output
ICOUNT marker=1 total=100 dot=0 i8mm=0 sve=0 sme=0
ICOUNT marker=2 total=1000 dot=0 i8mm=0 sve=0 sme=0
ICOUNT marker=3 total=1500 dot=0 i8mm=0 sve=0 sme=0
ICOUNT marker=4 total=2500 dot=10 i8mm=0 sve=0 sme=0
ICOUNT marker=5 total=4500 dot=50 i8mm=0 sve=0 sme=0
ICOUNT marker=exit total=4600 dot=50 i8mm=0 sve=0 sme=0
"""


def test_markers_give_per_invoke_counts_without_startup_or_first_invoke():
    counts = emulated.per_invoke(emulated.parse(STDERR), invokes=4)
    assert counts["instructions_per_invoke"] == 500 and counts["dot_per_invoke"] == 10
    assert counts["startup_instructions"] == 1000 and counts["load_instructions"] == 500
    assert counts["first_invoke_instructions"] == 1000
    with pytest.raises(MobOptError, match="markers 4, 5"):
        emulated.per_invoke(emulated.parse(STDERR.replace("marker=4", "m").replace("marker=5", "m")), 4)


def test_each_cpu_gets_its_midr_in_the_fields_linux_prints(tmp_path):
    a53 = devices.get("arm_a53")
    text = arm_toolchain.cpuinfo_text(a53)
    assert "CPU implementer\t: 0x41" in text and "CPU part\t: 0xd03" in text and "CPU revision\t: 4" in text
    assert "asimddp" not in text and "asimddp" in arm_toolchain.cpuinfo_text(devices.get("arm_a76"))
    (tmp_path / "sysroot").mkdir()
    prefix = arm_toolchain.write_prefix(tmp_path, a53)
    assert (prefix / "proc/cpuinfo").read_text() == text
    assert (prefix / "sys/devices/system/cpu/possible").read_text() == "0\n"
    assert (prefix / "usr").is_symlink()


def test_an_unknown_cpu_is_one_line_with_the_choices():
    with pytest.raises(MobOptError) as err:
        devices.get("arm_a55")
    assert "arm_a53" in str(err.value) and "arm_a76" in str(err.value) and "\n" not in str(err.value)


def test_output_agreement_in_steps_for_integers_and_a_tolerance_for_floats():
    assert emulated.agreement(np.array([[3, -2]], np.int8), np.array([[4, -2]], np.int8))["agrees"]
    assert not emulated.agreement(np.array([[3, -2]], np.int8), np.array([[5, -2]], np.int8))["agrees"]
    assert not emulated.agreement(np.array([[0.5]], np.float32), np.array([[0.5001]], np.float32))["agrees"]
    assert emulated.agreement(np.array([[0.5]], np.float32), np.array([[0.5015]], np.float32), hybrid=True)["agrees"]


def test_the_x86_cpu_runs_this_python_on_a_model_without_avx512_and_needs_no_arm_files():
    x86 = devices.get("x86_avx2")
    assert x86.arch == "x86_64" and "avx2" in x86.isa and not any("avx512" in f for f in x86.isa)
    toolchain = {"plugin": "/t/libicount.so", "prefixes": {}, "python": "/t/arm64/python3.11", "site": "/t/site"}
    cmd = emulated.command(x86, toolchain, Path("m.tflite"), Path("i.npy"), Path("o.npy"), 3)
    assert cmd[:5] == ["setarch", "-R", "qemu-x86_64", "-cpu", x86.cpu] and cmd[5:7] == ["-plugin", "/t/libicount.so"]
    assert cmd[7] == sys.executable and "-L" not in cmd and cmd[-1] == "3"
    assert emulated.guest_environment(x86, toolchain).get("PYTHONPATH") != "/t/site"
    assert emulated.guest_environment(devices.get("arm_a53"), toolchain)["PYTHONPATH"] == "/t/site"
    arm = emulated.command(devices.get("arm_a53"), {**toolchain, "prefixes": {"arm_a53": "/t/root"}}, Path("m.tflite"),
                           Path("i.npy"), Path("o.npy"), 3)
    assert arm[2] == "qemu-aarch64" and arm[arm.index("-L") + 1] == "/t/root" and "/t/arm64/python3.11" in arm


def test_repeated_counts_agree_within_a_share_or_a_floor_of_instructions():
    assert emulated.repeats_agree([6_353_054, 6_353_054])
    assert emulated.repeats_agree([6_353_054, 6_355_951])  # 2,900 apart: ONNX Runtime on a loaded host
    assert emulated.repeats_agree([300_000, 309_000])  # a small model: the floor, not 0.1 %
    assert not emulated.repeats_agree([6_353_054, 6_400_000])  # 0.7 %
    assert not emulated.repeats_agree([300_000, 320_000])


def _qemu_or_skip():
    if arm_toolchain.qemu_version() is None and not arm_toolchain.can_install()[0]:
        pytest.skip("qemu-user is not installed and cannot be (not root or no apt-get): .ci/run installs it")


@pytest.fixture(scope="module")
def toolchain(tmp_path_factory):
    _qemu_or_skip()
    out = tmp_path_factory.mktemp("arm") / "toolchain.json"
    mobopt_cli("setup-arm-emulation", "--out", out, timeout=1200)
    return out


@pytest.fixture(scope="module")
def tiny_models(trained_tiny, prepared_digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("arm_models")
    for variant in ("float32", "int8", "ort_int8"):
        suffix = ".onnx" if variant.startswith("ort_") else ".tflite"
        mobopt_cli("convert", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--variant", variant,
                   "--out", root / f"{variant}{suffix}", "--info", root / f"{variant}.json",
                   "--options", json.dumps({"representative_samples": 50}))
    mobopt_cli("convert", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--variant", "ort_int8",
               "--out", root / "ort_int8_7bit.onnx", "--info", root / "ort_int8_7bit.json",
               "--options", json.dumps({"representative_samples": 50, "onnx": {"reduce_range": True}}))
    return root


@pytest.mark.slow
def test_counts_repeat_to_the_instruction_and_dot_products_appear_only_where_the_cpu_has_them(toolchain, tiny_models,
                                                                                                tmp_path):
    models = {v: tiny_models / f"{v}.tflite" for v in ("float32", "int8")}
    results = {}
    for device in ("arm_a53", "arm_a76", "x86_avx2"):
        outs = {v: tmp_path / f"{device}_{v}.json" for v in models}
        results[device] = protocol.run(models, device, outs, {"emulation": {"invokes": 3, "repeats": 2}},
                                       toolchain=toolchain)
        for v in models:
            r = json.loads(outs[v].read_text())
            assert r["status"] == "ok" and r["device_kind"] == "emulated", r.get("error")
            assert r["repeatable"] and len(set(r["repeat_counts"])) == 1  # PYTHONHASHSEED=0, setarch -R: exact
            assert r["output_agreement"]["agrees"], r["output_agreement"]
            assert r["instructions_per_invoke"] > 0 and "p50_ms" not in r and "no latency" in r["latency_note"]
            assert r["provenance"]["cpu"] and r["emulator"]["cpu"] == devices.get(device).cpu
    assert results["arm_a53"]["int8"]["dot_per_invoke"] == 0
    assert results["arm_a76"]["int8"]["dot_per_invoke"] > 0
    assert results["arm_a76"]["float32"]["dot_per_invoke"] == 0
    # x86: a successful run is itself the proof that no AVX-512 instruction ran (QEMU's Haswell has none: SIGILL);
    # the plugin classifies A64 words only, so the classes are "not counted", not 0
    assert results["x86_avx2"]["int8"]["dot_per_invoke"] is None
    assert results["x86_avx2"]["int8"]["emulator"]["arch"] == "x86_64"


@pytest.mark.slow
def test_onnx_runtime_is_counted_on_the_emulated_x86_cpu(toolchain, tiny_models, tmp_path):
    models = {"float32": tiny_models / "float32.tflite", "ort_int8": tiny_models / "ort_int8.onnx",
              "ort_int8_7bit": tiny_models / "ort_int8_7bit.onnx"}
    outs = {v: tmp_path / f"{v}.json" for v in models}
    results = protocol.run(models, "x86_avx2", outs, {"emulation": {"invokes": 3, "repeats": 2}}, toolchain=toolchain)
    ort = results["ort_int8"]
    assert ort["status"] == "ok", ort.get("error")
    # not to the instruction, unlike LiteRT: ONNX Runtime's count moves with the host's load, within the tolerance
    assert emulated.repeats_agree(ort["repeat_counts"]) and not any("repeats" in f for f in ort["flags"])
    assert ort["instructions_per_invoke"] > 0 and ort["emulator"]["arch"] == "x86_64"
    # a QDQ graph is recognised as quantized inside; whether its output matches the VNNI host's is the finding the
    # check exists for (ORT's u8s8 kernels without VNNI saturate 16-bit sums), and a mismatch is flagged, not failed
    agree = ort["output_agreement"]
    assert agree["tolerance"] == emulated.HYBRID_TOLERANCE and agree["agrees"] == (not ort["flagged"])
    assert results["float32"]["status"] == "ok" and results["float32"]["output_agreement"]["agrees"]
    # 7-bit weights (convert.onnx.reduce_range) cannot saturate those sums: the AVX2 output is the host's
    seven = results["ort_int8_7bit"]
    assert json.loads((tiny_models / "ort_int8_7bit.json").read_text())["quantization"]["weights"].startswith("int8, 7-bit")
    assert seven["status"] == "ok" and seven["output_agreement"]["agrees"], seven["output_agreement"]


@pytest.mark.slow
def test_a_model_that_fails_under_emulation_is_recorded_and_the_others_go_on(toolchain, tiny_models, tmp_path):
    broken = json.loads(toolchain.read_text())
    broken["python"] = str(tmp_path / "no-python-here")
    (tmp_path / "tc.json").write_text(json.dumps(broken))
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not measured")  # an ONNX Runtime variant: not for an emulated CPU, said so
    models = {"float32": tiny_models / "float32.tflite", "ort_float32": onnx}
    outs = {v: tmp_path / f"{v}.json" for v in models}
    results = protocol.run(models, "arm_a53", outs, {}, toolchain=tmp_path / "tc.json")
    assert results["float32"]["status"] == "failed" and "no-python-here" in results["float32"]["error"]
    assert results["ort_float32"]["status"] == "not supported" and "x86_avx2 only" in results["ort_float32"]["reason"]
