"""The real download code against a local HTTP server on 127.0.0.1."""

import hashlib
import json
import time

import pytest

from mobopt import MobOptError, datasets
from mobopt.common.download import FETCH_DEFAULTS, ChecksumError, DownloadError, RemoteFile, download, transfer_options
from mobopt.datasets import mnist

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: several chunks, so truncation lands mid-transfer


def _serve(server, name="train-labels-idx1-ubyte.gz", data=PAYLOAD):
    (server.root / name).write_bytes(data)
    return RemoteFile(name, len(data), hashlib.sha256(data).hexdigest())


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_good_file(http_server, tmp_path):
    remote = _serve(http_server)
    dest = tmp_path / "out" / remote.name
    assert download(remote, [http_server.url], dest, backoff=0, progress=False) == remote.sha256
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == [remote.name]


def test_wrong_checksum_fails_naming_file_and_computed_hash(http_server, tmp_path):
    remote = _serve(http_server)
    wrong = RemoteFile(remote.name, remote.size, "0" * 64)
    dest = tmp_path / "out" / remote.name
    with pytest.raises(DownloadError) as err:
        download(wrong, [http_server.url], dest, backoff=0, progress=False)
    message = str(err.value)
    assert remote.name in message and f"computed {remote.sha256}" in message and "0" * 64 in message
    assert not dest.exists()
    assert _leftovers(dest.parent) == []  # no .part either


def test_wrong_size_is_reported_before_hashing(http_server, tmp_path):
    remote = _serve(http_server)
    with pytest.raises(DownloadError, match=f"size {len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}"):
        download(RemoteFile(remote.name, len(PAYLOAD) + 1, remote.sha256), [http_server.url], tmp_path / remote.name,
                 backoff=0, progress=False)


def test_truncated_transfer_resumes_with_range(http_server, tmp_path):
    remote = _serve(http_server)
    http_server.fail(remote.name, ("truncate", 300_000))
    dest = tmp_path / remote.name
    download(remote, [http_server.url], dest, backoff=0, progress=False)
    assert dest.read_bytes() == PAYLOAD
    (first, no_range), (second, resume) = http_server.requests
    assert first == second == "/" + remote.name and no_range is None
    offset = int(resume.removeprefix("bytes=").rstrip("-"))
    assert 200_000 < offset <= 300_000  # resumed near the break, not from byte 0


def test_http_500_then_success(http_server, tmp_path):
    remote = _serve(http_server)
    http_server.fail(remote.name, 500, 500)
    dest = tmp_path / remote.name
    download(remote, [http_server.url], dest, backoff=0, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert len(http_server.requests) == 3


def test_retries_are_bounded_and_every_failure_listed(http_server, tmp_path):
    remote = _serve(http_server)
    http_server.fail(remote.name, 500, 500, 500)
    dest = tmp_path / remote.name
    with pytest.raises(DownloadError, match=r"HTTP 500 \(gave up after 3 attempts\)"):
        download(remote, [http_server.url], dest, retries=2, backoff=0, progress=False)
    assert not dest.exists() and _leftovers(tmp_path) == ["www"]


def test_falls_back_to_next_mirror(http_server, tmp_path):
    remote = _serve(http_server, name="data.bin")
    (http_server.root / "mirror2").mkdir()
    (http_server.root / "mirror2" / "data.bin").write_bytes(PAYLOAD)
    http_server.fail("data.bin", 404)
    dest = tmp_path / "data.bin"
    download(remote, [http_server.url, http_server.url + "mirror2/"], dest, backoff=0, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [p for p, _ in http_server.requests] == ["/data.bin", "/mirror2/data.bin"]


@pytest.mark.timeout(60)
def test_a_trickling_mirror_is_cut_and_the_next_one_tried(http_server, tmp_path):
    """One byte every 20 ms never trips the read timeout; min_rate cuts each attempt, then the next mirror serves."""
    remote = _serve(http_server, name="data.bin")
    (http_server.root / "mirror2").mkdir()
    (http_server.root / "mirror2" / "data.bin").write_bytes(PAYLOAD)
    http_server.fail("data.bin", ("trickle", 0.02), ("trickle", 0.02))
    dest = tmp_path / "data.bin"
    start = time.monotonic()
    download(remote, [http_server.url, http_server.url + "mirror2/"], dest, retries=1, backoff=0, timeout=30,
             min_rate=10_000, rate_window=0.5, progress=False)
    assert time.monotonic() - start < 15
    assert dest.read_bytes() == PAYLOAD and _leftovers(tmp_path) == ["data.bin", "www"]
    (first, no_range), (second, resume), (third, _) = http_server.requests
    assert first == second == "/data.bin" and third == "/mirror2/data.bin"
    assert no_range is None and resume and resume.startswith("bytes=")  # the retry resumed what had trickled in


@pytest.mark.timeout(60)
def test_attempt_timeout_bounds_every_attempt(http_server, tmp_path):
    remote = _serve(http_server)
    http_server.fail(remote.name, ("trickle", 0.01), ("trickle", 0.01))
    dest = tmp_path / remote.name
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"attempt_timeout = 0\.5 s.*gave up after 2 attempts") as err:
        download(remote, [http_server.url], dest, retries=1, backoff=0, timeout=30, attempt_timeout=0.5, min_rate=0,
                 progress=False)
    assert time.monotonic() - start < 15
    assert http_server.url + remote.name in str(err.value)
    assert not dest.exists() and _leftovers(tmp_path) == ["www"]


def test_transfer_options_fill_in_the_defaults():
    options = transfer_options({"retries": 1, "min_rate": 0, "mirrors": ["x"], "source": "url"})
    assert options == {**FETCH_DEFAULTS, "retries": 1, "min_rate": 0}


def test_no_mirrors_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="no mirror configured"):
        download(RemoteFile("x.gz"), [], tmp_path / "x.gz")


def test_mnist_download_from_local_mirror(http_server, tmp_path, digits_idx):
    """The dataset registry's MNIST fetch, with the demo's stand-in files served over HTTP."""
    for f in digits_idx.iterdir():
        (http_server.root / f.name).write_bytes(f.read_bytes())
    http_server.fail("t10k-images-idx3-ubyte.gz", ("truncate", 1000))
    out = tmp_path / "raw"
    record = mnist.download({"source": "url", "mirrors": [http_server.url], "verify": False,
                                      "backoff": 0, "progress": False}, out)
    assert set(record["files"]) == set(datasets.DATASETS["mnist"].raw_files({}))
    saved = json.loads((out / "SOURCE.json").read_text())
    for name, info in saved["files"].items():
        assert info["sha256"] == hashlib.sha256((digits_idx / name).read_bytes()).hexdigest()


def test_mnist_pins_reject_standin_data(http_server, tmp_path, digits_idx):
    """With verify on (the default), files that are not the real MNIST are refused."""
    for f in digits_idx.iterdir():
        (http_server.root / f.name).write_bytes(f.read_bytes())
    with pytest.raises(DownloadError, match="train-images-idx3-ubyte.gz"):
        mnist.download({"source": "url", "mirrors": [http_server.url], "backoff": 0, "progress": False},
                                tmp_path / "raw")
    assert not (tmp_path / "raw" / "train-images-idx3-ubyte.gz").exists()


def test_path_source_missing_file(tmp_path):
    with pytest.raises(MobOptError, match=r"train-images-idx3-ubyte.gz: not found"):
        mnist.download({"source": "path", "path": str(tmp_path)}, tmp_path / "raw")


def test_path_source_verifies_pins(tmp_path, digits_idx):
    with pytest.raises(ChecksumError, match="size .* expected 9912422"):
        mnist.download({"source": "path", "path": str(digits_idx)}, tmp_path / "raw")
    assert not (tmp_path / "raw" / "train-images-idx3-ubyte.gz").exists()


def _break(path, fault):
    """Damage one IDX .gz file the ways a hostile or unlucky user's copy is damaged."""
    import gzip

    import numpy as np

    from mobopt.datasets.idx import read_idx, write_idx

    data = path.read_bytes()
    if fault == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif fault == "html":
        path.write_bytes(b"<!DOCTYPE html><html><body>Please log in</body></html>")
    elif fault == "magic":
        raw = gzip.decompress(data)
        path.write_bytes(gzip.compress(b"\x12\x34" + raw[2:]))
    else:
        y = read_idx(path)
        y = {"dims": y.reshape(-1, 1), "count": y[:-1], "range": np.where(np.arange(len(y)) == 3, 11, y)}[fault]
        write_idx(path, y.astype(np.uint8))


@pytest.mark.parametrize("fault", ["truncated", "html", "magic", "dims", "count", "range"])
def test_prepare_error_names_the_users_original_as_well_as_the_copy(tmp_path, digits_idx, capsys, fault):
    """With `source: path` the copy in data/raw is not what the user must fix: the message names both."""
    from mobopt import cli

    mine = tmp_path / "mine"
    mine.mkdir()
    for f in digits_idx.iterdir():
        (mine / f.name).write_bytes(f.read_bytes())
    _break(mine / "t10k-labels-idx1-ubyte.gz", fault)
    raw = tmp_path / "raw"
    mnist.download({"source": "path", "path": str(mine), "verify": False}, raw)
    options = json.dumps({"source": "path", "path": str(mine), "verify": False})
    assert cli.main(["prepare", "--dataset", "mnist", "--raw", str(raw), "--out", str(tmp_path / "out"),
                     "--options", options, "--seed", "1"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    copy, original = raw / "t10k-labels-idx1-ubyte.gz", mine / "t10k-labels-idx1-ubyte.gz"
    assert error.startswith("error: ") and str(copy) in error
    assert f"{copy} is the workflow's copy of {original} (`source: path`): fix or replace that original instead" in error
    assert not (tmp_path / "out" / "meta.json").exists()


def test_an_error_about_a_downloaded_file_gets_no_note(tmp_path):
    from mobopt.datasets import prepared

    record = {"source": "url", "files": {"a.gz": {"origin": ["http://mirror/"], "sha256": "0"}}}
    assert prepared.source_note(f"{tmp_path / 'a.gz'}: bad", tmp_path, record) == ""
    copied = {"source": "path", "files": {"a.gz": {"origin": "/home/u/a.gz"}, "b.gz": {"origin": "/home/u/b.gz"}}}
    assert "/home/u/a.gz" in prepared.source_note(f"{tmp_path / 'a.gz'}: bad", tmp_path, copied)
    assert "/home/u/b.gz" not in prepared.source_note(f"{tmp_path / 'a.gz'}: bad", tmp_path, copied)
    both = prepared.source_note(f"{tmp_path}: train and test differ", tmp_path, copied)  # only the folder named
    assert "/home/u/a.gz" in both and "/home/u/b.gz" in both
    assert prepared.source_note("unrelated", tmp_path, copied) == ""
