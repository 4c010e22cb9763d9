"""Mixed-precision int8 by per-layer sensitivity (graph-optimization step c).

The paper keeps the layers that quantization hurts most in higher precision,
choosing them by "the nuclear norm of the attention maps and output features".
Here:

1. **Layers** are the Keras layers, found in the float .tflite by the names the
   converter gives op outputs (:func:`mobopt.optimize.fusion.attribute`); a layer is a
   candidate when the quantizer can make at least one of its ops int8.
2. **Sensitivity** of a layer: quantize that layer alone (everything else
   float, so its input is exact), run float and quantized model on the same
   calibration-free sample of training images, and take the norm of the
   difference of the layer's **output features** (reshaped to
   positions x channels, e.g. tokens x width) and, for an attention layer, of
   its **attention maps** (each head's softmax matrix), each relative to the
   float tensor's norm.  ``nuclear`` (sum of singular values: the paper's
   choice, sensitive to errors spread over many directions) is the default;
   ``frobenius``, ``spectral`` and ``max_abs`` are options.  The ranking sorts
   by score, ties by layer order: deterministic.
3. **Mixed model**: static int8 (int8 weights and activations) everywhere
   except the chosen layers, which run with float activations; their weights
   stay int8 (dynamic-range: the kernels quantize activations on the fly), so
   the file stays int8-sized.
4. **Selection** (:func:`select`): for each candidate count k, keep the k most
   sensitive layers in higher precision, score accuracy on the validation
   split and latency with the real benchmark in a fresh TF-free process
   (``python -m mobopt bench``), and take the lowest latency that stays within
   the accuracy budget of the float32 model; if none does, fail and say by
   how much the best one missed.

Tool: ai-edge-quantizer (AEQ), not the TFLite converter's
``QuantizationDebugger`` + ``denylisted_nodes``.  Both were tried on the
paper-size ViT (benchmarks/graph_opt_targets.py; p50 at 1 thread, int8 for
FULLY_CONNECTED/BATCH_MATMUL/CONV_2D and float for the rest: AEQ 1.84 ms, the
debugger's denylist 1.93 ms: equal within noise).  AEQ won on what matters for
a sound pipeline: (a) it quantizes the float .tflite, so sensitivity analysis,
recipe and final model address the very same op names, and a name that does
not match is visible, where a converter denylist names MLIR nodes that must
survive a second conversion; (b) "higher precision" can be float activations
with int8 weights (dynamic range) per layer, keeping the size at int8's ~0.28x
of float32, where a denylisted node is float including its weights; (c) one
calibration serves every candidate recipe, so a candidate costs ~0.1 s of
quantization instead of a full conversion; (d) it is what the LiteRT
documentation now points to for quantization, TF-free and deterministic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError, litert
from mobopt.optimize import fusion

log = logging.getLogger(__name__)

NORMS = ("nuclear", "frobenius", "spectral", "max_abs")
MIXED_DEFAULTS: dict[str, Any] = {
    "enabled": True, "norm": "nuclear", "samples": 32, "calibration_samples": 200,
    "candidates": [0, 1, 2, 4, 8, 16, 32], "accuracy_budget_pp": 0.3, "eval_samples": 2000,
    "bench_iterations": 300, "bench_warmup": 30, "bench_repeats": 3, "latency_key": "p50_ms", "device": "host_1t",
}


# ------------------------------------------------------------------ norms


def matrix_norm(m: np.ndarray, kind: str) -> float:
    m = np.asarray(m, dtype=np.float64)
    if kind == "nuclear":
        return float(np.linalg.svd(m, compute_uv=False).sum())
    if kind == "spectral":
        return float(np.linalg.svd(m, compute_uv=False).max(initial=0.0))
    if kind == "frobenius":
        return float(np.sqrt(np.sum(m * m)))
    if kind == "max_abs":
        return float(np.abs(m).max(initial=0.0))
    raise MobOptError(f"config key graph_opt.mixed_precision.norm: unknown norm {kind!r}; known: {', '.join(NORMS)}")


def as_matrices(t: np.ndarray, attention: bool) -> list[np.ndarray]:
    """Attention maps ``[1, heads, q, k]`` -> one q x k matrix per head; features -> positions x channels."""
    t = np.asarray(t)
    if attention and t.ndim >= 3:
        return list(t.reshape(-1, t.shape[-2], t.shape[-1]))
    return [t.reshape(-1, t.shape[-1]) if t.ndim >= 2 else t.reshape(1, -1)]


def relative_error(ref: np.ndarray, approx: np.ndarray, kind: str, attention: bool = False) -> float:
    """Mean over matrices of ``||ref - approx|| / ||ref||`` in the chosen norm."""
    out = []
    for r, a in zip(as_matrices(ref, attention), as_matrices(approx, attention), strict=True):
        denom = matrix_norm(r, kind)
        out.append(matrix_norm(r - a, kind) / denom if denom > 0 else matrix_norm(r - a, kind))
    return float(np.mean(out))


# ------------------------------------------------------------------ graph


def op_table(model_bytes: bytes, layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ops of the float model with their Keras layer (``None``: not attributable)."""
    plain = [layer for layer in layers if not layer.get("container")]
    names = {layer["name"] for layer in plain}
    weighted = fusion.weighted_layers(plain)
    ops = fusion.tflite_ops(model_bytes)
    for op in ops:
        op["layer"] = fusion.attribute(op["outputs"][0], names, weighted) if op["outputs"] else None
    return ops


def _quantizer():
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe_manager

    return quantizer, qtyping, algorithm_manager, recipe_manager


def _regex(names: list[str]) -> str:
    """Exact op scopes: AEQ matches against the op's output names joined by ``;`` with a trailing ``;``."""
    return "^(" + "|".join(re.escape(n) for n in sorted(names)) + ");$"


class Builder:
    """Builds mixed-precision models from one float model and one calibration."""

    def __init__(self, float_bytes: bytes, calibration_images: np.ndarray, layers: list[dict[str, Any]]):
        quantizer, qtyping, _, _ = _quantizer()
        self.float_bytes = bytes(float_bytes)
        self.ops = op_table(self.float_bytes, layers)
        it = litert.interpreter(self.float_bytes)
        sig = it.get_signature_list()
        self.signature = next(iter(sig))
        self.input_name = sig[self.signature]["inputs"][0]
        detail = it.get_input_details()[0]
        data = [{self.input_name: np.asarray(img, dtype=np.float32)[None]} for img in calibration_images]
        q = quantizer.Quantizer(bytearray(self.float_bytes))
        q.add_static_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, 8, 8)
        with _quiet():  # one calibration (min/max of every tensor) serves every recipe built later
            self.calibration = q.calibrate({self.signature: data}, num_threads=1)
        self.input_shape = tuple(detail["shape"])
        # which ops become int8 when everything is quantized: the candidates for higher precision
        full = self.build(set())
        dtypes = {name: dt for op in fusion.tflite_ops(full) for name, dt in zip(op["outputs"], op["output_dtypes"],
                                                                                   strict=True)}
        for op in self.ops:
            op["quantizable"] = bool(op["outputs"]) and dtypes.get(op["outputs"][0]) in ("int8", "int16")
        self.layer_order: list[str] = []
        for op in self.ops:
            if op["quantizable"] and op["layer"] is not None and op["layer"] not in self.layer_order:
                self.layer_order.append(op["layer"])

    def layer_ops(self, layer: str) -> list[dict[str, Any]]:
        return [op for op in self.ops if op["layer"] == layer and op["quantizable"]]

    def build(self, higher: set[str], only: set[str] | None = None) -> bytes:
        """int8 everywhere except the ops of ``higher`` layers (float activations, int8 weights where they have weights).

        ``only``: quantize just these layers (sensitivity analysis), everything else stays float.
        """
        quantizer, qtyping, algos, recipes = _quantizer()
        rm = recipes.RecipeManager()
        every = qtyping.TFLOperationName.ALL_SUPPORTED
        if only is None:
            rm.add_static_config(".*", every, 8, 8)
            keep = [n for op in self.ops if op["layer"] in higher for n in op["outputs"]]
            if keep:
                # later rules win: first "no quantization" for every op of the layer, then int8 weights for
                # the ops that have weights (their activations stay float: dynamic range)
                regex = _regex(keep)
                rm.add_quantization_config(regex, every, algorithm_key=algos.AlgorithmName.NO_QUANTIZE)
                for op_name in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
                    rm.add_dynamic_config(regex, qtyping.TFLOperationName(op_name), 8)
        else:
            names = [n for op in self.ops if op["layer"] in only for n in op["outputs"]]
            if names:
                rm.add_static_config(_regex(names), every, 8, 8)
        q = quantizer.Quantizer(bytearray(self.float_bytes), rm.get_quantization_recipe())
        with _quiet():
            result = q.quantize(self.calibration, enable_progress_bar=False, enable_progress_report=False)
        return bytes(result.quantized_model)


class _quiet:
    """AEQ prints a report on stdout: keep stdout for results (the CLI's contract)."""

    def __enter__(self):
        import contextlib

        from mobopt.models.runtime import stdout_to_stderr

        self._cm = contextlib.ExitStack()
        self._cm.enter_context(stdout_to_stderr())
        return self

    def __exit__(self, *exc):
        self._cm.close()
        return False


def higher_precision_layers(model_bytes: bytes, builder: Builder) -> set[str]:
    """Layers whose quantizable ops all have float outputs in ``model_bytes`` (what the file really is)."""
    dtypes = {name: dt for op in fusion.tflite_ops(model_bytes) for name, dt in zip(op["outputs"], op["output_dtypes"],
                                                                                     strict=True)}
    out = set()
    for layer in builder.layer_order:
        kinds = {dtypes.get(op["outputs"][0]) for op in builder.layer_ops(layer)}
        if kinds and kinds <= {"float32"}:
            out.add(layer)
        elif "float32" in kinds:
            raise MobOptError(f"layer {layer}: partly int8, partly float in the mixed model ({sorted(kinds)})")
    return out


# ------------------------------------------------------------------ sensitivity


def _all_tensors(model_bytes: bytes, images: np.ndarray, names: list[str]) -> list[dict[str, np.ndarray]]:
    """Values (dequantized) of the named tensors for every image; the interpreter keeps every tensor."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model_bytes, num_threads=1, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    details = {d["name"]: d for d in it.get_tensor_details()}
    inp = it.get_input_details()[0]
    out = []
    for img in images:
        it.set_tensor(inp["index"], litert.quantize_input(np.asarray(img, np.float32)[None], inp))
        it.invoke()
        values = {}
        for n in names:
            d = details.get(n)
            if d is None:
                continue
            v = it.get_tensor(d["index"])
            if np.dtype(d["dtype"]).kind in "iu":
                scale, zero = d["quantization"]
                v = (v.astype(np.float32) - zero) * scale
            values[n] = np.array(v, dtype=np.float32)
        out.append(values)
    return out


def sensitivity(builder: Builder, images: np.ndarray, norm: str = "nuclear") -> list[dict[str, Any]]:
    """Per layer: relative norm of the difference of its output features and attention maps, layer quantized alone."""
    matrix_norm(np.zeros((1, 1)), norm)  # validate the name early
    targets = {}
    for layer in builder.layer_order:
        ops = builder.layer_ops(layer)
        feature = ops[-1]["outputs"][0]  # the layer's output: its last quantizable op in execution order
        maps = [op["outputs"][0] for op in ops if op["op"] == "SOFTMAX" and op is not ops[-1]]
        targets[layer] = (ops, feature, maps)
    # the float model once, every tensor any layer needs
    ref = _all_tensors(builder.float_bytes, images, sorted({n for _, f, m in targets.values() for n in (f, *m)}))
    rows = []
    for position, layer in enumerate(builder.layer_order):
        ops, feature, maps = targets[layer]
        t0 = time.perf_counter()
        quant = _all_tensors(builder.build(set(), only={layer}), images, [feature, *maps])
        feat_err = float(np.mean([relative_error(r[feature], q[feature], norm) for r, q in zip(ref, quant, strict=True)]))
        attn_err = float(np.mean([relative_error(r[m], q[m], norm, attention=True)
                                  for r, q in zip(ref, quant, strict=True) for m in maps if m in r and m in q])) \
            if maps else 0.0
        rows.append({"layer": layer, "position": position, "ops": len(ops),
                     "op_types": ",".join(sorted({op["op"] for op in ops})), "feature_tensor": feature,
                     "attention_maps": len(maps), "feature_error": feat_err, "attention_error": attn_err,
                     "score": feat_err + attn_err, "seconds": time.perf_counter() - t0})
        log.info("sensitivity %-28s features %.4g attention %.4g", layer, feat_err, attn_err)
    order = sorted(range(len(rows)), key=lambda i: (-round(rows[i]["score"], 12), rows[i]["position"]))
    for rank, i in enumerate(order, start=1):
        rows[i]["rank"] = rank
    return sorted(rows, key=lambda r: r["rank"])


# ------------------------------------------------------------------ selection


def accuracy_on(model_bytes: bytes, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """A candidate's accuracy and loss on the validation split, by the evaluation's own loop."""
    from mobopt import evaluate

    return evaluate.accuracy_and_loss(evaluate.predict_tflite(model_bytes, x), y)


def bench_models(models: dict[str, bytes], device: str, iterations: int, warmup: int, workdir: Path,
                 repeats: int = 3) -> dict[str, dict[str, Any]]:
    """Latency of several candidate models through the project's benchmark protocol: one call, fresh TF-free
    processes, the candidates' repeats interleaved (A B C A B C ...) so drift hits them alike."""
    paths, outs = {}, {}
    for name, data in models.items():
        fd, path = tempfile.mkstemp(prefix=f"{name}.", suffix=".tflite", dir=workdir)
        os.close(fd)
        Path(path).write_bytes(data)
        paths[name], outs[name] = Path(path), Path(path).with_suffix(".json")
    opts = {"iterations": iterations, "warmup": warmup, "repeats": repeats, "load_samples": 1, "op_profile": False,
            "crosscheck": False, "bootstrap_resamples": 500}
    cmd = [sys.executable, "-m", "mobopt", "bench", "--device", device, "--options", json.dumps(opts)]
    for name in models:
        cmd += ["--model", f"{name}={paths[name]}", "--out", f"{name}={outs[name]}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise MobOptError(f"benchmark of the candidates failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        results = {name: json.loads(outs[name].read_text()) for name in models}
    finally:
        for path in [*paths.values(), *outs.values()]:
            path.unlink(missing_ok=True)
    keys = ("p50_ms", "p95_ms", "mean_ms", "p50_ci_ms", "p95_ci_ms", "repeat_p50_spread", "cpu_percent", "flags",
            "tensorflow_imported", "started_unix", "finished_unix")
    out = {}
    for name, res in results.items():
        if res.get("status") != "ok":
            raise MobOptError(f"benchmark of candidate {name} failed: {res.get('error') or res.get('reason')}")
        out[name] = {k: res[k] for k in keys if k in res}
    return out


def candidate_counts(candidates: list[int], n: int) -> list[int]:
    """The configured counts clipped to the number of layers, plus 0 (all int8) and n (all higher precision)."""
    return sorted({0, n, *(min(int(c), n) for c in candidates)})


def select(builder: Builder, ranking: list[dict[str, Any]], x_val: np.ndarray, y_val: np.ndarray,
           reference: dict[str, float], opts: dict[str, Any], workdir: Path, counts: list[int] | None = None
           ) -> dict[str, Any]:
    """Lowest measured latency within the accuracy budget; a clear error when no candidate meets it.

    ``counts``: the candidate sizes to try (default: :func:`candidate_counts` of the options).
    """
    order = [r["layer"] for r in sorted(ranking, key=lambda r: r["rank"])]
    budget = float(opts["accuracy_budget_pp"])
    key = opts["latency_key"]
    rows, built = [], {}
    for k in (candidate_counts(opts["candidates"], len(order)) if counts is None else counts):
        data = builder.build(set(order[:k]))
        acc = accuracy_on(data, x_val, y_val)
        drop_pp = 100.0 * (reference["accuracy"] - acc["accuracy"])
        built[f"k{k}"] = data
        rows.append({"k": k, "higher_precision": order[:k], **acc, "accuracy_drop_pp": drop_pp,
                     "within_budget": drop_pp <= budget + 1e-9, "size_bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()})
    latency = bench_models(built, opts["device"], opts["bench_iterations"], opts["bench_warmup"], workdir,
                           repeats=opts.get("bench_repeats", 3))
    for row in rows:
        row.update(latency[f"k{row['k']}"])
        log.info("candidate k=%d: accuracy %.4f (drop %.2f pp) %s %.3f ms", row["k"], row["accuracy"],
                 row["accuracy_drop_pp"], key, row[key])
    ok = [r for r in rows if r["within_budget"]]
    if not ok:
        best = min(rows, key=lambda r: r["accuracy_drop_pp"])
        raise MobOptError(
            f"graph_opt.mixed_precision.accuracy_budget_pp ({budget:g} pp) missed by {best['accuracy_drop_pp'] - budget:.2f} pp: "
            f"the most accurate candidate (k={best['k']} of {len(order)} layers in higher precision) loses "
            f"{best['accuracy_drop_pp']:.2f} pp against float32 ({best['accuracy']:.4f} vs {reference['accuracy']:.4f} on "
            f"{len(y_val)} validation images); raise the budget or prune less")
    chosen = min(ok, key=lambda r: (r[key], r["k"]))
    return {"candidates": rows, "chosen": chosen, "budget_pp": budget, "latency_key": key, "reference": reference}
