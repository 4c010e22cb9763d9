"""train.jit_compile (XLA) and train.precision (mixed bfloat16): they reach Keras, keep training bit-reproducible,
are recorded, and a model trained in bfloat16 still converts to the float32 .tflite graph."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_SPEC, mobopt_cli

from mobopt import MobOptError

TINY_MODEL = {**TINY_SPEC["model"], "dropout": 0.1}  # dropout on: its masks come from the RNG XLA compiles too


class _RefusingModel:
    """What compile needs of a model; like Keras under op determinism, it answers jit_compile=True with False."""

    layers: list = []

    def __init__(self):
        self._jit_compile, self.train_function = False, "stale"

    @property
    def jit_compile(self):
        return self._jit_compile

    def compile(self, **kwargs):
        self.compile_kwargs = kwargs


@pytest.mark.parametrize("jit", [False, True])
def test_jit_compile_reaches_model_compile(jit):
    import keras

    from mobopt.models import train

    tspec = {**train.TRAIN_DEFAULTS, "jit_compile": jit}
    model = _RefusingModel()
    train._compile(keras, model, train.phases({**tspec, "epochs": 2})[0], tspec, steps=3)
    assert model.compile_kwargs["jit_compile"] is jit
    assert model.jit_compile is jit  # Keras' refusal under op determinism is overridden
    assert (model.train_function is None) is jit  # a step traced before would keep running without XLA


def test_bf16_on_a_cpu_without_bf16_instructions_warns():
    from mobopt.models.train import warn_if_bf16_is_emulated

    cpu, no_gpu = {"model": "AMD EPYC", "isa": ["avx2", "fma"]}, {"gpu_visible": False}
    assert "emulates bfloat16" in warn_if_bf16_is_emulated("mixed_bfloat16", no_gpu, cpu)
    assert warn_if_bf16_is_emulated("mixed_bfloat16", no_gpu, {**cpu, "isa": ["avx512f", "avx512_bf16"]}) is None
    assert warn_if_bf16_is_emulated("mixed_bfloat16", {"gpu_visible": True}, cpu) is None
    assert warn_if_bf16_is_emulated("float32", no_gpu, cpu) is None


def test_options_default_off():
    from mobopt.models import train

    assert train.TRAIN_DEFAULTS["jit_compile"] is False and train.TRAIN_DEFAULTS["precision"] == "auto"


@pytest.mark.parametrize(("setting", "isa", "gpu", "expected"), [
    ("auto", ["avx2", "avx512f", "avx512_bf16"], False, "mixed_bfloat16"),
    ("auto", ["avx2", "amx_bf16"], False, "mixed_bfloat16"),
    ("auto", ["avx2", "fma", "avx512_vnni"], False, "float32"),   # VNNI is int8, not bfloat16
    ("auto", ["asimd", "asimddp"], False, "float32"),
    ("auto", ["avx512_bf16"], True, "float32"),                   # GPUs: unmeasured, float32 unless asked
    ("float32", ["avx512_bf16"], False, "float32"),
    ("mixed_bfloat16", ["avx2"], False, "mixed_bfloat16"),        # asked for: kept (and warned about)
])
def test_auto_precision_takes_bfloat16_only_where_the_cpu_has_it(setting, isa, gpu, expected):
    from mobopt.models import train

    assert train.resolve_precision(setting, {"gpu_visible": gpu}, {"isa": isa}) == expected
    with pytest.raises(MobOptError, match="train.precision 'float16'"):
        train.resolve_precision("float16", {}, {"isa": isa})


def test_mixed_bfloat16_policy_keeps_normalisation_and_softmax_float32(tmp_path):
    import keras

    from mobopt.models import architectures, train

    x = np.random.default_rng(0).integers(0, 256, (32, 28, 28, 1), dtype=np.uint8)
    with train.precision_policy(keras, "mixed_bfloat16"):
        model = architectures.build(TINY_MODEL, (28, 28, 1), 10, x)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    policies = {layer.name: layer.dtype_policy.name for layer in model.layers}
    assert policies.pop("normalize") == "float32" and policies.pop("classifier") == "float32"
    assert set(policies.values()) == {"mixed_bfloat16"}
    assert model.get_layer("patch_embed").output.dtype == "bfloat16"
    assert model.get_layer("normalize").output.dtype == "float32"
    assert model.output.dtype == "float32"
    assert {w.dtype for w in model.weights} == {"float32", "int64"}  # mixed: the variables stay float32 (int64: a count)
    xf = x.astype("float32")

    copy = architectures.float32_model(model)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), copy.get_weights(), strict=True))
    mixed_out, float_out = np.asarray(model(xf)), np.asarray(copy(xf))
    assert np.abs(mixed_out - float_out).max() < 0.05  # bfloat16 rounding, nothing else
    assert architectures.float32_model(copy) is copy

    # a model saved while computing in bfloat16 loads computing in float32 (convert, evaluate, prune)
    model.save(tmp_path / "mixed.keras")
    loaded = architectures.load(tmp_path / "mixed.keras")
    assert {layer.dtype_policy.name for layer in loaded.layers} == {"float32"}
    assert np.array_equal(np.asarray(loaded(xf)), float_out)

    with pytest.raises(MobOptError, match="train.precision"):
        with train.precision_policy(keras, "mixed_float16"):
            pass


#: Fresh process, as training runs: op determinism and pinned threads, then for each mode a tiny ViT with
#: dropout trained 2 steps from the same seed; prints whether XLA was on and a hash of the weights.
STEPS = """
import hashlib, json, sys
import numpy as np
from mobopt.models.runtime import configure_tensorflow
tf = configure_tensorflow(5, 2)
import keras
from mobopt.models import architectures, train
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (128, 28, 28, 1), dtype=np.uint8)
y = rng.integers(0, 10, 128).astype(np.int64)
out = {}
for mode in sys.argv[1].split(","):
    jit, precision = mode.split("/")
    tspec = {**train.TRAIN_DEFAULTS, "epochs": 1, "batch_size": 64, "jit_compile": jit == "xla", "precision": precision}
    keras.utils.set_random_seed(5)
    with train.precision_policy(keras, precision):
        model = architectures.build(json.loads(sys.argv[2]), (28, 28, 1), 10, x)
    train._compile(keras, model, train.phases(tspec)[0], tspec, 2)
    model.fit(train.epoch_batches(tf, x, y, 64, 5, 0, 1), steps_per_epoch=2, epochs=1, verbose=0)
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights())).hexdigest()
    out[mode] = {"xla": bool(model.jit_compile), "weights": digest}
print(json.dumps(out))
"""

MODES = ("xla/float32", "base/float32", "xla/mixed_bfloat16", "base/mixed_bfloat16")


def test_xla_and_bfloat16_training_is_bit_reproducible_under_op_determinism():
    """XLA on a CPU keeps op determinism's promise: two processes (at the same time, so their threads
    interleave differently), same seed, the same weights bit for bit; so does mixed bfloat16.  XLA is really
    on: its weights differ from the same steps without it."""
    procs = [subprocess.Popen([sys.executable, "-c", STEPS, ",".join(MODES), json.dumps(TINY_MODEL)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    a, b = results
    for mode in MODES:
        assert a[mode]["xla"] is mode.startswith("xla/"), mode
        assert a[mode] == b[mode], f"{mode}: two runs with the same seed gave different weights"
    assert a["xla/float32"]["weights"] != a["base/float32"]["weights"]
    assert a["base/mixed_bfloat16"]["weights"] != a["base/float32"]["weights"]


def _train_convert(root, prepared, train_options):
    spec = {"model": TINY_SPEC["model"], "train": {**TINY_SPEC["train"], "epochs": 1, **train_options}}
    mobopt_cli("train", "--experiment", "s", "--data", prepared, "--out", root, "--spec", json.dumps(spec), "--seed", 2)
    mobopt_cli("convert", "--model", root / "model.keras", "--data", prepared, "--variant", "float32",
               "--out", root / "float32.tflite", "--info", root / "float32.json", "--seed", 2)
    return json.loads((root / "metrics.json").read_text())


def _graph(path):
    from mobopt.litert.interpreter import interpreter

    it = interpreter(path, delegates=False)
    ops = [op["op_name"] for op in it._get_ops_details()]
    tensors = [(t["name"], tuple(t["shape"]), np.dtype(t["dtype"]).name) for t in it.get_tensor_details()]
    return ops, tensors


def test_bfloat16_xla_training_is_recorded_and_converts_to_the_float32_graph(tmp_path, prepared_digits):
    plain = _train_convert(tmp_path / "plain", prepared_digits, {"precision": "float32"})
    fast = _train_convert(tmp_path / "fast", prepared_digits, {"precision": "mixed_bfloat16", "jit_compile": True})
    assert plain["training"] == {"precision": "float32", "precision_setting": "float32", "jit_compile": False,
                                 "compute_dtype": "float32", "xla": False}
    assert fast["training"] == {"precision": "mixed_bfloat16", "precision_setting": "mixed_bfloat16", "jit_compile": True,
                                "compute_dtype": "bfloat16", "xla": True}
    assert fast["spec"]["train"]["precision"] == "mixed_bfloat16"
    # model.keras computes in float32 whatever the training precision
    import zipfile

    with zipfile.ZipFile(tmp_path / "fast/model.keras") as zf:
        assert "mixed_bfloat16" not in zf.read("config.json").decode()
    info = json.loads((tmp_path / "fast/float32.json").read_text())
    assert info["supported"] and info["tensor_dtypes"].keys() <= {"float32", "int32"}
    assert _graph(tmp_path / "fast/float32.tflite") == _graph(tmp_path / "plain/float32.tflite")
