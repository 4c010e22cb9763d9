"""CIFAR-10 through the real download, extraction, unpickling and prepare code, offline.

The archive is generated in the real format: ``cifar-10-batches-py/`` with the real file names, each batch
pickled as Python 2's cPickle wrote them (protocol 2, strings as BINSTRING, the pixels a numpy array through
``numpy.core.multiarray._reconstruct``), only with few images per batch, and served from 127.0.0.1 with the
pinned size and checksums replaced by the generated archive's.
"""

import hashlib
import io
import pickle
import struct
import tarfile
import warnings

import numpy as np
import pytest

from mobopt import MobOptError, datasets
from mobopt.common.download import RemoteFile, sha256sum
from mobopt.datasets import cifar10, prepared

PER_BATCH = 20  # two images per class in each batch


def py2_pickle(obj) -> bytes:
    """``obj`` as Python 2's cPickle (protocol 2) wrote CIFAR-10's files: str as BINSTRING, ints as BININT*,
    a uint8 array as ``_reconstruct(ndarray, (0,), 'b')`` plus its state (1, shape, dtype, False, raw bytes)."""
    out = bytearray(b"\x80\x02")

    def string(b: bytes) -> None:
        out.extend(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def save(o) -> None:
        if o is None:
            out.extend(b"N")
        elif isinstance(o, bool):
            out.extend(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            out.extend(b"K" + bytes([o]) if 0 <= o < 256 else b"J" + struct.pack("<i", o))
        elif isinstance(o, bytes):
            string(o)
        elif isinstance(o, tuple):
            out.extend(b"(")
            for v in o:
                save(v)
            out.extend(b"t")
        elif isinstance(o, list):
            out.extend(b"](")
            for v in o:
                save(v)
            out.extend(b"e")
        elif isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                save(k)
                save(v)
            out.extend(b"u")
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            save((0,))
            string(b"b")
            out.extend(b"\x87R(")  # TUPLE3, REDUCE; then the state tuple
            save(1)
            save(tuple(o.shape))
            out.extend(b"cnumpy\ndtype\n")
            string(b"u1")
            out.extend(b"K\x00K\x01\x87R")
            save((3, b"|", None, None, None, -1, -1, 0))
            out.extend(b"b\x89")  # BUILD the dtype; is_fortran False
            string(np.ascontiguousarray(o).tobytes())
            out.extend(b"tb")  # the state tuple, BUILD the array
        else:
            raise TypeError(type(o))

    save(obj)
    out.extend(b".")
    return bytes(out)


def _batches(seed=0, *, columns=cifar10.ROW):
    """Batch dicts as CIFAR-10 has them (plus batches.meta), ``PER_BATCH`` random images each."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, name in enumerate((*cifar10.TRAIN_BATCHES, cifar10.TEST_BATCH)):
        labels = [int(v) for v in rng.permutation(np.arange(PER_BATCH) % 10)]
        data = rng.integers(0, 256, (PER_BATCH, columns), dtype=np.uint8)
        out[name] = {b"batch_label": f"training batch {i + 1} of 5".encode(), b"labels": labels, b"data": data,
                     b"filenames": [f"img_{i}_{j}.png".encode() for j in range(PER_BATCH)]}
    out[cifar10.META] = {b"num_cases_per_batch": PER_BATCH, b"label_names": [c.encode() for c in cifar10.CLASSES],
                         b"num_vis": cifar10.ROW}
    return out


def make_cifar_tgz(path, batches=None, *, raw=None):
    """A cifar-10-python.tar.gz of ``batches`` (pickled as the real ones); ``raw`` maps file names to bytes
    written as they are (a damaged batch)."""
    batches = _batches() if batches is None else batches
    files = {name: py2_pickle(b) for name, b in batches.items()} | (raw or {})
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _serve(http_server, monkeypatch, archive, *, sha256=None, md5=None):
    """Serve ``archive`` as the official file, with the pins set to its size and checksums (or the given ones)."""
    (http_server.root / cifar10.ARCHIVE.name).write_bytes(archive.read_bytes())
    monkeypatch.setattr(cifar10, "ARCHIVE", RemoteFile(cifar10.ARCHIVE.name, archive.stat().st_size,
                                                       sha256 or sha256sum(archive)))
    monkeypatch.setattr(cifar10, "MD5", md5 or hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest())
    return {"mirrors": [http_server.url], "backoff": 0, "retries": 0, "progress": False}


def test_the_emitted_pickle_is_what_numpys_own_unpickler_reads():
    """The test's Python 2 stand-in is faithful: pickle.load (with numpy) and our restricted reader agree."""
    batch = _batches()[cifar10.TEST_BATCH]
    data = py2_pickle(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 warns about the numpy.core name
        real = pickle.loads(data, encoding="bytes")
    assert np.array_equal(real[b"data"], batch[b"data"]) and real[b"labels"] == batch[b"labels"]


def test_download_and_prepare_give_nhwc_splits_with_the_planes_in_place(tmp_path, http_server, monkeypatch):
    batches = _batches()
    first = batches["data_batch_1"][b"data"]
    first[0, [1, 1024 + 1, 2048 + 1]] = (10, 20, 30)  # image 0, row 0, column 1: R, G, B planes
    first[0, [32 * 5 + 7, 1024 + 32 * 5 + 7, 2048 + 32 * 5 + 7]] = (200, 100, 50)  # row 5, column 7
    opts = _serve(http_server, monkeypatch, make_cifar_tgz(tmp_path / "c.tgz", batches))
    http_server.fail(cifar10.ARCHIVE.name, ("truncate", 500))  # a broken transfer is resumed
    record = cifar10.download({**opts, "retries": 1}, tmp_path / "raw")
    assert record["verified_against_pins"] and record["files"][cifar10.ARCHIVE.name]["md5"] == cifar10.MD5
    assert record["extracted_files"] == 7 and (tmp_path / "raw/tree/cifar-10-batches-py/test_batch").is_file()

    meta = datasets.get("cifar10").prepare(tmp_path / "raw", tmp_path / "out", {"validation_fraction": 0.1}, 3)
    assert meta["classes"] == list(cifar10.CLASSES) and meta["image_shape"] == [32, 32, 3]
    assert meta["counts"] == {"train": 90, "val": 10, "test": 20}
    assert datasets.get("cifar10").image_shape({}) == (32, 32, 3)
    x_train, y_train = datasets.load_split(tmp_path / "out", "train")
    x_val, y_val = datasets.load_split(tmp_path / "out", "val")
    x_test, y_test = datasets.load_split(tmp_path / "out", "test")
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and x_test.shape == (20, 32, 32, 3)
    assert sorted(np.bincount(y_val).tolist()) == [1] * 10  # one of each class's ten held out
    y_all = np.concatenate([batches[b][b"labels"] for b in cifar10.TRAIN_BATCHES])
    x_all = np.concatenate([batches[b][b"data"] for b in cifar10.TRAIN_BATCHES])
    keep, held = prepared.stratified_split(y_all, 0.1, 3)
    nhwc = x_all.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert nhwc[0, 0, 1].tolist() == [10, 20, 30] and nhwc[0, 5, 7].tolist() == [200, 100, 50]
    assert np.array_equal(x_train, nhwc[keep]) and np.array_equal(y_train, y_all[keep])
    assert np.array_equal(x_val, nhwc[held]) and np.array_equal(y_val, y_all[held])
    assert y_test.tolist() == batches["test_batch"][b"labels"]
    image0 = x_train[0] if 0 in keep else x_val[0]  # image 0 is first in whichever split holds it
    assert image0[0, 1].tolist() == [10, 20, 30] and image0[5, 7].tolist() == [200, 100, 50]


def test_a_wrong_checksum_prints_both(tmp_path, http_server, monkeypatch):
    archive = make_cifar_tgz(tmp_path / "c.tgz")
    opts = _serve(http_server, monkeypatch, archive, sha256="0" * 64)
    with pytest.raises(MobOptError, match=f"sha256 mismatch: computed {sha256sum(archive)}, expected {'0' * 64}"):
        cifar10.download(opts, tmp_path / "raw")
    opts = _serve(http_server, monkeypatch, archive, md5="f" * 32)
    real_md5 = hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()
    with pytest.raises(MobOptError, match=f"md5 {real_md5} but the dataset page publishes {'f' * 32}"):
        cifar10.download(opts, tmp_path / "raw")
    assert not (tmp_path / "raw" / cifar10.ARCHIVE.name).exists() and not (tmp_path / "raw/tree").exists()
    assert not (tmp_path / "raw/SOURCE.json").exists()


def test_a_truncated_archive_fails_naming_it(tmp_path, http_server, monkeypatch):
    full = make_cifar_tgz(tmp_path / "c.tgz")
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    opts = _serve(http_server, monkeypatch, full)
    (http_server.root / cifar10.ARCHIVE.name).write_bytes(cut.read_bytes())  # the mirror has half the file
    with pytest.raises(MobOptError, match=f"size {cut.stat().st_size} bytes, expected {full.stat().st_size}"):
        cifar10.download(opts, tmp_path / "raw")
    # a half archive that got past the pins (verify: false, a copy of one's own): the extraction says so
    with pytest.raises(MobOptError, match=r"cifar-10-python.tar.gz: corrupt or truncated archive .* download it again"):
        cifar10.download({**opts, "source": "path", "path": str(cut), "verify": False}, tmp_path / "raw")
    assert not (tmp_path / "raw/tree").exists() and not (tmp_path / "raw/SOURCE.json").exists()


def _prepare_with(tmp_path, name, data):
    """Download (verify: false) an archive whose batch ``name`` is ``data`` (bytes as they are, or a dict to
    pickle), then prepare it; return the batch file's path."""
    batches = _batches()
    raw = {name: data} if isinstance(data, bytes) else {}
    if isinstance(data, dict):
        batches[name] = data
    else:
        batches.pop(name)
    archive = make_cifar_tgz(tmp_path / "c.tgz", batches, raw=raw)
    cifar10.download({"source": "path", "path": str(archive), "verify": False, "progress": False}, tmp_path / "raw")
    cifar10.prepare(tmp_path / "raw", tmp_path / "out", {}, 0)
    return tmp_path / "raw/tree" / cifar10.FOLDER / name


def test_a_corrupt_batch_fails_naming_the_file(tmp_path):
    with pytest.raises(MobOptError, match=r"data_batch_3: corrupt or not a pickle .* remove .*tree and rerun"):
        _prepare_with(tmp_path, "data_batch_3", b"\x80\x02}q\x01(U\x04dataq")  # cut short
    assert not (tmp_path / "out").exists()  # every batch is read before anything is written
    with pytest.raises(MobOptError, match=r"test_batch: corrupt or not a pickle"):
        _prepare_with(tmp_path, "test_batch", b"<html>Not Found</html>")


def test_a_pickle_naming_anything_else_is_refused_without_running_it(tmp_path):
    class Boom:
        def __reduce__(self):
            import os
            return (os.system, ("touch pwned",))

    evil = pickle.dumps({b"data": Boom(), b"labels": []}, protocol=4)
    with pytest.raises(MobOptError, match=r"data_batch_1: refused to unpickle: it names posix.system"):
        _prepare_with(tmp_path, "data_batch_1", evil)
    assert not (tmp_path / "pwned").exists()
    other = pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, protocol=2)
    with pytest.raises(MobOptError, match="refused to unpickle"):
        _prepare_with(tmp_path, "data_batch_1", other)


def test_a_batch_of_the_wrong_shape_fails_naming_the_file(tmp_path):
    bad = _batches(columns=cifar10.ROW - 1)["data_batch_2"]
    with pytest.raises(MobOptError, match=r"data_batch_2: b'data' has shape \(20, 3071\), expected \(N, 3072\)"):
        _prepare_with(tmp_path, "data_batch_2", bad)


def test_a_label_out_of_range_names_the_value_and_the_file(tmp_path):
    bad = _batches()["test_batch"]
    bad[b"labels"][4] = 10
    with pytest.raises(MobOptError, match=r"test_batch: label 10 of image 4 is out of range 0..9"):
        _prepare_with(tmp_path, "test_batch", bad)
    assert not (tmp_path / "out/train_x.npy").exists() and not (tmp_path / "out/meta.json").exists()


def test_other_class_names_are_refused(tmp_path):
    meta = _batches()[cifar10.META]
    meta[b"label_names"] = [b"apple", *meta[b"label_names"][1:]]
    with pytest.raises(MobOptError, match=r"batches.meta: the classes are \['apple'.* not CIFAR-10's"):
        _prepare_with(tmp_path, cifar10.META, meta)
