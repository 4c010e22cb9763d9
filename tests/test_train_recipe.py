"""train.optimizer and train.lr_schedule: the second study's SGD with momentum and a step schedule ("0.01, x0.1
every 10 epochs") reach Keras, the defaults stay AdamW with warm-up and cosine decay, and a checkpoint brings the
optimizer, its schedule and its step count back, which is all a resumed run needs to follow the same curve."""

import numpy as np
import pytest

from mobopt import MobOptError

STUDY = {"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.01, "lr_schedule": "step", "lr_step_epochs": 10,
         "lr_step_factor": 0.1, "warmup_epochs": 0, "epochs": 35}


def _tspec(**over):
    from mobopt.models import train

    return {**train.TRAIN_DEFAULTS, **over}


def _lr(schedule, step):
    return float(np.asarray(schedule(step)))


def test_step_schedule_drops_tenfold_every_ten_epochs():
    import keras

    from mobopt.models import train

    tspec, steps = _tspec(**STUDY), 7
    schedule = train._schedule(keras, train.phases(tspec)[0], steps, tspec)
    assert isinstance(schedule, keras.optimizers.schedules.PiecewiseConstantDecay)
    # the first and the last step of each epoch; the drop comes with epoch 11's first step (0-based step 70)
    expected = {0: 0.01, 69: 0.01, 70: 0.001, 139: 0.001, 140: 1e-4, 210: 1e-5, 35 * steps - 1: 1e-5}
    for step, lr in expected.items():
        assert _lr(schedule, step) == pytest.approx(lr, rel=1e-6), step
    # a pure function of the step: the same value however often and in whatever order it is asked
    assert [_lr(schedule, s) for s in (140, 0, 140)] == [_lr(schedule, 140), _lr(schedule, 0), _lr(schedule, 140)]


def test_step_boundaries_per_phase():
    from mobopt.models import train

    assert train.step_boundaries(train.Phase("train", 0, 30, 0.01, 0, False), 5, 10, 0.1) == (
        [49, 99], [0.01, pytest.approx(0.001), pytest.approx(1e-4)])
    # a phase counts from its own first epoch; one no longer than a step has no drop
    assert train.step_boundaries(train.Phase("fine_tune", 3, 13, 0.1, 0, False), 5, 10, 0.5) == ([], [0.1])


def test_step_schedule_with_warmup_ramps_then_steps():
    import keras

    from mobopt.models import schedules, train

    tspec, steps = _tspec(**{**STUDY, "warmup_epochs": 1, "epochs": 4, "lr_step_epochs": 2}), 4
    schedule = train._schedule(keras, train.phases(tspec)[0], steps, tspec)
    assert isinstance(schedule, schedules.WarmupPiecewiseConstantDecay)
    assert [_lr(schedule, s) for s in (0, 2, 4, 7, 8, 15)] == pytest.approx([0, 0.005, 0.01, 0.01, 0.001, 0.001])


def test_a_phase_shorter_than_a_step_keeps_its_learning_rate():
    import keras

    from mobopt.models import train

    tspec = _tspec(**{**STUDY, "epochs": 3})
    schedule = train._schedule(keras, train.phases(tspec)[0], 5, tspec)
    assert [_lr(schedule, s) for s in (0, 14)] == pytest.approx([0.01, 0.01])


def test_sgd_and_its_momentum_reach_the_compiled_optimizer():
    import keras

    from mobopt.models import train

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    tspec = _tspec(**{**STUDY, "momentum": 0.8, "weight_decay": 5e-4})
    train._compile(keras, model, train.phases(tspec)[0], tspec, steps=3)
    opt = model.optimizer
    assert isinstance(opt, keras.optimizers.SGD) and not isinstance(opt, keras.optimizers.AdamW)
    assert opt.momentum == pytest.approx(0.8) and opt.weight_decay == pytest.approx(5e-4)
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.PiecewiseConstantDecay)


def test_defaults_are_adamw_with_warmup_and_cosine_decay():
    import keras

    from mobopt.models import train

    defaults = train.TRAIN_DEFAULTS
    assert (defaults["optimizer"], defaults["lr_schedule"], defaults["momentum"]) == ("adamw", "cosine", 0.9)
    assert (defaults["lr_step_epochs"], defaults["lr_step_factor"]) == (10, 0.1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    tspec = _tspec(epochs=4, learning_rate=0.002, warmup_epochs=1)
    train._compile(keras, model, train.phases(tspec)[0], tspec, steps=5)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    assert _lr(schedule, 5) == pytest.approx(0.002) and _lr(schedule, 0) == 0.0


@pytest.mark.parametrize("key, value", [("optimizer", "adam"), ("lr_schedule", "linear")])
def test_unknown_optimizer_or_schedule_is_named(key, value):
    import keras

    from mobopt.models import train

    tspec = _tspec(**{key: value})
    with pytest.raises(MobOptError, match=f"train.{key} '{value}'"):
        train._optimizer(keras, train.phases(tspec)[0], tspec, 3)


@pytest.mark.parametrize("warmup", [0, 1])
def test_a_checkpoint_restores_sgd_its_schedule_and_its_step(tmp_path, warmup):
    """What a resumed run is loaded from (keras.models.load_model of the epoch checkpoint): the same optimizer,
    momentum, schedule and step count, so the learning rate continues where it stood."""
    import keras

    from mobopt.models import train

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 3)).astype("float32"), rng.integers(0, 2, 24)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    tspec = _tspec(**{**STUDY, "epochs": 4, "lr_step_epochs": 1, "warmup_epochs": warmup})
    train._compile(keras, model, train.phases(tspec)[0], tspec, steps=3)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # 3 steps: the first drop is next
    model.save(tmp_path / "epoch0001.keras")
    loaded = keras.models.load_model(tmp_path / "epoch0001.keras")
    assert isinstance(loaded.optimizer, keras.optimizers.SGD) and loaded.optimizer.momentum == pytest.approx(0.9)
    assert int(loaded.optimizer.iterations) == 3
    assert float(loaded.optimizer.learning_rate) == pytest.approx(float(model.optimizer.learning_rate))
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.001)
    # one more step each: the same weights (momentum buffers came back too)
    model.train_on_batch(x[:8], y[:8])
    loaded.train_on_batch(x[:8], y[:8])
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
