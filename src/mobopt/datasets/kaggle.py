"""Download a Kaggle dataset with the official ``kaggle`` CLI, run in a subprocess.

Why a subprocess and not ``import kaggle``: importing the package authenticates
at import time, and some versions call ``exit(1)`` (``SystemExit``) when no
credentials are found, which would kill the workflow process with the CLI's
help text instead of our message.  Why check credentials ourselves first: the
CLI's complaint does not mention the alternative that needs no account setup
here (``source: path`` with a zip downloaded in the browser).

Which ``kaggle`` runs: a bare name (``kaggle_cli: kaggle``, the default) is
looked up on the user's PATH as the job received it (:data:`USER_PATH_ENV`,
exported by the workflow before it puts its own interpreter's folder first),
then on the job's PATH, where the workflow's pinned copy is the fallback.
Looking only at the job's PATH would always find the workflow's copy, whatever
the user installed or put first.  The full path of the executable that ran is
logged and recorded in SOURCE.json.

Progress and resume: the CLI's output is streamed into the log as it comes
(its progress bar redrawn at most every :data:`PROGRESS_INTERVAL` seconds, and
a line giving the bytes on disk so far when the CLI says nothing for that
long), never held back until it exits: a 1 GB download must show it is alive.
kaggle 2.2.4 has no resume flag, but resumes by itself when run again on the
same folder (``download_file``: an HTTP Range request, allowed only when the
``<zip>.kaggle-partial`` marker it writes proves the partial bytes belong to
the same remote file) unless ``--force`` is given, which we never pass.  So
the CLI writes into a fixed staging folder beside the output
(``.<zip>.kaggle``), kept after a failure only when it holds such a marked
partial: the next run resumes it instead of starting over.

Why not kagglehub (1.0.3 read): ``dataset_download`` extracts the archive with
plain ``zipfile.extractall`` / ``tarfile`` and then deletes it, into its own
cache under ``~/.cache/kagglehub``.  We need the zip itself (its sha256 is
recorded and can be pinned; :mod:`mobopt.datasets.archives` extracts it with
member checks and size limits), and an in-process download brings back the
import-time and credential behaviour the subprocess avoids.  Its resume and
md5 check are what the kaggle CLI pinned here does too (the same kagglesdk
underneath), so it would add a dependency without adding a capability.

Secrets never leave this module: the CLI's output is logged, and quoted in
errors, only after every known key and token was replaced by ``***``, and so
were the forms a client derives from them and may print: base64 of
``user:key`` (an ``Authorization: Basic`` header), base64 of a key alone at
any alignment (a token inside a longer base64 blob) and URL-encoded keys.  The
lookup order mirrors kaggle 2.x (``kaggle/api/kaggle_api_extended.py`` and
``kagglesdk/kaggle_env.py``): access token, then username + key, then the
OAuth credentials of ``kaggle auth login``.  The zip is downloaded as is (no
``--unzip``) so its sha256 can be recorded and checked.
"""

from __future__ import annotations

import base64
import codecs
import json
import logging
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus

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
#: Longest gap, in seconds, between two lines the download writes to the log while the CLI runs.
PROGRESS_INTERVAL = 30.0
#: The user's PATH as the job received it, before the workflow put its interpreter's folder first
#: (exported by workflow/rules/common.smk): where a bare ``kaggle_cli`` name is looked up first.
USER_PATH_ENV = "MOBOPT_USER_PATH"
#: The marker kaggle 2.x writes beside a partial download that it may resume.
RESUME_MARKER = ".kaggle-partial"
#: A tqdm progress bar (``45%|####5     | 470M/1.03G [00:10<00:12, 46.0MB/s]``): redrawn, not a new message.
_PROGRESS_LINE = re.compile(r"\d+%\||\d[\d.]*[kMGT]?(?:i?B)?/s\]")


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
    """Every secret the CLI could use or print, and the forms derived from them (:func:`derived_forms`),
    so that :func:`redact` can hide them.  Usernames are not secrets and are not listed."""
    env = _env(env)
    home = _home(env, home)
    found = [env.get("KAGGLE_KEY", ""), env.get("KAGGLE_API_TOKEN", "")]
    users = [env.get("KAGGLE_USERNAME", "")]
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
            users.append(str(data.get("username") or ""))
    users = [u for u in users if u]
    hidden = {form for secret in found if secret for form in derived_forms(secret, users)}
    return sorted(hidden - set(users), key=len, reverse=True)


def derived_forms(secret: str, users: Iterable[str] = ()) -> set[str]:
    """``secret`` and what a client may print instead of it.

    * URL-encoded (``%2F`` and ``%2f`` spellings, ``+`` for spaces);
    * base64 of ``user:secret`` for each of ``users`` (HTTP Basic auth), standard and URL-safe;
    * base64 of the secret inside any longer base64 text: whatever precedes it,
      its encoding contains one of three substrings (one per alignment modulo 3
      bytes), the characters that depend on the secret's bytes alone.  Kept when
      8 characters or longer, so short ones cannot blank out unrelated text.
    """
    forms = {secret}
    for encoded in (quote(secret, safe=""), quote_plus(secret)):
        forms |= {encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)}
    raw = secret.encode()
    for user in users:
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.add(encode(f"{user}:{secret}".encode()).decode())
    for offset in range(3):
        start, end = -(-8 * offset // 6), (8 * offset + 8 * len(raw)) // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            middle = encode(bytes(offset) + raw).decode()[start:end]
            if len(middle) >= 8:
                forms.add(middle)
    return forms


def redact(text: str, secrets: list[str]) -> str:
    """Replace each secret of 4 or more characters in ``text`` by ``***`` (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def resolve_cli(cli: str, env: Mapping[str, str] | None = None) -> str | None:
    """The full path of the kaggle executable ``cli`` names, or None when there is none.

    A path (``/opt/kaggle/bin/kaggle``, ``./kaggle``) is taken as given.  A
    bare name is looked up on the user's PATH (:data:`USER_PATH_ENV` of
    ``env``) first, then on ``env``'s PATH (module docstring).
    """
    env = _env(env)
    if os.sep in cli or (os.altsep and os.altsep in cli):
        found = shutil.which(cli)
        return os.path.abspath(found) if found else None
    for search in (env.get(USER_PATH_ENV), env.get("PATH")):
        if search:
            found = shutil.which(cli, path=search)
            if found:
                return os.path.abspath(found)
    if not env.get(USER_PATH_ENV) and not env.get("PATH"):  # nothing to search in env: this process's PATH
        found = shutil.which(cli)
        return os.path.abspath(found) if found else None
    return None


class _Output:
    """The CLI's output as it arrives: split into lines at ``\\n`` and ``\\r`` (a redrawn progress bar), redacted,
    logged (progress at most every ``interval`` seconds, anything else at once) and its tail kept for errors."""

    #: A line longer than this is cut, after redaction, keeping what might be the start of a secret.
    MAX_LINE = 1 << 16

    def __init__(self, hidden: list[str], interval: float, staged: Path) -> None:
        self.hidden, self.interval, self.staged = hidden, interval, staged
        self.keep = max((len(h) for h in hidden), default=1)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.buffer = ""
        self.tail = ""
        self.pending: str | None = None  # the latest progress line not logged yet
        self.last_log = self.last_progress = time.monotonic()

    def feed(self, data: bytes) -> None:
        self.buffer += self.decoder.decode(data, final=not data)
        *lines, self.buffer = re.split(r"[\r\n]", self.buffer)
        if len(self.buffer) > self.MAX_LINE:
            # redact first: a secret cut by the split is then either already *** or whole in the kept part
            text = redact(self.buffer, self.hidden)
            lines.append(text[:-self.keep])
            self.buffer = text[-self.keep:]
        if not data and self.buffer:
            lines.append(self.buffer)
            self.buffer = ""
        for line in lines:
            self._line(redact(line, self.hidden).rstrip())

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        self.tail = (self.tail + line + "\n")[-TAIL_CHARS:]
        if _PROGRESS_LINE.search(line):
            self.pending = line
            if time.monotonic() - self.last_progress < self.interval:
                return
        else:
            self.pending = None
        self._log(line, progress=_PROGRESS_LINE.search(line) is not None)

    def _log(self, line: str, *, progress: bool = False) -> None:
        log.info("kaggle: %s", line)
        self.last_log = time.monotonic()
        if progress:
            self.last_progress, self.pending = self.last_log, None

    def tick(self) -> None:
        """Called when the CLI is quiet: the latest progress, or the bytes on disk, once per interval."""
        now = time.monotonic()
        if self.pending is not None and now - self.last_progress >= self.interval:
            self._log(self.pending, progress=True)
        elif now - self.last_log >= self.interval:
            size = self.staged.stat().st_size if self.staged.is_file() else 0
            log.info("kaggle: still running; %d bytes of %s on disk so far", size, self.staged.name)
            self.last_log = now

    def close(self) -> None:
        self.feed(b"")
        if self.pending is not None:
            self._log(self.pending, progress=True)


def _run_streaming(cmd: list[str], env: Mapping[str, str], timeout: float | None, output: _Output) -> int | None:
    """Run ``cmd``, feeding its output to ``output`` as it comes; its exit status, or None when ``timeout`` ran out.

    ``select`` on the pipe (POSIX; the workflow's platforms) wakes at least every ``output.interval``
    seconds, so quiet spells are reported and the timeout is kept while the CLI says nothing.
    """
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(env))
    try:
        fd = proc.stdout.fileno()
        while True:
            left = None if timeout is None else timeout - (time.monotonic() - start)
            if left is not None and left <= 0:
                proc.kill()
                proc.wait()
                return None
            wait = min(1.0, output.interval, left if left is not None else 1.0)
            ready, _, _ = select.select([fd], [], [], max(wait, 0.01))
            if ready:
                data = os.read(fd, 1 << 16)
                if not data:
                    break
                output.feed(data)
            output.tick()
        return proc.wait()
    finally:
        if proc.poll() is None:  # interrupted (KeyboardInterrupt, an error in logging): never leave it running
            proc.kill()
            proc.wait()
        proc.stdout.close()
        output.close()


def staging_folder(out_zip: Path) -> Path:
    """Where the CLI downloads ``out_zip``: a fixed folder beside it, so a later run can resume a partial."""
    return out_zip.parent / f".{out_zip.name}.kaggle"


def _resumable(staging: Path, zip_name: str) -> bool:
    partial = staging / zip_name
    return partial.is_file() and partial.stat().st_size > 0 and (staging / (zip_name + RESUME_MARKER)).is_file()


def download_dataset(
    slug: str,
    out_zip: str | os.PathLike,
    *,
    cli: str = "kaggle",
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    timeout: float | None = None,
    require_credentials: bool = True,
    progress_interval: float = PROGRESS_INTERVAL,
    staging: Path | None = None,
) -> Path:
    """Download the Kaggle dataset ``slug`` (``owner/name``) as a zip to ``out_zip``; return ``out_zip``.

    Runs ``cli datasets download slug -p <staging folder>`` with ``env``
    (default ``os.environ``; with ``home`` given, HOME is set to it so the CLI
    sees the same files this module checked), logging its output as it comes
    (every ``progress_interval`` seconds at least), then moves the zip the CLI
    wrote into place atomically.  The staging folder (default
    :func:`staging_folder` of ``out_zip``; give the final name's when
    ``out_zip`` is a temporary one) is removed, unless a failed run left a
    partial download the CLI can resume (module docstring).

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
    exe = resolve_cli(cli, env)
    if exe is None:
        raise MobOptError(
            f"kaggle CLI {cli!r} not found, needed to download {slug}; run `pip install kaggle` in the workflow's "
            "environment, or set the dataset option `kaggle_cli` to the path of the kaggle executable"
        )
    run_env = dict(env)
    run_env["PYTHONUNBUFFERED"] = "1"  # a Python CLI's prints reach the log as they happen, not at exit
    if home is not None:
        run_env["HOME"] = str(home)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(staging) if staging is not None else staging_folder(out_zip)
    staging.mkdir(exist_ok=True)
    for stale in staging.iterdir():  # only what the CLI can resume survives from an earlier run
        if stale.name in (zip_name, zip_name + RESUME_MARKER):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    resuming = _resumable(staging, zip_name)
    cmd = [exe, "datasets", "download", slug, "-p", str(staging)]
    keep = False
    try:
        log.info("downloading Kaggle dataset %s with %s (credentials: %s)%s", slug, exe, source or "none, anonymous",
                 f"; resuming the {(staging / zip_name).stat().st_size} bytes an earlier run left" if resuming else "")
        output = _Output(hidden, progress_interval, staging / zip_name)
        try:
            status = _run_streaming(cmd, run_env, timeout, output)
        except OSError as exc:
            raise MobOptError(f"could not run the kaggle CLI {exe}: {exc}; set `kaggle_cli` to a working executable") from None
        keep = _resumable(staging, zip_name)
        resume_hint = (f" The partial download is kept in {staging}: the next run resumes it." if keep else "")
        if status is None:
            raise MobOptError(
                f"kaggle datasets download {slug} did not finish within {timeout:g} s; raise the timeout or download "
                f"the zip yourself and use `source: path`.{resume_hint} Last output:\n{output.tail}"
            )
        if status != 0:
            raise MobOptError(
                f"kaggle datasets download {slug} ({exe}) failed with exit code {status}; check the credentials "
                f"({source or 'none found'}), that the dataset exists and that its rules are accepted on "
                f"https://www.kaggle.com/datasets/{slug}.{resume_hint} Output:\n{output.tail}"
            )
        keep = False
        zips = sorted(staging.glob("*.zip"))
        if len(zips) != 1:
            present = sorted(p.name for p in staging.iterdir()) or ["nothing"]
            raise MobOptError(
                f"kaggle datasets download {slug} should leave exactly one .zip (expected {zip_name}) but wrote: "
                f"{', '.join(present)}"
            )
        os.replace(zips[0], out_zip)
    finally:
        if not keep:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("saved %s", out_zip)
    return out_zip
