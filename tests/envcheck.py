"""What each conda environment in envs/ must run, checked inside an environment built from that file alone.

``tests/test_envs.py`` builds a fresh virtualenv per envs/*.yaml (only that file's
pins, no mobopt install: the workflow puts ``src`` on PYTHONPATH as here) and runs
this script in it::

    <venv>/bin/python tests/envcheck.py ENV WORKDIR FIXTURES_JSON

For ENV it imports what every command its rules run imports (read from the
command functions' own ``import`` statements, so a new import is checked without
editing this file), then runs those commands on tiny inputs as the rules do.
Standard library and the env's packages only: nothing from the test suite.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

#: The ``mobopt`` commands the rules run in each environment (tests/test_envs.py checks this against
#: workflow/rules/*.smk), plus the ones those commands start in fresh processes (bench-run, op-profile).
ENV_COMMANDS: dict[str, set[str]] = {
    "data.yaml": {"download", "prepare", "fetch-weights", "fetch-benchmark-model"},
    "litert.yaml": {"bench", "bench-run", "op-profile", "cpu-peak", "evaluate", "setup-arm-emulation"},
    "report.yaml": {"table1", "table2", "paper-table2", "paper-vs-reproduced", "accuracy-table", "op-profile-table",
                    "variants-table", "training-curves", "evaluation-figure", "latency-figure", "size-figure",
                    "pareto-figure", "roofline-figure", "sensitivity-figure", "summary", "cost-table",
                    "second-study-table", "search", "isa-table"},
    "tf.yaml": {"train", "convert", "prune", "sensitivity", "select-precision", "peak-models", "evaluate", "model-cost"},
}


def command_imports(command: str) -> set[str]:
    """Modules a command's function imports (its deferred ``from mobopt... import`` lines)."""
    from mobopt import cli

    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    func = sub.choices[command].get_default("func")
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            for alias in node.names:  # `from mobopt.bench import peak` names a module
                if importlib.util.find_spec(node.module) and importlib.util.find_spec(node.module).submodule_search_locations:
                    if importlib.util.find_spec(f"{node.module}.{alias.name}"):
                        out.add(f"{node.module}.{alias.name}")
    return out


def mobopt(*args: str) -> None:
    """``python -m mobopt ARGS`` in a fresh process, as a rule runs it; fails with its stderr."""
    proc = subprocess.run([sys.executable, "-m", "mobopt", *args], capture_output=True, text=True, timeout=900)
    if proc.returncode:
        raise SystemExit(f"mobopt {' '.join(args[:1])} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def tiny_tflite(path: Path, image_shape=(28, 28, 1), classes: int = 10) -> Path:
    """A float32 classifier written with LiteRT's flatbuffer schema, no TensorFlow:
    RESHAPE to a vector -> FULLY_CONNECTED (seeded random weights) -> SOFTMAX."""
    import numpy as np

    from mobopt.litert import flatbuffer

    s = flatbuffer.schema()
    features = int(np.prod(image_shape))
    rng = np.random.default_rng(0)
    consts = {2: np.array([1, features], np.int32), 3: rng.normal(0, 0.05, (classes, features)).astype(np.float32),
              4: np.zeros(classes, np.float32)}
    model = s.ModelT()
    model.version = 3
    model.buffers = []
    for i in range(8):  # buffer 0 is the empty sentinel; tensor i keeps its data in buffer i + 1
        buf = s.BufferT()
        buf.data = np.frombuffer(consts[i - 1].tobytes(), np.uint8) if i - 1 in consts else None
        model.buffers.append(buf)
    specs = [("input", [1, *image_shape], s.TensorType.FLOAT32), ("flat", [1, features], s.TensorType.FLOAT32),
             ("shape", [2], s.TensorType.INT32), ("weights", [classes, features], s.TensorType.FLOAT32),
             ("bias", [classes], s.TensorType.FLOAT32), ("logits", [1, classes], s.TensorType.FLOAT32),
             ("probs", [1, classes], s.TensorType.FLOAT32)]
    graph = s.SubGraphT()
    graph.tensors = []
    for i, (name, shape, kind) in enumerate(specs):
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), shape, kind, i + 1
        graph.tensors.append(t)
    graph.inputs, graph.outputs = [0], [6]
    model.operatorCodes = []
    for code in (s.BuiltinOperator.RESHAPE, s.BuiltinOperator.FULLY_CONNECTED, s.BuiltinOperator.SOFTMAX):
        oc = s.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, code, 1
        model.operatorCodes.append(oc)
    ops = []
    for index, (inputs, outputs) in enumerate((([0, 2], [1]), ([1, 3, 4], [5]), ([5], [6]))):
        op = s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, inputs, outputs
        ops.append(op)
    ops[1].builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    ops[1].builtinOptions = s.FullyConnectedOptionsT()
    ops[2].builtinOptionsType = s.BuiltinOptions.SoftmaxOptions
    ops[2].builtinOptions = s.SoftmaxOptionsT()
    ops[2].builtinOptions.beta = 1.0
    graph.operators = ops
    model.subgraphs = [graph]
    path.write_bytes(flatbuffer.write(model))
    return path


def check_data(work: Path, fx: dict) -> None:
    """download + prepare as the rules run them: MNIST's IDX files, and an image dataset (JPEGs in a .tgz)."""
    mobopt("download", "--dataset", "mnist", "--out", str(work / "raw/mnist"),
           "--options", json.dumps({"source": "path", "path": fx["digits_idx"], "verify": False}))
    mobopt("prepare", "--dataset", "mnist", "--raw", str(work / "raw/mnist"), "--out", str(work / "prepared/mnist"),
           "--options", json.dumps({"validation_fraction": 0.1}), "--seed", "1")
    meta = json.loads((work / "prepared/mnist/meta.json").read_text())
    assert meta["image_shape"] == [28, 28, 1], meta
    tgz = Path(fx["imagenette_tgz"])
    options = {"source": "path", "path": str(tgz.parent), "verify": False, "resolution": "160", "image_size": 32, "workers": 2}
    mobopt("download", "--dataset", "imagenet_subset", "--out", str(work / "raw/imagenet_subset"),
           "--options", json.dumps(options))
    mobopt("prepare", "--dataset", "imagenet_subset", "--raw", str(work / "raw/imagenet_subset"),
           "--out", str(work / "prepared/imagenet_subset"), "--options", json.dumps(options), "--seed", "1")
    meta = json.loads((work / "prepared/imagenet_subset/meta.json").read_text())
    assert meta["image_shape"] == [32, 32, 3], meta


def check_litert(work: Path, fx: dict) -> None:
    """evaluate a .tflite and run the benchmark protocol (fresh bench-run processes, the wheel's cross-check)."""
    assert importlib.util.find_spec("tensorflow") is None, "the benchmark environment must not contain TensorFlow"
    model = tiny_tflite(work / "tiny.tflite")
    mobopt("evaluate", "--model", str(model), "--data", fx["prepared_digits"], "--split", "test", "--out", str(work / "e.json"))
    result = json.loads((work / "e.json").read_text())
    assert result["kind"] == "tflite" and result["samples"] > 0, result
    options = {"iterations": 20, "warmup": 2, "repeats": 1, "load_samples": 1, "bootstrap_resamples": 100,
               "op_profile": True, "op_profile_runs": 5, "crosscheck": True}
    mobopt("bench", "--model", f"float32={model}", "--out", f"float32={work / 'b.json'}", "--device", "host_1t",
           "--options", json.dumps(options), "--experiment", "envcheck")
    bench = json.loads((work / "b.json").read_text())
    assert bench["p50_ms"] > 0, bench
    mobopt("bench-run", "--help")
    assert "tensorflow" not in sys.modules


def check_report(work: Path, fx: dict) -> None:
    """A table with its LaTeX version (pandas' Styler needs jinja2) and a figure (matplotlib, seaborn)."""
    import pandas as pd

    assert "tabular" in pd.DataFrame({"a": [1.5], "b": ["x"]}).style.to_latex()
    out = {k: str(work / f"paper_table2.{k}") for k in ("csv", "md", "tex")}
    mobopt("paper-table2", "--out-csv", out["csv"], "--out-md", out["md"], "--out-tex", out["tex"])
    assert "\\begin{table}" in Path(out["tex"]).read_text() or "tabular" in Path(out["tex"]).read_text()
    history = work / "history.csv"
    history.write_text("epoch,phase,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds\n"
                       "1,train,2.0,0.3,1.9,0.35,0.001,1.0\n2,train,1.0,0.7,1.1,0.65,0.0005,1.0\n")
    mobopt("training-curves", "--history", str(history), "--title", "envcheck", "--png", str(work / "c.png"),
           "--svg", str(work / "c.svg"))
    assert (work / "c.png").stat().st_size > 0 and (work / "c.svg").stat().st_size > 0


def check_tf(work: Path, fx: dict) -> None:
    """train (one epoch of a tiny ViT), convert to int8, evaluate the Keras model: the rules' commands."""
    spec = {"model": {"name": "vit", "patch_size": 7, "dim": 16, "depth": 1, "heads": 2, "mlp_dim": 32, "head_hidden": 16,
                      "dropout": 0.0}, "train": {"epochs": 1, "batch_size": 64, "threads": 2}}
    model = work / "model"
    mobopt("train", "--experiment", "envcheck", "--data", fx["prepared_digits"], "--out", str(model),
           "--spec", json.dumps(spec), "--seed", "1")
    mobopt("convert", "--model", str(model / "model.keras"), "--data", fx["prepared_digits"], "--variant", "int8",
           "--out", str(work / "int8.tflite"), "--info", str(work / "int8.json"), "--seed", "1",
           "--options", json.dumps({"representative_samples": 20}))
    assert (work / "int8.tflite").stat().st_size > 0
    mobopt("evaluate", "--model", str(model / "model.keras"), "--data", fx["prepared_digits"], "--split", "test",
           "--out", str(work / "e.json"))


CHECKS = {"data.yaml": check_data, "litert.yaml": check_litert, "report.yaml": check_report, "tf.yaml": check_tf}


def main() -> None:
    env, work, fixtures = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    work.mkdir(parents=True, exist_ok=True)
    modules = sorted(set().union(*(command_imports(c) for c in ENV_COMMANDS[env])))
    for name in modules:
        importlib.import_module(name)
    if env == "litert.yaml":
        assert "tensorflow" not in sys.modules, "a benchmark command imported TensorFlow"
    CHECKS[env](work, fixtures)
    print(f"{env}: imported {len(modules)} modules ({', '.join(modules)}); commands ran")


if __name__ == "__main__":
    main()
