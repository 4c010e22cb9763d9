"""Command-line entry point: ``python -m mobopt <stage> ...``; the only layer the workflow calls.

Heavy modules are imported inside each command so that ``bench`` never loads
TensorFlow.  A :class:`mobopt.MobOptError` is printed as one line naming the
file or key, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from mobopt import MobOptError


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc


def cmd_download(a):
    from mobopt import datasets

    datasets.get(a.dataset).download(a.options, Path(a.out))


def cmd_prepare(a):
    from mobopt import datasets

    options = a.options if a.workers is None else {**a.options, "workers": a.workers}
    datasets.get(a.dataset).prepare(Path(a.raw), Path(a.out), options, a.seed)


def cmd_fetch_weights(a):
    from mobopt.pretrained import fetch

    for name in a.name:
        fetch(name, a.options, Path(a.out))


def cmd_train(a):
    from mobopt.train import train

    train(a.data, a.out, a.experiment, a.spec, a.seed, weights_dir=a.weights)


def cmd_convert(a):
    from mobopt.convert import convert

    convert(a.model, a.data, a.variant, a.out, a.info, a.options, a.seed, graph_opt=a.graph_opt)


def _not_supported(model: str, out: str, **facts) -> bool:
    """A variant the converter could not make: write a result that says so, with no numbers."""
    from mobopt import litert, provenance
    from mobopt.atomic import write_json

    record = litert.unsupported(model)
    if record is None:
        return False
    write_json(out, {"model": model, "variant": record.get("variant"), "supported": False, "reason": record.get("reason"),
                     **facts, "provenance": provenance.collect()})
    logging.getLogger("mobopt").warning("%s: not supported (%s); wrote %s without numbers", model, record.get("reason"), out)
    return True


def cmd_evaluate(a):
    if _not_supported(a.model, a.out, split=a.split):
        return
    from mobopt.evaluate import evaluate

    evaluate(a.model, a.data, a.out, split=a.split)


def cmd_bench(a):
    if _not_supported(a.model, a.out, device=a.device, tensorflow_imported="tensorflow" in sys.modules):
        return
    from mobopt.bench import benchmark

    benchmark(a.model, a.device, a.out, a.options)


def cmd_prune(a):
    from mobopt.pruning import prune

    prune(a.model, a.data, a.out, a.info, a.options, a.seed)


def cmd_sensitivity(a):
    from mobopt.graphopt import run_sensitivity

    run_sensitivity(a.model, a.data, a.out_json, a.out_csv, a.out_float, a.options, a.seed)


def cmd_select_precision(a):
    from mobopt.graphopt import run_selection

    run_selection(a.float, a.sensitivity, a.reference, a.data, a.out_json, a.out_csv, a.options, a.seed)


def cmd_plot_sensitivity(a):
    from mobopt.plots import sensitivity_bars

    sensitivity_bars(a.sensitivity, a.selection, a.title, a.png, a.svg)


def cmd_graph_opt_table(a):
    from mobopt.tables import write_variants

    write_variants(a.entries, a.out_csv, a.out_md)


def cmd_table2(a):
    from mobopt.tables import write_table2

    write_table2(a.entries, a.out_csv, a.out_md)


def cmd_table1(a):
    from mobopt.tables import write_table1

    write_table1(a.entries, a.out_csv, a.out_md)


def cmd_accuracy(a):
    from mobopt.tables import write_accuracy

    write_accuracy(a.entries, a.out_csv, a.out_md)


def cmd_plot_history(a):
    from mobopt.plots import training_curves

    training_curves(a.history, a.title, a.png, a.svg)


def cmd_plot_eval(a):
    from mobopt.plots import evaluation_bars

    evaluation_bars(a.entries, a.metric, a.png, a.svg)


def cmd_digits_idx(a):
    from mobopt.datasets import write_digits_as_mnist

    for name, digest in write_digits_as_mnist(a.out).items():
        print(f"{digest}  {Path(a.out) / name}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mobopt", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help):
        s = sub.add_parser(name, help=help)
        s.set_defaults(func=func)
        return s

    s = add("download", cmd_download, "fetch a dataset's raw files (checksummed, atomic)")
    s.add_argument("--dataset", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--options", type=_json, default={})

    s = add("prepare", cmd_prepare, "decode raw files into <split>_{x,y}.npy + meta.json")
    s.add_argument("--dataset", required=True)
    s.add_argument("--raw", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--options", type=_json, default={})
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=None, help="decoding processes (default: the dataset's `workers`)")

    s = add("fetch-weights", cmd_fetch_weights, "fetch pretrained weight files (checksummed, atomic)")
    s.add_argument("--name", action="append", required=True, help="weight file name (repeatable)")
    s.add_argument("--out", required=True)
    s.add_argument("--options", type=_json, default={})

    s = add("train", cmd_train, "train one experiment's model")
    s.add_argument("--experiment", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--spec", type=_json, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--weights", default=None, help="folder of pretrained weight files (data/weights)")

    s = add("convert", cmd_convert, "convert a Keras model to one .tflite variant")
    s.add_argument("--model", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--variant", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--info", required=True)
    s.add_argument("--options", type=_json, default={})
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--graph-opt", type=_json, default=None,
                   help="graph_opt_int8 only: JSON with the paths float, sensitivity, selection, pruning and the options")

    s = add("prune", cmd_prune, "magnitude-prune a Keras model with a short fine-tune (graph-optimization step a)")
    s.add_argument("--model", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--info", required=True)
    s.add_argument("--options", type=_json, default={}, help="graph_opt.pruning options")
    s.add_argument("--seed", type=int, default=0)

    s = add("sensitivity", cmd_sensitivity, "per-layer quantization sensitivity (graph-optimization step c)")
    s.add_argument("--model", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--out-json", required=True)
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-float", required=True, help="the float .tflite the analysis ran on")
    s.add_argument("--options", type=_json, default={}, help="graph_opt options")
    s.add_argument("--seed", type=int, default=0)

    s = add("select-precision", cmd_select_precision,
            "choose the higher-precision layers: accuracy budget, then lowest measured latency")
    s.add_argument("--float", required=True)
    s.add_argument("--sensitivity", required=True)
    s.add_argument("--reference", required=True, help="the float32 .tflite the accuracy budget is measured against")
    s.add_argument("--data", required=True)
    s.add_argument("--out-json", required=True)
    s.add_argument("--out-csv", required=True)
    s.add_argument("--options", type=_json, default={}, help="graph_opt options")
    s.add_argument("--seed", type=int, default=0)

    s = add("plot-sensitivity", cmd_plot_sensitivity, "per-layer sensitivity figure, chosen layers marked")
    s.add_argument("--sensitivity", required=True)
    s.add_argument("--selection", required=True)
    s.add_argument("--title", required=True)
    s.add_argument("--png", required=True)
    s.add_argument("--svg", required=True)

    s = add("graph-opt-table", cmd_graph_opt_table, "per-variant table: size, accuracy, latency, ops, precision, sparsity")
    s.add_argument("--entries", type=_json, required=True)
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)

    s = add("evaluate", cmd_evaluate, "accuracy/loss of a .keras or .tflite model")
    s.add_argument("--model", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--split", default="test")

    s = add("bench", cmd_bench, "benchmark a .tflite on a device (TF-free process)")
    s.add_argument("--model", required=True)
    s.add_argument("--device", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--options", type=_json, default={})

    s = add("table2", cmd_table2, "write Table 2 (CSV and Markdown) from result JSONs")
    s.add_argument("--entries", type=_json, required=True)
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)

    s = add("table1", cmd_table1, "write Table 1 (models x datasets) from result JSONs")
    s.add_argument("--entries", type=_json, required=True)
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)

    s = add("accuracy", cmd_accuracy, "write the accuracy table (every model, variant and evaluation split)")
    s.add_argument("--entries", type=_json, required=True)
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)

    s = add("plot-history", cmd_plot_history, "training curves (paper Figs. 1 and 4)")
    s.add_argument("--history", required=True)
    s.add_argument("--title", required=True)
    s.add_argument("--png", required=True)
    s.add_argument("--svg", required=True)

    s = add("plot-eval", cmd_plot_eval, "accuracy or loss, Keras vs variants (paper Figs. 2-3)")
    s.add_argument("--entries", type=_json, required=True)
    s.add_argument("--metric", choices=("accuracy", "loss"), required=True)
    s.add_argument("--png", required=True)
    s.add_argument("--svg", required=True)

    s = add("digits-idx", cmd_digits_idx, "write scikit-learn's digits as MNIST-layout IDX files (offline demo)")
    s.add_argument("out")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except MobOptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
