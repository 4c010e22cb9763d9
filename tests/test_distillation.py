"""Knowledge distillation: the loss is Hinton's, the teacher rides in the input pipeline, and a student is
trained from a real teacher by the train command as the workflow runs it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_SPEC, mobopt_cli


def _softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture(scope="module")
def logits():
    rng = np.random.default_rng(3)
    return rng.normal(0, 3, (8, 10)), rng.normal(0, 3, (8, 10)), rng.integers(0, 10, 8)


def _loss(t, alpha, teacher_probs, student_probs, labels):
    from mobopt.models import distill

    y_true = np.concatenate([labels[:, None].astype("float32"), teacher_probs.astype("float32")], axis=1)
    return np.asarray(distill.DistillationLoss(t, alpha)(y_true, student_probs.astype("float32")))


def test_the_loss_is_hintons_computed_from_probabilities(logits):
    z_t, z_s, labels = logits
    p_t, p_s = _softmax(z_t), _softmax(z_s)
    for t, alpha in [(1.0, 0.5), (4.0, 0.3), (2.5, 0.9)]:
        q_t, q_s = _softmax(z_t / t), _softmax(z_s / t)  # from the logits, which the loss never sees
        kl = np.sum(q_t * (np.log(q_t) - np.log(q_s)), axis=1)
        ce = -np.log(p_s[np.arange(8), labels])
        expected = np.mean(alpha * ce + (1 - alpha) * t * t * kl)
        assert _loss(t, alpha, p_t, p_s, labels) == pytest.approx(expected, rel=1e-4)


def test_alpha_one_is_plain_cross_entropy_and_a_perfect_copy_costs_only_that(logits):
    import keras

    z_t, z_s, labels = logits
    p_s = _softmax(z_s).astype("float32")
    ce = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, p_s)))
    assert _loss(4.0, 1.0, _softmax(z_t), p_s, labels) == pytest.approx(ce, rel=1e-5)
    assert _loss(4.0, 0.0, p_s, p_s, labels) == pytest.approx(0.0, abs=1e-6)


def test_accuracy_reads_the_label_column():
    from mobopt.models import distill

    y_true = np.array([[2, 0.1, 0.1, 0.8], [0, 0.2, 0.7, 0.1]], dtype="float32")
    y_pred = np.array([[0.1, 0.1, 0.8], [0.1, 0.8, 0.1]], dtype="float32")
    assert np.asarray(distill.label_accuracy(y_true, y_pred)).tolist() == [1.0, 0.0]


def test_the_teacher_labelling_ahead_gives_the_labels_it_gives_in_series(trained_tiny, prepared_digits):
    """The teacher labels batches ahead of the student (prefetched, so its forward pass overlaps the training
    step); the soft targets are bit for bit the ones it gives when each step waits for it, flips included."""
    import tensorflow as tf

    from mobopt.datasets.prepared import load_split
    from mobopt.models import architectures, distill
    from mobopt.models.train import epoch_batches

    teacher = architectures.load(trained_tiny / "model.keras")
    x, y = load_split(prepared_digits, "train")

    def targets(ahead):
        batches = epoch_batches(tf, x, y, 32, 7, 0, 2, {"horizontal_flip": True})
        return [(np.asarray(i), np.asarray(t)) for i, t in distill.with_teacher(tf, batches, teacher, ahead)]

    ahead, in_series = targets(distill.TEACHER_AHEAD), targets(0)
    assert distill.TEACHER_AHEAD > 0 and len(ahead) == len(in_series) == 2 * -(-len(x) // 32)
    for (images_a, targets_a), (images_s, targets_s) in zip(ahead, in_series, strict=True):
        np.testing.assert_array_equal(images_a, images_s)
        np.testing.assert_array_equal(targets_a, targets_s)
    assert targets_a.shape[1] == 11 and np.allclose(targets_a[:, 1:].sum(axis=1), 1.0, atol=1e-5)


def test_cli_distils_a_teacher_into_a_smaller_student(trained_tiny, prepared_digits, tmp_path):
    """The tiny digits ViT teaches a student of half its width for 10 epochs; the student learns (>= 80 % on the
    digits test split: chance is 10 %), and its files are ordinary (it evaluates without the teacher)."""
    student = {**TINY_SPEC["model"], "dim": 24, "mlp_dim": 48}
    spec = {"model": student, "train": {**TINY_SPEC["train"], "epochs": 10},
            "distillation": {"temperature": 4.0, "alpha": 0.5}}
    out = tmp_path / "student"
    mobopt_cli("train", "--experiment", "student", "--data", prepared_digits, "--out", out, "--spec",
               json.dumps(spec), "--seed", 1, "--teacher", trained_tiny / "model.keras")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["spec"]["distillation"]["temperature"] == 4.0
    assert len(metrics["spec"]["distillation"]["teacher_sha256"]) == 64
    teacher = json.loads((trained_tiny / "metrics.json").read_text())
    assert metrics["parameters"] < teacher["parameters"] / 2
    mobopt_cli("evaluate", "--model", out / "model.keras", "--data", prepared_digits, "--out", tmp_path / "e.json")
    assert json.loads((tmp_path / "e.json").read_text())["accuracy"] >= 0.80
    assert "accuracy" in (out / "history.csv").read_text().splitlines()[0]


def test_a_missing_teacher_says_which(prepared_digits, tmp_path):
    from mobopt import MobOptError
    from mobopt.models.train import train

    with pytest.raises(MobOptError, match="gone.keras: the teacher model of experiments.s.distillation is missing"):
        train(prepared_digits, tmp_path, "s", {"model": TINY_SPEC["model"]}, 1, teacher=tmp_path / "gone.keras")
