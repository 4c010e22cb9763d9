"""The cost table: parameters and MACs by layer kind from cost.json, float32 latency from the benchmark JSONs, the
study's 8.7x example and the ablations' MAC ratio beside their latency ratio; and `mobopt model-cost`, which
writes cost.json from a saved model."""

import json

import pandas as pd
import pytest

from mobopt.report import costs

DEVICES = ["host_1t", "host_2t"]
EXAMPLE = {"k": 3, "c_in": 128, "c_out": 256, "size": 1, "standard_macs": 294912, "depthwise_macs": 1152,
           "pointwise_macs": 32768, "separable_macs": 33920, "ratio": 294912 / 33920, "ratio_fraction": "2304/265"}


def _by_kind(std=(0, 0), dw=(0, 0), pw=(0, 0), dense=(0, 0), attention=(0, 0)):
    kinds = {"standard conv": std, "depthwise conv": dw, "pointwise conv": pw, "dense": dense, "attention": attention,
             "other": (100, 0)}
    out = {k: {"layers": 1, "params": p, "trainable_params": p, "macs": m} for k, (p, m) in kinds.items()}
    out["total"] = {"layers": 6, "params": sum(p for p, _ in kinds.values()),
                    "trainable_params": sum(p for p, _ in kinds.values()), "macs": sum(m for _, m in kinds.values())}
    return out


def _entry(tmp_path, name, model, by_kind, p50s):
    cost = tmp_path / f"{name}.cost.json"
    cost.write_text(json.dumps({"model": name, "layers": [], "by_kind": by_kind, "separable_vs_standard": EXAMPLE}))
    bench = {}
    for device, p50 in p50s.items():
        bench[device] = tmp_path / f"{name}.{device}.json"
        bench[device].write_text(json.dumps({"p50_ms": p50, "p95_ms": p50 * 1.2}))
    return {"experiment": name, "label": name.upper(), "dataset": "cifar10", "model": model, "cost": str(cost),
            "bench": {d: str(p) for d, p in bench.items()}}


@pytest.fixture
def entries(tmp_path):
    return [
        _entry(tmp_path, "mnv2", {"name": "mobilenetv2", "weights": "none", "alpha": 1.0},
               _by_kind(std=(864, 10_000_000), dw=(20_000, 5_000_000), pw=(2_000_000, 70_000_000), dense=(12_810, 12_800)),
               {"host_1t": 10.0, "host_2t": 6.0}),
        _entry(tmp_path, "mnv2_std", {"name": "mobilenetv2", "weights": "none", "alpha": 1.0, "depthwise_separable": False},
               _by_kind(std=(9_000_000, 400_000_000), pw=(1_000_000, 30_000_000), dense=(12_810, 12_800)),
               {"host_1t": 50.0, "host_2t": 27.0}),
        _entry(tmp_path, "vit", {"name": "vit"}, _by_kind(dense=(300_000, 5_000_000), attention=(500_000, 8_000_000)),
               {"host_1t": 1.0}),  # not benchmarked on host_2t
    ]


def test_rows_by_layer_kind_latency_and_macs_per_ms(entries):
    df = costs.cost_table(entries, DEVICES)
    assert df["experiment"].tolist() == ["mnv2", "mnv2_std", "vit"]
    first = df.iloc[0]
    assert first["depthwise_conv_macs"] == 5_000_000 and first["pointwise_conv_params"] == 2_000_000
    assert first["macs"] == 85_012_800 and first["params"] == 864 + 20_000 + 2_000_000 + 12_810 + 100
    assert first["p50_ms_host_1t"] == 10.0 and first["macs_per_ms_host_1t"] == pytest.approx(8_501_280)
    assert df.iloc[2]["attention_macs"] == 8_000_000
    assert pd.isna(df.iloc[2]["p50_ms_host_2t"]) and pd.isna(df.iloc[2]["macs_per_ms_host_2t"])


def test_the_ablation_pair_sets_the_mac_ratio_beside_the_latency_ratio(entries):
    pairs = costs.ablation_pairs(entries, DEVICES)
    assert len(pairs) == 1
    row = pairs.iloc[0]
    assert row["model"] == "MNV2_STD" and row["compared_with"] == "MNV2"
    assert row["mac_ratio"] == pytest.approx(430_012_800 / 85_012_800)
    assert row["latency_ratio_host_1t"] == pytest.approx(5.0) and row["latency_ratio_host_2t"] == pytest.approx(4.5)


def test_no_pair_without_the_original(entries):
    assert costs.ablation_pairs([entries[1], entries[2]], DEVICES).empty
    other = {**entries[0], "model": {**entries[0]["model"], "alpha": 0.5}}  # another width: not the same network
    assert costs.ablation_pairs([other, entries[1]], DEVICES).empty


def test_written_table_has_the_example_and_the_ablations(entries, tmp_path):
    csv, md = tmp_path / "cost.csv", tmp_path / "cost.md"
    costs.write_cost_table(entries, DEVICES, csv, md)
    assert len(pd.read_csv(csv)) == 3
    text = md.read_text()
    assert "294,912 MACs" in text and "33,920" in text and "a ratio of 8.69" in text
    assert "standard convolutions instead of depthwise-separable" in text
    assert "| attention params / MACs" in text and "85 M" in text


def test_model_cost_writes_the_totals_of_a_saved_model(tmp_path):
    import keras

    from mobopt.cli import main

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)  # 8*8*4 * 3*3*3 = 6912 MACs, 108 params
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)  # 8*8*4 * 9 = 2304, 36
    x = keras.layers.Conv2D(6, 1, use_bias=False)(x)  # 8*8*6 * 4 = 1536, 24
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2)(x)  # 12 MACs, 14 params
    keras.Model(inputs, outputs, name="tiny").save(tmp_path / "model.keras")
    out = tmp_path / "cost.json"
    assert main(["model-cost", "--model", str(tmp_path / "model.keras"), "--out", str(out)]) in (0, None)
    cost = json.loads(out.read_text())
    kinds = cost["by_kind"]
    assert kinds["total"]["macs"] == 6912 + 2304 + 1536 + 12 and kinds["total"]["params"] == 108 + 36 + 24 + 14
    assert (kinds["standard conv"]["macs"], kinds["depthwise conv"]["macs"], kinds["pointwise conv"]["macs"],
            kinds["dense"]["macs"]) == (6912, 2304, 1536, 12)
    example = cost["separable_vs_standard"]
    assert (example["standard_macs"], example["separable_macs"]) == (294912, 33920)
    assert round(example["ratio"], 1) == 8.7 and example["ratio_fraction"] == "2304/265"
    assert "provenance" in cost
