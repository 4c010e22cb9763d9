"""Structured pruning really removes units: shapes and MAC counts shrink, and units that contribute
nothing can be cut without changing a single output; a pruned digits ViT is fine-tuned by the real CLI."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import TINY_SPEC, mobopt_cli

from mobopt import MobOptError
from mobopt.optimize import structured

SMALL = {"name": "vit", "patch_size": 7, "dim": 16, "depth": 3, "heads": 4, "mlp_dim": 32, "head_hidden": 8,
         "dropout": 0.0}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (64, 28, 28, 1)).astype("uint8"), rng.integers(0, 10, 64)


def _model(images):
    import keras

    from mobopt.models import architectures

    keras.utils.set_random_seed(0)
    return architectures.build(SMALL, (28, 28, 1), 10, images[0])


def _silence(model, neurons=(), heads=(), blocks=()):
    """Zero the outgoing weights of MLP neurons, the output projection of heads, and both residual branches of
    blocks: units that then add nothing to the residual stream."""
    for i in range(SMALL["depth"]):
        mlp2 = model.get_layer(f"block{i}_mlp2")
        w, b = mlp2.get_weights()
        w[list(neurons)] = 0.0
        attn = model.get_layer(f"block{i}_attn")
        a = attn.get_weights()
        a[6][list(heads)] = 0.0
        if i in blocks:
            w[:], b[:], a[6][:], a[7][:] = 0.0, 0.0, 0.0, 0.0
        mlp2.set_weights([w, b])
        attn.set_weights(a)


def test_nothing_removed_is_the_same_model(images):
    model = _model(images)
    small, record = structured.prune_vit(model, SMALL, {"mlp": 0.0, "heads": 0.0}, 10, *images)
    np.testing.assert_array_equal(small.predict(images[0], verbose=0), model.predict(images[0], verbose=0))
    assert record["parameters"]["before"] == record["parameters"]["after"]


@pytest.mark.parametrize("importance", ["activation", "magnitude"])
def test_silent_neurons_are_the_ones_cut_and_outputs_do_not_change(images, importance):
    model = _model(images)
    _silence(model, neurons=range(0, 32, 2))  # half the neurons of every block add nothing
    before = model.predict(images[0], verbose=0)
    small, record = structured.prune_vit(model, SMALL, {"mlp": 0.5, "importance": importance}, 10, *images)
    np.testing.assert_allclose(small.predict(images[0], verbose=0), before, atol=1e-6)
    assert small.get_layer("block0_mlp1").get_weights()[0].shape == (16, 16)
    # each block loses 16 neurons: 16 x (16 + 1) weights in mlp1 and 16 x 16 in mlp2, and the same MACs for each
    # of the 17 tokens (16 patches and the class token)
    assert record["parameters"]["before"] - record["parameters"]["after"] == 3 * (16 * 17 + 16 * 16)
    assert record["macs"]["before"] - record["macs"]["after"] == 3 * 17 * (16 * 16 + 16 * 16)
    assert record["spec"]["mlp_dim"] == 16 and record["spec"]["key_dim"] == 4


def test_silent_heads_and_blocks_are_the_ones_cut(images):
    model = _model(images)
    _silence(model, heads=(1, 3), blocks=(1,))
    before = model.predict(images[0], verbose=0)
    small, record = structured.prune_vit(model, SMALL, {"mlp": 0.0, "heads": 0.5, "blocks": 1,
                                                        "importance": "magnitude"}, 10, *images)
    np.testing.assert_allclose(small.predict(images[0], verbose=0), before, atol=1e-6)
    assert [k["block"] for k in record["kept_blocks"]] == [0, 2]
    assert all(k["heads"] == [0, 2] for k in record["kept_blocks"])
    assert small.get_layer("block0_attn").get_weights()[0].shape == (16, 2, 4)  # 2 heads of width 4 kept
    assert record["macs"]["after"] < 0.55 * record["macs"]["before"]  # a third of the blocks, half of the heads


def test_a_silenced_block_costs_nothing_in_the_data_driven_score(images):
    model = _model(images)
    _silence(model, blocks=(2,))
    scores = structured.activation_scores(model, SMALL["depth"], *images)
    assert scores["blocks"][2] == pytest.approx(0.0, abs=1e-9)
    assert np.all(scores["neurons"][2] == 0.0)


def test_small_ratios_stay_close_before_fine_tuning(images):
    model = _model(images)
    small, _ = structured.prune_vit(model, SMALL, {"mlp": 0.1}, 10, *images)
    diff = np.abs(small.predict(images[0], verbose=0) - model.predict(images[0], verbose=0)).max()
    assert 0 < diff < 0.1


def test_kept_counts_round_and_keep_one_of_each():
    assert structured.kept_counts({"heads": 2, "mlp_dim": 390, "depth": 5}, {"mlp": 0.5, "heads": 0.5}) == \
        {"mlp_dim": 195, "heads": 1, "depth": 5}
    assert structured.kept_counts({"heads": 3}, {"heads": 0.5})["heads"] == 2  # 1.5 heads: one removed
    assert structured.kept_counts({"heads": 2}, {"heads": 0.4})["heads"] == 2  # under one head's share
    assert structured.kept_counts({"mlp_dim": 4}, {"mlp": 0.9})["mlp_dim"] == 1


@pytest.mark.parametrize("options, words", [
    ({"mlp": 1.0}, "structured_pruning.mlp 1.0 must be at least 0 and below 1"),
    ({"blocks": 5}, "structured_pruning.blocks 5 must be below model.depth 5"),
    ({"importance": "random"}, "structured_pruning.importance 'random'; known: activation, magnitude"),
])
def test_bad_options_name_the_key(options, words):
    with pytest.raises(MobOptError, match=re.escape(words)):
        structured.kept_counts({}, options)


def test_an_unknown_architecture_and_the_wrong_keys_are_refused_by_name():
    with pytest.raises(MobOptError, match="model.name 'resnet' is not supported"):
        structured.check_supported({"name": "resnet"})
    with pytest.raises(MobOptError, match=r"x.channels 0.0 must be above 0 and below 1 for a mobilenetv2"):
        structured.check_supported({"name": "mobilenetv2"}, "x", {})
    with pytest.raises(MobOptError, match="x.channels applies to MobileNetV2 and ShuffleNetV2"):
        structured.check_supported({"name": "vit"}, "x", {"channels": 0.5})
    with pytest.raises(MobOptError, match="channels 1.0 must be above 0 and below 1"):
        from mobopt.optimize import channels

        channels.kept(64, 1.0)


CNNS = {"mobilenetv2": {"name": "mobilenetv2", "alpha": 0.35, "weights": "none", "stem": "cifar"},
        "shufflenetv2": {"name": "shufflenetv2", "width": 0.5, "stem": "cifar"}}


@pytest.mark.parametrize("name", list(CNNS))
@pytest.mark.parametrize("importance", ["activation", "magnitude"])
def test_channels_really_go_and_silent_channels_change_nothing(name, importance):
    """Shapes and MACs shrink; channels whose outputs are zero are the ones cut, and then the model computes exactly
    what it did (the kept weights copied, nothing outside a unit touched)."""
    import keras

    from mobopt.models import architectures
    from mobopt.optimize import channels

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (32, 32, 32, 3)).astype("float32")
    model = architectures.build(CNNS[name], (32, 32, 3), 10, x.astype("uint8"))
    found = channels.units(model)
    assert found and all(u["channels"] % 8 == 0 for u in found)
    silent = {}
    for u in found:  # zero half of each unit's producing filters and BN shift: those channels output exactly 0
        k = channels.kept(u["channels"], 0.5)
        gone = np.arange(k, u["channels"])
        producer = model.get_layer(u["producer"])
        w = producer.get_weights()
        w[0][..., gone] = 0.0
        producer.set_weights(w)
        bn = model.get_layer(u["followers"][0])
        g, b, mean, var = bn.get_weights()
        b[gone], mean[gone] = 0.0, 0.0
        bn.set_weights([g, b, mean, var])
        dw_bn = model.get_layer(u["followers"][-1])
        g, b, mean, var = dw_bn.get_weights()
        b[gone], mean[gone] = 0.0, 0.0
        dw_bn.set_weights([g, b, mean, var])
        silent[u["unit"]] = k
    pruned, record = channels.prune_channels(model, {"channels": 0.5, "importance": importance}, x)
    assert {r["unit"]: r["kept"] for r in record["kept_units"]} == silent
    assert record["macs"]["after"] < record["macs"]["before"]
    assert record["parameters"]["after"] == pruned.count_params() < model.count_params()
    for u in found:
        assert pruned.get_layer(u["producer"]).kernel.shape[-1] == silent[u["unit"]]
        assert pruned.get_layer(u["consumer"]).kernel.shape[2] == silent[u["unit"]]
    np.testing.assert_allclose(pruned(x, training=False), model(x, training=False), atol=1e-5)


@pytest.mark.slow
def test_cli_prunes_a_trained_cnn_and_fine_tunes_it(prepared_digits, tmp_path):
    """A ShuffleNetV2 trained on digits, pruned by the CLI and fine-tuned: a smaller model, the record in metrics.json."""
    spec = {"model": CNNS["shufflenetv2"], "train": {"epochs": 1, "batch_size": 64, "optimizer": "sgd",
                                                    "learning_rate": 0.05, "warmup_epochs": 0, "threads": 2}}
    src = tmp_path / "src"
    mobopt_cli("train", "--experiment", "s", "--data", prepared_digits, "--out", src, "--spec", json.dumps(spec),
               "--seed", 1)
    pruned = {**spec, "structured_pruning": {"channels": 0.5, "importance": "activation", "calibration_samples": 128}}
    mobopt_cli("train", "--experiment", "p", "--data", prepared_digits, "--out", tmp_path / "p", "--spec",
               json.dumps(pruned), "--source", src / "model.keras", "--seed", 1)
    metrics = json.loads((tmp_path / "p/metrics.json").read_text())
    start = metrics["start"]
    assert start["method"] == "channels" and start["macs"]["after"] < start["macs"]["before"]
    assert metrics["parameters"] == start["parameters"]["after"] < start["parameters"]["before"]


def test_cli_prunes_a_trained_model_and_fine_tunes_it(trained_tiny, prepared_digits, tmp_path):
    """The tiny digits ViT with half its MLP neurons and one of its two heads gone, fine-tuned for 5 epochs, by the
    train command as the workflow runs it; it keeps its accuracy within 5 points (measured: see the assertion)."""
    spec = {"model": TINY_SPEC["model"],
            "train": {"epochs": 5, "batch_size": 64, "learning_rate": 0.0005, "warmup_epochs": 0, "threads": 2},
            "structured_pruning": {"mlp": 0.5, "heads": 0.5, "importance": "activation", "calibration_samples": 256}}
    out = tmp_path / "pruned"
    mobopt_cli("train", "--experiment", "tiny_pruned", "--data", prepared_digits, "--out", out, "--spec",
               json.dumps(spec), "--seed", 1, "--source", trained_tiny / "model.keras")
    metrics = json.loads((out / "metrics.json").read_text())
    source = json.loads((trained_tiny / "metrics.json").read_text())
    assert metrics["spec"]["model"]["mlp_dim"] == 48 and metrics["spec"]["model"]["heads"] == 1
    assert metrics["spec"]["model"]["key_dim"] == 24
    assert metrics["spec"]["structured_pruning"]["source_model"] == TINY_SPEC["model"]
    assert metrics["parameters"] == metrics["start"]["parameters"]["after"] < source["parameters"]
    assert metrics["start"]["macs"]["after"] < 0.75 * metrics["start"]["macs"]["before"]
    for name in ("source", "pruned"):
        folder = trained_tiny if name == "source" else out
        mobopt_cli("evaluate", "--model", folder / "model.keras", "--data", prepared_digits, "--out",
                   tmp_path / f"{name}.json")
    acc = {n: json.loads((tmp_path / f"{n}.json").read_text())["accuracy"] for n in ("source", "pruned")}
    assert acc["pruned"] >= acc["source"] - 0.05, acc


def test_an_interrupted_fine_tune_resumes_with_its_record(trained_tiny, prepared_digits, tmp_path):
    """Killed after the first fine-tune epoch, the rerun resumes from the checkpoint (no second surgery) and
    still records what was kept."""
    import keras

    from mobopt.optimize.structured import train_pruned

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    spec = {"model": TINY_SPEC["model"], "train": {"epochs": 2, "batch_size": 64, "warmup_epochs": 0, "threads": 2},
            "structured_pruning": {"mlp": 0.25, "importance": "magnitude"}}
    out = tmp_path / "pruned"
    source = str(trained_tiny / "model.keras")
    with pytest.raises(KeyboardInterrupt):
        train_pruned(prepared_digits, out, "tiny_pruned", spec, 1, source, callbacks=[Stop()])
    assert (out / ".checkpoint" / "start.json").exists() and not (out / "metrics.json").exists()
    metrics = train_pruned(prepared_digits, out, "tiny_pruned", spec, 1, source)
    assert metrics["resumed_from_epoch"] == 1 and metrics["start"]["spec"]["mlp_dim"] == 72
    assert len(metrics["start"]["kept_blocks"]) == 2


def test_a_missing_source_model_says_which(prepared_digits, tmp_path):
    from mobopt.optimize.structured import train_pruned

    with pytest.raises(MobOptError, match="nothing.keras: the source model of experiments.x.structured_pruning"):
        train_pruned(prepared_digits, tmp_path, "x", {"model": TINY_SPEC["model"]}, 1, str(tmp_path / "nothing.keras"))
