"""Faults a user meets, each answered by one line that names the file and the cause: a truncated model, a
model whose input does not fit the data, a full disk, a read-only results folder."""

import errno
import json

import numpy as np
import pytest
from conftest import mobopt_cli

from mobopt.common import atomic


def _one_error_line(proc, *words):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert lines[-1].startswith("error: ") and all(w in lines[-1] for w in words), lines[-1]
    return lines[-1]


def test_a_truncated_keras_model_is_named(tmp_path, prepared_digits):
    broken = tmp_path / "model.keras"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 100)  # a zip header and nothing else
    proc = mobopt_cli("evaluate", "--model", broken, "--data", prepared_digits, "--out", tmp_path / "e.json", check=False)
    _one_error_line(proc, str(broken), "not a readable Keras model")
    assert not (tmp_path / "e.json").exists()


def test_a_model_whose_input_does_not_fit_the_data_names_both_shapes(tmp_path, prepared_digits):
    from mobopt.datasets.prepared import save_split

    other = tmp_path / "rgb"
    other.mkdir()
    save_split(other, "test", np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int64))
    (other / "meta.json").write_text(json.dumps({"classes": [str(i) for i in range(10)], "image_shape": [32, 32, 3]}))
    tflite = tmp_path / "m.tflite"
    _tiny_tflite(tflite)
    proc = mobopt_cli("evaluate", "--model", tflite, "--data", other, "--out", tmp_path / "e.json", check=False)
    line = _one_error_line(proc, str(tflite), "28x28x1", "32x32x3")
    assert "np.int" not in line


def _tiny_tflite(path):
    import tensorflow as tf

    inp = tf.keras.Input((28, 28, 1), batch_size=1)
    out = tf.keras.layers.Dense(10, activation="softmax")(tf.keras.layers.Flatten()(inp))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(tf.keras.Model(inp, out)).convert())


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_full_disk_or_read_only_folder_names_the_output_and_leaves_nothing(tmp_path, monkeypatch, code):
    target = tmp_path / "out" / "result.json"

    def fail(self, data, *args, **kwargs):
        raise OSError(code, "simulated")  # what a full disk raises: no file name

    monkeypatch.setattr(type(target), "write_text", fail)
    with pytest.raises(OSError) as info:
        atomic.write_json(target, {"a": 1})
    assert info.value.filename == str(target) and info.value.errno == code
    assert list((tmp_path / "out").iterdir()) == []  # no temporary file left behind


def test_a_read_only_results_folder_is_one_line(tmp_path, prepared_digits):
    import os

    if os.geteuid() == 0:
        # root writes through permission bits; a read-only bind mount needs privileges tests should not use
        folder = "/proc/mobopt-readonly"  # a read-only file system for everyone
    else:
        folder = str(tmp_path / "ro")
        os.makedirs(folder)
        os.chmod(folder, 0o500)
    proc = mobopt_cli("paper-table2", "--out-csv", f"{folder}/t.csv", "--out-md", f"{folder}/t.md",
                      "--out-tex", f"{folder}/t.tex", check=False)
    _one_error_line(proc, folder)
