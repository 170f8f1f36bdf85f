"""The optimizer of a run: SGD (Nesterov) or AdamW, with warm-up then cosine or step decay per batch.

Keras' TensorFlow optimizers apply decoupled weight decay variable by
variable, and read `optimizer.learning_rate` for each one. With a schedule,
each read builds the schedule's ops again, so the traced training step
evaluated the warm-up and cosine once per decayed kernel (15 in Net 1)
besides the once the update takes. `make_optimizer` gives the optimizer a
weight decay that reads the rate once per step, as the update does. The
arithmetic is Keras' own, so the weights are the same to the bit
(`tests/test_optimizer.py`). A fresh 2-epoch run of Net 1 at width 0.125
went from about 4.7 s to 4.0 s here, nearly all of it in tracing the step.
"""

import types

import keras
import tensorflow as tf


def make_optimizer(config, steps_per_epoch):
    """SGD (Nesterov) or AdamW with warm-up then cosine/step decay, stepped per batch."""
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    lr = config.learning_rate
    if config.schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            lr * 1e-2 if warmup else lr, total - warmup, alpha=1e-3,
            warmup_target=lr if warmup else None, warmup_steps=warmup)
    elif config.schedule == "step":
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(total * 0.5), int(total * 0.75)], [lr, lr * 0.1, lr * 0.01])
    else:
        schedule = lr
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=True,
                                         weight_decay=config.weight_decay or None)
    else:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    if config.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        # On this instance only: its class, and so its saved config, stays Keras' own.
        optimizer._apply_weight_decay = types.MethodType(_apply_weight_decay, optimizer)
    return optimizer


def _apply_weight_decay(self, variables):
    """Keras' `TFOptimizer._apply_weight_decay`, with the learning rate read once (in the replica context,
    passed through the merge call as Keras passes it to its update step) instead of once per variable.

    Private Keras names, which this method replaces on the instance: `_apply_weight_decay` (called by
    `apply`), `_use_weight_decay` (its exclusions) and `_distribution_strategy`; `tests/test_optimizer.py`
    checks the weights against Keras' own method."""
    if self.weight_decay is None:
        return

    def decay(variable, learning_rate):
        if self._use_weight_decay(variable):
            variable.assign_sub(variable * tf.cast(self.weight_decay, variable.dtype)
                                * tf.cast(learning_rate, variable.dtype))

    def distributed_decay(distribution, variables, learning_rate):
        for variable in variables:
            if isinstance(variable, keras.Variable):
                variable = variable.value  # the tf.Variable
            distribution.extended.update(variable, decay, args=(learning_rate,), group=False)

    tf.__internal__.distribute.interim.maybe_merge_call(distributed_decay, self._distribution_strategy,
                                                        variables, self.learning_rate)
