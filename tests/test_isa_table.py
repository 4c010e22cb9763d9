"""The does-int8-pay table: latency ratios on timed devices, instruction ratios on emulated CPUs, each with its ISA."""

import json

from mobopt.report import isa


def _bench(tmp_path, name, **fields):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"status": "ok", **fields}))
    return str(path)


def test_each_device_answers_with_its_own_measure_and_instruction_set(tmp_path):
    host_cpu = {"cpu": {"model": "AMD EPYC", "isa": ["avx2", "fma", "avx512f", "avx512_vnni"]}}
    entries = []
    for variant, p50, a53, a76 in (("float32", 0.6, 27e6, 24e6), ("int8", 1.2, 37e6, 23e6)):
        entries.append({"experiment": "vit", "label": "ViT", "variant": variant, "device": "host_1t",
                        "bench": _bench(tmp_path, f"h_{variant}", p50_ms=p50, provenance=host_cpu)})
        for device, count, dot in (("arm_a53", a53, 0), ("arm_a76", a76, 3e6 if variant == "int8" else 0)):
            entries.append({"experiment": "vit", "label": "ViT", "variant": variant, "device": device,
                            "bench": _bench(tmp_path, f"{device}_{variant}", instructions_per_invoke=count,
                                            dot_per_invoke=dot, emulator={"cpu": device, "isa": ["armv8"]})})
    df = isa.table(entries)
    int8 = df[df.variant == "int8"].set_index("device")
    assert int8.loc["host_1t", "ratio_vs_float32"] == 2.0 and int8.loc["host_1t", "measures"] == "latency"
    assert int8.loc["host_1t", "isa"] == "avx2 avx512_vnni"
    assert round(int8.loc["arm_a53", "ratio_vs_float32"], 3) == round(37 / 27, 3)
    assert int8.loc["arm_a76", "metric"] == "instructions_per_invoke" and int8.loc["arm_a76", "dot_product_per_invoke"] > 0
    text = isa.markdown(df)
    assert "host_1t: p50 (AMD EPYC; avx2 avx512_vnni)" in text and "arm_a53: instructions" in text
    row = next(line for line in text.splitlines() if "| int8" in line)
    assert [c.strip() for c in row.strip("|").split("|")] == ["ViT", "int8", "2.00", "1.37", "0.96"]
