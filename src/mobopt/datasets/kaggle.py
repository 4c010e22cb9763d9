"""Download a Kaggle dataset with the official ``kaggle`` CLI, run in a subprocess.

Why a subprocess and not ``import kaggle``: importing the package authenticates
at import time, and some versions call ``exit(1)`` (``SystemExit``) when no
credentials are found, which would kill the workflow process with the CLI's
help text instead of our message.  Why check credentials ourselves first: the
CLI's complaint does not mention the alternative that needs no account setup
here (``source: path`` with a zip downloaded in the browser).

Secrets never leave this module: the CLI's output is logged, and quoted in
errors, only after every known key and token was replaced by ``***``.  The
lookup order mirrors kaggle 2.x (``kaggle/api/kaggle_api_extended.py`` and
``kagglesdk/kaggle_env.py``): access token, then username + key, then the
OAuth credentials of ``kaggle auth login``.  The zip is downloaded as is (no
``--unzip``) so its sha256 can be recorded and checked.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mobopt import MobOptError

log = logging.getLogger(__name__)

#: Formatted with ``slug`` (``owner/name``) and ``zip_name`` (``name.zip``, what the CLI writes).
MISSING_CREDENTIALS = """\
no Kaggle credentials found, needed to download the dataset {slug}. Either:
  1. give the kaggle CLI an API token: on https://www.kaggle.com/settings, section API, click "Create New Token",
     then either save the downloaded kaggle.json as ~/.kaggle/kaggle.json (or in $KAGGLE_CONFIG_DIR) and run
     `chmod 600 ~/.kaggle/kaggle.json`, or export KAGGLE_USERNAME and KAGGLE_KEY with the values from it;
     a new-style token can instead go in KAGGLE_API_TOKEN or ~/.kaggle/access_token (`kaggle auth login` also works);
  2. or download the zip yourself from https://www.kaggle.com/datasets/{slug} and set the dataset's config to
     `source: path` with `path:` pointing at the downloaded {zip_name}."""

#: How much of the CLI's output a failure message quotes.
TAIL_CHARS = 2000


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _home(env: Mapping[str, str], home: Path | None) -> Path:
    # The CLI expands ``~`` from its own HOME, which is the one in ``env``.
    if home is not None:
        return Path(home)
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def _config_dir(env: Mapping[str, str], home: Path) -> Path:
    """Where the CLI looks for kaggle.json: KAGGLE_CONFIG_DIR, else ~/.kaggle (XDG fallback on Linux)."""
    if env.get("KAGGLE_CONFIG_DIR"):
        return Path(env["KAGGLE_CONFIG_DIR"])
    legacy = home / ".kaggle"
    if sys.platform.startswith("linux") and not legacy.exists():
        return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"
    return legacy


def _token_files(env: Mapping[str, str], home: Path) -> list[Path]:
    """Files that may hold a bare access token.

    kaggle 2.x reads only ``~/.kaggle/access_token`` (and ``.txt``); the copy in
    KAGGLE_CONFIG_DIR is listed too, for other versions, after them.
    """
    folders = [home / ".kaggle"]
    if env.get("KAGGLE_CONFIG_DIR"):
        folders.append(Path(env["KAGGLE_CONFIG_DIR"]))
    return [folder / name for folder in folders for name in ("access_token", "access_token.txt")]


def _oauth_file(home: Path) -> Path:
    return home / ".kaggle" / "credentials.json"


def credential_source(env: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """Describe where the kaggle CLI will find credentials, or None when there are none.

    The description names an environment variable or a file, never a secret.
    ``env`` defaults to ``os.environ``, ``home`` to ``$HOME`` of ``env``.
    """
    env = _env(env)
    home = _home(env, home)
    if env.get("KAGGLE_API_TOKEN"):
        return "environment (KAGGLE_API_TOKEN)"
    for token in _token_files(env, home):
        if token.is_file():
            return str(token)
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "environment (KAGGLE_USERNAME/KAGGLE_KEY)"
    config = _config_dir(env, home) / "kaggle.json"
    if config.is_file():
        return str(config)
    if _oauth_file(home).is_file():
        return f"{_oauth_file(home)} (kaggle auth login)"
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def secrets(env: Mapping[str, str] | None = None, home: Path | None = None) -> list[str]:
    """Every secret the CLI could use or print, so that :func:`redact` can hide them."""
    env = _env(env)
    home = _home(env, home)
    found = [env.get("KAGGLE_KEY", ""), env.get("KAGGLE_API_TOKEN", "")]
    token_env = env.get("KAGGLE_API_TOKEN", "")
    if token_env and len(token_env) < 4096 and Path(token_env).is_file():  # the CLI accepts a path to a token file
        found.append(_read(Path(token_env)))
    found += [_read(path) for path in _token_files(env, home)]
    for config, keys in (
        (_config_dir(env, home) / "kaggle.json", ("key",)),
        (home / ".kaggle" / "kaggle.json", ("key",)),
        (_oauth_file(home), ("refresh_token", "access_token")),
    ):
        try:
            data = json.loads(config.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found += [str(data[key]) for key in keys if data.get(key)]
    return sorted({s for s in found if s}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """Replace each secret of 4 or more characters in ``text`` by ``***`` (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):  # TimeoutExpired carries bytes even with text=True
        return output.decode(errors="replace")
    return output or ""


def download_dataset(
    slug: str,
    out_zip: str | os.PathLike,
    *,
    cli: str = "kaggle",
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    timeout: float | None = None,
    require_credentials: bool = True,
) -> Path:
    """Download the Kaggle dataset ``slug`` (``owner/name``) as a zip to ``out_zip``; return ``out_zip``.

    Runs ``cli datasets download slug -p <temp dir>`` with ``env`` (default
    ``os.environ``; with ``home`` given, HOME is set to it so the CLI sees the
    same files this module checked), then moves the zip the CLI wrote into
    place atomically.  The temporary folder is removed in every case.

    ``require_credentials=False`` skips the up-front check: kaggle 2.x lets
    ``datasets download`` run anonymously for public datasets.
    """
    out_zip = Path(out_zip)
    env = _env(env)
    hidden = secrets(env, home)
    source = credential_source(env, home)
    zip_name = slug.rsplit("/", 1)[-1] + ".zip"
    if source is None and require_credentials:
        raise MobOptError(MISSING_CREDENTIALS.format(slug=slug, zip_name=zip_name))
    exe = shutil.which(cli, path=env.get("PATH") or None)
    if exe is None:
        raise MobOptError(
            f"kaggle CLI {cli!r} not found, needed to download {slug}; run `pip install kaggle` in the workflow's "
            "environment, or set the dataset option `kaggle_cli` to the path of the kaggle executable"
        )
    run_env = dict(env)
    if home is not None:
        run_env["HOME"] = str(home)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_zip.name}.", suffix=".kaggle", dir=out_zip.parent))
    cmd = [exe, "datasets", "download", slug, "-p", str(tmp)]
    try:
        log.info("downloading Kaggle dataset %s with %s (credentials: %s)", slug, exe, source or "none, anonymous")
        try:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace", env=run_env, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            tail = redact(_text(exc.output), hidden)[-TAIL_CHARS:]
            raise MobOptError(
                f"kaggle datasets download {slug} did not finish within {timeout:g} s; raise the timeout or download "
                f"the zip yourself and use `source: path`. Last output:\n{tail}"
            ) from None
        except OSError as exc:
            raise MobOptError(f"could not run the kaggle CLI {exe}: {exc}; set `kaggle_cli` to a working executable") from None
        output = redact(proc.stdout or "", hidden)
        for line in output.splitlines():
            if line.strip():
                log.debug("kaggle: %s", line.rstrip())
        if proc.returncode != 0:
            raise MobOptError(
                f"kaggle datasets download {slug} failed with exit code {proc.returncode}; check the credentials "
                f"({source or 'none found'}), that the dataset exists and that its rules are accepted on "
                f"https://www.kaggle.com/datasets/{slug}. Output:\n{output[-TAIL_CHARS:]}"
            )
        zips = sorted(tmp.glob("*.zip"))
        if len(zips) != 1:
            present = sorted(p.name for p in tmp.iterdir()) or ["nothing"]
            raise MobOptError(
                f"kaggle datasets download {slug} should leave exactly one .zip (expected {zip_name}) but wrote: "
                f"{', '.join(present)}"
            )
        os.replace(zips[0], out_zip)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("saved %s", out_zip)
    return out_zip
