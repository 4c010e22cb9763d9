"""The command-line surface the workflow and users rely on: names, help, hidden commands, exit codes, no TensorFlow."""

from __future__ import annotations

import argparse
import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mobopt
from mobopt import MobOptError
from mobopt.cli import main, parser

PUBLIC = {
    "download", "prepare", "fetch-weights", "digits-idx", "train",
    "convert", "prune", "sensitivity", "select-precision", "peak-models", "evaluate",
    "bench", "fetch-benchmark-model", "cpu-peak", "setup-arm-emulation",
    "table1", "table2", "paper-table2", "paper-vs-reproduced", "second-study-table", "accuracy-table", "op-profile-table",
    "variants-table", "cost-table", "model-cost",
    "training-curves", "evaluation-figure", "latency-figure", "size-figure", "pareto-figure", "roofline-figure",
    "sensitivity-figure", "summary", "check-config", "publish-results", "search", "isa-table",
}
HIDDEN = {"bench-run", "op-profile"}


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """``python -m mobopt`` in a fresh process, as the workflow runs it."""
    return subprocess.run([sys.executable, "-m", "mobopt", *map(str, args)], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _subparsers(p: argparse.ArgumentParser) -> argparse._SubParsersAction:
    (action,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return action


def _flag(command: str, flag: str) -> argparse.Action:
    sub = _subparsers(parser()).choices[command]
    (action,) = [a for a in sub._actions if flag in a.option_strings]
    return action


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"mobopt {mobopt.__version__}\n"


def test_commands_are_the_public_and_hidden_ones():
    sub = _subparsers(parser())
    assert set(sub.choices) == PUBLIC | HIDDEN
    assert {a.dest for a in sub._choices_actions} == PUBLIC


def test_workflow_calls_only_existing_commands():
    """Each rule's shell command names a command of this CLI (renames must reach the rules)."""
    rules = Path(__file__).resolve().parents[1] / "workflow" / "rules"
    called = {m for f in rules.glob("*.smk") for m in re.findall(r"python -m mobopt ([a-z][a-z0-9-]*)", f.read_text())}
    assert called, "no `python -m mobopt` call found in workflow/rules"
    assert called <= PUBLIC | HIDDEN, f"unknown commands: {sorted(called - PUBLIC - HIDDEN)}"


def test_every_command_and_flag_has_help():
    p = parser()
    assert p.prog == "mobopt"
    sub = _subparsers(p)
    for listed in sub._choices_actions:
        assert listed.help and listed.help.strip(), f"{listed.dest}: no help in the command list"
    missing = []
    for name, command in sub.choices.items():
        if not (command.description or "").strip():
            missing.append(name)
        for action in command._actions:
            if not action.help or action.help is argparse.SUPPRESS or not action.help.strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
        command.format_help()  # every %-placeholder in the help strings expands
    assert not missing, f"no help: {missing}"


def test_hidden_commands_are_absent_from_help_but_callable():
    text = parser().format_help()
    listed = set(re.findall(r"^ {4}(\S+)", text, flags=re.MULTILINE))
    assert listed == PUBLIC
    for name in HIDDEN:
        assert not re.search(rf"(?<![\w-]){name}(?![\w-])", text), f"{name} shows in mobopt --help"
    for name in HIDDEN:
        proc = run_cli(name, "--help")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"usage: mobopt {name} ")


@pytest.mark.parametrize(
    ("command", "flag", "module", "attr"),
    [
        ("download", "--dataset", "mobopt.datasets", "DATASETS"),
        ("prepare", "--dataset", "mobopt.datasets", "DATASETS"),
        ("convert", "--variant", "mobopt.optimize.variants", "VARIANTS"),
        ("bench", "--device", "mobopt.bench.devices", "DEVICES"),
        ("bench-run", "--device", "mobopt.bench.devices", "DEVICES"),
        ("op-profile", "--device", "mobopt.bench.devices", "DEVICES"),
        ("cpu-peak", "--device", "mobopt.bench.devices", "DEVICES"),
    ],
)
def test_registry_flags_offer_the_registry_names(command, flag, module, attr):
    import importlib

    registry = getattr(importlib.import_module(module), attr)
    assert list(_flag(command, flag).choices) == list(registry)


def test_unknown_registry_name_is_a_usage_error_with_the_registrys_message(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench-run", "--model", "m.tflite", "--device", "pixel9", "--out", "x.json"])
    assert exc.value.code == 2
    assert "unknown device 'pixel9'; known: host_1t, host_2t, android" in capsys.readouterr().err


def test_mobopt_error_is_one_line_and_exit_1(tmp_path):
    proc = run_cli("bench", "--model", "float32", "--out", f"float32={tmp_path / 'r.json'}", "--device", "host_1t")
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "--model 'float32': expected VARIANT=PATH" in lines[0]


def test_missing_input_file_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "missing.keras"
    proc = run_cli("evaluate", "--model", missing, "--data", tmp_path, "--out", tmp_path / "e.json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [f"error: {missing}: No such file or directory"]
    assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--model", "m.keras"],  # required flags missing
        ["table1", "--entries", "{not json", "--out-csv", "a.csv", "--out-md", "a.md"],
        ["no-such-command"],
        [],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: mobopt" in capsys.readouterr().err


def _failing(monkeypatch, exc: BaseException) -> None:
    """Make the table1 command raise ``exc`` (commands are looked up when the parser is built)."""
    from mobopt.cli import report

    def fail(_args):
        raise exc

    monkeypatch.setattr(report, "cmd_table1", fail)


TABLE1 = ["table1", "--entries", "[]", "--out-csv", "a.csv", "--out-md", "a.md"]


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (MobOptError("results/x.json: missing key 'bench'"), "error: results/x.json: missing key 'bench'"),
        (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/ro/a.csv"), f"error: /ro/a.csv: {os.strerror(errno.EACCES)}"),
        (IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), "out"), f"error: out: {os.strerror(errno.EISDIR)}"),
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "big.csv"), f"error: big.csv: {os.strerror(errno.ENOSPC)}"),
        (OSError(errno.EROFS, os.strerror(errno.EROFS), "a.md"), f"error: a.md: {os.strerror(errno.EROFS)}"),
    ],
)
def test_runtime_errors_are_one_line_and_exit_1(monkeypatch, capsys, exc, line):
    _failing(monkeypatch, exc)
    assert main(TABLE1) == 1
    assert capsys.readouterr().err.splitlines() == [line]


def test_other_os_errors_keep_their_traceback(monkeypatch):
    _failing(monkeypatch, OSError(errno.EIO, os.strerror(errno.EIO), "disk"))
    with pytest.raises(OSError):
        main(TABLE1)


def test_interrupt_exits_130(monkeypatch, capsys):
    _failing(monkeypatch, KeyboardInterrupt())
    assert main(TABLE1) == 130
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_cli_never_imports_tensorflow():
    """Importing the CLI, building the parser and rendering every help stays TF-free (bench-run starts per measurement)."""
    code = (
        "import sys, mobopt.cli\n"
        "assert 'tensorflow' not in sys.modules\n"
        "p = mobopt.cli.parser()\n"
        "for sub in p._subparsers._group_actions[0].choices.values(): sub.format_help()\n"
        "p.parse_args(['bench-run', '--model', 'm.tflite', '--device', 'host_1t', '--out', 'x.json'])\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-c", "import mobopt.cli, sys; assert 'tensorflow' not in sys.modules"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
