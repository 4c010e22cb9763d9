"""conda environments in envs/ pin exactly what pyproject.toml pins, and hold what their rules import.

The slow test builds each environment from its file alone (a virtualenv with its pip pins: every
pin is a pip package, so no conda is needed) and runs in it what the rules using it run.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import envcheck
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
#: Where test_env_runs_its_rules keeps the virtualenvs it builds, when set: one per env file content,
#: reused by later runs. Unset, they are built in pytest's temporary folder each run (2.5 minutes for
#: all four with an empty pip cache, 1 minute with a warm one; the four take 3 GB).
ENV_CACHE = Path(os.environ["MOBOPT_ENV_CACHE"]) if os.environ.get("MOBOPT_ENV_CACHE") else None


def test_pyproject_pins_everything_exactly():
    assert PROJECT_PINS["tensorflow"] == "2.21.0"
    assert PROJECT_PINS["ai-edge-litert"] == "2.3.0"
    assert PROJECT_PINS["snakemake"] == "9.27.1"
    _pins(PYPROJECT["project"]["optional-dependencies"]["test"])
    assert _pins(PYPROJECT["project"]["optional-dependencies"]["slurm"])["snakemake-executor-plugin-slurm"] == "2.8.0"


def test_gpu_extra_is_the_pinned_tensorflow_with_cuda():
    (req,) = PYPROJECT["project"]["optional-dependencies"]["gpu"]
    m = PIN.match(req)
    assert m and m.group(1) == "tensorflow" and m.group(2) == "[and-cuda]", req
    assert m.group(3) == PROJECT_PINS["tensorflow"]


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


# ------------------------------------------------- each environment really runs its rules

RULE = re.compile(r"^[ \t]*(?:rule|checkpoint)\b[^:\n]*:", re.M)


def _env_names(value: str, smk_text: str) -> set[str]:
    """The envs a rule's ``conda:`` names: a path, a variable holding one, or an input function returning some."""
    if value.startswith('"'):
        return {Path(value.strip('"')).name}
    assign = re.search(rf"^{re.escape(value)}\s*=\s*\"([^\"]+)\"", smk_text, re.M)
    if assign:
        return {Path(assign.group(1)).name}
    func = re.search(rf"^def {re.escape(value)}\(.*?(?=^\S)", smk_text, re.M | re.S)
    assert func, f"cannot tell which environment {value!r} names"
    return {Path(p).name for p in re.findall(r'"\.\./\.\./envs/([^"]+)"', func.group(0))}


def rule_commands() -> dict[str, set[str]]:
    """env file name -> the ``mobopt`` commands rules run in it, read from workflow/rules/*.smk."""
    rules = sorted((REPO / "workflow/rules").glob("*.smk"))
    everything = "\n".join(p.read_text() for p in rules)
    out: dict[str, set[str]] = {}
    for smk in rules:
        text = smk.read_text()
        starts = [m.start() for m in RULE.finditer(text)] + [len(text)]
        for a, b in zip(starts, starts[1:], strict=False):
            block = text[a:b]
            commands = set(re.findall(r"python -m mobopt ([\w-]+)", block))
            if not commands:
                continue
            conda = re.search(r"^\s+conda:\s*\n\s*(\S+)", block, re.M)
            assert conda, f"{smk.name}: a rule running {sorted(commands)} has no conda environment"
            for env in _env_names(conda.group(1), everything):
                out.setdefault(env, set()).update(commands)
    return out


def test_envcheck_knows_every_rule_command():
    """tests/envcheck.py checks, per environment, the commands the rules run there: no more, no fewer."""
    found = rule_commands()
    assert set(found) == {p.name for p in ENVS}
    for env, commands in found.items():
        # bench-run and op-profile: started by `bench` in fresh processes, never by a rule
        assert envcheck.ENV_COMMANDS[env] - {"bench-run", "op-profile"} == commands, env


def _pip_pins(env: Path) -> list[str]:
    spec = yaml.safe_load(env.read_text())
    return next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))


def _index_reachable(python: Path, tmp: Path) -> bool:
    """Whether pip can fetch a (tiny, pinned) package: the environments cannot be built offline."""
    probe = subprocess.run([str(python), "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(tmp),
                            f"tabulate=={PROJECT_PINS['tabulate']}"], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PIP_RETRIES": "1", "PIP_DEFAULT_TIMEOUT": "20"})
    return probe.returncode == 0


def built_env(env: Path, tmp: Path) -> Path:
    """A virtualenv holding only ``env``'s pip pins (conda is not needed: every pin is a pip package).

    With $MOBOPT_ENV_CACHE set it is kept there as <env>-<hash of the file and this Python> and reused;
    editing the env file builds a new one and removes the old.
    """
    key = hashlib.sha256(env.read_bytes() + f"{sys.version_info[:2]}{sys.platform}".encode()).hexdigest()[:16]
    venv = (ENV_CACHE or tmp) / f"{env.stem}-{key}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    if not _index_reachable(Path(sys.executable), tmp):
        pytest.skip("pip cannot reach a package index: the environments cannot be built offline")
    for old in venv.parent.glob(f"{env.stem}-*"):  # built from an earlier version of the file
        shutil.rmtree(old, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *_pip_pins(env)],
                             capture_output=True, text=True, timeout=1800)
    if install.returncode:
        shutil.rmtree(venv, ignore_errors=True)
        raise AssertionError(f"{env.name}: pip install of its pins failed:\n{install.stderr[-4000:]}")
    (venv / ".complete").write_text(" ".join(_pip_pins(env)) + "\n")
    return python


@pytest.fixture(scope="session")
def env_fixtures(tmp_path_factory, digits_idx, prepared_digits) -> dict[str, str]:
    from conftest import make_imagenette_tgz

    tgz = make_imagenette_tgz(tmp_path_factory.mktemp("inet") / "imagenette2-160.tgz", size=(40, 30))
    return {"digits_idx": str(digits_idx), "prepared_digits": str(prepared_digits), "imagenette_tgz": str(tgz)}


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_runs_its_rules(env, tmp_path, env_fixtures):
    """`--sdm conda` in miniature: build the environment from its file alone, then run there (with src on
    PYTHONPATH, as the workflow does) the imports and commands of the rules that use it (tests/envcheck.py)."""
    t0 = time.perf_counter()
    python = built_env(env, tmp_path)
    built = time.perf_counter() - t0
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    run_env.update(PYTHONPATH=str(REPO / "src"), PATH=f"{python.parent}:{os.environ.get('PATH', '')}",
                   TF_CPP_MIN_LOG_LEVEL="2")
    check = subprocess.run([str(python), str(REPO / "tests/envcheck.py"), env.name, str(tmp_path / "work"),
                            json.dumps(env_fixtures)], capture_output=True, text=True, timeout=1800, env=run_env,
                           cwd=tmp_path)
    assert check.returncode == 0, f"{env.name}:\n{check.stdout[-2000:]}\n{check.stderr[-6000:]}"
    print(f"{env.name}: environment ready in {built:.0f} s, checks {time.perf_counter() - t0 - built:.0f} s; "
          + check.stdout.strip())
