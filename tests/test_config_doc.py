"""config/README.md is generated from the config schema and kept up to date; every key is described."""

import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

from mobopt.workflow import config_doc

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())

#: The JSON-schema keywords the config schema uses; anything else in a key's schema is a typo, or a
#: flow mapping `{description: a, b}` whose comma cut the description short and made `b` a key.
KEYWORDS = {"$schema", "$defs", "$ref", "description", "type", "properties", "additionalProperties", "required",
            "unevaluatedProperties", "allOf", "if", "then", "const", "enum", "default", "minimum", "maximum",
            "exclusiveMinimum", "exclusiveMaximum", "pattern", "items", "minItems", "uniqueItems", "minProperties",
            "propertyNames"}


def test_config_readme_is_up_to_date():
    expected = config_doc.render(SCHEMA)
    actual = (REPO / "config/README.md").read_text()
    assert actual == expected, f"config/README.md is stale; regenerate it: {config_doc.COMMAND}"


def _schemas(node, path="#"):
    """Every schema object in the document (not the maps of names under properties/$defs)."""
    yield path, node
    for key, sub in node.items():
        if key in ("properties", "$defs"):
            for name, child in sub.items():
                yield from _schemas(child, f"{path}/{key}/{name}")
        elif key in ("allOf",):
            for i, child in enumerate(sub):
                yield from _schemas(child, f"{path}/{key}/{i}")
        elif key in ("additionalProperties", "items", "if", "then", "propertyNames") and isinstance(sub, dict):
            yield from _schemas(sub, f"{path}/{key}")


def test_schema_uses_only_known_keywords():
    for path, node in _schemas(SCHEMA):
        unknown = set(node) - KEYWORDS
        assert not unknown, f"{path}: {sorted(unknown)} are not schema keywords (a comma in an unquoted description?)"


def test_every_key_is_described():
    rows = config_doc.rows(config_doc.Schema(SCHEMA), SCHEMA)
    assert len(rows) > 150
    undescribed = [path for path, _, _, text in rows if not re.sub(r"^Only with [^.]*\.", "", text).strip()]
    assert not undescribed, f"keys without a description in the schema: {undescribed}"


def test_rows_cover_refs_conditions_and_maps():
    rows = {path: (kind, default, text) for path, kind, default, text in config_doc.rows(config_doc.Schema(SCHEMA), SCHEMA)}
    assert rows["seed"][1] == "required"
    assert rows["datasets.mnist.validation_fraction"] == (
        "number, 0 ≤ x < 1", "`0.1`", "Share of each class of the training pool held out for validation.")
    assert rows["datasets.asl_alphabet.image_size"][:2] == ("integer ≥ 8", "`224`")  # through allOf + $ref
    assert rows["experiments.<name>.model.patch_size"][2].startswith("Only with name: vit.")
    assert rows["experiments.<name>.variants"][0] == "array of string (at least 1, no repeats)"
    assert rows["datasets.imagenet_subset.resolution"][:2] == ('one of full, "320", "160"', '`"320"`')
    assert rows["graph_opt.pruning.learning_rate"][1] == "`1.0e-05`"
    assert rows["pretrained.sha256.<name>"][0] == "string matching `^[0-9a-fA-F]{64}$`"
    assert rows["benchmark.android.serial"][0] == "string or null"


@pytest.mark.parametrize("v", [None, True, 0, 4, 2.0, 1e-05, 1e-6, 0.35, "url", "320", "yes", "null", "", "a: b",
                               [0, 1, 2], ["https://example.org/x/"], {}, {"a": 1}])
def test_values_read_back_as_written(v):
    """A default copied from the table into a config file means what the schema's default means."""
    assert yaml.safe_load(config_doc.value(v)) == v


def test_check_flag_and_tf_free(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text("# old\n")
    code = ("import sys; from mobopt.workflow import config_doc as c; rc = c.main(['--check', sys.argv[1]]); "
            "assert 'tensorflow' not in sys.modules and 'snakemake' not in sys.modules; sys.exit(rc)")
    run = subprocess.run([sys.executable, "-c", code, str(stale)], capture_output=True, text=True)
    assert run.returncode == 1 and "regenerate it" in run.stderr, run.stderr
    run = subprocess.run([sys.executable, "-c", code, str(REPO / "config/README.md")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
