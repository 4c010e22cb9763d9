"""Convert a trained Keras model to one .tflite variant and describe the result.

The model is re-wrapped with a batch-1 ``keras.Input``: a phone classifies
one image at a time, and a fixed batch lets the converter fold shapes.  Beside
the .tflite goes a JSON with size (raw and gzip, the download size), the op
histogram, the Keras layer histogram (to see what conversion fused away), the
input/output dtypes and quantization parameters, what fusion did (BatchNorm
folded, activations fused, training-only layers gone: :mod:`mobopt.optimize.fusion`),
the weight sparsity the file carries, and provenance.

A variant the converter refuses for a model (int16x8 for the ViT), or that
converts to a file LiteRT cannot run, is recorded, not raised: the JSON says
``"supported": false`` with the converter's or the runtime's own message, and
the .tflite is left **empty**.  Evaluation and benchmark see that and write a
"not supported" result without numbers; tables show the reason.  Why not a
Snakemake checkpoint: which variants exist would then only be known after
conversion, so ``snakemake -n`` could not show the evaluation and benchmark
jobs and every later rule would need DAG re-evaluation; with an empty file
plus a reason, the DAG is fixed when the workflow starts, caching stays by
file, and a converter upgrade that adds support simply reruns downstream.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError, litert
from mobopt.common import provenance
from mobopt.common.atomic import write_bytes, write_json
from mobopt.datasets.prepared import load_meta, load_split
from mobopt.litert import unsupported
from mobopt.optimize import fusion, variants

log = logging.getLogger(__name__)

CONVERT_DEFAULTS: dict[str, Any] = {"representative_samples": 500}


def representative_images(prepared: Path, n: int, seed: int) -> np.ndarray:
    """``n`` training images chosen by ``seed`` (calibration must not see the test split)."""
    x, _ = load_split(prepared, "train")
    idx = np.random.default_rng(seed).permutation(len(x))[: min(n, len(x))]
    return x[np.sort(idx)].astype(np.float32)


def _reason(exc: BaseException) -> str:
    """The converter's message without its repetitions (it prints one line per offending op)."""
    lines = []
    for line in str(exc).splitlines():
        line = line.strip()
        if line and line not in lines and not line.startswith(("<unknown>", "^", "note:")):
            lines.append(line)
    return " | ".join(lines[:8])[:2000] or type(exc).__name__


def convert(model_path: str | Path, prepared: str | Path, variant: str, out_tflite: str | Path,
            out_json: str | Path, options: dict[str, Any] | None = None, seed: int = 0,
            graph_opt: dict[str, Any] | None = None) -> dict[str, Any]:
    """Convert one variant (an ONNX Runtime variant is exported to ``out_tflite``, then a .onnx path).
    ``graph_opt``: for a pipeline variant, the paths of its inputs
    (``float``, ``sensitivity``, ``selection``, ``pruning``) and its ``options``."""
    opts = {**CONVERT_DEFAULTS, **(options or {})}
    spec = variants.get(variant)
    if spec.graph_opt and not graph_opt:
        raise MobOptError(f"variant {variant} is built from the graph-optimization steps: pass their outputs (--graph-opt)")
    from mobopt.models.runtime import configure_tensorflow, stdout_to_stderr

    tf = configure_tensorflow(seed, 1)
    import keras

    from mobopt.models import architectures

    model = architectures.load(model_path)
    inputs = keras.Input(model.input_shape[1:], batch_size=1, name="image")
    wrapped = keras.Model(inputs, model(inputs), name=model.name)
    images = representative_images(Path(prepared), opts["representative_samples"], seed) \
        if spec.needs_representative_data else None

    def representative():
        for img in images:
            yield [img[None]]

    common = {"keras_parameters": int(model.count_params()),
              "provenance": provenance.collect(seed=seed, dataset=load_meta(prepared))}
    if spec.runtime == "onnxruntime":
        from mobopt.optimize import onnx_export

        if Path(out_tflite).suffix != ".onnx":
            raise MobOptError(f"{out_tflite}: variant {variant} is an ONNX model; name the output .onnx")
        return onnx_export.export(tf, model, spec, images, model_path, out_tflite, out_json, opts.get("onnx"), common,
                                  _reason)
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if spec.graph_opt:
        from mobopt.optimize import graphopt

        data, extra = graphopt.build_variant(graph_opt["float"], graph_opt["sensitivity"], graph_opt["selection"],
                                             graph_opt.get("pruning"), prepared, graph_opt.get("options"), seed)
        keras_layers = extra.pop("keras_layers_source")
    else:
        keras_layers = fusion.keras_layers(model)
        converter = tf.lite.TFLiteConverter.from_keras_model(wrapped)
        spec.configure(tf, converter, representative, opts)
        try:
            with stdout_to_stderr():  # the converter prints every captured tensor on stdout
                data = converter.convert()
        except Exception as exc:  # the converter's ConverterError, RuntimeError or ValueError: its reason is the point
            return unsupported.write_variant(variant, spec.description, "converter", _reason(exc), model_path, out_tflite,
                                             out_json, common)
    seconds = time.perf_counter() - t0
    from mobopt.optimize.graphopt import check_runs

    try:
        check_runs(data)
    except (MobOptError, RuntimeError, ValueError) as exc:
        return unsupported.write_variant(variant, spec.description, "runtime",
                                         "converted, but LiteRT cannot run it: " + _reason(exc), model_path, out_tflite,
                                         out_json, common)
    write_bytes(out_tflite, data)
    fusion_report = fusion.report(keras_layers, data)
    info = {
        "variant": variant,
        "description": spec.description,
        "supported": True,
        "runtime": "litert",
        "source_model": str(model_path),
        "conversion_seconds": seconds,
        "representative_samples": None if images is None else int(len(images)),
        "keras_layer_histogram": dict(sorted(Counter(type(layer).__name__ for layer in model.layers).items())),
        "fusion": fusion_report,
        "weight_sparsity": fusion.weight_sparsity(data),
        **extra,
        **litert.describe(out_tflite),
        **common,
    }
    if graph_opt and graph_opt.get("options", {}).get("fusion", {}).get("strict"):
        failed = [name for name, check in fusion_report["checks"].items() if not check["ok"]]
        if failed:
            raise MobOptError(f"{out_tflite}: fusion checks failed: {', '.join(failed)} (graph_opt.fusion.strict is on)")
    write_json(out_json, info)
    return info
