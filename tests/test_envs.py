"""conda environments in envs/ pin exactly what pyproject.toml pins."""

import re
import tomllib

import pytest
import yaml
from conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^;\s]+)$")


def _pins(requirements):
    out = {}
    for req in requirements:
        m = PIN.match(req.strip())
        assert m, f"not an exact pin: {req!r}"
        out[m.group(1).lower()] = m.group(3)
    return out


PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT_PINS = _pins(PYPROJECT["project"]["dependencies"])
ENVS = sorted((REPO / "envs").glob("*.yaml"))


def test_pyproject_pins_everything_exactly():
    assert PROJECT_PINS["tensorflow"] == "2.21.0"
    assert PROJECT_PINS["ai-edge-litert"] == "2.3.0"
    assert PROJECT_PINS["snakemake"] == "9.27.1"
    _pins(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert _pins(PYPROJECT["project"]["optional-dependencies"]["slurm"])["snakemake-executor-plugin-slurm"] == "2.8.0"


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_agree_with_pyproject(env):
    spec = yaml.safe_load(env.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    for name, version in _pins(pip).items():
        assert name in PROJECT_PINS, f"{env.name}: {name} is not a dependency in pyproject.toml"
        assert PROJECT_PINS[name] == version, f"{env.name}: {name}=={version} but pyproject pins {PROJECT_PINS[name]}"


def test_benchmark_env_has_no_tensorflow():
    spec = yaml.safe_load((REPO / "envs/litert.yaml").read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    assert not any(p.startswith("tensorflow") for p in pip)


def test_every_rule_env_exists():
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        for ref in re.findall(r'"\.\./\.\./(envs/[^"]+)"', smk.read_text()):
            assert (REPO / ref).is_file(), f"{smk.name} names {ref}, which does not exist"
