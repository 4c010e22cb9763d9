"""The second study's CNNs (ShuffleNetV2, MobileNetV2 from scratch) and the MAC/parameter counter.

Every model here is built and counted by :mod:`mobopt.models.cost`; the counts
are compared with the published ones.  Tolerance 2 %: papers print parameters
to three significant figures (1.37M, 0.35M) and MACs to two or three (146M,
45M, 10.9M), and their counting tools differ in small things (whether
pooling or the classifier's bias are counted); a wrong width, stride or
repeat count moves a figure by far more than that (one ShuffleNet unit fewer
is about 3 % of the MACs, the ImageNet stem at 32 px about 90 %).
Parameters are compared as PyTorch counts them, the models' trainable
weights (Keras also counts BatchNorm's moving statistics).
"""

from fractions import Fraction

import numpy as np
import pytest
import yaml
from conftest import REPO

from mobopt import MobOptError

TOLERANCE = 0.02

#: megvii-model/ShuffleNet-Series (ShuffleNetV2 README), 224x224, 1000 classes: params, "FLOPs" (multiply-adds).
SHUFFLENETV2_IMAGENET = {0.5: (1.37e6, 41e6), 1.0: (2.28e6, 146e6), 1.5: (3.50e6, 299e6), 2.0: (7.39e6, 591e6)}
#: chenyaofo/pytorch-cifar-models README, CIFAR-10 (32x32, 10 classes): params, MAdds.
CIFAR_ANCHORS = [({"name": "shufflenetv2", "width": 0.5}, 0.35e6, 10.9e6),
                 ({"name": "shufflenetv2", "width": 1.0}, 1.26e6, 45e6),
                 ({"name": "mobilenetv2", "alpha": 1.0, "weights": None}, 2.24e6, 88e6)]


def build(options, shape=(32, 32, 3), classes=10):
    from mobopt.models import architectures

    return architectures.build(options, shape, classes)


def totals(model):
    from mobopt.models import cost

    return cost.summarize(cost.count(model))["total"]


def close(measured, published):
    return abs(measured - published) <= TOLERANCE * published


@pytest.mark.parametrize("width", sorted(SHUFFLENETV2_IMAGENET))
def test_shufflenetv2_imagenet_matches_the_published_counts(width):
    model = build({"name": "shufflenetv2", "width": width, "stem": "imagenet"}, (224, 224, 3), 1000)
    t = totals(model)
    params, macs = SHUFFLENETV2_IMAGENET[width]
    assert close(t["trainable_params"], params), (t, params)
    assert close(t["macs"], macs), (t, macs)
    assert t["params"] == model.count_params()
    assert model.get_layer("conv5").output.shape[1:3] == (7, 7)
    assert sum(layer.name.endswith("_shuffle") for layer in model.layers) == 16  # one per unit, 4 + 8 + 4


@pytest.mark.parametrize("options,params,macs", CIFAR_ANCHORS, ids=["shufflenetv2_0.5", "shufflenetv2_1.0", "mobilenetv2_1.0"])
def test_cifar_models_match_the_published_counts(options, params, macs):
    """chenyaofo/pytorch-cifar-models' CIFAR stems: ShuffleNetV2's first conv at stride 1 and no max pool;
    MobileNetV2's first conv and its 24-channel blocks at stride 1.  ``stem: auto`` picks them at 32 px."""
    model = build(options)
    t = totals(model)
    assert close(t["trainable_params"], params), (t, params)
    assert close(t["macs"], macs), (t, macs)
    last = "conv5" if options["name"] == "shufflenetv2" else "Conv_1"
    assert model.get_layer(last).output.shape[1:3] == (4, 4)


def test_our_mobilenetv2_is_keras_network():
    """With the ImageNet stem and 1000 classes, the from-scratch MobileNetV2 is keras.applications' network:
    3,538,984 parameters, the same layers with weights in the same order with the same shapes, the same MACs
    (300.8 M; Sandler et al. print 300 M)."""
    import keras

    from mobopt.models import cost

    ours = build({"name": "mobilenetv2", "weights": None, "stem": "imagenet"}, (224, 224, 3), 1000)
    theirs = keras.applications.MobileNetV2(weights=None, classes=1000)
    assert ours.count_params() == theirs.count_params() == 3_538_984

    def weighted(model):
        return [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers if layer.weights]

    assert [shapes for _, shapes in weighted(ours)] == [shapes for _, shapes in weighted(theirs)]
    assert [name for name, _ in weighted(ours)][:-1] == [name for name, _ in weighted(theirs)][:-1]  # classifier / predictions
    assert totals(ours)["macs"] == cost.summarize(cost.count(theirs))["total"]["macs"]
    assert close(totals(ours)["macs"], 300e6)


def test_stem_auto_follows_the_input_size():
    for options, last in (({"name": "shufflenetv2", "width": 0.5}, "conv5"),
                          ({"name": "mobilenetv2", "alpha": 0.35, "weights": "none"}, "Conv_1")):
        small, large = build(options, (32, 32, 3)), build(options, (96, 96, 3))
        assert small.get_layer(last).output.shape[1:3] == (4, 4)  # cifar stem: 8x downsampling
        assert large.get_layer(last).output.shape[1:3] == (3, 3)  # imagenet stem: 32x
    names = [layer.name for layer in build({"name": "shufflenetv2", "width": 0.5}, (64, 64, 3)).layers]
    assert "stem_pool" not in names
    assert "stem_pool" in [layer.name for layer in build({"name": "shufflenetv2", "width": 0.5}, (65, 65, 3)).layers]


def test_channel_shuffle_is_the_reference_permutation():
    """Output channel j*g + i is input channel i*(C/g) + j (ShuffleNet's reshape-transpose-reshape)."""
    from mobopt.models.cnns import ChannelShuffle

    c = 12
    x = np.broadcast_to(np.arange(c, dtype="float32"), (2, 3, 5, c)).copy()
    x[1] += 100  # batch items stay apart
    out = np.asarray(ChannelShuffle(2)(x))
    reference = np.arange(c).reshape(2, c // 2).T.ravel()  # [0, 6, 1, 7, ...]
    np.testing.assert_array_equal(out, x[..., reference])
    assert list(reference[:4]) == [0, 6, 1, 7]


def test_no_channel_shuffle_keeps_the_parameters_but_changes_the_output():
    import keras

    keras.utils.set_random_seed(0)
    shuffled = build({"name": "shufflenetv2", "width": 0.5})
    plain = build({"name": "shufflenetv2", "width": 0.5, "channel_shuffle": False})
    assert plain.count_params() == shuffled.count_params()
    assert totals(plain)["macs"] == totals(shuffled)["macs"]
    assert not any(layer.name.endswith("_shuffle") for layer in plain.layers)
    plain.set_weights(shuffled.get_weights())  # same weights, in the same order
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("float32")

    def features(model):
        return keras.Model(model.input, model.get_layer("conv5_relu").output).predict(x, verbose=0)

    a, b = features(shuffled), features(plain)
    assert np.abs(a - b).max() > 1e-3 * np.abs(a).max()


def test_standard_convolutions_instead_of_depthwise_separable():
    """``depthwise_separable: false`` replaces each block's depthwise 3x3 + projection 1x1 by one standard 3x3
    conv of the same output channels: per block the MACs grow by exactly 9*Cout / (9 + Cout), the closed form,
    and nothing else in the network changes."""
    from mobopt.models import cost

    separable = build({"name": "mobilenetv2", "weights": None})
    standard = build({"name": "mobilenetv2", "weights": None, "depthwise_separable": False})
    sep = {c.name: c for c in cost.count(separable)}
    std = {c.name: c for c in cost.count(standard)}
    prefixes = ["expanded_conv_"] + [f"block_{i}_" for i in range(1, 17)]
    for prefix in prefixes:
        pair = sep[prefix + "depthwise"].macs + sep[prefix + "project"].macs
        out_channels = separable.get_layer(prefix + "project").kernel.shape[-1]
        assert std[prefix + "conv"].kind == "standard conv"
        assert Fraction(std[prefix + "conv"].macs, pair) == Fraction(9 * out_channels, 9 + out_channels), prefix
    replaced = {p + s for p in prefixes for s in ("depthwise", "project")}
    unchanged = sum(c.macs for name, c in sep.items() if name not in replaced)
    assert unchanged == sum(c.macs for name, c in std.items() if not name.endswith("_conv"))
    ratio = totals(standard)["macs"] / totals(separable)["macs"]
    assert 4 < ratio < 9  # below the blocks' 5-9x: the expansions and the head are unchanged
    assert standard.get_layer("Conv_1").output.shape == separable.get_layer("Conv_1").output.shape


def test_bad_options_are_one_line_naming_the_key_and_the_choices():
    from mobopt.models import architectures

    cases = [({"name": "shufflenetv2", "width": 0.75}, r"model\.width 0\.75 .*0\.5, 1\.0, 1\.5, 2\.0"),
             ({"name": "shufflenetv2", "stem": "big"}, r"model\.stem 'big'.*auto, cifar, imagenet"),
             ({"name": "mobilenetv2", "weights": None, "stem": "tiny"}, r"model\.stem 'tiny'.*auto, cifar, imagenet"),
             ({"name": "shufflenet"}, r"unknown model\.name 'shufflenet'; known: convnet, mobilenetv2, shufflenetv2, vit"),
             ({"name": "mobilenetv2", "stem": "cifar"}, r"model\.stem: cifar .*model\.weights: none"),
             ({"name": "mobilenetv2", "depthwise_separable": False}, r"model\.depthwise_separable: false .*weights: none"),
             ({"name": "convnet", "pooling": "max"}, r"model\.pooling 'max': choose flatten or avg"),
             ({"name": "convnet", "widths": []}, r"model\.widths \[\]: give one positive channel count per stage"),
             ({"name": "convnet", "widths": [8] * 7}, r"model\.widths has 7 stages: 6 max pools shrink the 32x32 input")]
    for options, message in cases:
        with pytest.raises(MobOptError, match=message) as err:
            architectures.build(options, (32, 32, 3), 10)
        assert "\n" not in str(err.value)


def test_scratch_models_need_no_weight_files():
    from mobopt.models import pretrained

    assert pretrained.weight_files({"name": "mobilenetv2", "weights": None}, (32, 32, 3)) == []
    assert pretrained.weight_files({"name": "mobilenetv2", "weights": "none"}, (224, 224, 3)) == []
    assert pretrained.weight_files({"name": "shufflenetv2", "width": 2.0}, (224, 224, 3)) == []


def test_schema_defaults_are_the_builders_defaults():
    from mobopt.models import architectures, cnns

    defs = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["$defs"]

    def defaults(name):
        return {k: p["default"] for k, p in defs[name]["properties"].items()}

    assert defaults("shufflenetv2") == architectures.SHUFFLENETV2_DEFAULTS
    assert defaults("mobilenetv2") == architectures.MOBILENETV2_DEFAULTS
    assert defaults("convnet") == architectures.CONVNET_DEFAULTS
    assert defs["shufflenetv2"]["properties"]["width"]["enum"] == list(cnns.SHUFFLENETV2_CHANNELS)
    assert defs["shufflenetv2"]["properties"]["stem"]["enum"] == defs["mobilenetv2"]["properties"]["stem"]["enum"] \
        == list(cnns.STEMS)


def _config_with(models):
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    base = next(iter(cfg["experiments"].values()))
    cfg["experiments"] = {name: {**base, "model": model} for name, model in models.items()}
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return cfg


def test_the_schema_takes_the_new_options_and_refuses_bad_ones():
    from mobopt.workflow import config as workflow_config

    cfg = _config_with({"shuffle": {"name": "shufflenetv2", "width": 0.5, "channel_shuffle": False},
                        "scratch": {"name": "mobilenetv2", "weights": None, "stem": "cifar", "depthwise_separable": False}})
    assert cfg["experiments"]["shuffle"]["model"] == {"name": "shufflenetv2", "width": 0.5, "stem": "auto",
                                                      "channel_shuffle": False, "dropout": 0.0}
    bad = {**cfg, "experiments": {"b": {**cfg["experiments"]["shuffle"],
                                        "model": {"name": "shufflenetv2", "width": 0.75, "alpha": 1.0}}}}
    assert workflow_config.problems(bad, str(REPO / "workflow/schemas/config.schema.yaml")) == [
        "config key experiments.b.model.alpha: unknown key; known: name, width, stem, channel_shuffle, dropout",
        "config key experiments.b.model.width: 0.75 is not one of 0.5, 1.0, 1.5, 2.0"]


def test_new_mobilenetv2_options_at_their_defaults_do_not_retrain_existing_models():
    """The schema now fills in stem and depthwise_separable for every MobileNetV2 experiment; the train rule's
    params must stay as they were unless they are set to something else (Snakemake reruns on changed params)."""
    from mobopt.models import architectures
    from mobopt.workflow import plan

    cfg = _config_with({"paper": {"name": "mobilenetv2", "alpha": 0.35},
                        "ablation": {"name": "mobilenetv2", "weights": None, "depthwise_separable": False}})
    assert cfg["experiments"]["paper"]["model"]["stem"] == "auto"
    specs = plan.Plan(cfg)
    assert specs.train_spec("paper")["model"] == {"name": "mobilenetv2", "alpha": 0.35, "weights": "imagenet",
                                                  "include_top": False, "dropout": 0.2}
    assert specs.train_spec("ablation")["model"]["depthwise_separable"] is False
    for name, late in plan.LATE_MODEL_KEYS.items():
        assert late == {k: getattr(architectures, f"{name.upper()}_DEFAULTS")[k] for k in late}


# ------------------------------------------------------------------------------------------------ the counter


def test_separable_convolution_is_8_7_times_cheaper():
    """The study's figure from real layers through the counter: (Cin*Cout*K^2) / (Cin*K^2 + Cin*Cout) for
    K=3, Cin=128, Cout=256 is 294,912 / 33,920 = 8.69..., printed as 8.7."""
    from mobopt.models import cost

    k, c_in, c_out = 3, 128, 256
    r = cost.separable_vs_standard(k, c_in, c_out)
    assert r["standard_macs"] == c_in * c_out * k * k == 294_912
    assert (r["depthwise_macs"], r["pointwise_macs"], r["separable_macs"]) == (c_in * k * k, c_in * c_out, 33_920)
    assert r["ratio"] == Fraction(c_in * c_out * k * k, c_in * k * k + c_in * c_out)
    assert round(float(r["ratio"]), 1) == 8.7
    bigger = cost.separable_vs_standard(k, c_in, c_out, size=7)
    assert bigger["standard_macs"] == 49 * r["standard_macs"] and bigger["ratio"] == r["ratio"]


def test_counter_on_the_vit_counts_tokens_and_attention():
    """Dense layers on token sequences count once per token; attention adds its projections and the
    Q K^T and A V matmuls: per block 4 * T * D^2 + 2 * T^2 * D (T = 50 tokens, D = 130)."""
    from mobopt.models import cost

    model = build({"name": "vit"}, (28, 28, 1), 10)
    costs = {c.name: c for c in cost.count(model)}
    t, d = 50, 130
    assert costs["block0_attn"].kind == "attention"
    assert costs["block0_attn"].macs == 4 * t * d * d + 2 * t * t * d
    assert costs["block0_mlp1"].macs == t * d * 390
    assert costs["patch_embed"].kind == "standard conv" and costs["patch_embed"].macs == 49 * 16 * d
    assert costs["classifier"].macs == 64 * 10
    summary = cost.summarize(list(costs.values()))
    assert summary["total"]["params"] == model.count_params() == 870_937
    assert summary["total"]["trainable_params"] == 870_934  # the input Normalization's mean, variance, count
    assert summary["attention"]["macs"] == 5 * (4 * t * d * d + 2 * t * t * d)


def test_counter_walks_nested_models_and_refuses_what_it_cannot_count():
    import keras

    from mobopt.models import cost

    inputs = keras.Input((32, 32, 3))
    inner = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, include_top=False,
                                           pooling="avg", name="backbone")
    nested = keras.Model(inputs, keras.layers.Dense(10, name="classifier")(inner(inputs)))
    flat = build({"name": "mobilenetv2", "alpha": 0.35, "weights": None, "stem": "imagenet"})
    a, b = totals(nested), totals(flat)
    assert a["params"] == nested.count_params() == b["params"] and a["macs"] == b["macs"]
    report = cost.report(flat)
    assert report["by_kind"]["depthwise conv"]["layers"] == 17
    assert sum(row["macs"] for row in report["layers"]) == report["by_kind"]["total"]["macs"]
    x = keras.Input((8, 8, 4))
    odd = keras.Model(x, keras.layers.SeparableConv2D(8, 3, name="sep")(x))
    with pytest.raises(MobOptError, match="layer sep: cannot count MACs of a SeparableConv2D"):
        cost.count(odd)


# ------------------------------------------------------------------------------------ conversion and training


def test_shufflenetv2_converts_to_a_float32_tflite(tmp_path):
    """Saved, loaded (the split and shuffle layers are registered), converted: only builtin ops, the shuffle
    as RESHAPE / TRANSPOSE, and the .tflite computes what Keras computes."""
    from mobopt import litert
    from mobopt.litert import flatbuffer
    from mobopt.models import architectures
    from mobopt.optimize import graphopt

    model = build({"name": "shufflenetv2", "width": 0.5})
    model.save(tmp_path / "model.keras")
    loaded = architectures.load(tmp_path / "model.keras")
    data = graphopt.float_tflite(loaded)
    fb = flatbuffer.read(data)
    ops = [flatbuffer.op_name(fb, op) for op in fb.subgraphs[0].operators]
    assert ops.count("TRANSPOSE") == 16 and ops.count("DEPTHWISE_CONV_2D") == 19
    assert not [op for op in ops if op in ("CUSTOM", "?") or op.startswith("FLEX")]
    it = litert.interpreter(data)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.float32 and list(inp["shape"]) == [1, 32, 32, 3]
    x = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3)).astype("float32")
    it.set_tensor(inp["index"], x)
    it.invoke()
    np.testing.assert_allclose(it.get_tensor(out["index"]), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("options", [{"name": "shufflenetv2", "width": 0.5},
                                     {"name": "mobilenetv2", "alpha": 0.35, "weights": None, "depthwise_separable": False}],
                         ids=["shufflenetv2", "mobilenetv2"])
def test_a_few_steps_under_mixed_bfloat16(options):
    """The new models train under train.precision mixed_bfloat16 (the classifier stays float32) and come back
    as float32 models for conversion."""
    import keras

    from mobopt.models import architectures, train

    keras.utils.set_random_seed(0)
    with train.precision_policy(keras, "mixed_bfloat16"):
        model = build(options)
    assert model.get_layer("stem_conv" if options["name"] == "shufflenetv2" else "Conv1").compute_dtype == "bfloat16"
    assert model.get_layer("classifier").compute_dtype == "float32"
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (8, 32, 32, 3)).astype("float32"), rng.integers(0, 10, 8)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    copy = architectures.float32_model(model)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert copy.predict(x[:2], verbose=0).dtype == np.float32


@pytest.mark.parametrize("name", ["mobilenetv2", "shufflenetv2"])
def test_batchnorm_statistics_follow_training_within_an_epoch(name):
    """Momentum 0.9 for the from-scratch CNNs: with Keras' MobileNetV2 default of 0.999, one epoch of CIFAR-10
    (~390 steps) leaves two thirds of the moving statistics at their initial values and inference scores at chance."""
    import keras

    from mobopt.models import architectures

    options = {"name": name, "weights": "none", "alpha": 0.35} if name == "mobilenetv2" else {"name": name, "width": 0.5}
    model = architectures.build(options, (32, 32, 3), 10)
    norms = [layer for layer in architectures.all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and {layer.momentum for layer in norms} == {0.9}
    # 0.9 ** 390 is about 1e-18 of the initial statistics left after an epoch; 0.999 ** 390 is 0.68


# ------------------------------------------------------------------------------------ the small CNN teacher


def test_convnet_counts_and_shapes():
    """The default convnet on 28x28x1: three 3x3 conv stages (28 -> 14 -> 7 px), 156,074 weights and 7.5 M
    multiply-adds, counted by hand below (no bias before BatchNorm; the classifier reads the 7x7x128 map)."""
    model = build({"name": "convnet"}, (28, 28, 1))
    convs = 28 * 28 * 9 * 1 * 32 + 14 * 14 * 9 * 32 * 64 + 7 * 7 * 9 * 64 * 128
    assert totals(model)["macs"] == convs + 7 * 7 * 128 * 10 == 7_513_856
    assert model.count_params() == 9 * (32 + 32 * 64 + 64 * 128) + 4 * (32 + 64 + 128) + 6272 * 10 + 10 == 156_074
    assert model.get_layer("stage2_relu0").output.shape[1:] == (7, 7, 128)
    avg = build({"name": "convnet", "widths": [16, 32], "convs_per_stage": 2, "pooling": "avg"}, (28, 28, 1))
    assert [layer.name for layer in avg.layers if "conv" in layer.name] == \
        ["stage0_conv0", "stage0_conv1", "stage1_conv0", "stage1_conv1"]
    assert avg.get_layer("avg_pool").output.shape[1:] == (32,)


def test_convnet_converts_to_builtin_ops_and_matches_keras(tmp_path):
    """Saved, loaded and converted like the other models: only builtin ops, and the .tflite computes what
    Keras computes."""
    from mobopt import litert
    from mobopt.litert import flatbuffer
    from mobopt.models import architectures
    from mobopt.optimize import graphopt

    model = build({"name": "convnet"}, (28, 28, 1))
    model.save(tmp_path / "model.keras")
    loaded = architectures.load(tmp_path / "model.keras")
    data = graphopt.float_tflite(loaded)
    fb = flatbuffer.read(data)
    ops = [flatbuffer.op_name(fb, op) for op in fb.subgraphs[0].operators]
    assert ops.count("CONV_2D") == 3 and ops.count("MAX_POOL_2D") == 2
    assert not [op for op in ops if op in ("CUSTOM", "?") or op.startswith("FLEX")]
    it = litert.interpreter(data)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    x = np.random.default_rng(1).integers(0, 256, (1, 28, 28, 1)).astype("float32")
    it.set_tensor(inp["index"], x)
    it.invoke()
    np.testing.assert_allclose(it.get_tensor(out["index"]), model.predict(x, verbose=0), atol=1e-5)
