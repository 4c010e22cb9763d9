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


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    """``["float32=a.tflite", ...]`` -> ``{"float32": "a.tflite", ...}``."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise MobOptError(f"{flag} {item!r}: expected VARIANT=PATH")
        out[key] = value
    return out


def cmd_bench(a):
    from mobopt.protocol import run

    run(_pairs(a.model, "--model"), a.device, _pairs(a.out, "--out"), a.options, binary=a.binary,
        context={"experiment": a.experiment} if a.experiment else None)


def cmd_bench_run(a):
    from mobopt.bench import measure_to_file

    measure_to_file(a.model, a.device, a.out, a.options, load_only=a.load_only)


def cmd_op_profile(a):
    from mobopt import devices, opprofile
    from mobopt.atomic import write_json

    dev = devices.get(a.device)
    cores = dev.apply()
    result = opprofile.profile(a.model, threads=dev.threads, runs=a.runs, seed=a.seed)
    write_json(a.out, {**result, "model": a.model, "device": a.device, "cores": cores})


def cmd_fetch_tool(a):
    from mobopt.tools import fetch_benchmark_model

    fetch_benchmark_model(a.options, a.out)


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

    write_table2(a.entries, a.out_csv, a.out_md, a.out_tex)


def cmd_op_table(a):
    from mobopt.tables import write_op_profile

    write_op_profile(a.entries, a.out_csv, a.out_md)


def cmd_table1(a):
    from mobopt.tables import write_table1

    write_table1(a.entries, a.out_csv, a.out_md, a.out_tex)


def cmd_accuracy(a):
    from mobopt.tables import write_accuracy

    write_accuracy(a.entries, a.out_csv, a.out_md)


def cmd_paper_table2(a):
    from mobopt.tables import write_paper_table2

    write_paper_table2(a.out_csv, a.out_md, a.out_tex)


def cmd_paper_vs(a):
    from mobopt.tables import write_paper_vs_reproduced

    write_paper_vs_reproduced(a.entries, a.out_csv, a.out_md, a.out_tex)


def cmd_plot(a):
    from mobopt import plots

    func = {"latency": plots.latency_distributions, "size": plots.size_bars, "pareto": plots.accuracy_latency_pareto}
    func[a.kind](a.entries, a.png, a.svg)


def cmd_plot_roofline(a):
    from mobopt.plots import roofline

    roofline(a.entries, a.peak, a.png, a.svg)


def cmd_peak_models(a):
    from mobopt.peak import build_models

    build_models(a.out)


def cmd_cpu_peak(a):
    from mobopt import peak
    from mobopt.atomic import write_json
    from mobopt.provenance import collect

    result = peak.measure({"float32": a.float32, "int8": a.int8}, a.device)
    write_json(a.out, {**result, "provenance": collect(threads=result["threads"])})


def cmd_summary(a):
    from mobopt.summary import write

    write(a.verdicts, a.table2, a.bench, a.config, a.out)


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

    def add_table(name, func, help, tex=None, entries=True):
        """A table command: result entries in, CSV + Markdown (+ LaTeX: ``tex`` "optional" or "required") out."""
        s = add(name, func, help)
        if entries:
            s.add_argument("--entries", type=_json, required=True)
        s.add_argument("--out-csv", required=True)
        s.add_argument("--out-md", required=True)
        if tex:
            s.add_argument("--out-tex", required=tex == "required", default=None)
        return s

    def add_figure(name, func, help):
        """A figure command: PNG (for reading) and SVG (for papers) out."""
        s = add(name, func, help)
        s.add_argument("--png", required=True)
        s.add_argument("--svg", required=True)
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

    s = add_figure("plot-sensitivity", cmd_plot_sensitivity, "per-layer sensitivity figure, chosen layers marked")
    s.add_argument("--sensitivity", required=True)
    s.add_argument("--selection", required=True)
    s.add_argument("--title", required=True)

    s = add_table("graph-opt-table", cmd_graph_opt_table, "per-variant table: size, accuracy, latency, ops, precision, sparsity")

    s = add("evaluate", cmd_evaluate, "accuracy/loss of a .keras or .tflite model")
    s.add_argument("--model", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--split", default="test")

    s = add("bench", cmd_bench, "the benchmark protocol: every variant of one experiment on one device, interleaved")
    s.add_argument("--model", action="append", required=True, metavar="VARIANT=PATH", help=".tflite per variant")
    s.add_argument("--out", action="append", required=True, metavar="VARIANT=PATH", help="result JSON per variant")
    s.add_argument("--device", required=True)
    s.add_argument("--options", type=_json, default={})
    s.add_argument("--experiment", default=None, help="recorded in every result")
    s.add_argument("--binary", default=None, help="LiteRT benchmark_model binary (android devices)")

    s = add("bench-run", cmd_bench_run, "one measurement in this (fresh, TF-free) process; the protocol's inner step")
    s.add_argument("--model", required=True)
    s.add_argument("--device", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--options", type=_json, default={})
    s.add_argument("--load-only", action="store_true", help="only the timed cold load")

    s = add("op-profile", cmd_op_profile, "per-op time profile from isolated single-op models (host devices)")
    s.add_argument("--model", required=True)
    s.add_argument("--device", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--runs", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)

    s = add("fetch-tool", cmd_fetch_tool, "fetch LiteRT's benchmark_model binary for Android (checksummed, atomic)")
    s.add_argument("--out", required=True)
    s.add_argument("--options", type=_json, default={})

    s = add_table("table2", cmd_table2, "write Table 2 (CSV, Markdown, LaTeX) from result JSONs", tex="optional")

    add_table("paper-table2", cmd_paper_table2, "write the paper's Table 2 as published (from src/mobopt/data/paper.yaml)",
              tex="required", entries=False)

    s = add_table("paper-vs", cmd_paper_vs, "write the paper-vs-reproduced table with verdicts", tex="required")

    s = add_figure("plot", cmd_plot, "latency distributions, size bars or the accuracy-latency Pareto fronts")
    s.add_argument("kind", choices=("latency", "size", "pareto"))
    s.add_argument("--entries", type=_json, required=True)

    s = add_figure("plot-roofline", cmd_plot_roofline, "achieved GFLOP/s per variant against this CPU's measured peak")
    s.add_argument("--entries", type=_json, required=True)
    s.add_argument("--peak", required=True)

    s = add("peak-models", cmd_peak_models, "convert the GEMM models that measure this CPU's peak (needs TensorFlow)")
    s.add_argument("--out", required=True)

    s = add("cpu-peak", cmd_cpu_peak, "measure this CPU's GEMM peaks and memory bandwidth on a host device")
    s.add_argument("--float32", required=True)
    s.add_argument("--int8", required=True)
    s.add_argument("--device", required=True)
    s.add_argument("--out", required=True)

    s = add("summary", cmd_summary, "the report's landing page: verdicts and run metadata (HTML)")
    s.add_argument("--verdicts", required=True)
    s.add_argument("--table2", required=True)
    s.add_argument("--bench", required=True, help="one benchmark JSON, for the run's provenance")
    s.add_argument("--config", type=_json, required=True)
    s.add_argument("--out", required=True)

    s = add_table("op-table", cmd_op_table, "write the per-op time profile table (CSV and Markdown) from benchmark JSONs")

    s = add_table("table1", cmd_table1, "write Table 1 (models x datasets) from result JSONs", tex="optional")

    s = add_table("accuracy", cmd_accuracy, "write the accuracy table (every model, variant and evaluation split)")

    s = add_figure("plot-history", cmd_plot_history, "training curves (paper Figs. 1 and 4)")
    s.add_argument("--history", required=True)
    s.add_argument("--title", required=True)

    s = add_figure("plot-eval", cmd_plot_eval, "accuracy or loss, Keras vs variants (paper Figs. 2-3)")
    s.add_argument("--entries", type=_json, required=True)
    s.add_argument("--metric", choices=("accuracy", "loss"), required=True)

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
