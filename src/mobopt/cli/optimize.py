"""Optimization stages: a Keras model in, .tflite variants and the graph-optimization steps out (TensorFlow)."""

from __future__ import annotations

from mobopt.cli._args import VARIANTS, add_command, add_options, add_registry, add_seed, json_arg, require


def cmd_convert(a):
    require(a.model, a.data)
    from mobopt.optimize.convert import convert

    convert(a.model, a.data, a.variant, a.out, a.info, a.options, a.seed, graph_opt=a.graph_opt)


def cmd_prune(a):
    require(a.model, a.data)
    from mobopt.optimize.pruning import prune

    prune(a.model, a.data, a.out, a.info, a.options, a.seed)


def cmd_sensitivity(a):
    require(a.model, a.data)
    from mobopt.optimize.graphopt import run_sensitivity

    run_sensitivity(a.model, a.data, a.out_json, a.out_csv, a.out_float, a.options, a.seed)


def cmd_select_precision(a):
    require(a.float, a.sensitivity, a.reference, a.data)
    from mobopt.optimize.graphopt import run_selection

    run_selection(a.float, a.sensitivity, a.reference, a.data, a.out_json, a.out_csv, a.options, a.seed)


def cmd_peak_models(a):
    from mobopt.optimize.peak_models import build_models

    build_models(a.out)


def register(sub) -> None:
    s = add_command(sub, "convert", cmd_convert, "convert a Keras model to one .tflite variant")
    s.add_argument("--model", required=True, help="trained Keras model (.keras)")
    s.add_argument("--data", required=True, help="prepared dataset folder (calibration data)")
    add_registry(s, "--variant", VARIANTS, "variant to build")
    s.add_argument("--out", required=True, help=".tflite file to write")
    s.add_argument("--info", required=True, help="conversion record to write (JSON)")
    add_options(s, "the config's `convert` options")
    add_seed(s)
    s.add_argument("--graph-opt", type=json_arg, default=None,
                   help="graph_opt_int8 only: JSON with the paths float, sensitivity, selection, pruning and the options")

    s = add_command(sub, "prune", cmd_prune, "magnitude-prune a Keras model with a short fine-tune (graph-optimization step a)")
    s.add_argument("--model", required=True, help="trained Keras model (.keras)")
    s.add_argument("--data", required=True, help="prepared dataset folder (fine-tuning data)")
    s.add_argument("--out", required=True, help="pruned Keras model to write (.keras)")
    s.add_argument("--info", required=True, help="pruning record to write (JSON)")
    add_options(s, "graph_opt.pruning options")
    add_seed(s)

    s = add_command(sub, "sensitivity", cmd_sensitivity, "per-layer quantization sensitivity (graph-optimization step c)")
    s.add_argument("--model", required=True, help="pruned Keras model (.keras)")
    s.add_argument("--data", required=True, help="prepared dataset folder (calibration and validation data)")
    s.add_argument("--out-json", required=True, help="per-layer sensitivity ranking to write (JSON)")
    s.add_argument("--out-csv", required=True, help="the same ranking as CSV")
    s.add_argument("--out-float", required=True, help="the float .tflite the analysis ran on")
    add_options(s, "graph_opt options")
    add_seed(s)

    s = add_command(sub, "select-precision", cmd_select_precision,
                    "choose the higher-precision layers: accuracy budget, then lowest measured latency")
    s.add_argument("--float", required=True, help="the float .tflite of the sensitivity analysis (its --out-float)")
    s.add_argument("--sensitivity", required=True, help="the sensitivity ranking (JSON, its --out-json)")
    s.add_argument("--reference", required=True, help="the float32 .tflite the accuracy budget is measured against")
    s.add_argument("--data", required=True, help="prepared dataset folder (validation data)")
    s.add_argument("--out-json", required=True, help="the chosen layers and every candidate's measurements to write (JSON)")
    s.add_argument("--out-csv", required=True, help="the candidates as CSV")
    add_options(s, "graph_opt options")
    add_seed(s)

    s = add_command(sub, "peak-models", cmd_peak_models,
                    "convert the GEMM models that measure this CPU's peak (needs TensorFlow)")
    s.add_argument("--out", required=True, help="folder for fc_float32.tflite and fc_int8.tflite")
