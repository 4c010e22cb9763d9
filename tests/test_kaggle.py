"""The Kaggle download against a stand-in ``kaggle`` executable: offline, and never the real home."""

from __future__ import annotations

import json
import logging
import sys
import zipfile

import pytest

from mobopt import MobOptError
from mobopt.datasets.kaggle import MISSING_CREDENTIALS, credential_source, download_dataset, redact, secrets

SLUG = "grassknoted/asl-alphabet"
KEY = "s3cr3t-0123456789abcdef"
TOKEN = "KGAT_0123456789abcdef0123"

STAND_IN = """#!{python}
import json, os, shutil, sys, time
from pathlib import Path

args = sys.argv[1:]
Path({argv_file!r}).write_text(json.dumps({{"argv": args, "home": os.environ.get("HOME")}}))
secrets = [os.environ.get("KAGGLE_KEY", ""), os.environ.get("KAGGLE_API_TOKEN", "")]
config = Path(os.environ.get("HOME", "/nonexistent"), ".kaggle", "kaggle.json")
if config.exists():
    secrets.append(json.loads(config.read_text())["key"])
print("Dataset URL: https://www.kaggle.com/datasets/" + args[2] + "  debug: using " + " ".join(secrets))
mode = {mode!r}
if mode == "fail":
    print("401 Client Error: Unauthorized for key " + " ".join(secrets), file=sys.stderr)
    sys.exit(1)
if mode == "sleep":
    time.sleep(60)
assert args[:3] == ["datasets", "download", {slug!r}] and args[3] == "-p" and len(args) == 5, args
if mode == "two":
    Path(args[4], "extra.zip").write_bytes(b"PK")
shutil.copy({zip_path!r}, Path(args[4]) / "asl-alphabet.zip")
print("100%|##########| 1.03G/1.03G done", file=sys.stderr)
"""


@pytest.fixture
def prepared_zip(tmp_path):
    path = tmp_path / "prepared.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("asl_alphabet_train/A/A1.jpg", b"\xff\xd8 jpeg bytes")
    return path


@pytest.fixture
def stand_in(tmp_path, prepared_zip):
    """Write a fake kaggle executable; returns (path to it, path of its argv record)."""

    def make(mode="ok"):
        bin_dir = tmp_path / f"bin-{mode}"
        bin_dir.mkdir()
        exe = bin_dir / "kaggle"
        argv_file = tmp_path / f"argv-{mode}.json"
        exe.write_text(STAND_IN.format(python=sys.executable, argv_file=str(argv_file), mode=mode, slug=SLUG,
                                       zip_path=str(prepared_zip)))
        exe.chmod(0o755)
        return exe, argv_file

    return make


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return home


def _kaggle_json(folder, key=KEY):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kaggle.json"
    path.write_text(json.dumps({"username": "alice", "key": key}))
    path.chmod(0o600)
    return path


def test_credential_source_for_each_source(tmp_path, home):
    pair = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY}
    assert credential_source(pair, home) == "environment (KAGGLE_USERNAME/KAGGLE_KEY)"
    assert credential_source({"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": ""}, home) is None
    assert credential_source({"KAGGLE_KEY": KEY}, home) is None
    assert credential_source({"KAGGLE_API_TOKEN": TOKEN}, home) == "environment (KAGGLE_API_TOKEN)"
    assert credential_source({}, home) is None

    config_dir = tmp_path / "cfg"
    in_config_dir = _kaggle_json(config_dir)
    assert credential_source({"KAGGLE_CONFIG_DIR": str(config_dir)}, home) == str(in_config_dir)
    assert credential_source({}, home) is None  # KAGGLE_CONFIG_DIR unset: not looked at

    xdg = _kaggle_json(home / ".config" / "kaggle")  # the CLI's fallback when ~/.kaggle does not exist (Linux)
    if sys.platform.startswith("linux"):
        assert credential_source({}, home) == str(xdg)
    in_home = _kaggle_json(home / ".kaggle")
    assert credential_source({}, home) == str(in_home)
    assert credential_source({"HOME": str(home)}) == str(in_home)  # home defaults to HOME of env

    token = home / ".kaggle" / "access_token"
    token.write_text(TOKEN + "\n")
    assert credential_source({}, home) == str(token)  # the CLI tries access tokens before kaggle.json

    other_home = tmp_path / "home2"
    token_in_config = config_dir / "access_token"
    token_in_config.write_text(TOKEN)
    (config_dir / "kaggle.json").unlink()
    assert credential_source({"KAGGLE_CONFIG_DIR": str(config_dir)}, other_home) == str(token_in_config)

    oauth = other_home / ".kaggle" / "credentials.json"
    oauth.parent.mkdir(parents=True)
    oauth.write_text(json.dumps({"refresh_token": "refresh-0123456789", "username": "alice"}))
    assert credential_source({}, other_home) == f"{oauth} (kaggle auth login)"


def test_descriptions_never_contain_a_secret(tmp_path, home):
    _kaggle_json(home / ".kaggle")
    for env in ({"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY}, {"KAGGLE_API_TOKEN": TOKEN}, {}):
        source = credential_source(env, home)
        assert source and KEY not in source and TOKEN not in source


def test_secrets_and_redact(tmp_path, home):
    _kaggle_json(home / ".kaggle", key="filekey-0123456789")
    (home / ".kaggle" / "access_token").write_text("filetoken-0123456789\n")
    token_file = tmp_path / "token.txt"
    token_file.write_text("pathtoken-0123456789")
    found = secrets({"KAGGLE_KEY": KEY, "KAGGLE_USERNAME": "alice", "KAGGLE_API_TOKEN": str(token_file)}, home)
    assert {KEY, "filekey-0123456789", "filetoken-0123456789", "pathtoken-0123456789"} <= set(found)
    assert "alice" not in found  # a username is not a secret
    text = f"key={KEY} file=filekey-0123456789 token=filetoken-0123456789 user=alice"
    assert redact(text, found) == "key=*** file=*** token=*** user=alice"
    assert redact("abc abc", ["abc", ""]) == "abc abc"  # too short to redact without mangling text


def test_missing_credentials_explains_both_ways_and_does_not_run_the_cli(tmp_path, home, stand_in):
    exe, argv_file = stand_in()
    out = tmp_path / "raw" / "asl-alphabet.zip"
    with pytest.raises(MobOptError) as err:
        download_dataset(SLUG, out, cli=str(exe), env={}, home=home)
    message = str(err.value)
    assert message == MISSING_CREDENTIALS.format(slug=SLUG, zip_name="asl-alphabet.zip")
    for needle in ("KAGGLE_USERNAME", "KAGGLE_KEY", "kaggle.json", "chmod 600", "KAGGLE_API_TOKEN", "Create New Token",
                   "https://www.kaggle.com/settings", "source: path", "path:", "asl-alphabet.zip", SLUG):
        assert needle in message, needle
    assert not argv_file.exists()
    assert not out.exists()


@pytest.mark.parametrize("source", ["env", "kaggle.json"])
def test_download_with_stand_in(tmp_path, home, stand_in, prepared_zip, caplog, source):
    caplog.set_level(logging.DEBUG, logger="mobopt")
    exe, argv_file = stand_in()
    if source == "env":
        env = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY}
    else:
        _kaggle_json(home / ".kaggle")
        env = {}
    out = tmp_path / "raw" / "asl-alphabet.zip"
    assert download_dataset(SLUG, out, cli=str(exe), env=env, home=home, timeout=60) == out
    assert out.read_bytes() == prepared_zip.read_bytes()
    record = json.loads(argv_file.read_text())
    argv = record["argv"]
    assert argv[:4] == ["datasets", "download", SLUG, "-p"] and len(argv) == 5
    assert record["home"] == str(home)  # the CLI saw the same home that was checked
    assert argv[4].startswith(str(out.parent))  # staged next to the output (same file system)
    assert sorted(p.name for p in out.parent.iterdir()) == ["asl-alphabet.zip"]  # temp dir removed
    assert "Dataset URL" in caplog.text and "debug: using" in caplog.text and "***" in caplog.text
    assert KEY not in caplog.text


def test_failing_cli_reports_exit_code_without_the_key(tmp_path, home, stand_in, caplog):
    caplog.set_level(logging.DEBUG, logger="mobopt")
    exe, argv_file = stand_in("fail")
    out = tmp_path / "raw" / "asl-alphabet.zip"
    with pytest.raises(MobOptError) as err:
        download_dataset(SLUG, out, cli=str(exe), env={"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY}, home=home)
    message = str(err.value)
    assert "exit code 1" in message and SLUG in message and "401 Client Error" in message and "***" in message
    assert KEY not in message and KEY not in caplog.text
    assert argv_file.exists()
    assert list(out.parent.iterdir()) == []  # neither the zip nor the temp dir


def test_unexpected_cli_output_and_timeout(tmp_path, home, stand_in):
    env = {"KAGGLE_API_TOKEN": TOKEN}
    out = tmp_path / "raw" / "asl-alphabet.zip"
    exe, _ = stand_in("two")
    with pytest.raises(MobOptError, match=r"exactly one \.zip .* asl-alphabet\.zip, extra\.zip"):
        download_dataset(SLUG, out, cli=str(exe), env=env, home=home)
    exe, _ = stand_in("sleep")
    with pytest.raises(MobOptError, match="did not finish within 1 s") as err:
        download_dataset(SLUG, out, cli=str(exe), env=env, home=home, timeout=1)
    assert TOKEN not in str(err.value)
    assert list(out.parent.iterdir()) == []


def test_missing_executable(tmp_path, home):
    env = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY, "PATH": str(tmp_path / "empty-bin")}
    for cli in ("kaggle", str(tmp_path / "no" / "kaggle")):
        with pytest.raises(MobOptError) as err:
            download_dataset(SLUG, tmp_path / "raw" / "asl-alphabet.zip", cli=cli, env=env, home=home)
        message = str(err.value)
        assert "pip install kaggle" in message and "kaggle_cli" in message and KEY not in message
    assert not (tmp_path / "raw").exists()


def test_cli_found_on_the_path_of_env(tmp_path, home, stand_in):
    exe, argv_file = stand_in()
    env = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY, "PATH": str(exe.parent)}
    out = download_dataset(SLUG, tmp_path / "raw" / "asl-alphabet.zip", env=env, home=home)
    assert out.is_file() and argv_file.exists()
