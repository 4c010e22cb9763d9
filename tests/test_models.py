"""The paper's ViT and the model registry."""

import pytest
import yaml
from conftest import REPO


def test_paper_vit_has_870937_parameters():
    from mobopt.models import architectures

    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    model = architectures.build(cfg["experiments"]["vit_mnist"]["model"], (28, 28, 1), 10)
    assert model.count_params() == 870_937


def test_paper_vit_structure():
    from mobopt.models import architectures

    model = architectures.build({"name": "vit"}, (28, 28, 1), 10)
    names = [layer.name for layer in model.layers]
    assert sum(n.endswith("_attn") for n in names) == 5
    assert model.get_layer("block0_attn")._num_heads == 2
    assert model.get_layer("patch_embed").kernel.shape == (4, 4, 1, 130)
    assert model.get_layer("tokens").pos.shape == (1, 50, 130)  # 49 patches + class token
    assert model.get_layer("block0_mlp1").activation.__name__ == "gelu"
    assert model.output_shape == (None, 10)


def test_bad_model_options_are_clear():
    from mobopt import MobOptError
    from mobopt.models import architectures

    with pytest.raises(MobOptError, match="patch_size 5 does not divide the input size 28x28"):
        architectures.build({"name": "vit", "patch_size": 5}, (28, 28, 1), 10)
    with pytest.raises(MobOptError, match="unknown model.name 'resnet'"):
        architectures.build({"name": "resnet"}, (28, 28, 1), 10)


def test_schema_model_names_match_registry():
    from mobopt.models import architectures

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    exp = schema["properties"]["experiments"]["additionalProperties"]
    model = exp["properties"]["model"]
    assert sorted(model["properties"]["name"]["enum"]) == sorted(architectures.MODELS)
    # every architecture has its own option schema, selected by name
    assert sorted(rule["if"]["properties"]["name"]["const"] for rule in model["allOf"]) == sorted(architectures.MODELS)
    assert all(name in schema["$defs"] for name in architectures.MODELS)
