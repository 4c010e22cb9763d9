"""Learning-rate schedules the training recipes need beyond Keras' own (registered, so a checkpoint reloads them)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mobopt")
class WarmupPiecewiseConstantDecay(keras.optimizers.schedules.PiecewiseConstantDecay):
    """Keras' PiecewiseConstantDecay after a linear warm-up from 0 to ``values[0]`` over ``warmup_steps``.

    Like every Keras schedule it is a pure function of the optimizer's step count, which the checkpoint
    holds, so a resumed run continues on the same curve.  The boundaries count from step 0 (the phase's
    start), not from the end of the warm-up, so "x0.1 every 10 epochs" keeps its epochs.
    """

    def __init__(self, boundaries, values, warmup_steps: int = 0, name: str = "WarmupPiecewiseConstant"):
        super().__init__(boundaries, values, name=name)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        lr = super().__call__(step)
        if not self.warmup_steps:
            return lr
        s = ops.cast(step, lr.dtype)
        return ops.where(s < self.warmup_steps, ops.cast(self.values[0], lr.dtype) * s / self.warmup_steps, lr)

    def get_config(self):
        return {**super().get_config(), "warmup_steps": self.warmup_steps}
