"""Evaluation stage: a .keras or .tflite model in, its accuracy and loss out."""

from __future__ import annotations

from mobopt.cli._args import add_command, require


def cmd_evaluate(a):
    require(a.model, a.data)
    from mobopt.litert.unsupported import write_result

    if write_result(a.model, a.out, split=a.split):  # a variant the converter could not make: a result without numbers
        return
    from mobopt.evaluate import evaluate

    evaluate(a.model, a.data, a.out, split=a.split)


def register(sub) -> None:
    s = add_command(sub, "evaluate", cmd_evaluate, "accuracy/loss of a .keras or .tflite model")
    s.add_argument("--model", required=True, help="model to evaluate (.keras or .tflite)")
    s.add_argument("--data", required=True, help="prepared dataset folder")
    s.add_argument("--out", required=True, help="metrics file to write (JSON)")
    s.add_argument("--split", default="test", help="split to evaluate on (default: %(default)s)")
