"""Training stage: a prepared dataset in, a Keras model out; and what a trained model costs (TensorFlow, imported
by the commands only)."""

from __future__ import annotations

from mobopt.cli._args import add_command, add_seed, json_arg, require


def cmd_train(a):
    require(a.data)
    if a.source:  # structured pruning of another experiment's trained model, then a fine-tune
        from mobopt.optimize import structured

        structured.train_pruned(a.data, a.out, a.experiment, a.spec, a.seed, a.source, teacher=a.teacher)
        return
    from mobopt.models.train import train

    train(a.data, a.out, a.experiment, a.spec, a.seed, weights_dir=a.weights, teacher=a.teacher)


def cmd_model_cost(a):
    require(a.model)
    from mobopt.common import provenance
    from mobopt.common.atomic import write_json
    from mobopt.models import architectures, cost

    model = architectures.load(a.model)
    example = cost.separable_vs_standard(a.k, a.c_in, a.c_out)
    ratio = example.pop("ratio")
    example.update(ratio=float(ratio), ratio_fraction=f"{ratio.numerator}/{ratio.denominator}")
    write_json(a.out, {**cost.report(model), "separable_vs_standard": example, "provenance": provenance.collect()})


def register(sub) -> None:
    s = add_command(sub, "train", cmd_train, "train one experiment's model")
    s.add_argument("--experiment", required=True, help="experiment name (a key of the config's `experiments`)")
    s.add_argument("--data", required=True, help="prepared dataset folder")
    s.add_argument("--out", required=True, help="folder for model.keras, history.csv and metrics.json")
    s.add_argument("--spec", type=json_arg, required=True, help="the experiment's `model` and `train` entries, as JSON")
    add_seed(s)
    s.add_argument("--weights", default=None, help="folder of pretrained weight files (data/weights)")
    s.add_argument("--source", default=None,
                   help="a trained model.keras to prune structurally (the spec's `structured_pruning`) and fine-tune, "
                        "instead of training from scratch")
    s.add_argument("--teacher", default=None,
                   help="a trained model.keras to distil from (the spec's `distillation`: temperature, alpha)")

    s = add_command(sub, "model-cost", cmd_model_cost,
                    "count a trained model's parameters and multiply-accumulates (MACs) layer by layer, by kind "
                    "(standard, depthwise and pointwise conv, dense, attention), with the study's standard vs "
                    "depthwise-separable example")
    s.add_argument("--model", required=True, help="the trained model (results/models/<experiment>/model.keras)")
    s.add_argument("--out", required=True, help="JSON to write (results/models/<experiment>/cost.json)")
    s.add_argument("--k", type=int, default=3, help="kernel size of the example convolution (default: %(default)s)")
    s.add_argument("--c-in", type=int, default=128, help="input channels of the example (default: %(default)s)")
    s.add_argument("--c-out", type=int, default=256, help="output channels of the example (default: %(default)s)")
