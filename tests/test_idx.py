"""IDX parsing: good files round-trip; every kind of corruption gets an error naming the file."""

import gzip
import struct

import numpy as np
import pytest

from mobopt import MobOptError, datasets
from mobopt.datasets import mnist
from mobopt.datasets.idx import IdxError, read_idx, write_idx


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_roundtrip(tmp_path, suffix):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"images{suffix}"
    write_idx(path, x)
    np.testing.assert_array_equal(read_idx(path, expect_ndim=3), x)


def test_header_is_mnist_layout(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.array([7, 2, 1], dtype=np.uint8))
    raw = path.read_bytes()
    assert raw[:4] == bytes.fromhex("00000801")  # 2049, MNIST's label magic
    assert struct.unpack(">i", raw[4:8]) == (3,)
    assert raw[8:] == bytes([7, 2, 1])


def _write_raw(path, data: bytes):
    with gzip.open(path, "wb") as fh:
        fh.write(data)
    return path


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x01\x02", "too short"),
        (b"\x12\x34\x08\x03" + struct.pack(">3i", 1, 2, 2) + b"\0" * 4, "bad magic"),
        (b"\x00\x00\x07\x03" + struct.pack(">3i", 1, 2, 2) + b"\0" * 4, "bad magic"),  # unknown type code
        (b"\x00\x00\x08\x03" + struct.pack(">2i", 1, 2), "header truncated"),
        (b"\x00\x00\x08\x03" + struct.pack(">3i", 2, 2, 2) + b"\0" * 5, "truncated or corrupt"),
        (b"\x00\x00\x08\x03" + struct.pack(">3i", 1, 2, 2) + b"\0" * 9, "truncated or corrupt"),
        (b"\x00\x00\x08\x01" + struct.pack(">i", 4) + b"\0" * 4, "1 dimensions, expected 3"),
    ],
)
def test_corrupt_headers_name_the_file(tmp_path, data, message):
    path = _write_raw(tmp_path / "train-images-idx3-ubyte.gz", data)
    with pytest.raises(IdxError, match=message) as err:
        read_idx(path, expect_ndim=3)
    assert str(path) in str(err.value)


def test_truncated_gzip_stream(tmp_path):
    good = tmp_path / "good.gz"
    write_idx(good, np.zeros((10, 28, 28), dtype=np.uint8))
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(IdxError, match="cannot read") as err:
        read_idx(bad)
    assert "t10k-images-idx3-ubyte.gz" in str(err.value)


def _mnist_dir(tmp_path, n_train=20, n_test=10, labels=None):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (n_train, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels if labels is not None else np.arange(n_train, dtype=np.uint8) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (n_test, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(n_test, dtype=np.uint8) % 10)
    return tmp_path


def test_prepare_splits_are_stratified_and_seeded(tmp_path):
    raw = _mnist_dir(tmp_path / "raw", n_train=100)
    a = mnist.prepare(raw, tmp_path / "a", {"validation_fraction": 0.2}, seed=3)
    b = mnist.prepare(raw, tmp_path / "b", {"validation_fraction": 0.2}, seed=3)
    assert a == b
    assert a["counts"] == {"train": 80, "val": 20, "test": 10}
    _, yv = datasets.load_split(tmp_path / "a", "val")
    assert np.bincount(yv, minlength=10).tolist() == [2] * 10  # 20 % of every class
    for split in datasets.SPLITS:
        xa, ya = datasets.load_split(tmp_path / "a", split)
        xb, yb = datasets.load_split(tmp_path / "b", split)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert xa.shape[1:] == (28, 28, 1) and xa.dtype == np.uint8


def test_prepare_rejects_mismatched_counts(tmp_path):
    raw = _mnist_dir(tmp_path / "raw", n_train=20, labels=np.zeros(19, dtype=np.uint8))
    with pytest.raises(MobOptError, match="20 images but .*train-labels-idx1-ubyte.gz has 19 labels"):
        mnist.prepare(raw, tmp_path / "out", {}, seed=0)
    assert not list((tmp_path / "out").glob("*.npy")) if (tmp_path / "out").exists() else True


def test_prepare_rejects_out_of_range_labels(tmp_path):
    raw = _mnist_dir(tmp_path / "raw", n_train=20, labels=np.full(20, 12, dtype=np.uint8))
    with pytest.raises(MobOptError, match="labels span 12..12, expected 0..9"):
        mnist.prepare(raw, tmp_path / "out", {}, seed=0)
