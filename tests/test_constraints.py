"""constraints.txt pins the whole dependency tree, and agrees with pyproject.toml's direct pins."""

import re
import tomllib

from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;#]+)$")


def _name(name: str) -> str:
    """PEP 503 normalised: Jinja2 and jinja2, ruamel.yaml and ruamel-yaml are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_pins() -> dict[str, str]:
    reqs = list(PYPROJECT["dependencies"])
    for extra in PYPROJECT["optional-dependencies"].values():
        reqs += extra
    out = {}
    for req in reqs:
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^;\s]+)$", req.strip())
        assert m, f"pyproject.toml: not an exact pin: {req!r}"
        out[_name(m.group(1))] = m.group(3)
    return out


def _constraints() -> dict[str, str]:
    out: dict[str, str] = {}
    for n, raw in enumerate((REPO / "constraints.txt").read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, f"constraints.txt:{n}: not an exact pin: {raw!r}"
        name = _name(m.group(1))
        assert name not in out, f"constraints.txt:{n}: {name} is pinned twice"
        out[name] = m.group(2)
    return out


def test_every_pyproject_pin_is_in_the_constraints_with_the_same_version():
    pins, constraints = _pyproject_pins(), _constraints()
    missing = sorted(set(pins) - set(constraints))
    assert not missing, f"constraints.txt lacks {missing}; regenerate it (its header says how)"
    differ = {n: (v, constraints[n]) for n, v in pins.items() if constraints[n] != v}
    assert not differ, f"pyproject.toml and constraints.txt pin different versions (pyproject, constraints): {differ}"


def test_constraints_pin_the_tree_not_the_project_or_installers():
    constraints = _constraints()
    assert len(constraints) > 100  # the transitive closure, not just the direct pins
    assert not {"mobopt", "pip", "setuptools"} & set(constraints)


def test_makefile_installs_with_the_constraints():
    makefile = (REPO / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and "-e " in line]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
