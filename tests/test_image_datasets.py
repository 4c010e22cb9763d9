"""ASL Alphabet and Imagenette through the real fetch, extraction, layout checks and prepare code, offline.

Kaggle is played by a stand-in ``kaggle`` executable, the Imagenette mirror by a
local HTTP server; the archives are generated in the real layouts.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import make_asl_zip, make_imagenette_tgz, write_kaggle_stand_in

from mobopt import MobOptError, datasets
from mobopt.common.download import RemoteFile, sha256sum
from mobopt.datasets import asl_alphabet, imagenet_subset

KEY = "s3cr3t-kaggle-key-0123456789"


@pytest.fixture(scope="module")
def asl_zip(tmp_path_factory):
    out = tmp_path_factory.mktemp("asl") / "asl-alphabet.zip"
    return make_asl_zip(out, per_class=5, extra={
        "asl_alphabet_train/asl_alphabet_train/A/A_empty.jpg": b"",
        "asl_alphabet_train/asl_alphabet_train/B/B_broken.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
        "asl_alphabet_train/asl_alphabet_train/extra_folder/x.jpg": b"",
        "asl_alphabet_train/asl_alphabet_train/README.txt": b"hello",
    })


@pytest.fixture
def kaggle_env(tmp_path, monkeypatch, asl_zip):
    exe = write_kaggle_stand_in(tmp_path / "bin", asl_zip)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KAGGLE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("KAGGLE_API_TOKEN", raising=False)
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    return {"source": "kaggle", "kaggle_cli": str(exe), "verify": False, "progress": False}


def test_asl_from_kaggle_records_sha256_never_the_key(tmp_path, kaggle_env, asl_zip, caplog):
    caplog.set_level("DEBUG")
    raw = tmp_path / "raw"
    record = asl_alphabet.download(kaggle_env, raw)
    assert record["files"]["asl-alphabet.zip"]["sha256"] == sha256sum(asl_zip)
    assert record["files"]["asl-alphabet.zip"]["origin"] == "kaggle:grassknoted/asl-alphabet"
    assert record["layout"]["official_test_images"] == 28
    assert (raw / "tree" / asl_alphabet.ASL_TRAIN_DIR / "space").is_dir()
    assert json.loads((raw / "SOURCE.json").read_text()) == json.loads(json.dumps(record))
    assert KEY not in caplog.text and KEY not in (raw / "SOURCE.json").read_text()


def test_asl_kaggle_cli_by_name_runs_the_users_and_is_recorded(tmp_path, kaggle_env, monkeypatch, caplog):
    """The job's PATH starts with the workflow's bin folder (a kaggle of its own); the user's PATH wins."""
    caplog.set_level("INFO")
    exe = Path(kaggle_env["kaggle_cli"])
    workflow_bin = tmp_path / "workflow-bin"
    workflow_bin.mkdir()
    (workflow_bin / "kaggle").write_text("#!/bin/sh\necho the workflow's kaggle >&2\nexit 3\n")
    (workflow_bin / "kaggle").chmod(0o755)
    monkeypatch.setenv("MOBOPT_USER_PATH", f"{exe.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("PATH", f"{workflow_bin}:{os.environ['MOBOPT_USER_PATH']}")
    record = asl_alphabet.download({**kaggle_env, "kaggle_cli": "kaggle"}, tmp_path / "raw")
    assert record["files"]["asl-alphabet.zip"]["kaggle_cli"] == str(exe)
    assert json.loads((tmp_path / "raw" / "SOURCE.json").read_text())["files"]["asl-alphabet.zip"]["kaggle_cli"] == str(exe)
    assert f"with {exe} (credentials" in caplog.text


def test_asl_strict_layout_check_names_what_differs(tmp_path, kaggle_env):
    with pytest.raises(MobOptError, match="expected 3000 images per class.*verify: false"):
        asl_alphabet.download({**kaggle_env, "verify": True}, tmp_path / "raw")


def test_asl_pinned_sha256_is_enforced(tmp_path, kaggle_env, asl_zip):
    with pytest.raises(MobOptError, match=f"computed {sha256sum(asl_zip)}"):
        asl_alphabet.download({**kaggle_env, "sha256": "0" * 64}, tmp_path / "raw")
    assert not (tmp_path / "raw" / "asl-alphabet.zip").exists()
    pinned = {**kaggle_env, "sha256": sha256sum(asl_zip)}
    assert asl_alphabet.download(pinned, tmp_path / "raw")["files"]["asl-alphabet.zip"]["pinned_sha256"]


def test_asl_without_credentials_says_how_to_provide_them(tmp_path, kaggle_env, monkeypatch):
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.delenv("KAGGLE_USERNAME")
    with pytest.raises(MobOptError) as err:
        asl_alphabet.download(kaggle_env, tmp_path / "raw")
    for hint in ("KAGGLE_USERNAME", "kaggle.json", "source: path"):
        assert hint in str(err.value)
    assert not (tmp_path / "raw" / "asl-alphabet.zip").exists()


def test_asl_from_a_manually_downloaded_zip(tmp_path, asl_zip):
    record = asl_alphabet.download({"source": "path", "path": str(asl_zip), "verify": False,
                                             "progress": False}, tmp_path / "raw")
    assert record["files"]["asl-alphabet.zip"]["origin"] == str(asl_zip)


def test_asl_path_traversal_member_is_refused(tmp_path):
    evil = make_asl_zip(tmp_path / "evil.zip", per_class=1, extra={"../../escaped.txt": b"x"})
    with pytest.raises(MobOptError, match="escaped.txt"):
        asl_alphabet.download({"source": "path", "path": str(evil), "verify": False, "progress": False},
                                       tmp_path / "raw")
    assert not (tmp_path / "raw" / "tree").exists() and not (tmp_path / "escaped.txt").exists()


def test_asl_corrupt_zip_from_a_path_names_the_users_file(tmp_path, asl_zip):
    mine = tmp_path / "Downloads" / "asl-alphabet.zip"
    mine.parent.mkdir()
    mine.write_bytes(asl_zip.read_bytes()[:-5000])  # a browser download cut short
    raw = tmp_path / "raw"
    with pytest.raises(MobOptError) as err:
        asl_alphabet.download({"source": "path", "path": str(mine.parent), "verify": False, "progress": False}, raw)
    message = str(err.value)
    assert message.startswith(f"{raw / 'asl-alphabet.zip'}: corrupt or truncated archive")
    assert f"is the workflow's copy of {mine} (`source: path`): fix or replace that original instead" in message
    assert not (raw / "tree").exists()


@pytest.fixture(scope="module")
def asl_raw(tmp_path_factory, asl_zip):
    raw = tmp_path_factory.mktemp("asl-raw")
    asl_alphabet.download({"source": "path", "path": str(asl_zip), "verify": False, "progress": False}, raw)
    return raw


def test_asl_prepare_fails_on_too_many_bad_images(tmp_path, asl_raw):
    with pytest.raises(MobOptError, match="max_bad_fraction"):
        asl_alphabet.prepare(asl_raw, tmp_path / "out", {"image_size": 32, "progress": False}, seed=0)
    assert not list((tmp_path / "out").glob("*.npy"))


def test_asl_prepare_splits_and_reports_problems(tmp_path, asl_raw):
    opts = {"image_size": 32, "progress": False, "max_bad_fraction": 0.05, "workers": 2,
            "validation_fraction": 0.2, "test_fraction": 0.2}
    meta = asl_alphabet.prepare(asl_raw, tmp_path / "a", opts, seed=0)
    counts = meta["counts"]  # 29 x 5 good images + 2 bad ones, which are skipped wherever they fell
    assert counts["train"] + counts["val"] + counts["test"] == 29 * 5 and counts["official_test"] == 28
    assert counts["test"] in (28, 29) and counts["val"] in (28, 29)
    assert meta["problems"]["empty"]["count"] == 1 and meta["problems"]["unreadable"]["count"] == 1
    assert meta["problems"]["unexpected_folders"]["count"] == 1 and meta["problems"]["unexpected_files"]["count"] == 1
    assert meta["image_shape"] == [32, 32, 3] and len(meta["classes"]) == 29
    x, y = datasets.load_split(tmp_path / "a", "official_test")
    assert x.shape == (28, 32, 32, 3) and x.dtype == np.uint8
    assert asl_alphabet.ASL_CLASSES.index("del") not in y.tolist()
    for split in ("train",):  # stratified: every class in the training split
        assert set(datasets.load_split(tmp_path / "a", split)[1].tolist()) == set(range(29))
    again = asl_alphabet.prepare(asl_raw, tmp_path / "b", {**opts, "workers": 1}, seed=0)
    assert again == meta
    for name in ("train_x.npy", "test_y.npy", "official_test_x.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.fixture(scope="module")
def imagenette(tmp_path_factory):
    return make_imagenette_tgz(tmp_path_factory.mktemp("inet") / "imagenette2-160.tgz")


def test_imagenette_pinned_download_extract_and_prepare(tmp_path, http_server, imagenette, monkeypatch):
    (http_server.root / imagenette.name).write_bytes(imagenette.read_bytes())
    pins = RemoteFile(imagenette.name, imagenette.stat().st_size, sha256sum(imagenette))
    monkeypatch.setitem(imagenet_subset.IMAGENETTE_ARCHIVES, "160", pins)
    http_server.fail(imagenette.name, ("truncate", 1000))  # resumed with a Range request
    opts = {"mirrors": [http_server.url], "resolution": "160", "backoff": 0, "progress": False,
            "image_size": 32, "crop_fraction": 0.875}
    record = imagenet_subset.download(opts, tmp_path / "raw")
    assert record["files"][imagenette.name]["sha256"] == pins.sha256 and record["verified_against_pins"]
    meta = imagenet_subset.prepare(tmp_path / "raw", tmp_path / "out", opts, seed=0)
    assert meta["counts"]["test"] == 20  # only the ILSVRC2012_val_* half of val
    assert meta["counts"]["train"] + meta["counts"]["val"] == 60 + 20
    assert meta["num_outputs"] == 1000 and meta["label_indices"][1] == 217 and meta["class_names"][9] == "parachute"
    _, y = datasets.load_split(tmp_path / "out", "test")
    assert set(y.tolist()) == {0, 217, 482, 491, 497, 566, 569, 571, 574, 701}
    everything = imagenet_subset.prepare(tmp_path / "raw", tmp_path / "all", {**opts, "ilsvrc_val_only": False},
                                                  seed=0)
    assert everything["counts"]["test"] == 40


def test_imagenette_wrong_checksum_fails_with_the_computed_hash(tmp_path, http_server, imagenette):
    (http_server.root / "imagenette2-160.tgz").write_bytes(imagenette.read_bytes())
    opts = {"mirrors": [http_server.url], "resolution": "160", "backoff": 0, "progress": False}
    with pytest.raises(MobOptError, match="size .* expected 99003388"):  # the real archive's pinned size
        imagenet_subset.download(opts, tmp_path / "raw")
    assert not (tmp_path / "raw" / "imagenette2-160.tgz").exists()


def test_imagenette_traversal_member_is_refused(tmp_path, http_server):
    import io
    import tarfile

    with tarfile.open(http_server.root / "imagenette2-160.tgz", "w:gz") as tf:
        info = tarfile.TarInfo("../../outside.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    opts = {"mirrors": [http_server.url], "resolution": "160", "verify": False, "backoff": 0, "progress": False}
    with pytest.raises(MobOptError, match="outside.txt"):
        imagenet_subset.download(opts, tmp_path / "raw")
    assert not (tmp_path / "raw" / "tree").exists() and not (tmp_path / "outside.txt").exists()
