"""Callbacks Keras does not ship: an idempotent per-epoch history, a NaN stop that keeps the
last good state, a kill-safe backup, and a Ctrl-C that stops at a batch end."""

import contextlib
import json
import math
import os
import re
import signal
import threading
import time
import zipfile

import keras
import numpy as np

from tinyresnet.runs import HISTORY_COLUMNS, RunDirError, process_alive, read_history, write_history, write_json


class TrainingDiverged(RuntimeError):
    """The loss or a weight became NaN or infinite. `str(e)` says what and where; `remedy` (set by
    `train_and_evaluate`) what to change, in `tinyresnet-train`'s options: other front ends give their own."""

    remedy = ""


class EpochHistory(keras.callbacks.Callback):
    """Writes `history.csv`, one row per finished epoch, rewritten atomically.

    Rows are keyed by epoch: after a resume, rows of epochs that are run
    again are dropped first, so no epoch is lost or repeated whatever moment
    the previous process died at. `train_seconds` excludes validation;
    `images` is the number of training images the epoch saw.
    """

    def __init__(self, path, batch_size):
        super().__init__()
        self.path = path
        self.batch_size = batch_size
        self.rows = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.rows is None:  # first epoch of this process: the resume point
            self.rows = [r for r in read_history(self.path) if r["epoch"] < epoch]
        self._start = time.perf_counter()
        self._train_end = None
        self._steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self._train_end = time.perf_counter()
        if self._steps == 1:  # includes tracing the train step in a process's first epoch
            self._first_step = self._train_end - self._start

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        end = time.perf_counter()
        lr = self.model.optimizer.learning_rate
        row = {"epoch": epoch, **{k: float(logs[k]) for k in HISTORY_COLUMNS if k in logs},
               "lr": float(np.asarray(lr)), "seconds": end - self._start,
               "train_seconds": (self._train_end or end) - self._start,
               "images": self._steps * self.batch_size, "first_step_seconds": getattr(self, "_first_step", 0.0)}
        self.rows = [r for r in self.rows if r["epoch"] != epoch] + [row]
        write_history(self.path, self.rows)


class StopOnNaN(keras.callbacks.Callback):
    """Raises `TrainingDiverged` at the first non-finite loss or weight, before anything saves it.

    The batch loss is computed with the weights from before that batch's
    update, so the last update of an epoch (or of a `check_steps` interval)
    can break the weights unseen. Hence the weights and `val_loss` are also
    checked at the end of each epoch and every `check_steps` batches. This
    callback must come first, so that it runs before the history, backup and
    checkpoint callbacks of the same event; raising (rather than Keras'
    `TerminateOnNaN`) leaves them at the last good state.
    """

    def __init__(self, last_good, check_steps=0):
        super().__init__()
        self.last_good = last_good
        self.check_steps = check_steps
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _fail(self, what, where):
        raise TrainingDiverged(f"{what} at epoch {self._epoch} {where}")

    def _check_weights(self, where):
        for variable in self.model.trainable_variables:
            if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
                self._fail(f"weight {variable.path} became non-finite", where)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._fail(f"loss became {float(loss)}", f"step {batch}")
        if self.check_steps and (batch + 1) % self.check_steps == 0:
            self._check_weights(f"step {batch}")

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                self._fail(f"{key} became {float(value)}", "end")
        self._check_weights("end")


class AtomicBackup(keras.callbacks.Callback):
    """`keras.callbacks.BackupAndRestore`, made safe against a kill at any instant.

    Keras' callback writes its weights file in place, so a process killed
    mid-write leaves a file that cannot be loaded (and `double_checkpoint`
    only covers OSError). Here each backup is a new weights file, written
    under a temporary name and renamed; then `state.json` (epoch + file
    name) is replaced the same way. A kill at any point leaves `state.json`
    naming a complete file. Mid-epoch backups (`save_steps`) resume at the
    start of that epoch with the newer weights.

    The weights file is the model's weights and the optimizer's variables,
    what Keras' `save_weights` writes, as one `.npz` in a fixed order: Keras'
    `.weights.h5` took 0.26 s a save for Net 1 at width 0.125 against 0.04 s,
    and a run backs up every epoch. A backup of an earlier version (a
    `.weights.h5`) is read with Keras' `load_weights`.

    Keras' weight files leave out the layers' random seed states (dropout,
    in-model augmentation); they go into `state.json`, so a resumed run draws
    the same dropout masks as an uninterrupted one.
    """

    def __init__(self, backup_dir, save_steps=0):
        super().__init__()
        self.backup_dir = backup_dir
        self.save_steps = save_steps
        self._epoch = 0
        self._count = 0

    @property
    def _state_path(self):
        return os.path.join(self.backup_dir, "state.json")

    def on_train_begin(self, logs=None):
        if not os.path.exists(self._state_path):
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        path = self._state_path
        try:  # a disk fault or a hand edit; its writes are atomic
            with open(path) as f:
                state = json.load(f)
            path = os.path.join(self.backup_dir, state["weights"])
            if path.endswith(".weights.h5"):  # written by an earlier version
                self.model.load_weights(path)
            else:
                _restore(self.model, path)
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise RunDirError(f"{path}: the run's backup cannot be read ({type(e).__name__}: {e}); delete "
                              f"{self.backup_dir} to train the run again from its first epoch") from None
        seeds = state.get("seeds", [])
        variables = _seed_states(self.model)
        if len(seeds) == len(variables):  # same architecture, same order (names carry global counters)
            for variable, value in zip(variables, seeds):
                variable.assign(np.asarray(value, dtype=variable.dtype))
        self._count = state["count"]
        # The hook Keras' own BackupAndRestore uses: fit() starts at this epoch.
        self.model._initial_epoch = state["epoch"]

    SUFFIX = ".npz"

    def _write(self, path):
        with open(path, "wb") as f:  # a file, not a name: numpy would append ".npz" to the temporary one
            np.savez(f, *[keras.ops.convert_to_numpy(v) for v in _backed_up(self.model)])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_steps and (batch + 1) % self.save_steps == 0:
            self._save(self._epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1)

    def _save(self, next_epoch):
        os.makedirs(self.backup_dir, exist_ok=True)
        self._count += 1
        name = f"backup-{self._count}{self.SUFFIX}"
        tmp = os.path.join(self.backup_dir, f".tmp-{os.getpid()}{self.SUFFIX}")
        self._write(tmp)
        os.replace(tmp, os.path.join(self.backup_dir, name))
        seeds = [np.asarray(v).tolist() for v in _seed_states(self.model)]
        write_json(self._state_path, {"epoch": next_epoch, "weights": name, "count": self._count, "seeds": seeds})
        for old in os.listdir(self.backup_dir):
            if old.startswith("backup-") and old != name or _left_by_a_dead_writer(old):
                os.remove(os.path.join(self.backup_dir, old))


_TEMPORARY = re.compile(r"\.tmp-(\d+)")  # ours (`.tmp-<pid>.npz`) and `runs.write_json`'s (`state.json.tmp-<pid>-...`)


def _left_by_a_dead_writer(name):
    """A temporary file of the backup folder whose process died while writing it."""
    match = _TEMPORARY.search(name)
    return match is not None and not process_alive(int(match[1]))


def _backed_up(model):
    """What Keras' `save_weights` saves of a model: its weights, then its optimizer's variables."""
    return model.weights + (list(model.optimizer.variables) if model.optimizer is not None else [])


def _restore(model, path):
    variables = _backed_up(model)
    with np.load(path) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if [(value.shape, str(value.dtype)) for value in values] != [(tuple(v.shape), str(v.dtype)) for v in variables]:
        raise ValueError(f"it holds {len(values)} variables of other shapes or types than this model's "
                         f"{len(variables)}: another model wrote it")
    for variable, value in zip(variables, values):
        variable.assign(value)


def _seed_states(model):
    """The `SeedGenerator` state variables of a model's layers (in `model.variables`, not in its weights)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


class StopOnSignal(keras.callbacks.Callback):
    """Turns Ctrl-C into a `KeyboardInterrupt` at the next batch end, in the training loop itself.

    Python's default handler raises wherever the main thread happens to be;
    inside a destructor (a tf.data iterator's, say) the exception is printed
    and dropped, and training went on. A flag, checked after every batch,
    cannot be lost. A second Ctrl-C raises at once. It runs after the other
    callbacks, so an epoch that has ended is written down before stopping.
    """

    def __init__(self):
        super().__init__()
        self.asked = False

    def handler(self, signum, frame):
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def _check(self, *args, **kwargs):
        if self.asked:
            raise KeyboardInterrupt

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check


@contextlib.contextmanager
def ctrl_c_at_batch_ends(stopper):
    """Within the block, Ctrl-C sets `stopper`'s flag (main thread only: signals reach no other)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, stopper.handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
