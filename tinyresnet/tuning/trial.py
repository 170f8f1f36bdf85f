"""One trial's run, the same in the tuner's process and in its pool's (`trial_pool`): training
with a line per epoch, then its HParams session."""

import time

import keras

from tinyresnet import spec as spec_lib
from tinyresnet import train
from tinyresnet.tuning import hparams


def train_trial(config, trial_dir, trial_id, tuner_id, hyperparameters, progress, log, datasets=None):
    """A trial's run, in this process or its own: `train_and_evaluate` with a line per epoch (if `progress`),
    then its HParams session. Returns the run's results."""
    callbacks = [TrialProgress(trial_id, tuner_id, config.epochs, log)] if progress else []
    results = train.train_and_evaluate(config, trial_dir, datasets=datasets, callbacks=callbacks)
    hparams.write(trial_dir, trial_id, {**hyperparameters, "net": spec_lib.format_spec(config.net)}, results)
    return results


class TrialProgress(keras.callbacks.Callback):
    """One line per finished epoch of a trial, naming the trial and the tuner that runs it.

    Keras' own progress output names neither, and several workers write to one screen; `--quiet`
    leaves it out.
    """

    def __init__(self, trial_id, tuner_id, epochs, log):
        super().__init__()
        self.trial_id, self.tuner_id, self.epochs, self.log = trial_id, tuner_id, epochs, log

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        scores = ", ".join(f"{label} {logs[key]:.3f}" for key, label in
                           (("loss", "loss"), ("top1", "top-1"), ("val_top1", "val top-1")) if key in logs)
        self.log(f"  trial {self.trial_id} ({self.tuner_id}) epoch {epoch + 1}/{self.epochs}: {scores}, "
                 f"{time.perf_counter() - self._start:.0f} s")
