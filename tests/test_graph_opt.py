"""Graph optimization on a really trained tiny ViT (digits) and a random-weight MobileNetV2, real TF/LiteRT/AEQ.

Pruning reaches its sparsity and leaves a plain model; the sensitivity ranking
is deterministic; the mixed-precision model keeps exactly the chosen layers in
higher precision; the accuracy budget holds or the run fails saying by how
much; unsupported variants are recorded, not crashed on; fusion is verified.
"""

import json

import numpy as np
import pytest
from conftest import mobopt_cli

pytestmark = pytest.mark.slow

SPARSITY = 0.4


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, trained_tiny, prepared_digits):
    out = tmp_path_factory.mktemp("pruned")
    mobopt_cli("prune", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--out", out / "pruned.keras",
               "--info", out / "pruning.json", "--seed", 1,
               "--options", json.dumps({"sparsity": SPARSITY, "epochs": 3, "min_weights": 512}))
    return out


def test_pruning_reaches_the_sparsity_and_leaves_no_pruning_state(pruned, trained_tiny):
    import keras

    from mobopt.models import architectures
    from mobopt.optimize.pruning import measure_sparsity, prunable_kernels

    info = json.loads((pruned / "pruning.json").read_text())
    model = architectures.load(pruned / "pruned.keras")
    original = architectures.load(trained_tiny / "model.keras")
    measured = measure_sparsity(model, 512)
    assert measured == info["measured"]
    assert len(measured["kernels"]) >= 8  # patch embedding, attention projections, MLPs, head
    for path, k in measured["kernels"].items():  # every kernel pruned to the target, up to rounding
        assert abs(k["sparsity"] - SPARSITY) <= 0.5 / k["weights"] + 1e-12, path
    assert measured["sparsity"] == pytest.approx(SPARSITY, abs=1e-3)
    # stripped: the same layer classes and variables as the original, no masks, no constraints
    assert [type(layer).__name__ for layer in model.layers] == [type(layer).__name__ for layer in original.layers]
    assert sorted(v.path for v in model.variables) == sorted(v.path for v in original.variables)
    assert not any("prune_mask" in v.path or v.constraint is not None for v in model.variables)
    assert all(v.constraint is None for v in prunable_kernels(model))
    assert not any("Prune" in type(layer).__name__ or isinstance(layer, keras.layers.Wrapper) for layer in model.layers)
    # the fine-tune kept the model useful
    assert info["val_after"]["accuracy"] >= 0.85
    assert info["fine_tune_steps"] > 0 and info["history"][-1]["target_sparsity"] == pytest.approx(SPARSITY)


def test_magnitude_mask_and_schedule():
    from mobopt.optimize.pruning import magnitude_mask, schedule

    w = np.array([[0.5, -0.1], [0.05, -2.0]])
    np.testing.assert_array_equal(magnitude_mask(w, 0.5), [[1, 0], [0, 1]])
    assert schedule(0, 100, 0.5, 0.7) == 0.0
    assert schedule(70, 100, 0.5, 0.7) == pytest.approx(0.5) and schedule(100, 100, 0.5, 0.7) == pytest.approx(0.5)
    assert 0 < schedule(10, 100, 0.5, 0.7) < schedule(40, 100, 0.5, 0.7) < 0.5


@pytest.fixture(scope="module")
def sensitivity_runs(tmp_path_factory, pruned, prepared_digits):
    out = tmp_path_factory.mktemp("sens")
    opts = {"mixed_precision": {"samples": 8, "calibration_samples": 50}}
    for run in ("a", "b"):
        mobopt_cli("sensitivity", "--model", pruned / "pruned.keras", "--data", prepared_digits,
                   "--out-json", out / f"{run}.json", "--out-csv", out / f"{run}.csv", "--out-float", out / f"{run}.tflite",
                   "--options", json.dumps(opts), "--seed", 1)
    return out


def test_sensitivity_ranking_is_deterministic(sensitivity_runs):
    a = json.loads((sensitivity_runs / "a.json").read_text())
    b = json.loads((sensitivity_runs / "b.json").read_text())
    assert [r["layer"] for r in a["ranking"]] == [r["layer"] for r in b["ranking"]]
    assert [r["score"] for r in a["ranking"]] == [r["score"] for r in b["ranking"]]
    assert (sensitivity_runs / "a.csv").read_text() == (sensitivity_runs / "b.csv").read_text()
    ranking = a["ranking"]
    assert [r["rank"] for r in ranking] == list(range(1, len(ranking) + 1))
    assert all(x["score"] >= y["score"] for x, y in zip(ranking, ranking[1:], strict=False))
    attn = [r for r in ranking if r["layer"].endswith("_attn")]
    assert len(attn) == 2 and all(r["attention_maps"] == 1 and r["attention_error"] > 0 for r in attn)
    assert all(r["feature_error"] > 0 for r in ranking if r["op_types"] != "RESHAPE")
    assert a["norm"] == "nuclear"


def test_norms_by_hand():
    from mobopt.optimize.mixed_precision import matrix_norm, relative_error

    m = np.diag([3.0, 4.0])
    assert matrix_norm(m, "nuclear") == pytest.approx(7.0)
    assert matrix_norm(m, "spectral") == pytest.approx(4.0)
    assert matrix_norm(m, "frobenius") == pytest.approx(5.0)
    assert matrix_norm(m, "max_abs") == pytest.approx(4.0)
    maps = np.zeros((1, 2, 3, 3))
    maps[0, 0] = np.eye(3)
    maps[0, 1] = 2 * np.eye(3)
    noisy = maps.copy()
    noisy[0, 1] *= 1.5  # head 1 off by 50 %, head 0 exact
    assert relative_error(maps, noisy, "nuclear", attention=True) == pytest.approx(0.25)


@pytest.fixture(scope="module")
def builder(sensitivity_runs, prepared_digits):
    from mobopt.optimize.graphopt import builder_for, options

    sens = json.loads((sensitivity_runs / "a.json").read_text())
    return builder_for(sensitivity_runs / "a.tflite", prepared_digits, sens["layers"],
                       {**options({})["mixed_precision"], "calibration_samples": 50}, seed=1), sens


def test_mixed_model_keeps_exactly_the_chosen_layers_in_higher_precision(builder):
    from mobopt.optimize import fusion
    from mobopt.optimize.mixed_precision import higher_precision_layers

    b, sens = builder
    chosen = {r["layer"] for r in sens["ranking"][:3]}
    data = b.build(chosen)
    assert higher_precision_layers(data, b) == chosen
    dtypes = {n: d for op in fusion.tflite_ops(data) for n, d in zip(op["outputs"], op["output_dtypes"], strict=True)}
    for layer in b.layer_order:
        kinds = {dtypes[op["outputs"][0]] for op in b.layer_ops(layer)}
        assert kinds == ({"float32"} if layer in chosen else {"int8"}), layer
    assert higher_precision_layers(b.build(set()), b) == set()
    assert higher_precision_layers(b.build(set(b.layer_order)), b) == set(b.layer_order)
    # higher precision keeps int8 weights: the file stays int8-sized
    assert len(b.build(set(b.layer_order))) < 0.6 * len(b.float_bytes)


def test_selection_respects_the_budget_or_says_by_how_much_it_missed(builder, sensitivity_runs, prepared_digits,
                                                                     tmp_path):
    from mobopt import MobOptError
    from mobopt.optimize.graphopt import options, sample_images
    from mobopt.optimize.mixed_precision import accuracy_on, select

    b, sens = builder
    x, y = sample_images(prepared_digits, "val", 60, 1, 3)
    reference = accuracy_on((sensitivity_runs / "a.tflite").read_bytes(), x, y)
    opts = {**options({})["mixed_precision"], "candidates": [2], "bench_iterations": 20, "bench_warmup": 2,
            "accuracy_budget_pp": 5.0}
    res = select(b, sens["ranking"], x, y, reference, opts, tmp_path)
    assert [c["k"] for c in res["candidates"]] == [0, 2, len(b.layer_order)]
    ok = [c for c in res["candidates"] if c["accuracy_drop_pp"] <= 5.0]
    assert res["chosen"] in ok and res["chosen"]["p50_ms"] == min(c["p50_ms"] for c in ok)
    assert all(c["tensorflow_imported"] is False for c in res["candidates"])
    # an impossible reference: every candidate misses, and the message says by how much
    impossible = {"accuracy": 1.5, "loss": 0.0}
    with pytest.raises(MobOptError) as err:
        select(b, sens["ranking"], x, y, impossible, {**opts, "accuracy_budget_pp": 0.5}, tmp_path, counts=[0])
    drop = 100 * (1.5 - res["candidates"][0]["accuracy"])
    assert f"missed by {drop - 0.5:.2f} pp" in str(err.value) and "accuracy_budget_pp (0.5 pp)" in str(err.value)


def test_reorder_keeps_the_model_valid(builder):
    from mobopt.optimize.graphopt import order_changed, reorder
    from mobopt.optimize.mixed_precision import accuracy_on

    b, _ = builder
    data = b.build(set())
    alt = reorder(data, "depth_first")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (5, 28, 28, 1)).astype(np.float32)
    from mobopt import litert

    def outputs(model):
        it = litert.interpreter(model)
        inp, out = it.get_input_details()[0], it.get_output_details()[0]
        res = []
        for img in x:
            it.set_tensor(inp["index"], litert.quantize_input(img[None], inp))
            it.invoke()
            res.append(it.get_tensor(out["index"]).copy())
        return np.array(res)

    np.testing.assert_array_equal(outputs(data), outputs(alt))
    assert isinstance(order_changed(data, alt), bool)
    assert reorder(data, "converter") == data
    assert accuracy_on(alt, x, np.zeros(5, np.int64))["accuracy"] >= 0


def test_unsupported_variant_is_recorded_and_downstream_writes_no_numbers(trained_tiny, prepared_digits, tmp_path):
    mobopt_cli("convert", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--variant", "int16x8",
               "--out", tmp_path / "int16x8.tflite", "--info", tmp_path / "int16x8.json", "--seed", 1,
               "--options", json.dumps({"representative_samples": 20}))
    info = json.loads((tmp_path / "int16x8.json").read_text())
    assert info["supported"] is False and info["unsupported_stage"] == "converter"
    assert "NEG" in info["reason"] and "16x8" in info["reason"]
    assert (tmp_path / "int16x8.tflite").stat().st_size == 0
    mobopt_cli("evaluate", "--model", tmp_path / "int16x8.tflite", "--data", prepared_digits, "--out", tmp_path / "e.json")
    mobopt_cli("bench", "--model", f"int16x8={tmp_path / 'int16x8.tflite'}", "--device", "host_1t",
               "--out", f"int16x8={tmp_path / 'b.json'}")
    for name in ("e.json", "b.json"):
        res = json.loads((tmp_path / name).read_text())
        assert res["supported"] is False and res["reason"] == info["reason"]
        assert not {"accuracy", "loss", "p50_ms", "p95_ms"} & set(res)
    assert json.loads((tmp_path / "b.json").read_text())["status"] == "not supported"


def test_new_converter_variants(trained_tiny, prepared_digits, tmp_path):
    sizes = {}
    for variant in ("float32", "dynamic_int8", "float16"):
        mobopt_cli("convert", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--variant", variant,
                   "--out", tmp_path / f"{variant}.tflite", "--info", tmp_path / f"{variant}.json", "--seed", 1)
        info = json.loads((tmp_path / f"{variant}.json").read_text())
        assert info["supported"] is True and info["fusion"]["checks"]["training_only_removed"]["keras_layers"] == 4
        sizes[variant] = info["size_bytes"]
    dyn = json.loads((tmp_path / "dynamic_int8.json").read_text())
    f16 = json.loads((tmp_path / "float16.json").read_text())
    assert dyn["inputs"][0]["dtype"] == "float32" and dyn["tensor_dtypes"]["int8"] > 0
    assert f16["op_histogram"]["DEQUANTIZE"] > 0 and f16["tensor_dtypes"]["float16"] > 0
    assert sizes["dynamic_int8"] < 0.5 * sizes["float32"] and sizes["float16"] < 0.7 * sizes["float32"]


def test_fusion_is_verified_on_mobilenetv2(tmp_path):
    from mobopt.models import architectures
    from mobopt.models.runtime import configure_tensorflow
    from mobopt.optimize import fusion, graphopt

    configure_tensorflow(0, 1)
    model = architectures.build({"name": "mobilenetv2", "alpha": 0.35, "weights": "none", "include_top": False},
                         (32, 32, 3), 5)
    rep = fusion.report(fusion.keras_layers(model), graphopt.float_tflite(model))
    checks = rep["checks"]
    assert checks["batchnorm_folded"] == {"keras_layers": 52, "tflite_ops_of_their_own": 0, "ok": True}
    assert checks["activations_fused"]["keras_activations"] == 35 and checks["activations_fused"]["ok"]
    assert checks["activations_fused"]["fused_into_ops"] == {"RELU6": 35}
    assert checks["training_only_removed"] == {"keras_layers": 1, "tflite_ops_of_their_own": 0, "ok": True}
    assert rep["keras_layer_histogram"]["Conv2D"] == rep["tflite_op_histogram"]["CONV_2D"] == 35
    assert rep["tflite_op_histogram"]["DEPTHWISE_CONV_2D"] == 17 and "RELU6" not in rep["tflite_op_histogram"]
