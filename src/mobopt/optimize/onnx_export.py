"""Export a trained Keras model to ONNX and quantize it with ONNX Runtime's own tools: the second runtime's variants.

Export: the model, re-wrapped at batch 1 like the .tflite conversion, is traced to a concrete
function, its variables frozen to constants (``convert_variables_to_constants_v2``) and that graph
converted by tf2onnx.  Two things that break with Keras 3 are mended here:

* Keras' exact GELU computes ``Erfc``, which tf2onnx has no handler for: :func:`_erfc` writes it as
  ``1 - Erf(x)`` (ONNX has ``Erf`` since opset 9);
* the ViT's Normalization statistics are captured tensors, not variables; ``model.export(format="onnx")``
  and tf2onnx's ``from_function`` turn them into extra graph inputs, while the frozen graph holds them
  as constants, so the ONNX model has one input, the image.

Quantization is ONNX Runtime's (``onnxruntime.quantization``), the tool its users would reach for:
``ort_dynamic_int8`` is ``quantize_dynamic`` (int8 weights, activations quantized per batch at run
time), ``ort_int8`` is ``quantize_static`` in the QDQ format with int8 activations and weights,
calibrated (min-max) on the same training images the LiteRT int8 variant uses, after ONNX Runtime's
recommended pre-processing (shape inference and graph clean-up).

A model the exporter or the quantizer refuses, or that ONNX Runtime cannot load, is recorded as not
supported with the tool's own words (:mod:`mobopt.litert.unsupported`), like a refused .tflite variant.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError, onnxrt
from mobopt.common.atomic import write_bytes, write_json
from mobopt.litert import unsupported

log = logging.getLogger(__name__)

#: ``convert.onnx`` defaults: the ONNX opset of the export, and per-channel weight scales for the static int8 variant.
ONNX_DEFAULTS: dict[str, Any] = {"opset": 17, "per_channel": True, "reduce_range": False}


def _erfc(ctx, node, name, args):
    """tf2onnx handler: ``Erfc(x)`` as ``1 - Erf(x)``."""
    from tf2onnx import utils

    x, out = node.input[0], node.output[0]
    dtype, shape = ctx.get_dtype(out), ctx.get_shape(out)
    ctx.remove_node(node.name)
    erf = ctx.make_node("Erf", [x], name=utils.make_name(node.name + "_erf"))
    one = ctx.make_const(utils.make_name(node.name + "_one"), np.array(1, dtype=np.float32))
    ctx.make_node("Sub", [one.output[0], erf.output[0]], outputs=[out], name=node.name, shapes=[shape], dtypes=[dtype])


def export_float(tf, model, opset: int) -> bytes:
    """The float32 ONNX model of ``model`` at batch 1, its input named ``image``."""
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from mobopt.models.runtime import stdout_to_stderr

    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="image")
    concrete = tf.function(lambda image: model(image, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    with stdout_to_stderr():  # tf2onnx reports every op it rewrites on stdout
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs], opset=int(opset), custom_op_handlers={"Erfc": (_erfc, [])})
    unsupported_ops = sorted({n.op_type for n in proto.graph.node if n.domain not in ("", "ai.onnx", "com.microsoft")})
    if unsupported_ops:
        raise MobOptError(f"tf2onnx left ops it could not convert: {', '.join(unsupported_ops)}")
    return proto.SerializeToString()


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over our representative images, one at a time."""

    def __init__(self, images: np.ndarray, input_name: str):
        self._feeds = iter([{input_name: img[None].astype(np.float32)} for img in images])

    def get_next(self):
        return next(self._feeds, None)


def quantize(float_model: bytes, variant: str, images: np.ndarray | None, options: dict[str, Any]) -> bytes:
    """``ort_dynamic_int8`` or ``ort_int8`` of a float ONNX model, with ONNX Runtime's quantization tools."""
    from onnxruntime import quantization as q

    options = {**ONNX_DEFAULTS, **options}
    reduce_range = bool(options["reduce_range"])
    with tempfile.TemporaryDirectory(prefix="mobopt-onnx-") as tmp:
        src, out = Path(tmp) / "float.onnx", Path(tmp) / "quantized.onnx"
        src.write_bytes(float_model)
        if variant == "ort_dynamic_int8":
            q.quantize_dynamic(src, out, weight_type=q.QuantType.QInt8, reduce_range=reduce_range)
        else:
            prepared = Path(tmp) / "prepared.onnx"
            q.quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
            name = onnxrt.session(float_model).get_inputs()[0].name
            q.quantize_static(prepared, out, _Calibration(images, name), quant_format=q.QuantFormat.QDQ,
                              activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                              per_channel=bool(options["per_channel"]), reduce_range=reduce_range,
                              calibrate_method=q.CalibrationMethod.MinMax)
        return out.read_bytes()


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import tf2onnx

    return {"tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def export(tf, model, spec, images: np.ndarray | None, model_path: str | Path, out_onnx: str | Path,
           out_json: str | Path, options: dict[str, Any] | None, common: dict[str, Any],
           reason_of) -> dict[str, Any]:
    """Write one ONNX Runtime variant and its JSON (the fields of a .tflite variant's where they exist).

    ``spec`` is the variant's registry entry; ``reason_of`` turns a tool's exception into the recorded reason."""
    opts = {**ONNX_DEFAULTS, **(options or {})}
    facts = {**common, "runtime": "onnxruntime", "exporter": {**_versions(), "opset": int(opts["opset"])}}
    t0 = time.perf_counter()
    try:
        data = export_float(tf, model, opts["opset"])
    except Exception as exc:  # tf2onnx raises anything from ValueError to its own errors: its words are the point
        return unsupported.write_variant(spec.name, spec.description, "exporter", reason_of(exc), model_path, out_onnx,
                                         out_json, facts)
    if spec.name != "ort_float32":
        try:
            data = quantize(data, spec.name, images, opts)
        except Exception as exc:  # the quantizer's own refusal
            return unsupported.write_variant(spec.name, spec.description, "quantizer", reason_of(exc), model_path,
                                             out_onnx, out_json, facts)
    seconds = time.perf_counter() - t0
    try:
        sess = onnxrt.session(data)
        inp = sess.get_inputs()[0]
        sess.run(None, {inp.name: np.zeros([d if isinstance(d, int) else 1 for d in inp.shape], np.float32)})
    except Exception as exc:
        return unsupported.write_variant(spec.name, spec.description, "runtime",
                                         "exported, but ONNX Runtime cannot run it: " + reason_of(exc), model_path,
                                         out_onnx, out_json, facts)
    write_bytes(out_onnx, data)
    info = {
        "variant": spec.name,
        "description": spec.description,
        "supported": True,
        "source_model": str(model_path),
        "conversion_seconds": seconds,
        "representative_samples": None if images is None else int(len(images)),
        "keras_layer_histogram": dict(sorted(Counter(type(layer).__name__ for layer in model.layers).items())),
        "quantization": None if spec.name == "ort_float32" else {
            "tool": "onnxruntime.quantization", "mode": "dynamic" if spec.name == "ort_dynamic_int8" else "static QDQ",
            "weights": "int8, 7-bit range (reduce_range)" if opts["reduce_range"] else "int8",
            "activations": "int8 at run time" if spec.name == "ort_dynamic_int8" else "int8",
            "per_channel": spec.name == "ort_int8" and bool(opts["per_channel"]),
            "calibration": None if spec.name == "ort_dynamic_int8" else "min-max"},
        **onnxrt.describe(out_onnx),
        **facts,
    }
    write_json(out_json, info)
    log.info("%s: %s written (%d bytes, %d ops)", model_path, out_onnx, info["size_bytes"], info["op_count"])
    return info
