"""Precision, recall and F1 of an evaluation, checked against scikit-learn on random predictions."""

import numpy as np
import pytest
from sklearn import metrics as skm

from mobopt.evaluate import class_scores, classification_metrics


def _sklearn(y, pred, labels):
    """scikit-learn's per-class and macro scores over ``labels``, with zero_division=0."""
    per_class = skm.precision_recall_fscore_support(y, pred, labels=labels, average=None, zero_division=0)
    macro = skm.precision_recall_fscore_support(y, pred, labels=labels, average="macro", zero_division=0)
    return per_class, macro


def _random(rng, samples, outputs, true_labels):
    probs = rng.dirichlet(np.full(outputs, 0.3), size=samples)
    y = rng.choice(true_labels, size=samples)
    return probs, y


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", range(5))
def test_scores_match_sklearn_with_a_class_never_seen(seed):
    """Class 3 has no test sample (left out of the macro means) and the head predicts it anyway (precision 0)."""
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(6)]
    probs, y = _random(rng, 200, 6, [0, 1, 2, 4, 5])
    probs[:5, 3] = 10.0  # some predictions of the class that has no support
    probs /= probs.sum(axis=1, keepdims=True)
    m = classification_metrics(probs, y, classes)
    pred = probs.argmax(axis=1)
    present = [0, 1, 2, 4, 5]
    (p, r, f, _), (mp, mr, mf, _) = _sklearn(y, pred, present)
    assert m["macro_precision"] == pytest.approx(mp) and m["macro_recall"] == pytest.approx(mr)
    assert m["macro_f1"] == pytest.approx(mf) and m["classes_with_support"] == 5
    got = [[m[f"per_class_{k}"][f"c{i}"] for i in present] for k in ("precision", "recall", "f1")]
    np.testing.assert_allclose(got, [p, r, f])
    assert m["per_class_recall"]["c3"] is None and m["per_class_f1"]["c3"] is None
    assert m["per_class_precision"]["c3"] == 0.0
    assert m["per_class_accuracy"] == m["per_class_recall"]
    # macro recall is balanced accuracy (over the classes present)
    assert m["macro_recall"] == pytest.approx(skm.balanced_accuracy_score(y, pred))


@pytest.mark.parametrize("seed", range(3))
def test_scores_through_a_larger_head_count_predictions_outside_the_subset_as_wrong(seed):
    """Imagenette in ImageNet-1k: ten classes scored through a 1000-class head; sklearn given the ten labels."""
    rng = np.random.default_rng(seed)
    label_indices = [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]
    classes = [f"n{i}" for i in label_indices]
    probs = rng.dirichlet(np.full(1000, 0.05), size=300)
    y = rng.choice(label_indices, size=300)
    probs[np.arange(150), y[:150]] += 1.0  # half of the samples right, the rest mostly outside the subset
    m = classification_metrics(probs, y, classes, label_indices)
    pred = probs.argmax(axis=1)
    assert (~np.isin(pred, label_indices)).any()  # the case under test happens
    (p, r, f, _), (mp, mr, mf, _) = _sklearn(y, pred, label_indices)
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx((mp, mr, mf))
    np.testing.assert_allclose([m["per_class_precision"][c] for c in classes], p)
    np.testing.assert_allclose([m["per_class_f1"][c] for c in classes], f)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["top5_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, probs, k=5, labels=np.arange(1000)))


def test_edge_cases_by_hand():
    # rows: true a, b, c (c has no support); columns: predicted a, b, c, other
    s = class_scores(np.array([[2, 0, 1, 1], [0, 0, 0, 3], [0, 0, 0, 0]]))
    assert s["precision"] == [1.0, 0.0, 0.0]  # b never predicted: 0; c predicted once, wrongly: 0
    assert s["recall"] == [0.5, 0.0, None]
    assert s["f1"] == [pytest.approx(2 / 3), 0.0, None]
    assert s["macro_recall"] == 0.25 and s["macro_precision"] == 0.5 and s["macro_f1"] == pytest.approx(1 / 3)
    assert class_scores(np.zeros((2, 2)))["macro_f1"] is None  # nothing to score
