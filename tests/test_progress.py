"""Long jobs are not silent: training and evaluation log progress (done, img/s, time left) on a clock."""

import logging
import re

import numpy as np
from envcheck import tiny_tflite

from mobopt import evaluate
from mobopt.common.progress import Progress, duration
from mobopt.models import train


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_duration_reads_as_a_person_writes_it():
    assert [duration(s) for s in (0.2, 42, 750, 3 * 3600 + 5 * 60)] == ["<1 s", "42 s", "12 min 30 s", "3 h 05 min"]


def test_progress_logs_once_per_interval_with_rate_and_eta(caplog):
    clock = FakeClock()
    p = Progress("evaluate m", 100, "images", interval=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="mobopt.common.progress"):
        for _ in range(40):
            clock.now += 1.0  # one image a second
            p.advance()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["evaluate m: 30/100 images (30.0%), 1.0 img/s, ETA 1 min 10 s"]


def test_training_progress_every_minute_with_a_fake_clock(caplog):
    """Two epochs of 5 steps (batch 4, 18 images: the last batch holds 2), 20 s a step, a line a minute."""
    clock = FakeClock()
    progress = train.TrainingProgress("train tiny", epochs=3, first_epoch=1, steps_per_epoch=5, images_per_epoch=18,
                                      batch_size=4, interval=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="mobopt.models.train"):
        for epoch in (1, 2):
            progress.on_epoch_begin(epoch)
            for batch in range(5):
                clock.now += 20.0
                progress.on_train_batch_end(batch)
    lines = [r.getMessage() for r in caplog.records]
    # 10 steps x 20 s = 200 s: a line after steps 3, 6 and 9 (every 60 s), none more often
    assert lines == [
        "train tiny: epoch 2/3, 3/10 steps (30.0%), 0.2 img/s, ETA 2 min 20 s",
        "train tiny: epoch 3/3, 6/10 steps (60.0%), 0.2 img/s, ETA 1 min 20 s",
        "train tiny: epoch 3/3, 9/10 steps (90.0%), 0.2 img/s, ETA 20 s",
    ]
    assert progress.progress.images == 2 * 18


def test_training_progress_is_a_keras_callback_in_fit(caplog):
    import keras

    x, y = np.random.default_rng(0).normal(size=(20, 3)).astype("float32"), np.arange(20) % 2
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    progress = train.TrainingProgress("train fit", epochs=2, first_epoch=0, steps_per_epoch=3, images_per_epoch=20,
                                      batch_size=8, interval=0.0)
    with caplog.at_level(logging.INFO, logger="mobopt.models.train"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[train.progress_callback(progress)])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train fit")]
    assert len(lines) == 6 and lines[-1].startswith("train fit: epoch 2/2, 6/6 steps (100.0%)"), lines
    assert progress.progress.images == 40


def test_evaluation_logs_progress(tmp_path, prepared_digits, caplog, monkeypatch):
    """A small .tflite evaluation through evaluate.evaluate, progress every few microseconds."""
    model = tiny_tflite(tmp_path / "tiny.tflite")
    monkeypatch.setattr(evaluate, "PROGRESS_SECONDS", 1e-6)
    with caplog.at_level(logging.INFO, logger="mobopt.evaluate"):
        result = evaluate.evaluate(model, prepared_digits, tmp_path / "e.json", split="test")
    progress = [r.getMessage() for r in caplog.records if " img/s, ETA " in r.getMessage()]
    assert progress, [r.getMessage() for r in caplog.records]
    assert re.fullmatch(rf"evaluate {re.escape(str(model))}: \d+/{result['samples']} images \(\d+\.\d%\), "
                        r"[\d.]+ img/s, ETA .+", progress[-1]), progress[-1]
