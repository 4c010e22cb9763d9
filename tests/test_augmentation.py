"""train.augmentation: flips and shifts what it says, draws from (seed, epoch, batch) only, never touches
validation images, and stays out of the train rule's params while off."""

import numpy as np
import pytest

from mobopt import MobOptError
from mobopt.models import train


def _batch(n=64, h=8, w=8):
    rng = np.random.default_rng(0)
    return rng.integers(1, 256, (n, h, w, 1), dtype=np.uint8)  # no zero pixel: a shift's fill shows


def test_flip_mirrors_about_half_of_the_batch_and_leaves_the_input_alone():
    x = _batch()
    before = x.copy()
    out = train.augment(x, np.random.default_rng(1), horizontal_flip=True)
    np.testing.assert_array_equal(x, before)
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x, strict=True)]
    unchanged = [np.array_equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(m or u for m, u in zip(mirrored, unchanged, strict=True))
    assert 16 <= sum(mirrored) <= 48


def test_shift_moves_each_image_by_at_most_max_shift_with_zero_fill():
    x = _batch()
    out = train.augment(x, np.random.default_rng(2), max_shift=2)
    assert out.shape == x.shape and out.dtype == np.uint8
    moved = 0
    for o, i in zip(out, x, strict=True):
        padded = np.pad(i, ((2, 2), (2, 2), (0, 0)))
        found = [(dy, dx) for dy in range(5) for dx in range(5) if np.array_equal(padded[dy:dy + 8, dx:dx + 8], o)]
        assert found, "an output is not a crop of the zero-padded input"
        moved += found[0] != (2, 2)
    assert moved > 32  # 24 of 25 offsets move the image


def test_no_augmentation_asked_is_the_identity():
    x = _batch()
    np.testing.assert_array_equal(train.augment(x, np.random.default_rng(3)), x)


def test_a_shift_as_large_as_the_image_is_refused_naming_the_key():
    with pytest.raises(MobOptError, match="train.augmentation.max_shift 8"):
        train.augment(_batch(), np.random.default_rng(0), max_shift=8)


def test_batches_depend_on_seed_epoch_and_batch_only():
    """A run resumed at epoch 1 sees exactly the augmented batches an uninterrupted run sees in epoch 1."""
    import tensorflow as tf

    x, y = _batch(300), np.arange(300) % 10
    aug = {"horizontal_flip": True, "max_shift": 2}
    full = [b[0].numpy() for b in train.epoch_batches(tf, x, y, 128, 5, 0, 2, aug)]
    resumed = [b[0].numpy() for b in train.epoch_batches(tf, x, y, 128, 5, 1, 2, aug)]
    assert len(full) == 6 and len(resumed) == 3
    for a, b in zip(full[3:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    plain = [b[0].numpy() for b in train.epoch_batches(tf, x, y, 128, 5, 0, 2)]
    assert any(not np.array_equal(a, b) for a, b in zip(full, plain, strict=True))
    # off, the batches are the images themselves in the (seed, epoch) order
    perm = np.random.default_rng([5, 0]).permutation(300)
    np.testing.assert_array_equal(plain[0], x[perm[:128]].astype(np.float32))


def test_augmentation_off_stays_out_of_the_train_rules_params():
    from test_plan import _config

    from mobopt.workflow.plan import Plan

    cfg = _config()
    cfg["experiments"]["vit_mnist"]["train"]["augmentation"] = {"horizontal_flip": False, "max_shift": 0}
    assert "augmentation" not in Plan(cfg).train_spec("vit_mnist")["train"]
    cfg["experiments"]["vit_mnist"]["train"]["augmentation"] = {"max_shift": 2}
    assert Plan(cfg).train_spec("vit_mnist")["train"]["augmentation"] == {"max_shift": 2}


def test_random_erasing_replaces_one_rectangle_per_chosen_image_with_noise():
    x = np.zeros((200, 28, 28, 1), dtype=np.uint8)
    out = train.augment(x, np.random.default_rng(4), random_erasing=0.5)
    assert not x.any()  # the input is left alone
    erased = 0
    for o in out[..., 0]:
        rows, cols = np.flatnonzero(o.any(axis=1)), np.flatnonzero(o.any(axis=0))
        if not len(rows):
            continue
        erased += 1
        eh, ew = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        box = o[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert (box > 0).mean() > 0.9  # one filled rectangle of noise (a noise pixel is 0 one time in 256)
        assert 0.02 * 784 * 0.5 <= eh * ew <= 0.4 * 784 * 1.3 and eh < 28 and ew < 28
    assert 70 <= erased <= 130
    np.testing.assert_array_equal(train.augment(x, np.random.default_rng(4), random_erasing=0.0), x)


def test_label_smoothing_is_kerass_categorical_smoothing_of_integer_labels():
    import keras

    from mobopt.models.losses import SmoothedSparseCrossentropy

    y = np.array([0, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]], dtype=np.float32)
    got = SmoothedSparseCrossentropy(0.1)(y, p)
    want = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[y], p)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)
    plain = keras.losses.SparseCategoricalCrossentropy()(y, p)
    assert float(got) > float(plain)  # smoothing charges the confident right answers
    again = SmoothedSparseCrossentropy.from_config(SmoothedSparseCrossentropy(0.2).get_config())
    assert again.label_smoothing == 0.2


def test_later_options_at_their_defaults_leave_the_train_rules_params_as_they_were():
    from test_plan import _config

    from mobopt.workflow.plan import Plan

    cfg = _config()
    train_cfg = cfg["experiments"]["vit_mnist"]["train"]
    train_cfg["augmentation"] = {"horizontal_flip": True, "max_shift": 0, "random_erasing": 0.0}
    train_cfg["label_smoothing"] = 0.0
    spec = Plan(cfg).train_spec("vit_mnist")["train"]
    assert spec["augmentation"] == {"horizontal_flip": True, "max_shift": 0} and "label_smoothing" not in spec
    train_cfg["augmentation"]["random_erasing"] = 0.25
    train_cfg["label_smoothing"] = 0.1
    spec = Plan(cfg).train_spec("vit_mnist")["train"]
    assert spec["augmentation"]["random_erasing"] == 0.25 and spec["label_smoothing"] == 0.1
