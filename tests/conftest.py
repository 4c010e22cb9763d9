"""Shared fixtures: offline data in the real on-disk formats and a local HTTP server.

The server serves a folder on 127.0.0.1 with HTTP Range support, and can be told
to fail the next requests for a path in a chosen way (HTTP 500, a body cut short
after some bytes), so the real download code is exercised against real sockets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import defaultdict
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class FaultyServer:
    """What the handler should do with the next requests of each path, and what it saw."""

    def __init__(self, root: Path):
        self.root = root
        self.plans: dict[str, list] = defaultdict(list)
        self.requests: list[tuple[str, str | None]] = []
        self.url = ""

    def fail(self, name: str, *actions) -> None:
        """Queue actions for ``/name``: ``500``, ``404`` or ``("truncate", n_bytes)``."""
        self.plans["/" + name].extend(actions)


def _handler(state: FaultyServer):
    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(state.root), **kwargs)

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):  # noqa: N802
            state.requests.append((self.path, self.headers.get("Range")))
            plan = state.plans.get(self.path)
            action = plan.pop(0) if plan else None
            if action in (500, 404):
                self.send_error(action)
                return
            file = state.root / self.path.lstrip("/")
            if not file.is_file():
                self.send_error(404)
                return
            data = file.read_bytes()
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if isinstance(action, tuple) and action[0] == "truncate":
                self.wfile.write(body[: action[1]])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    state = FaultyServer(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def digits_idx(tmp_path_factory) -> Path:
    """scikit-learn's digits written as the four MNIST IDX .gz files."""
    from mobopt.datasets import write_digits_as_mnist

    out = tmp_path_factory.mktemp("digits-idx")
    write_digits_as_mnist(out)
    return out


@pytest.fixture(scope="session")
def prepared_digits(tmp_path_factory, digits_idx) -> Path:
    """Digits through the real fetch (source: path) and prepare code."""
    from mobopt import datasets

    raw = tmp_path_factory.mktemp("raw")
    out = tmp_path_factory.mktemp("prepared")
    datasets.fetch_files(datasets.MNIST_FILES, {"source": "path", "path": str(digits_idx), "verify": False}, raw)
    datasets.prepare_mnist(raw, out, {"validation_fraction": 0.1}, seed=1)
    return out


def mobopt_cli(*args, check=True, timeout=900, cwd=None, env=None):
    """Run ``python -m mobopt`` in a fresh process, as the workflow does."""
    proc = subprocess.run([sys.executable, "-m", "mobopt", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"mobopt {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


#: A ViT small enough to train in seconds, big enough to learn the digits.
TINY_SPEC = {
    "model": {"name": "vit", "patch_size": 7, "dim": 48, "depth": 2, "heads": 2, "mlp_dim": 96,
              "head_hidden": 32, "dropout": 0.0},
    "train": {"epochs": 30, "batch_size": 64, "learning_rate": 0.002, "warmup_epochs": 2, "threads": 2},
}


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, prepared_digits) -> Path:
    """The tiny ViT trained on digits by the real CLI (a fresh process, pinned threads)."""
    import json

    out = tmp_path_factory.mktemp("model")
    mobopt_cli("train", "--experiment", "tiny", "--data", prepared_digits, "--out", out,
               "--spec", json.dumps(TINY_SPEC), "--seed", 1)
    return out
