"""Training learns real handwriting, is bit-reproducible, and resumes after being killed."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
from conftest import TINY_SPEC, mobopt_cli


def test_learns_digits(trained_tiny, prepared_digits, tmp_path):
    """Learning check on real data: sklearn's digits as IDX, ViT test accuracy >= 0.90."""
    mobopt_cli("evaluate", "--model", trained_tiny / "model.keras", "--data", prepared_digits, "--out", tmp_path / "e.json")
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["accuracy"] >= 0.90, result["accuracy"]
    hist = pd.read_csv(trained_tiny / "history.csv")
    assert list(hist.columns) == ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
    assert hist["epoch"].tolist() == list(range(1, 31))
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0] / 10
    metrics = json.loads((trained_tiny / "metrics.json").read_text())
    assert metrics["parameters"] > 0 and metrics["provenance"]["seed"] == 1
    assert metrics["device"]["device"] in ("/CPU:0", "/GPU:0") and isinstance(metrics["device"]["gpu_visible"], bool)
    assert not (trained_tiny / ".checkpoint").exists()


def _train_and_convert(root, prepared, spec):
    mobopt_cli("train", "--experiment", "det", "--data", prepared, "--out", root, "--spec", json.dumps(spec), "--seed", 7)
    for variant in ("float32", "int8"):
        mobopt_cli("convert", "--model", root / "model.keras", "--data", prepared, "--variant", variant,
                   "--out", root / f"{variant}.tflite", "--info", root / f"{variant}.json", "--seed", 7,
                   "--options", json.dumps({"representative_samples": 50}))


#: Dropout on, as in the paper config: its random masks must be reproducible and survive a resume.
DROPOUT_MODEL = {**TINY_SPEC["model"], "dropout": 0.1}


def test_same_seed_gives_byte_identical_tflite(tmp_path, prepared_digits):
    spec = {"model": DROPOUT_MODEL, "train": {**TINY_SPEC["train"], "epochs": 2}}
    _train_and_convert(tmp_path / "a", prepared_digits, spec)
    _train_and_convert(tmp_path / "b", prepared_digits, spec)
    for variant in ("float32", "int8"):
        a, b = (tmp_path / d / f"{variant}.tflite" for d in "ab")
        assert a.read_bytes() == b.read_bytes(), f"{variant}.tflite differs between two runs with seed 7"
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a/history.csv").drop(columns="seconds"),
        pd.read_csv(tmp_path / "b/history.csv").drop(columns="seconds"),
    )


def test_resumes_after_kill(tmp_path, prepared_digits):
    """SIGKILL mid-training, rerun: it continues from the checkpoint and ends where an uninterrupted run ends
    (per-epoch data order from (seed, epoch), augmentation from (seed, epoch, batch), and optimizer and dropout
    RNG state in the checkpoint, compiled with the smoothed loss)."""
    augmentation = {"horizontal_flip": True, "max_shift": 2, "random_erasing": 0.25}  # drawn at random: a resume redraws
    spec = {"model": DROPOUT_MODEL, "train": {**TINY_SPEC["train"], "epochs": 6, "augmentation": augmentation,
                                              "label_smoothing": 0.1}}  # a custom loss the checkpoint must load
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "mobopt", "train", "--experiment", "r", "--data", str(prepared_digits),
           "--out", str(out), "--spec", json.dumps(spec), "--seed", "3"]
    state = out / ".checkpoint" / "state.json"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if state.exists() and json.loads(state.read_text())["epoch"] >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = json.loads(state.read_text())["epoch"]
    assert 2 <= done < 6
    assert not (out / "model.keras").exists()  # nothing under a final name

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming r from the checkpoint after epoch {done}" in rerun.stderr
    hist = pd.read_csv(out / "history.csv")
    assert hist["epoch"].tolist() == list(range(1, 7))
    assert json.loads((out / "metrics.json").read_text())["resumed_from_epoch"] == done
    assert not (out / ".checkpoint").exists()

    full = tmp_path / "uninterrupted"
    mobopt_cli(*cmd[3:-6], "--out", full, "--spec", json.dumps(spec), "--seed", "3")
    pd.testing.assert_frame_equal(pd.read_csv(full / "history.csv").drop(columns="seconds"),
                                  hist.drop(columns="seconds"), rtol=1e-5)
