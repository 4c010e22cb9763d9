"""Accuracy and loss of any model on any split: the one accuracy loop of every runtime.

Evaluation, the mixed-precision selection and every later search score models
here, so a number in one table means the same as in another.  A runtime is one
entry in :data:`PREDICTORS` (file suffix -> function returning the output
probabilities).  The .tflite path is TF-free and runs the model exactly as an
app would: batch 1, inputs quantized and outputs dequantized with the tensor's
own scale and zero point.  Evaluating the Keras model with the same metrics
makes the Keras-to-TFLite gap visible.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobopt import MobOptError, litert, onnxrt
from mobopt.common import provenance
from mobopt.common.atomic import write_json
from mobopt.common.progress import Progress
from mobopt.datasets.prepared import load_meta, load_split

log = logging.getLogger(__name__)

#: Seconds between progress lines of the .tflite loop (images done, img/s, time left).
PROGRESS_SECONDS = 30.0

#: Probabilities are clipped to [EPS, 1] before the log, as Keras does; an int8
#: output can be exactly 0 for the true class, and log(0) would be infinite.
EPS = 1e-7


def class_scores(confusion: np.ndarray) -> dict[str, Any]:
    """Per-class precision, recall and F1 and their macro means, from a confusion matrix.

    ``confusion`` has one row per class (the true class) and one column per
    class (the prediction), plus optionally more columns for predictions
    outside the classes (the ``other`` column of a subset of a larger head):
    those count against the true class's recall and no class's precision.

    Edge cases, as scikit-learn's ``precision_recall_fscore_support`` with
    ``zero_division=0``:

    * a class never predicted has precision 0 (not undefined);
    * a class with no support (no true sample) has recall ``None`` and is left
      out of the macro means, as scikit-learn does when given only the classes
      present (``labels=``); its precision is still reported (0: every
      prediction of it is wrong);
    * F1 is ``2PR / (P + R)``, and 0 where ``P + R`` is 0.

    The macro means are unweighted means over the classes with support; macro
    F1 is the mean of the per-class F1 (scikit-learn's definition), not the F1
    of macro precision and recall.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    n = confusion.shape[0]
    tp = np.diag(confusion[:, :n]).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion[:, :n].sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n), where=denom > 0)
    present = support > 0
    macro = {name: (float(values[present].mean()) if present.any() else None)
             for name, values in (("precision", precision), ("recall", recall), ("f1", f1))}
    return {
        "precision": [float(v) for v in precision],
        "recall": [float(v) if s else None for v, s in zip(recall, present, strict=True)],
        "f1": [float(v) if s else None for v, s in zip(f1, present, strict=True)],
        "macro_precision": macro["precision"], "macro_recall": macro["recall"], "macro_f1": macro["f1"],
        "classes_with_support": int(present.sum()),
    }


def classification_metrics(probs: np.ndarray, y: np.ndarray, classes: list[str],
                           label_indices: list[int] | None = None) -> dict[str, Any]:
    """Accuracy (top-1), mean cross-entropy, top-5, per-class and macro precision, recall and F1, and the
    confusion matrix.

    ``y`` and ``probs`` index the model's output.  When the dataset's classes
    are a subset of a larger head (``label_indices``: Imagenette in
    ImageNet-1k), every metric is taken over the whole head, so predicting a
    class outside the subset counts as wrong, and the confusion matrix gets
    one ``other`` column for such predictions.  Precision, recall and F1 are
    over the dataset's classes (:func:`class_scores` gives the edge cases:
    a class never predicted has precision 0, a class without test samples is
    left out of the macro means); per-class accuracy is per-class recall,
    kept under its older name.
    """
    probs = np.asarray(probs, dtype=np.float64)
    outputs = probs.shape[1]
    label_indices = list(range(len(classes))) if label_indices is None else [int(i) for i in label_indices]
    column = np.full(outputs, len(classes), dtype=np.int64)  # output index -> confusion column
    column[label_indices] = np.arange(len(classes))
    row = column[y]
    pred = probs.argmax(axis=1)
    true_p = np.clip(probs[np.arange(len(y)), y], EPS, 1.0)
    subset = outputs > len(classes)
    confusion = np.zeros((len(classes), len(classes) + int(subset)), dtype=np.int64)
    np.add.at(confusion, (row, column[pred]), 1)
    scores = class_scores(confusion)
    k = min(5, outputs)
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return {
        "samples": int(len(y)),
        "accuracy": float((pred == y).mean()),
        "loss": float(-np.log(true_p).mean()),
        f"top{k}_accuracy": float((topk == y[:, None]).any(axis=1).mean()),
        "macro_precision": scores["macro_precision"],
        "macro_recall": scores["macro_recall"],
        "macro_f1": scores["macro_f1"],
        "classes_with_support": scores["classes_with_support"],
        "per_class_accuracy": dict(zip(classes, scores["recall"], strict=True)),
        "per_class_precision": dict(zip(classes, scores["precision"], strict=True)),
        "per_class_recall": dict(zip(classes, scores["recall"], strict=True)),
        "per_class_f1": dict(zip(classes, scores["f1"], strict=True)),
        "confusion_matrix": confusion.tolist(),
        "confusion_columns": list(classes) + (["other"] if subset else []),
        "classes": list(classes),
        "outputs": int(outputs),
    }


def accuracy_and_loss(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy: what a selection compares, cheaper than the full metrics."""
    probs = np.asarray(probs, dtype=np.float64)
    true_p = np.clip(probs[np.arange(len(y)), y], EPS, 1.0)
    return {"accuracy": float((probs.argmax(1) == y).mean()), "loss": float(-np.log(true_p).mean())}


def _shape(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def predict_tflite(model: str | Path | bytes, x: np.ndarray, threads: int = 1, *,
                   progress_seconds: float | None = None) -> np.ndarray:
    """Output probabilities of a .tflite model (a path or its bytes), one image at a time.

    Logs images done, images per second and the time left every ``progress_seconds``
    (default :data:`PROGRESS_SECONDS`): a large model on a big test split runs for hours at batch 1."""
    it = litert.interpreter(model, threads=threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    shape = tuple(int(d) for d in inp["shape"][1:])
    name = "<model bytes>" if isinstance(model, bytes) else model
    if tuple(x.shape[1:]) != shape:
        raise MobOptError(f"{name}: the model takes images of {_shape(shape)} but the data has {_shape(x.shape[1:])}; "
                          "convert the model trained on this dataset, or prepare the data at the model's input size")
    probs = np.empty((len(x), out["shape"][-1]), dtype=np.float32)
    interval = PROGRESS_SECONDS if progress_seconds is None else progress_seconds
    progress = Progress(f"evaluate {name}", len(x), "images", interval=interval, logger=log)
    for i in range(len(x)):
        it.set_tensor(inp["index"], litert.quantize_input(np.asarray(x[i: i + 1], np.float32), inp))
        it.invoke()
        probs[i] = litert.dequantize_output(it.get_tensor(out["index"]), out)[0]
        progress.advance()
    return probs


def predict_keras(model_path: str | Path, x: np.ndarray, seed: int = 0) -> np.ndarray:
    from mobopt.models.runtime import configure_tensorflow

    tf = configure_tensorflow(seed, 2)
    from mobopt.models import architectures
    from mobopt.models.train import eval_batches

    model = architectures.load(model_path)
    expected = tuple(int(d) for d in model.input_shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise MobOptError(f"{model_path}: the model takes images of {_shape(expected)} but the data has "
                          f"{_shape(x.shape[1:])}; evaluate it on the dataset it was trained on")
    # batch by batch from the (memory-mapped) split: a float copy of ASL's test split would be 5 GB
    return np.asarray(model.predict(eval_batches(tf, x, np.zeros(len(x), np.int64)), verbose=0))


def _predict_keras(model_path: Path, x: np.ndarray, threads: int) -> np.ndarray:
    return predict_keras(model_path, x)


def predict_onnx(model_path: Path, x: np.ndarray, threads: int = 1) -> np.ndarray:
    """Output probabilities of an .onnx model under ONNX Runtime, batch 1, with the same progress lines."""
    progress = Progress(f"evaluate {model_path}", len(x), "images", interval=PROGRESS_SECONDS, logger=log)
    return onnxrt.predict(model_path, x, threads, progress=progress)


#: File suffix -> the runtime's prediction function ``(path, images, threads) -> probabilities``.
PREDICTORS = {"tflite": predict_tflite, "onnx": predict_onnx, "keras": _predict_keras}


def evaluate(model_path: str | Path, prepared: str | Path, out_json: str | Path, *, split: str = "test",
             threads: int = 1) -> dict[str, Any]:
    """Evaluate a .keras, .tflite or .onnx model on ``split`` and write the metrics JSON."""
    model_path = Path(model_path)
    meta = load_meta(prepared)
    x, y = load_split(prepared, split)
    kind = model_path.suffix.lstrip(".")
    if kind not in PREDICTORS:
        raise MobOptError(f"{model_path}: no runtime evaluates .{kind} files; known: "
                          f"{', '.join('.' + k for k in PREDICTORS)}")
    t0 = time.perf_counter()
    probs = PREDICTORS[kind](model_path, x, threads)
    result = {
        "model": str(model_path),
        "kind": kind,
        "split": split,
        "seconds": time.perf_counter() - t0,
        **classification_metrics(probs, y, meta["classes"], meta.get("label_indices")),
        "provenance": provenance.collect(dataset=meta, threads=threads),
    }
    write_json(out_json, result)
    log.info("%s on %s: accuracy %.4f loss %.4g", model_path, split, result["accuracy"], result["loss"])
    return result
