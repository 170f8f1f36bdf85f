"""A trial's hyperparameters and final metrics for TensorBoard's HParams dashboard.

`tensorboard --logdir PROJECT` then shows the whole search in the HParams view:
one session per trial (its `trial_N/tensorboard/` folder), with the trial's
hyperparameters and net as columns, and as metrics the final numbers written
here beside the epoch curves Keras' TensorBoard callback writes in `train/`
and `validation/`.
"""

import os

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp_api

from tinyresnet import runs

# results.json keys shown as the session's metrics.
METRICS = ("val_top1", "val_top5", "train_top1", "gap", "params", "forward_gflops", "wall_seconds")


def write(trial_dir, trial_id, values, results):
    """Writes the HParams session of one finished trial into `trial_dir/tensorboard/`.

    Args:
        trial_dir: the trial's run directory.
        trial_id: KerasTuner's trial id (the session's name).
        values: the trial's active hyperparameters (`tuner/*` bookkeeping left out), plus anything else
            to show as a column (its net).
        results: the run's `results.json` dict.
    """
    shown = {k: v for k, v in values.items()
             if not k.startswith("tuner/") and isinstance(v, (bool, int, float, str))}
    writer = tf.summary.create_file_writer(os.path.join(trial_dir, runs.TENSORBOARD))
    with writer.as_default():
        hp_api.hparams(shown, trial_id=f"trial_{trial_id}")
        for key in METRICS:
            if isinstance(results.get(key), (int, float)):
                tf.summary.scalar(f"final/{key}", float(results[key]), step=0)
    writer.close()
