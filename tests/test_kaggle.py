"""The Kaggle download against a stand-in ``kaggle`` executable: offline, and never the real home."""

from __future__ import annotations

import json
import logging
import sys
import time
import zipfile

import pytest

from mobopt import MobOptError
from mobopt.datasets.kaggle import (
    MISSING_CREDENTIALS,
    USER_PATH_ENV,
    credential_source,
    download_dataset,
    redact,
    resolve_cli,
    secrets,
    staging_folder,
)

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
if mode == "leaky":  # what a client's debug output may show: derived forms of the key
    import base64, urllib.parse
    key = os.environ["KAGGLE_KEY"]
    print("Authorization: Basic " + base64.b64encode(("alice:" + key).encode()).decode())
    print("blob " + base64.b64encode(b"xy" + key.encode() + b"tail").decode() + " url " + urllib.parse.quote(key, safe=""))
if mode == "slow":  # a progress bar redrawn with CR (no newline until the end), then a silence
    for i in range(30):
        bar = f"\\r{{i * 3}}%|#   | {{i}}M/90M [00:0{{i // 10}}<00:05, 9.0MB/s] key " + secrets[0]
        print(bar, end="", file=sys.stderr, flush=True)
        time.sleep(0.05)
    print(file=sys.stderr, flush=True)
    Path(args[4], "asl-alphabet.zip").write_bytes(b"PK partial")
    time.sleep(1.0)
if mode == "partial":  # kaggle 2.x: a marked partial is resumed by the next run, which appends the rest
    zip_path, marker = Path(args[4], "asl-alphabet.zip"), Path(args[4], "asl-alphabet.zip.kaggle-partial")
    data = Path({zip_path!r}).read_bytes()
    if not marker.exists():
        zip_path.write_bytes(data[:100])
        marker.write_text('{{"validator": "etag", "size": %d}}' % len(data))
        print("Download failed after 5 retries. You can resume by running the same command again.")
        sys.exit(1)
    with open(zip_path, "ab") as fh:
        fh.write(data[zip_path.stat().st_size:])
    marker.unlink()
    print(f"Resuming from 100 bytes")
    sys.exit(0)
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


def test_derived_forms_of_the_key_are_redacted(tmp_path, home, stand_in, caplog):
    """An `Authorization: Basic` header is base64(user:key): it must not reach the log any more than the key."""
    import base64
    import urllib.parse

    caplog.set_level(logging.DEBUG, logger="mobopt")
    special = KEY + "/+="  # URL-encoding changes it
    env = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": special}
    found = secrets(env, home)
    basic = base64.b64encode(f"alice:{special}".encode()).decode()
    assert basic in found and urllib.parse.quote(special, safe="") in found and "alice" not in found
    for prefix in (b"", b"x", b"xy"):  # the key inside a longer base64 text, at each alignment
        blob = base64.b64encode(prefix + special.encode() + b"more").decode()
        assert "***" in redact(blob, found) and special not in redact(blob, found)
    exe, _ = stand_in("leaky")
    download_dataset(SLUG, tmp_path / "raw" / "asl-alphabet.zip", cli=str(exe), env=env, home=home)
    assert "Authorization: Basic ***" in caplog.text
    assert basic not in caplog.text and urllib.parse.quote(special, safe="") not in caplog.text
    leaked_b64 = base64.b64encode(b"xy" + special.encode() + b"tail").decode()
    assert leaked_b64 not in caplog.text and special not in caplog.text
    assert redact("short abc", secrets({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "abcd"}, home)) == "short abc"


def test_a_bare_name_is_found_on_the_users_path_first(tmp_path, home, stand_in, caplog):
    """The job's PATH starts with the workflow's own bin folder (with its kaggle); the user's PATH comes first."""
    caplog.set_level(logging.INFO, logger="mobopt")
    exe, argv_file = stand_in()
    workflow_bin = tmp_path / "venv-bin"
    workflow_bin.mkdir()
    (workflow_bin / "kaggle").write_text("#!/bin/sh\necho wrong kaggle >&2\nexit 3\n")
    (workflow_bin / "kaggle").chmod(0o755)
    env = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY, "PATH": f"{workflow_bin}:{exe.parent}",
           USER_PATH_ENV: f"{tmp_path / 'empty'}:{exe.parent}"}
    assert resolve_cli("kaggle", env) == str(exe)
    download_dataset(SLUG, tmp_path / "raw" / "asl-alphabet.zip", env=env, home=home)
    assert argv_file.exists() and f"with {exe} (credentials" in caplog.text
    # not on the user's PATH: the workflow's copy is the fallback; a path is taken as given
    assert resolve_cli("kaggle", {**env, USER_PATH_ENV: str(tmp_path / "empty")}) == str(workflow_bin / "kaggle")
    assert resolve_cli(str(workflow_bin / "kaggle"), env) == str(workflow_bin / "kaggle")
    assert resolve_cli("kaggle", {"PATH": str(tmp_path / "empty")}) is None


def test_progress_is_logged_while_the_cli_runs(tmp_path, home, stand_in, caplog):
    """A redrawn progress bar (\\r, no newline) and a silence both show in the log, redacted, before the end."""
    caplog.set_level(logging.INFO, logger="mobopt")
    exe, _ = stand_in("slow")
    env = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY}
    start = time.time()
    download_dataset(SLUG, tmp_path / "raw" / "asl-alphabet.zip", cli=str(exe), env=env, home=home,
                     progress_interval=0.3)
    end = time.time()
    progress = [r for r in caplog.records if "9.0MB/s]" in r.getMessage()]
    assert 2 <= len(progress) <= 12  # throttled: 30 redraws, one line per 0.3 s
    assert progress[0].created < end - 1.0  # streamed, not collected at exit
    assert all("key ***" in r.getMessage() for r in progress) and KEY not in caplog.text
    assert "87%|#" in progress[-1].getMessage()  # the last state is always logged
    quiet = [r for r in caplog.records if "still running; 10 bytes of asl-alphabet.zip on disk" in r.getMessage()]
    assert quiet and all(start < r.created < end for r in quiet)


def test_a_failed_download_is_resumed_by_the_next_run(tmp_path, home, stand_in, prepared_zip):
    exe, _ = stand_in("partial")
    env = {"KAGGLE_USERNAME": "alice", "KAGGLE_KEY": KEY}
    out = tmp_path / "raw" / "asl-alphabet.zip"
    staging = staging_folder(out)
    with pytest.raises(MobOptError, match="exit code 1.*partial download is kept in .*the next run resumes it"):
        download_dataset(SLUG, out, cli=str(exe), env=env, home=home)
    assert (staging / "asl-alphabet.zip").stat().st_size == 100 and not out.exists()
    (staging / "stale.zip").write_bytes(b"PK")  # anything else in the folder is cleared before the next run
    download_dataset(SLUG, out, cli=str(exe), env=env, home=home)
    assert out.read_bytes() == prepared_zip.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["asl-alphabet.zip"]
