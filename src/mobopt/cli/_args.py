"""Argparse pieces the stage modules share, so every command spells its flags, help and errors the same way."""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from mobopt import MobOptError


def json_arg(text: str) -> Any:
    """Argparse type for a JSON flag (``--options``, ``--entries``, ...): a bad value is a usage error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc


def pairs(values: list[str], flag: str) -> dict[str, str]:
    """``["float32=a.tflite", ...]`` -> ``{"float32": "a.tflite", ...}``."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise MobOptError(f"{flag} {item!r}: expected VARIANT=PATH")
        out[key] = value
    return out


def require(*paths: str | os.PathLike | None) -> None:
    """Fail on a missing input before the heavy imports: one line naming the file, not a TensorFlow traceback."""
    for path in paths:
        if path is not None and not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))


class Registry:
    """A registry's names as argparse ``choices`` and ``type``, imported on first use.

    Building the parser must stay cheap and TF-free (``bench-run`` starts once per
    measurement), so nothing is imported until a value is checked or help is shown.
    An unknown name fails with the registry's own message (``unknown device 'x'; known: ...``).
    """

    def __init__(self, module: str, attr: str) -> None:
        self.module, self.attr = module, attr

    def _module(self):
        return importlib.import_module(self.module)

    def __iter__(self) -> Iterator[str]:
        return iter(list(getattr(self._module(), self.attr)))

    def __contains__(self, name: object) -> bool:
        return name in getattr(self._module(), self.attr)

    def __len__(self) -> int:
        return len(getattr(self._module(), self.attr))

    def __repr__(self) -> str:
        return f"Registry({self.module}.{self.attr})"

    def __call__(self, name: str) -> str:
        try:
            self._module().get(name)
        except MobOptError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return name


DATASETS = Registry("mobopt.datasets", "DATASETS")
VARIANTS = Registry("mobopt.optimize.variants", "VARIANTS")
DEVICES = Registry("mobopt.bench.devices", "DEVICES")


def add_registry(s: argparse.ArgumentParser, flag: str, registry: Registry, help: str) -> None:
    """A required flag naming a registry entry; an explicit metavar keeps the registry unimported until needed."""
    s.add_argument(flag, required=True, type=registry, choices=registry, metavar=flag.lstrip("-").upper(),
                   help=f"{help} (one of: %(choices)s)")


def add_command(sub, name: str, func: Callable[[argparse.Namespace], Any], help: str, *,
                hidden: bool = False) -> argparse.ArgumentParser:
    """One subcommand.  ``hidden``: no ``help=``, so argparse leaves it out of ``mobopt --help`` (it still runs)."""
    s = sub.add_parser(name, description=help, **({} if hidden else {"help": help}))
    s.set_defaults(func=func)
    return s


def add_table(sub, name: str, func, help: str, *, tex: str | None = None, entries: bool = True) -> argparse.ArgumentParser:
    """A table command: result entries in, CSV + Markdown (+ LaTeX: ``tex`` "optional" or "required") out."""
    s = add_command(sub, name, func, help)
    if entries:
        add_entries(s)
    s.add_argument("--out-csv", required=True, help="CSV file to write")
    s.add_argument("--out-md", required=True, help="Markdown file to write")
    if tex:
        s.add_argument("--out-tex", required=tex == "required", default=None,
                       help="LaTeX file to write" + ("" if tex == "required" else " (optional)"))
    return s


def add_figure(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    """A figure command: PNG (for reading) and SVG (for papers) out."""
    s = add_command(sub, name, func, help)
    s.add_argument("--png", required=True, help="PNG file to write (for reading)")
    s.add_argument("--svg", required=True, help="SVG file to write (for papers)")
    return s


def add_entries(s: argparse.ArgumentParser) -> None:
    s.add_argument("--entries", type=json_arg, required=True,
                   help="JSON list of result entries: one object per model/variant with the paths of its result files")


def add_options(s: argparse.ArgumentParser, what: str) -> None:
    s.add_argument("--options", type=json_arg, default={}, help=f"{what}, as JSON (default: {{}})")


def add_seed(s: argparse.ArgumentParser, what: str = "random seed") -> None:
    s.add_argument("--seed", type=int, default=0, help=f"{what} (default: %(default)s)")
