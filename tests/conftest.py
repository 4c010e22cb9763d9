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
import time
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
        """Queue actions for ``/name``: ``500``, ``404``, ``("truncate", n_bytes)`` or ``("trickle", seconds)``
        (the body one byte at a time, ``seconds`` apart: never silent long enough for a read timeout)."""
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
            if isinstance(action, tuple) and action[0] == "trickle":
                try:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(action[1])
                except OSError:  # the client gave up: what the test wants
                    pass
                self.close_connection = True
                return
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
    from mobopt.datasets.standins import write_digits_as_mnist

    out = tmp_path_factory.mktemp("digits-idx")
    write_digits_as_mnist(out)
    return out


@pytest.fixture(scope="session")
def prepared_digits(tmp_path_factory, digits_idx) -> Path:
    """Digits through the real fetch (source: path) and prepare code."""
    from mobopt.datasets import fetch, mnist

    raw = tmp_path_factory.mktemp("raw")
    out = tmp_path_factory.mktemp("prepared")
    fetch.fetch_files(mnist.MNIST_FILES, {"source": "path", "path": str(digits_idx), "verify": False}, raw)
    mnist.prepare(raw, out, {"validation_fraction": 0.1}, seed=1)
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


# ------------------------------------------------- stand-ins for the MobileNetV2 datasets

def make_asl_zip(path: Path, *, per_class: int = 5, size=(48, 48), official_test: bool = True, extra=None) -> Path:
    """A zip in the layout of Kaggle's grassknoted/asl-alphabet: real JPEGs, fewer and smaller.

    ``extra`` maps archive member names to bytes (bad files, path-traversal members).
    """
    import tempfile
    import zipfile

    from mobopt.datasets.asl_alphabet import ASL_CLASSES, ASL_TEST_DIR, ASL_TRAIN_DIR
    from mobopt.datasets.standins import write_fake_class_tree

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_fake_class_tree(root / ASL_TRAIN_DIR, ASL_CLASSES, per_class, size=size, seed=1, workers=1)
        if official_test:
            write_fake_class_tree(root / "official", ASL_CLASSES, 1, size=size, seed=2, workers=1)
            (root / ASL_TEST_DIR).mkdir(parents=True)
            for cls in ASL_CLASSES:
                if cls != "del":  # Kaggle's test folder has no del_test.jpg
                    (root / "official" / cls / f"{cls}1.jpg").rename(root / ASL_TEST_DIR / f"{cls}_test.jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as zf:
            for f in sorted(root.rglob("*")):
                if f.is_file() and "official" not in f.parts:
                    zf.write(f, f.relative_to(root).as_posix())
            for name, data in (extra or {}).items():
                zf.writestr(name, data)
    return path


def make_imagenette_tgz(path: Path, *, train_per_class: int = 6, val_per_class: int = 4, size=(60, 40)) -> Path:
    """A .tgz in Imagenette's layout (``<stem>/{train,val}/<wnid>/*.JPEG`` + noisy_imagenette.csv); half of
    each val class is named ``ILSVRC2012_val_*`` like ImageNet's own validation images."""
    import tarfile
    import tempfile

    from mobopt.datasets.imagenet_subset import IMAGENETTE_WNIDS
    from mobopt.datasets.standins import write_fake_class_tree

    stem = path.name.removesuffix(".tgz")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / stem
        write_fake_class_tree(root / "train", IMAGENETTE_WNIDS, train_per_class, size=size, seed=3, workers=1)
        write_fake_class_tree(root / "val", IMAGENETTE_WNIDS, val_per_class, size=size, seed=4, workers=1)
        for i, f in enumerate(sorted((root / "val").rglob("*.jpg"))):
            name = f"ILSVRC2012_val_{i:08d}.JPEG" if i % 2 == 0 else f"{f.parent.name}_{i}.JPEG"
            f.rename(f.with_name(name))
        for f in sorted((root / "train").rglob("*.jpg")):
            f.rename(f.with_suffix(".JPEG"))
        (root / "noisy_imagenette.csv").write_text("path,noisy_labels_0\n")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as tf:
            tf.add(root, arcname=stem)
    return path


def write_mobilenetv2_weights(folder: Path, *, alpha: float = 0.35, include_top: bool, input_size: int = 32) -> Path:
    """A weight file in the legacy Keras HDF5 format of the published ones, named as Keras names them.

    Random weights (the real ones cannot be downloaded here), saved from a
    model of the same architecture, so the loading path is the real one.
    """
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    from mobopt.models.pretrained import weight_files

    shape = (input_size, input_size, 3)
    name = weight_files({"name": "mobilenetv2", "alpha": alpha, "include_top": include_top}, shape)[0]
    model = keras.applications.MobileNetV2(input_shape=shape, alpha=alpha, include_top=include_top, weights=None,
                                           pooling=None if include_top else "avg")
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / name, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return folder / name


def write_kaggle_stand_in(bin_dir: Path, zip_path: Path) -> Path:
    """An executable that behaves like ``kaggle datasets download <slug> -p DIR``: copies ``zip_path`` there.

    It refuses to run without credentials in its environment, as the real one does for private data.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "kaggle"
    exe.write_text(f"""#!{sys.executable}
import os, shutil, sys
args = sys.argv[1:]
assert args[:2] == ["datasets", "download"] and args[3] == "-p", args
if not (os.environ.get("KAGGLE_KEY") or os.environ.get("KAGGLE_API_TOKEN")):
    sys.exit("401 - Unauthorized")
os.makedirs(args[4], exist_ok=True)
shutil.copyfile({str(zip_path)!r}, os.path.join(args[4], args[2].split("/")[1] + ".zip"))
print("Downloading asl-alphabet.zip to", args[4])
""")
    exe.chmod(0o755)
    return exe


# ------------------------------------------------- stand-ins for a phone (adb + benchmark_model)

ADB_SERIAL = "emulator-5554"


def write_adb_stand_in(bin_dir: Path) -> Path:
    """An ``adb`` that plays one attached phone whose file system and shell are this machine's.

    ``adb devices`` lists ``emulator-5554`` in the state of $STANDIN_ADB_STATE (default ``device``;
    ``none`` lists no phone); ``push`` copies (fails like a full phone when $STANDIN_ADB_FAIL_PUSH is
    set); ``shell CMD`` runs CMD with ``sh -c`` here, so background processes, ``taskset`` and
    ``/proc/<pid>`` behave as on a phone.  Every call is appended to $STANDIN_ADB_LOG when set.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "adb"
    exe.write_text(f"""#!{sys.executable}
import os, shutil, subprocess, sys
args = sys.argv[1:]
if os.environ.get("STANDIN_ADB_LOG"):
    with open(os.environ["STANDIN_ADB_LOG"], "a") as fh:
        fh.write(repr(args) + "\\n")
state = os.environ.get("STANDIN_ADB_STATE", "device")
if args[:1] == ["-s"]:
    if args[1] != {ADB_SERIAL!r} or state == "none":
        sys.exit(f"adb: device '{{args[1]}}' not found")
    args = args[2:]
if args == ["devices"]:
    print("List of devices attached")
    if state != "none":
        print({ADB_SERIAL!r} + "\\t" + state)
    print()
    sys.exit(0)
if args[0] == "push":
    if os.environ.get("STANDIN_ADB_FAIL_PUSH"):
        sys.exit(f"adb: error: failed to copy '{{args[1]}}' to '{{args[2]}}': remote No space left on device")
    shutil.copyfile(args[1], args[2])
    print(f"{{args[1]}}: 1 file pushed")
    sys.exit(0)
if args[0] == "shell":
    sys.exit(subprocess.call(["sh", "-c", args[1]]))
sys.exit(f"stand-in adb: unsupported command {{args}}")
""")
    exe.chmod(0o755)
    return exe


def write_benchmark_model_emulator(path: Path) -> Path:
    """An executable that behaves like LiteRT's ``benchmark_model`` (tests/standins/benchmark_model.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    script = Path(__file__).parent / "standins" / "benchmark_model.py"
    path.write_text(f"#!{sys.executable}\nimport runpy\nrunpy.run_path({str(script)!r}, run_name='__main__')\n")
    path.chmod(0o755)
    return path
