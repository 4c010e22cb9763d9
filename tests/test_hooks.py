"""What the end of a run prints (src/mobopt/workflow/hooks.py): each failed job's one-line cause, where the results are."""

import json
import os
import time

import yaml
from conftest import REPO

from mobopt.workflow import config as workflow_config
from mobopt.workflow import hooks
from mobopt.workflow.plan import Plan


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_cause_is_the_last_error_line_of_the_log(tmp_path):
    log = _write(tmp_path / "train.log", "INFO starting\nerror: first\nmore\nerror: the cause\n  detail\n\n")
    assert hooks.last_error(log) == "error: the cause"
    crashed = _write(tmp_path / "crash.log", "Traceback (most recent call last):\n  File x\nMemoryError\n")
    assert hooks.last_error(crashed) == "MemoryError"  # no error: line, the log's last line
    assert hooks.last_error(_write(tmp_path / "empty.log", "\n")) is None
    assert hooks.last_error(tmp_path / "missing.log") is None
    long = _write(tmp_path / "long.log", "error: " + "x" * 1000)
    assert len(hooks.last_error(long)) == hooks.CAUSE_CHARS


def test_failure_lines_name_job_cause_log_and_what_to_do(tmp_path):
    log = _write(tmp_path / "logs/train/vit_mnist.log", "error: model/data shape mismatch\n")
    lines = hooks.failure_lines([("train", {"experiment": "vit_mnist"}, [str(log)]),
                                 ("cpu_peak", {}, [])], since=0)
    assert lines[0] == "2 job(s) failed:"
    assert lines[1] == f"  train (experiment=vit_mnist): error: model/data shape mismatch  [log: {log}]"
    assert lines[2] == "  cpu_peak: no log; see the error above"
    text = "\n".join(lines)
    assert "--unlock" in text and "make report" in text and hooks.TROUBLESHOOTING in text
    assert (REPO / hooks.TROUBLESHOOTING).is_file()


def test_without_snakemakes_list_the_fresh_logs_with_an_error_line_are_the_failures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = _write(tmp_path / "logs/download/mnist.log", "error: an old failure\n")
    os.utime(old, (1, 1))
    start = time.time() - 1
    _write(tmp_path / "logs/train/vit_mnist.log", "error: this run's failure\n")
    _write(tmp_path / "logs/report/table2.log", "done\n")
    lines = hooks.failure_lines(None, since=start)
    assert lines[:2] == ["1 job(s) failed:", "  train: error: this run's failure  [log: logs/train/vit_mnist.log]"]


def test_success_lines_list_unsupported_variants_and_skipped_devices(tmp_path):
    cfg = yaml.safe_load((REPO / "config/demo.yaml").read_text())
    cfg["benchmark"]["devices"] = ["host_1t", "android"]
    cfg["experiments"]["vit_mnist"]["variants"].append("int16x8")
    assert workflow_config.problems(cfg, REPO / workflow_config.SCHEMA) == []
    plan = Plan(cfg, availability=lambda device, options: (False, "no phone attached over adb"))
    _write(tmp_path / "results/tflite/vit_mnist/int16x8.json",
           json.dumps({"supported": False, "unsupported_stage": "converter", "reason": "int16x8 is not supported\nmore"}))
    _write(tmp_path / "results/tflite/vit_mnist/int8.json", json.dumps({"supported": True}))
    lines = hooks.success_lines(plan, tmp_path)
    assert lines[0].startswith("Outputs are under results/")
    assert "  vit_mnist int16x8 (converter): int16x8 is not supported" in lines
    assert lines[-1] == "Skipped device (android): no phone attached over adb"
    _write(tmp_path / "reports/summary.html", "<html>")
    assert hooks.success_lines(plan, tmp_path)[0].startswith("Results: reports/summary.html")


def test_the_start_line_names_the_runs_log():
    assert hooks.start_line(["/w/.snakemake/log/a.snakemake.log"]).endswith(": /w/.snakemake/log/a.snakemake.log")
    assert "logs/<stage>" in hooks.start_line(None)
