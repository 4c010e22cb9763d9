"""config/README.md, generated from the config schema: every key's path, type, default and description.

The schema (``workflow/schemas/config.schema.yaml``) is the one place a key is
described; this module turns it into the reference the Snakemake workflow
catalog asks for, so the two cannot drift (``tests/test_config_doc.py``
regenerates the file and compares).  Regenerate after editing the schema::

    python -m mobopt.workflow.config_doc > config/README.md

``--check`` compares instead of printing (exit status 1 when stale).  Plain
YAML walking: no TensorFlow, no Snakemake.

How the schema's constructs become rows: ``$ref`` is followed; ``allOf``
parts add their properties to the object's; an ``if``/``then`` on a
discriminating ``const`` (the model's ``name``) gives rows marked "only with
name: vit"; ``additionalProperties`` holding a schema (experiments, pinned
file hashes) gives a row for a key you choose, written ``<name>``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
README = REPO / "config" / "README.md"
COMMAND = "python -m mobopt.workflow.config_doc > config/README.md"

#: Hand-written; edit here, then regenerate (the rest of the file comes from the schema).
INTRO = """\
# Configuration

Three configs ship with the workflow:

- `config/config.yaml`: the paper (the rows of its Tables 1 and 2). A ViT trained on MNIST for
  25 epochs, MobileNetV2 scored as published on an ImageNet subset, and MobileNetV2 fine-tuned on
  ASL Alphabet at 224x224 for 100 epochs; each converted to six TFLite variants, evaluated, and
  benchmarked over 1200 iterations. The default when no `--configfile` is given. The ASL
  fine-tuning takes days on a CPU: use a GPU (docs/gpu.md), a cluster, or `cpu.yaml`.
- `config/cpu.yaml`: the paper's experiments sized for a CPU. The same three experiments, but
  MobileNetV2 on ASL is fine-tuned at 96x96 for 10 epochs (3 with the backbone frozen): hours
  instead of days.
- `config/demo.yaml`: the offline demo. scikit-learn's real handwritten digits written in
  MNIST's file format and a tiny ViT: every stage in a few minutes on 2 cores, no internet.
  Write the data first with `mobopt digits-idx data/demo/digits-idx` (`make demo` does both).

And a second study, ShuffleNetV2 against MobileNetV2 on CIFAR-10 with two ablations
(docs/experiments.md, "The second study"):

- `config/lightweight_cnns.yaml`: as published (full width, SGD, 100 epochs): for a GPU.
- `config/lightweight_cnns_cpu.yaml`: the same four experiments at half width for 3 epochs: about
  an hour of training on 2 cores.
- `config/lightweight_cnns_fashion_mnist.yaml`: an overlay on the CPU one that trains on
  Fashion-MNIST at 32x32x3 instead of CIFAR-10 (no download on Debian and Ubuntu).
- `config/lightweight_cnns_imagenet.yaml`: the study's ImageNet rows (ShuffleNetV2 against
  MobileNetV2 from scratch on your copy of ImageNet-1k, top-1 and top-5): for a GPU cluster.

Pass one with `--configfile`:

```bash
snakemake --cores 8 --configfile config/cpu.yaml
make reproduce CONFIG=config/cpu.yaml          # the same, after setting up the virtualenv
```

How a file given with `--configfile` combines with `config/config.yaml`, and how to write your
own: see docs/configuration.md. The config is checked against
`workflow/schemas/config.schema.yaml` when the workflow starts: an unknown or mistyped key, or a
value of the wrong type, stops the run with a message naming it; names of datasets, variants and
devices are checked against the package's registries.

## Every key

Generated from the schema by `{command}`;
a test fails when this file and the schema disagree. `<name>` stands for a key you choose (an
experiment's name, a file name). A key with a default may be left out; "required" keys may not.
"""

_BOUNDS = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))


class Schema:
    """The schema document, for resolving ``$ref`` (local ``#/...`` pointers only)."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """``node`` with its ``$ref`` followed (sibling keys of the ``$ref`` win)."""
        while "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref pointers are supported, not {ref!r}")
            target: Any = self.doc
            for part in ref[2:].split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def properties(self, node: dict[str, Any]) -> list[tuple[str, dict[str, Any], str | None]]:
        """``(key, schema, condition)`` of an object: its own properties, then those its ``allOf`` parts add,
        then those an ``if``/``then`` adds (condition ``"name: vit"``)."""
        node = self.resolve(node)
        out: list[tuple[str, dict[str, Any], str | None]] = []
        seen: set[str] = set()

        def add(props: dict[str, Any], condition: str | None) -> None:
            for key, sub in props.items():
                if condition is None and key in seen:
                    continue
                seen.add(key)
                out.append((key, sub, condition))

        add(node.get("properties", {}), None)
        for part in node.get("allOf", []):
            part = self.resolve(part)
            if "if" in part:
                then = self.resolve(part.get("then", {}))
                add({k: s for k, s, _ in self.properties(then)}, _condition(part["if"]))
            else:
                add({k: s for k, s, _ in self.properties(part)}, None)
        return out


def _condition(node: dict[str, Any]) -> str:
    parts = [f"{key}: {value(sub['const'])}" for key, sub in node.get("properties", {}).items() if "const" in sub]
    return ", ".join(parts) or "a condition"


def number(x: int | float) -> str:
    """As YAML reads it back: PyYAML takes ``1e-05`` for a string, ``1.0e-05`` for a float."""
    if isinstance(x, bool) or isinstance(x, int):
        return json.dumps(x)
    if math.isinf(x) or math.isnan(x):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(x, ".nan")
    text = repr(x)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}"
    return text


def value(v: Any) -> str:
    """A value as it is written in a config file (flow-style YAML); strings quoted only where YAML needs it."""
    if v is None:
        return "null"
    if isinstance(v, bool | int | float):
        return number(v)
    if isinstance(v, str):
        try:
            plain = yaml.safe_load(v) == v and "\n" not in v and not v.startswith(("'", '"'))
        except yaml.YAMLError:
            plain = False
        return v if plain and v else json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{value(k)}: {value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no YAML form for {v!r}")


def _bounds(node: dict[str, Any]) -> str:
    found = [(op, node[key]) for key, op in _BOUNDS if key in node]
    if not found:
        return ""
    if len(found) == 1:
        op, bound = found[0]
        return f" {op} {number(bound)}"
    (lo_op, lo), (hi_op, hi) = found[0], found[-1]
    flip = {"≥": "≤", ">": "<"}
    return f", {number(lo)} {flip[lo_op]} x {hi_op} {number(hi)}"


def type_of(schema: Schema, node: dict[str, Any]) -> str:
    """``integer ≥ 1``, ``one of url, path``, ``string or null``, ``array of string (at least 1)``..."""
    node = schema.resolve(node)
    if "enum" in node:
        return "one of " + ", ".join(value(v) for v in node["enum"])
    if "const" in node:
        return f"exactly {value(node['const'])}"
    kinds = node.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if not kinds:
        kinds = ["object"] if "properties" in node or "allOf" in node else []
    if not kinds:
        return "any"
    main = [k for k in kinds if k != "null"]
    text = " or ".join(main)
    if main == ["array"]:
        items = node.get("items")
        text = f"array of {type_of(schema, items)}" if items else "array"
        extras = []
        if node.get("minItems"):
            extras.append(f"at least {node['minItems']}")
        if node.get("uniqueItems"):
            extras.append("no repeats")
        if extras:
            text += f" ({', '.join(extras)})"
    elif main in (["integer"], ["number"]):
        text += _bounds(node)
    elif main == ["string"] and "pattern" in node:
        text += f" matching `{node['pattern']}`"
    elif main == ["object"]:
        names = node.get("propertyNames", {}).get("enum")
        if names:
            text += " with keys " + ", ".join(names)
    if "null" in kinds:
        text += " or null"
    return text


def _describe(node: dict[str, Any], condition: str | None) -> str:
    text = " ".join(str(node.get("description", "")).split())
    if condition:
        text = f"Only with {condition}. {text}".strip()
    return text


def _default(node: dict[str, Any], required: bool) -> str:
    if "default" in node:
        return f"`{value(node['default'])}`"
    return "required" if required else "–"


def rows(schema: Schema, node: dict[str, Any], path: str = "", required: bool = False,
         condition: str | None = None) -> list[tuple[str, str, str, str]]:
    """``(path, type, default, description)`` of ``node`` and every key below it, depth first."""
    node = schema.resolve(node)
    out = []
    if path:
        out.append((path, type_of(schema, node), _default(node, required), _describe(node, condition)))
    needed = set(node.get("required", []))
    for key, sub, cond in schema.properties(node):
        out += rows(schema, sub, f"{path}.{key}" if path else key, key in needed, cond)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out += rows(schema, extra, f"{path}.<name>" if path else "<name>", False, None)
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(doc: dict[str, Any]) -> str:
    """The whole of config/README.md: the intro, then one table per top-level key."""
    schema = Schema(doc)
    parts = [INTRO.format(command=COMMAND)]
    needed = set(doc.get("required", []))
    for key, sub, _ in schema.properties(doc):
        table = rows(schema, sub, key, key in needed)
        parts.append(f"\n### `{key}`\n\n| key | type | default | description |\n|---|---|---|---|\n")
        for path, kind, default, text in table:
            parts.append(f"| `{path}` | {_cell(kind)} | {_cell(default)} | {_cell(text)} |\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mobopt.workflow.config_doc", description=__doc__.splitlines()[0])
    p.add_argument("--schema", type=Path, default=SCHEMA, help="the config schema (default: %(default)s)")
    p.add_argument("--check", type=Path, nargs="?", const=README, metavar="README",
                   help="compare with this file (default: config/README.md) instead of printing; exit 1 when it is stale")
    args = p.parse_args(argv)
    text = render(yaml.safe_load(args.schema.read_text()))
    if args.check is None:
        sys.stdout.write(text)
        return 0
    if args.check.exists() and args.check.read_text() == text:
        return 0
    print(f"{args.check} is not what {args.schema} gives; regenerate it: {COMMAND}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
