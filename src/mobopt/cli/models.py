"""Training stage: a prepared dataset in, a Keras model out (TensorFlow, imported by the command only)."""

from __future__ import annotations

from mobopt.cli._args import add_command, add_seed, json_arg, require


def cmd_train(a):
    require(a.data)
    from mobopt.models.train import train

    train(a.data, a.out, a.experiment, a.spec, a.seed, weights_dir=a.weights)


def register(sub) -> None:
    s = add_command(sub, "train", cmd_train, "train one experiment's model")
    s.add_argument("--experiment", required=True, help="experiment name (a key of the config's `experiments`)")
    s.add_argument("--data", required=True, help="prepared dataset folder")
    s.add_argument("--out", required=True, help="folder for model.keras, history.csv and metrics.json")
    s.add_argument("--spec", type=json_arg, required=True, help="the experiment's `model` and `train` entries, as JSON")
    add_seed(s)
    s.add_argument("--weights", default=None, help="folder of pretrained weight files (data/weights)")
