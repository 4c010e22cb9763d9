"""Every figure function writes its PNG and SVG from result files in the workflow's schema."""

import json

import numpy as np
import pytest

from mobopt.report import plots


@pytest.fixture
def entries(tmp_path):
    rng = np.random.default_rng(0)
    out = []
    for model, variants in (("ViT", ("float32", "int8", "int16x8")), ("MobileNetV2", ("float32", "int8"))):
        for i, variant in enumerate(variants):
            stem = tmp_path / f"{model}_{variant}"
            if variant == "int16x8":  # refused by the converter: recorded, never measured
                info = {"supported": False, "reason": "no 16x8 kernel for NEG"}
                bench = {"status": "not supported", "supported": False}
                ev = {"supported": False}
            else:
                base = 1.0 + i
                info = {"size_bytes": 3_500_000 // (1 + 3 * i), "size_gzip_bytes": 3_000_000 // (1 + 3 * i),
                        "compute": {"flops": 92_000_000, "arithmetic_intensity": 7.0 * (1 + 3 * i)}}
                repeats = [{"latencies_ms": list(base + rng.gamma(2.0, 0.01, 300))} for _ in range(3)]
                bench = {"status": "ok", "p50_ms": base + 0.02, "repeats": repeats}
                ev = {"accuracy": 0.98 - 0.01 * i, "loss": 0.05 + 0.01 * i}
            for suffix, data in (("bench", bench), ("info", info), ("eval", ev)):
                (stem.parent / f"{stem.name}.{suffix}.json").write_text(json.dumps(data))
            out.append({"experiment": model.lower(), "label": model, "variant": variant, "device": "host_1t",
                        "bench": f"{stem}.bench.json", "tflite_info": f"{stem}.info.json", "eval": f"{stem}.eval.json"})
    return out


@pytest.mark.parametrize("name", ["latency_distributions", "size_bars", "accuracy_latency_pareto", "roofline"])
def test_figure_is_written(entries, tmp_path, name):
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    if name == "roofline":
        peak = tmp_path / "peak.json"
        peak.write_text(json.dumps({"device": "host_1t", "threads": 1, "float32_gflops": 80.0, "int8_gflops": 95.0,
                                    "memory_bandwidth_gbs": 25.0}))
        plots.roofline(entries, peak, png, svg)
    else:
        getattr(plots, name)(entries, png, svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
