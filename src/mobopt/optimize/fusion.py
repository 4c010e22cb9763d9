"""What conversion did to the graph, verified from the files (graph-optimization step b).

The converter fuses on its own: BatchNorm folded into the preceding
convolution's weights and bias, ReLU/ReLU6 fused into the producing op
(``fused_activation_function``), Dropout and other training-only layers
dropped.  "Operator fusion" is therefore not something we add but something we
check: every TFLite op is attributed to the Keras layer it came from (by its
output tensor's name, which the converter builds from the layer scopes), and
the report counts, per kind of layer, how many Keras layers there were and how
many TFLite ops of their own are left.

TF-free: the .tflite is read with LiteRT's flatbuffer tools; the Keras side
arrives as a plain list of ``{name, class, activation}`` records.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from mobopt.litert import flatbuffer

#: Standalone activation ops a converter fuses into the producing op when it can.
FUSABLE_ACTIVATIONS = {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "TANH", "LOGISTIC"}
#: Keras layers that only act during training.
TRAINING_ONLY = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout"}
NORMALIZATION = {"BatchNormalization"}
ACTIVATION_LAYERS = {"ReLU", "Activation", "LeakyReLU", "ELU", "PReLU"}
_SUFFIX = re.compile(r"_\d+$")


def keras_layers(model) -> list[dict[str, Any]]:
    """Every layer of a Keras model, nested models flattened (MobileNetV2's ``backbone``), in order."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out.append({"name": layer.name, "class": type(layer).__name__, "activation": None, "container": True})
            out.extend(keras_layers(layer))
            continue
        act = getattr(layer, "activation", None)
        act_name = getattr(act, "__name__", None) if act is not None else None
        if type(layer).__name__ == "ReLU":
            act_name = "relu"
        out.append({"name": layer.name, "class": type(layer).__name__, "activation": act_name, "container": False})
    return out


def _layer_in(segment: str, layer_names: set[str]) -> str | None:
    found = None
    for part in segment.split("/"):
        for candidate in (part, _SUFFIX.sub("", part)):
            if candidate in layer_names:
                found = candidate
                break
    return found


#: Keras layers whose weights a TFLite op keeps (what other ops get fused into).
WEIGHTED = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv1D", "Dense", "EinsumDense", "Conv2DTranspose"}


def weighted_layers(layers: list[dict[str, Any]]) -> set[str]:
    return {layer["name"] for layer in layers if layer["class"] in WEIGHTED}


def attribute(tensor_name: str, layer_names: set[str], weighted: set[str] = frozenset()) -> str | None:
    """The Keras layer an op's output tensor belongs to: the deepest scope naming a known layer.

    A fused op's name joins the names of the ops fused into it with ``;``
    (``relu;batchnorm;convolution``); the op belongs to the layer that carries
    the weights (``weighted``: the convolution a BatchNorm was folded into and
    a ReLU fused onto), else to the first name's layer.  Keras 3 appends
    ``_<n>`` to every scope it exports, so one such suffix is stripped before
    matching.
    """
    segments = tensor_name.split(";")
    owners = [_layer_in(seg, layer_names) for seg in segments]
    for owner in owners:
        if owner in weighted:
            return owner
    return owners[0]


def tflite_ops(model_bytes: bytes) -> list[dict[str, Any]]:
    """Ops in execution order: type, output tensor names and dtypes, fused activation."""
    model = flatbuffer.read(model_bytes)
    graph = model.subgraphs[0]
    names, types, act_names = flatbuffer.op_names(), flatbuffer.tensor_type_names(), flatbuffer.activation_names()
    ops = []
    for i, op in enumerate(graph.operators):
        builtin = flatbuffer.builtin_code(model, op)
        fused = getattr(op.builtinOptions, "fusedActivationFunction", None)
        outs = [graph.tensors[t] for t in op.outputs]
        ops.append({
            "index": i, "op": names.get(builtin, str(builtin)),
            "outputs": [_decode(t.name) for t in outs],
            "output_dtypes": [types.get(t.type, str(t.type)).lower() for t in outs],
            "fused_activation": act_names.get(fused, None) if fused is not None else None,
        })
    return ops


def _decode(name) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def report(layers: list[dict[str, Any]], model_bytes: bytes) -> dict[str, Any]:
    """Keras layers vs TFLite ops, and the three checks: BatchNorm folded, activations fused, training-only ops gone."""
    ops = tflite_ops(model_bytes)
    plain = [layer for layer in layers if not layer.get("container")]
    names = {layer["name"] for layer in plain}
    cls = {layer["name"]: layer["class"] for layer in plain}
    weighted = weighted_layers(plain)
    owner = [attribute(op["outputs"][0], names, weighted) if op["outputs"] else None for op in ops]
    own_ops = Counter(cls[o] for o in owner if o is not None)

    def count(classes):
        return sum(1 for layer in plain if layer["class"] in classes)

    standalone = [op["op"] for op in ops if op["op"] in FUSABLE_ACTIVATIONS]
    fused = Counter(op["fused_activation"] for op in ops if op["fused_activation"] not in (None, "NONE"))
    keras_acts = sum(1 for layer in plain if layer["class"] in ACTIVATION_LAYERS
                     or (layer["activation"] in ("relu", "relu6", "tanh", "sigmoid")
                         and layer["class"] not in ACTIVATION_LAYERS))
    bn_ops = sum(n for c, n in own_ops.items() if c in NORMALIZATION)
    drop_ops = sum(n for c, n in own_ops.items() if c in TRAINING_ONLY)
    return {
        "keras_layer_histogram": dict(sorted(Counter(layer["class"] for layer in plain).items())),
        "tflite_op_histogram": dict(sorted(Counter(op["op"] for op in ops).items())),
        "tflite_ops_per_keras_class": dict(sorted(own_ops.items())),
        "unattributed_ops": int(sum(1 for o in owner if o is None)),
        "checks": {
            "batchnorm_folded": {"keras_layers": count(NORMALIZATION), "tflite_ops_of_their_own": bn_ops,
                                 "ok": bn_ops == 0},
            "activations_fused": {"keras_activations": keras_acts, "fused_into_ops": dict(sorted(fused.items())),
                                  "standalone_activation_ops": dict(sorted(Counter(standalone).items())),
                                  "ok": not standalone},
            "training_only_removed": {"keras_layers": count(TRAINING_ONLY), "tflite_ops_of_their_own": drop_ops,
                                      "ok": drop_ops == 0},
        },
    }


#: Ops whose second input is a weight tensor.
WEIGHT_OPS = {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "BATCH_MATMUL"}


def weight_sparsity(model_bytes: bytes) -> dict[str, Any]:
    """Share of exact zeros in the constant weights of matrix ops, read from the file's buffers.

    A pruned float zero stays an exact zero after symmetric int8 weight
    quantization, so this measures the sparsity the file really carries.
    """
    model = flatbuffer.read(model_bytes)
    graph = model.subgraphs[0]
    tensor_type = flatbuffer.schema().TensorType
    dtypes = {tensor_type.FLOAT32: np.float32, tensor_type.INT8: np.int8, tensor_type.FLOAT16: np.float16,
              tensor_type.INT16: np.int16}
    zeros = total = 0
    seen = set()
    for op in graph.operators:
        if flatbuffer.op_names().get(flatbuffer.builtin_code(model, op)) not in WEIGHT_OPS or len(op.inputs) < 2:
            continue
        t = op.inputs[1]
        if t in seen or t < 0:
            continue
        seen.add(t)
        tensor = graph.tensors[t]
        data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
        if data is None or len(data) == 0 or tensor.type not in dtypes:
            continue
        values = np.frombuffer(bytes(np.asarray(data, dtype=np.uint8)), dtype=dtypes[tensor.type])
        zeros += int(np.sum(values == 0))
        total += int(values.size)
    return {"weights": total, "zeros": zeros, "sparsity": zeros / total if total else 0.0}
