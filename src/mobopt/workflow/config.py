"""The workflow's config: the paper config, the files layered over it, and every problem as one line.

Snakemake merges config files in order: the Snakefile loads the paper config
(``config/config.yaml``) first, then every ``--configfile`` deep-merges over it
key by key, then ``--config KEY=VALUE``.  A file that is a study of its own
(``config/demo.yaml``) says ``replace_workflow_config: true``, the in-file form of
Snakemake's ``--replace-workflow-config`` flag: the paper's experiments are not
added to it.

:func:`problems` checks the merged config against the JSON schema, setting its
defaults as ``snakemake.utils.validate`` does, and returns every problem as one
line that names the file(s) and the key path, e.g.
``my.yaml: config key experiments.vit_mnist.train.epochs: -1 is less than the minimum of 0``,
instead of the first error followed by the whole schema and config.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from snakemake.exceptions import WorkflowError

from mobopt import MobOptError

#: The paper reproduction; every other config file is layered over it unless it says REPLACE_KEY.
BASE = "config/config.yaml"
#: Top-level key of a standalone config (named as Snakemake's --replace-workflow-config flag).
REPLACE_KEY = "replace_workflow_config"
SCHEMA = "workflow/schemas/config.schema.yaml"
#: Where every key is described, for the last line of an error.
KEYS_HELP = "every key is described in workflow/schemas/config.schema.yaml"
#: Longest value quoted in a problem line.
QUOTE_CHARS = 60


class InvalidConfig(MobOptError, WorkflowError):
    """A config file or value the workflow cannot use; one line per problem.

    A WorkflowError too, so Snakemake prints the lines without a traceback.
    """


# ---------------------------------------------------------------------- files


def base_path(basedir: str | os.PathLike) -> str:
    """The paper config the others are layered over.

    ``config/config.yaml`` of the working directory when there is one (Snakemake's
    ``configfile:`` convention: a deployed workflow keeps its config beside its
    results), else the workflow's own (a run with ``-d elsewhere``).
    """
    return BASE if os.path.isfile(BASE) else str(Path(basedir) / BASE)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """A config file's keys; a missing, empty or unparsable file is one line naming it (and the line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidConfig(f"config file {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidConfig(f"config file {path}: cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "unparsable"
        if exc.context and context is not None and context is not mark:
            what += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
        raise InvalidConfig(f"config file {path}{where}: not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise InvalidConfig(f"config file {path}: not valid YAML: {exc}") from None
    if data is None:
        raise InvalidConfig(f"config file {path} is empty: it needs keys such as `experiments:` "
                            f"(see config/config.yaml)")
    if not isinstance(data, dict):
        raise InvalidConfig(f"config file {path}: expected `key: value` lines at the top level, "
                            f"found a {type(data).__name__}")
    return data


def compose(files: Sequence[str | os.PathLike], base: str | os.PathLike = BASE) -> tuple[dict[str, Any], list[str]]:
    """The config ``snakemake --configfile FILES`` builds, and the files it was built from in merge order.

    The same merge as Snakemake's (``snakemake.utils.update_config``): the paper config
    ``base`` first unless the files say ``replace_workflow_config: true``, then each file.
    """
    from snakemake.utils import update_config

    over: dict[str, Any] = {}
    for f in files:
        update_config(over, load(f))
    if replaces_workflow_config(over):
        return over, [str(f) for f in files]
    config = load(base)
    update_config(config, over)  # the paper's key order, as keep_order gives the workflow
    return config, [str(base), *map(str, files)]


def keep_order(config: dict[str, Any], base: Mapping[str, Any]) -> None:
    """Put ``config``'s keys in the paper config's order, in place (new keys after them, in their own order).

    Snakemake merges the paper config into the --configfile's keys, so an overlay naming only
    mobilenetv2_asl would make it the first experiment: the first row of every table.
    """
    from snakemake.utils import update_config

    ordered: dict[str, Any] = {}
    update_config(ordered, dict(base))
    update_config(ordered, config)
    config.clear()
    config.update(ordered)


def replaces_workflow_config(config: Mapping[str, Any], flag: bool = False) -> bool:
    """Whether the config is a study of its own, not an overlay on the paper's.

    It is when it says ``replace_workflow_config: true`` or the run has Snakemake's
    ``--replace-workflow-config`` flag (``flag``).
    """
    if flag:
        return True
    value = config.get(REPLACE_KEY, False)
    if isinstance(value, str):  # `--config replace_workflow_config=true` arrives as a string
        return value.strip().lower() in {"true", "yes", "on", "1"}
    return bool(value)


# ---------------------------------------------------------------------- schema


def _schema(schema_path: str | os.PathLike) -> dict[str, Any]:
    return yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))


def _validator(schema: dict[str, Any]):
    """Draft 2020-12, filling in each property's default as it goes (as ``snakemake.utils.validate(set_default=True)``)."""
    from jsonschema import Draft202012Validator, validators

    properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from properties(validator, props, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def _get(tree: Any, path: Sequence[Any]) -> tuple[bool, Any]:
    for key in path:
        if isinstance(tree, dict) and key in tree:
            tree = tree[key]
        elif isinstance(tree, list) and isinstance(key, int) and 0 <= key < len(tree):
            tree = tree[key]
        else:
            return False, None
    return True, tree


def _set(tree: Any, path: Sequence[Any], value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


_TYPES = {"integer": int, "number": (int, float), "boolean": bool, "null": type(None), "array": list, "object": dict}


def _fits(value: Any, types: str | list[str]) -> bool:
    for t in [types] if isinstance(types, str) else types:
        if t in ("integer", "number") and isinstance(value, bool):
            continue
        if t in _TYPES and isinstance(value, _TYPES[t]):
            return True
    return False


def _typed(text: str) -> Any:
    """What a string reads as: a number as Python reads it ('2e-3', which YAML 1.1 leaves a string), else YAML."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def coerce_overrides(config: dict[str, Any], overrides: Mapping[str, Any] | None, schema: dict[str, Any]) -> None:
    """Give ``--config`` values the types the schema asks for.

    Snakemake reads a nested ``--config 'benchmark={iterations: 10}'`` with YAML's base
    loader, so every nested value arrives as a string ('10'). Where such a string sits in
    ``config`` and the schema wants a number, boolean or null (or one of an enum's
    values), it is replaced by its YAML reading (10); strings the schema wants stay strings.
    """
    if not overrides:
        return
    validator = _validator(schema)
    for _ in range(100):  # each pass fixes at least one value; errors inside fixed values show up next pass
        changed = False
        for error in validator.iter_errors(config):
            path = list(error.absolute_path)
            if not isinstance(error.instance, str) or error.validator not in ("type", "enum"):
                continue
            found, given = _get(overrides, path)
            if not found or given != error.instance:
                continue  # from a config file: reported as it is
            value = _typed(error.instance)
            ok = (_fits(value, error.validator_value) if error.validator == "type"
                  else value in error.validator_value and not isinstance(value, str))
            if ok:
                _set(config, path, value)
                changed = True
        if not changed:
            return


# ---------------------------------------------------------------------- problems as lines


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 5] + " ...'"


def _known_keys(schema: Any, root: dict[str, Any], instance: Any = None, depth: int = 0) -> list[str]:
    """Property names a (sub)schema allows ``instance``, through allOf, local $refs and the if-then that applies."""
    from jsonschema import Draft202012Validator

    if not isinstance(schema, dict) or depth > 8:
        return []
    keys = list(schema.get("properties", {}))
    if isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        found, sub = _get(root, schema["$ref"][2:].split("/"))
        keys += _known_keys(sub, root, instance, depth + 1) if found else []
    for sub in schema.get("allOf", []):
        keys += _known_keys(sub, root, instance, depth + 1)
    if "if" in schema:
        applies = Draft202012Validator({**schema["if"], "$defs": root.get("$defs", {})}).is_valid(instance)
        keys += _known_keys(schema.get("then" if applies else "else"), root, instance, depth + 1)
    return list(dict.fromkeys(keys))


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; known: {', '.join(known)}" if known else "unknown key"


def _unexpected(message: str) -> list[str]:
    """The keys in jsonschema's "... ('a', 'b' were unexpected)"."""
    m = re.search(r"\((.*) (?:was|were) unexpected\)", message)
    return [_typed(k) if k.startswith("'") else k for k in re.findall(r"'[^']*'", m.group(1))] if m else []


def _lines(error, root: dict[str, Any]) -> list[tuple[list[Any], str]]:
    """(key path, what is wrong) for one jsonschema error."""
    path = list(error.absolute_path)
    kind = error.validator
    if kind in ("additionalProperties", "unevaluatedProperties"):
        known = _known_keys(error.schema, root, error.instance)
        # a known key is "unevaluated" only because another error failed the branch that knows it: that one is reported
        return [([*path, key], _unknown(str(key), known)) for key in _unexpected(error.message) if key not in known]
    if kind == "required":
        return [([*path, key], "missing; this key is required") for key in error.validator_value
                if isinstance(error.instance, dict) and key not in error.instance and repr(key) in error.message]
    if "propertyNames" in error.schema_path:
        name = error.instance
        if kind == "enum":
            return [([*path, name], _unknown(str(name), [str(v) for v in error.validator_value]))]
        return [([*path, name], f"name {name!r} does not match {error.validator_value!r}")]
    if kind == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        what = f"{_quote(error.instance)} is not of type {' or '.join(map(str, types))}"
        if isinstance(error.instance, str) and _fits(_typed(error.instance), error.validator_value):
            what += " (remove the quotes around it)"
        return [(path, what)]
    if kind == "enum":
        return [(path, f"{_quote(error.instance)} is not one of {', '.join(map(str, error.validator_value))}")]
    message = error.message
    if len(message) > 3 * QUOTE_CHARS:
        message = message[: 3 * QUOTE_CHARS] + " ..."
    return [(path, message)]


def _source(path: list[Any], sources: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The file (or --config) the key came from: the last one that sets it, else the last that sets its parent."""
    for depth in range(len(path), -1, -1):
        having = [label for label, data in sources if _get(data, path[:depth])[0]]
        if having:
            return having[-1]
    return ""


def _label(path: str | os.PathLike) -> str:
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


def problems(config: dict[str, Any], schema_path: str | os.PathLike,
             files: Sequence[str | os.PathLike] = (), overrides: Mapping[str, Any] | None = None) -> list[str]:
    """Every way ``config`` breaks the schema, one line each; sets the schema's defaults in ``config``.

    ``files`` are the config files in merge order and ``overrides`` the ``--config`` values:
    they name where a bad key came from. ``--config`` strings become the numbers, booleans
    or nulls the schema asks for first (:func:`coerce_overrides`).
    """
    schema = _schema(schema_path)
    coerce_overrides(config, overrides, schema)
    errors = sorted(_validator(schema).iter_errors(config), key=lambda e: [str(k) for k in e.absolute_path])
    if not errors:
        return []
    sources: list[tuple[str, Mapping[str, Any]]] = []
    for f in files:
        try:
            sources.append((_label(f), load(f)))
        except InvalidConfig:
            continue
    if overrides:
        sources.append(("--config", overrides))
    out = []
    for error in errors:
        for path, what in _lines(error, schema):
            where = _source(path, sources)
            line = f"config key {_dotted(path)}: {what}"
            out.append(f"{where}: {line}" if where else line)
    return list(dict.fromkeys(out))


def validate(config: dict[str, Any], schema_path: str | os.PathLike,
             files: Sequence[str | os.PathLike] = (), overrides: Mapping[str, Any] | None = None) -> None:
    """:func:`problems`, raised as one :class:`InvalidConfig` (a WorkflowError) when there are any."""
    found = problems(config, schema_path, files, overrides)
    if found:
        raise InvalidConfig("\n".join([*found, f"({KEYS_HELP})"]))
