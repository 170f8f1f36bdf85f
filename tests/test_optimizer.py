"""The run's optimizer: its weight decay reads the learning-rate schedule once per step, with Keras' arithmetic."""

import keras
import numpy as np
import pytest

from tinyresnet import config as config_lib
from tinyresnet.optimizer import make_optimizer

SPEC = "Conv 8, BB 8, BB 16, Avg 4, FC 3"


def _trained(optimizer_name, keras_own, steps=4):
    """The weights after `steps` steps of a small net from seed 0, and how often the schedule was read while
    the step was traced; `keras_own`: with Keras' own weight-decay method in place of ours."""
    from tinyresnet.models import build_model
    config = config_lib.override(config_lib.Config(), {"optimizer": optimizer_name, "epochs": 2, "warmup_epochs": 0.5,
                                                       "weight_decay": 0.05, "learning_rate": 0.1})
    keras.utils.set_random_seed(0)
    model = build_model(SPEC, (16, 16, 3), 3)
    optimizer = make_optimizer(config, steps_per_epoch=steps)
    if keras_own:
        del optimizer._apply_weight_decay  # the instance's override: Keras' class method again
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    optimizer.build(model.trainable_variables)  # as `train.build_trainer` does: the step is traced once
    reads = []
    schedule = type(optimizer._learning_rate)
    real = schedule.__call__
    schedule.__call__ = lambda self, step: reads.append(step) or real(self, step)
    try:
        images = np.random.default_rng(1).uniform(0, 255, (4 * steps, 16, 16, 3)).astype("float32")
        model.fit(images, np.arange(4 * steps) % 3, batch_size=4, epochs=1, shuffle=False, verbose=0)
    finally:
        schedule.__call__ = real
    decayed = [v for v in model.trainable_variables if optimizer._use_weight_decay(v)]
    return [np.asarray(v) for v in model.weights], len(reads), len(decayed)


@pytest.mark.parametrize("optimizer_name", ["sgd", "adamw"])
def test_weight_decay_reads_the_schedule_once_per_step_and_trains_keras_weights(optimizer_name):
    ours, reads, decayed = _trained(optimizer_name, keras_own=False)
    theirs, keras_reads, _ = _trained(optimizer_name, keras_own=True)
    assert decayed == 6  # the kernels (the stem's, two per block, the FC's), not BN's or the biases
    assert reads == 2  # once for the decay, once for the update: the step is traced once
    assert keras_reads == 1 + decayed  # Keras reads it again for each decayed variable
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_a_run_without_weight_decay_keeps_keras_optimizer_as_it_is():
    config = config_lib.override(config_lib.Config(), {"weight_decay": 0.0})
    optimizer = make_optimizer(config, steps_per_epoch=10)
    assert "_apply_weight_decay" not in vars(optimizer) and optimizer.weight_decay is None
