"""The ``graph_opt_int8`` pipeline: the paper's "graph optimization", as named, switchable, measured steps.

a. ``pruning``: magnitude pruning with a short fine-tune (:mod:`mobopt.optimize.pruning`,
   its own workflow step: ``results/models/<exp>/pruned.keras``);
b. ``fusion``: what the converter fused, verified from the file
   (:mod:`mobopt.optimize.fusion`), recorded in every variant's JSON;
c. ``mixed_precision``: per-layer sensitivity, then the set of layers kept in
   higher precision that meets the accuracy budget at the lowest measured
   latency (:mod:`mobopt.optimize.mixed_precision`; steps ``sensitivity`` and
   ``select_precision``);
d. ``reorder``: node order.  What LiteRT does itself: the converter writes ops
   in a topological order of the graph and the interpreter executes them in
   exactly that order; its arena planner assigns tensor memory from that order;
   the XNNPACK delegate replaces each run of supported ops by one node and
   schedules the operators inside it in the order it receives them.  Nothing
   reorders nodes at run time.  So the one thing to try is writing the ops in
   another valid topological order (:func:`reorder`: depth-first, finishing
   each branch before starting the next, which shortens tensor lifetimes) and
   measuring both orders with the real benchmark; the reordered file is kept
   only when it is faster by more than ``min_gain`` (noise on a shared host is
   a few percent), and the JSON records both measurements either way.

Configuration: ``graph_opt`` in the config (defaults in the schema), with
per-experiment overrides under ``experiments.<name>.graph_opt``; each step has
``enabled``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError, litert
from mobopt.common import provenance
from mobopt.common.atomic import write_bytes, write_json, write_text
from mobopt.datasets.prepared import load_meta, load_split
from mobopt.litert import flatbuffer
from mobopt.optimize import fusion
from mobopt.optimize import mixed_precision as mp

log = logging.getLogger(__name__)

REORDER_DEFAULTS: dict[str, Any] = {"enabled": True, "strategy": "depth_first", "repeats": 3, "bench_iterations": 600,
                                    "min_gain": 0.05}
FUSION_DEFAULTS: dict[str, Any] = {"enabled": True, "strict": False}


def options(raw: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    from mobopt.optimize.pruning import PRUNING_DEFAULTS

    raw = raw or {}
    return {"pruning": {**PRUNING_DEFAULTS, **raw.get("pruning", {})},
            "fusion": {**FUSION_DEFAULTS, **raw.get("fusion", {})},
            "mixed_precision": {**mp.MIXED_DEFAULTS, **raw.get("mixed_precision", {})},
            "reorder": {**REORDER_DEFAULTS, **raw.get("reorder", {})}}


def sample_images(prepared: Path, split: str, n: int, seed: int, salt: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of ``split`` chosen by ``(seed, salt)``, in file order (deterministic, bounded memory)."""
    x, y = load_split(prepared, split)
    idx = np.sort(np.random.default_rng([seed, salt]).permutation(len(x))[: min(n, len(x))])
    return np.asarray(x[idx], dtype=np.float32), np.asarray(y[idx])


def builder_for(float_tflite: Path, prepared: Path, layers: list[dict[str, Any]], mixed: dict[str, Any],
                seed: int) -> mp.Builder:
    calib, _ = sample_images(prepared, "train", mixed["calibration_samples"], seed, 1)
    return mp.Builder(Path(float_tflite).read_bytes(), calib, layers)


# ------------------------------------------------------------------ step c.1: sensitivity (TF: float conversion)


def float_tflite(model) -> bytes:
    """The Keras model as a batch-1 float .tflite (the graph every later step addresses by op name)."""
    import keras
    import tensorflow as tf

    from mobopt.models.runtime import stdout_to_stderr

    inputs = keras.Input(model.input_shape[1:], batch_size=1, name="image")
    wrapped = keras.Model(inputs, model(inputs), name=model.name)
    converter = tf.lite.TFLiteConverter.from_keras_model(wrapped)
    with stdout_to_stderr():
        return converter.convert()


SENSITIVITY_COLUMNS = ("rank", "layer", "score", "feature_error", "attention_error", "attention_maps", "ops", "op_types",
                       "position", "feature_tensor")


def run_sensitivity(model_path: str | Path, prepared: str | Path, out_json: str | Path, out_csv: str | Path,
                    out_float: str | Path, raw_options: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    opts = options(raw_options)
    mixed = opts["mixed_precision"]
    from mobopt.models.runtime import configure_tensorflow

    configure_tensorflow(seed, 1)
    from mobopt.models import architectures

    model = architectures.load(model_path)
    layers = fusion.keras_layers(model)
    data = float_tflite(model)
    write_bytes(out_float, data)
    t0 = time.perf_counter()
    builder = builder_for(Path(out_float), Path(prepared), layers, mixed, seed)
    images, _ = sample_images(Path(prepared), "train", mixed["samples"], seed, 2)
    ranking = mp.sensitivity(builder, images, mixed["norm"])
    info = {
        "source_model": str(model_path), "float_tflite": str(out_float), "norm": mixed["norm"],
        "samples": int(len(images)), "calibration_samples": mixed["calibration_samples"],
        "layers": layers, "candidate_layers": builder.layer_order, "ranking": ranking,
        "not_quantizable_ops": sorted({op["op"] for op in builder.ops if not op["quantizable"]}),
        "seconds": time.perf_counter() - t0,
        "provenance": provenance.collect(seed=seed, threads=1, dataset=load_meta(prepared)),
    }
    write_text(out_csv, _csv(ranking, SENSITIVITY_COLUMNS))
    write_json(out_json, info)
    return info


def _csv(rows: list[dict[str, Any]], columns) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (";".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()})
    return buf.getvalue()


# ------------------------------------------------------------------ step d: node order


def reorder(model_bytes: bytes, strategy: str = "depth_first") -> bytes:
    """The same ops written in another topological order; inputs, outputs, tensors and buffers unchanged.

    ``depth_first``: post-order from the graph outputs, so each producer comes
    just before its first consumer chain; ``converter``: unchanged.
    """
    if strategy == "converter":
        return model_bytes
    if strategy != "depth_first":
        raise MobOptError(f"config key graph_opt.reorder.strategy: unknown strategy {strategy!r}; known: depth_first, converter")
    model = flatbuffer.read(model_bytes)
    graph = model.subgraphs[0]
    producer = {t: i for i, op in enumerate(graph.operators) for t in op.outputs}
    order: list[int] = []
    state: dict[int, int] = {}
    for out in graph.outputs:
        if out not in producer:
            continue
        stack = [(producer[out], False)]
        while stack:  # iterative DFS (deep graphs would overflow Python's recursion)
            i, done = stack.pop()
            if done:
                if state.get(i) != 2:
                    state[i] = 2
                    order.append(i)
                continue
            if state.get(i):
                continue
            state[i] = 1
            stack.append((i, True))
            deps = [producer[t] for t in graph.operators[i].inputs if t in producer]
            for d in reversed(deps):
                if not state.get(d):
                    stack.append((d, False))
    order += [i for i in range(len(graph.operators)) if i not in state]  # ops not feeding an output keep their place
    graph.operators = [graph.operators[i] for i in order]
    return flatbuffer.write(model)


def order_changed(a: bytes, b: bytes) -> bool:
    return [op["outputs"] for op in fusion.tflite_ops(a)] != [op["outputs"] for op in fusion.tflite_ops(b)]


def measure_reorder(model_bytes: bytes, ropts: dict[str, Any], device: str, workdir: Path) -> dict[str, Any]:
    """Both orders benchmarked alternately (A B A B ...), pooled p50s compared; the faster kept only beyond ``min_gain``."""
    alt = reorder(model_bytes, ropts["strategy"])
    changed = order_changed(model_bytes, alt)
    out: dict[str, Any] = {"strategy": ropts["strategy"], "order_changed": changed}
    if not changed:
        out.update(applied=False, reason="the strategy gives the converter's own order: nothing to measure")
        return out
    # both orders through one protocol run: fresh processes, repeats interleaved (A B A B ...)
    runs = mp.bench_models({"converter": model_bytes, ropts["strategy"]: alt}, device, ropts["bench_iterations"], 30,
                           workdir, repeats=int(ropts["repeats"]))
    med = {name: float(r["p50_ms"]) for name, r in runs.items()}
    gain = 1.0 - med[ropts["strategy"]] / med["converter"]
    out.update(runs=runs, median_p50_ms=med, gain=gain, applied=bool(gain > ropts["min_gain"]),
               reason=f"p50 {med['converter']:.4f} ms (converter order) vs {med[ropts['strategy']]:.4f} ms "
                      f"({ropts['strategy']}): gain {100 * gain:.1f} %, threshold {100 * ropts['min_gain']:.0f} %")
    return out


# ------------------------------------------------------------------ step c.2: selection (TF-free, benchmarks)


CANDIDATE_COLUMNS = ("k", "accuracy", "loss", "accuracy_drop_pp", "within_budget", "p50_ms", "p95_ms", "p50_ci_ms", "size_bytes",
                     "higher_precision", "flags")


def run_selection(float_path: str | Path, sensitivity_json: str | Path, reference_tflite: str | Path,
                  prepared: str | Path, out_json: str | Path, out_csv: str | Path,
                  raw_options: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    opts = options(raw_options)
    mixed = opts["mixed_precision"]
    sens = json.loads(Path(sensitivity_json).read_text())
    prepared = Path(prepared)
    builder = builder_for(Path(float_path), prepared, sens["layers"], mixed, seed)
    x_val, y_val = sample_images(prepared, "val", mixed["eval_samples"], seed, 3)
    reference = mp.accuracy_on(Path(reference_tflite).read_bytes(), x_val, y_val)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=Path(out_json).parent if Path(out_json).parent.exists() else None) as tmp:
        work = Path(tmp)
        # step switched off: every candidate layer int8 (k = 0), still held to the accuracy budget
        result = mp.select(builder, sens["ranking"], x_val, y_val, reference, mixed, work,
                           counts=None if mixed["enabled"] else [0])
        chosen_bytes = builder.build(set(result["chosen"]["higher_precision"]))
        ropts = opts["reorder"]
        result["reorder"] = measure_reorder(chosen_bytes, ropts, mixed["device"], work) if ropts["enabled"] \
            else {"applied": False, "reason": "graph_opt.reorder.enabled is false"}
    reasons = {r["layer"]: r for r in sens["ranking"]}
    result["higher_precision"] = [
        {"layer": name, "rank": reasons[name]["rank"], "score": reasons[name]["score"],
         "why": f"sensitivity rank {reasons[name]['rank']} of {len(reasons)} ({sens['norm']} norm of the quantization error: "
                f"features {reasons[name]['feature_error']:.3g}, attention maps {reasons[name]['attention_error']:.3g})"}
        for name in result["chosen"]["higher_precision"]]
    result.update(seconds=time.perf_counter() - t0, options=opts, eval_samples=int(len(y_val)),
                  provenance=provenance.collect(seed=seed, dataset=load_meta(prepared)))
    write_text(out_csv, _csv(result["candidates"], CANDIDATE_COLUMNS))
    write_json(out_json, result)
    log.info("chose k=%d higher-precision layers: %s", result["chosen"]["k"], result["chosen"]["higher_precision"])
    return result


# ------------------------------------------------------------------ the variant itself


def build_variant(float_path: str | Path, sensitivity_json: str | Path, selection_json: str | Path,
                  pruning_json: str | Path | None, prepared: str | Path, raw_options: dict[str, Any] | None,
                  seed: int) -> tuple[bytes, dict[str, Any]]:
    """The graph_opt_int8 file from the pruned float model and the selection, plus what to record about it."""
    opts = options(raw_options)
    sens = json.loads(Path(sensitivity_json).read_text())
    sel = json.loads(Path(selection_json).read_text())
    builder = builder_for(Path(float_path), Path(prepared), sens["layers"], opts["mixed_precision"], seed)
    higher = set(sel["chosen"]["higher_precision"])
    data = builder.build(higher)
    really = mp.higher_precision_layers(data, builder)
    if really != higher:
        raise MobOptError(f"{selection_json}: the built model keeps {sorted(really)} in higher precision, "
                          f"the selection chose {sorted(higher)}")
    same_as_measured = hashlib.sha256(data).hexdigest() == sel["chosen"]["sha256"]
    if sel.get("reorder", {}).get("applied"):
        data = reorder(data, sel["reorder"]["strategy"])
    pruning = json.loads(Path(pruning_json).read_text()) if pruning_json else None
    info = {
        "graph_opt": {
            "steps": {name: bool(o.get("enabled", True)) for name, o in opts.items()},
            "pruning": None if pruning is None else {
                "enabled": pruning["enabled"], "target_sparsity": pruning["target_sparsity"],
                "keras_sparsity": pruning["measured"]["sparsity"], "val_before": pruning["val_before"],
                "val_after": pruning["val_after"]},
            "higher_precision_layers": sel["higher_precision"],
            "quantized_layers": [name for name in builder.layer_order if name not in higher],
            "selection": {k: sel["chosen"][k] for k in ("k", "accuracy", "accuracy_drop_pp", "p50_ms", "p95_ms")},
            "budget_pp": sel["budget_pp"], "reference_accuracy": sel["reference"]["accuracy"],
            "identical_to_measured_candidate": same_as_measured,
            "reorder": {k: v for k, v in sel.get("reorder", {}).items() if k != "runs"},
        },
        "keras_layers_source": sens["layers"],
    }
    return data, info


def check_runs(data: bytes) -> None:
    """Load with the default delegate and invoke once: a file LiteRT cannot run is not a variant."""
    it = litert.interpreter(data)
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
    it.invoke()
