"""`train_and_evaluate(config, workdir)`: the one way models get trained.

The CLI, the tests, the experiments and the tuner all call it. A run
directory holds everything a run leaves:

    config.json  spec.txt  summary.txt  class_names.json
    history.csv  tensorboard/  backup/  checkpoints/{best,last}.keras
    model.keras  results.json  curves.png
"""

import contextlib
import json
import os
import shutil
import time

import keras
import tensorflow as tf

from tinyresnet import config as config_lib
from tinyresnet import data as data_lib
from tinyresnet import spec as spec_lib
from tinyresnet.augment import PaperAugment
from tinyresnet.callbacks import AtomicBackup, EpochHistory, StopOnNaN, TrainingDiverged, read_history
from tinyresnet.models import build_model

__all__ = ["train_and_evaluate", "TrainingDiverged", "Interrupted"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the run directory can be resumed."""


@keras.saving.register_keras_serializable(package="tinyresnet")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Sparse softmax cross-entropy on logits with label smoothing."""

    def __init__(self, label_smoothing=0.0, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        one_hot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"),
                                    keras.ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def spec_text(config):
    """The network of `config` in canonical notation."""
    return spec_lib.format_spec(config.spec or config.preset)


def load_datasets(config, augment=None):
    """The `Datasets` of `config.dataset`; `augment` (a layer or None) runs on training batches."""
    common = dict(batch_size=config.batch_size, augment=augment or False, seed=config.seed,
                  validation_fraction=config.validation_fraction, skip_corrupt=config.skip_corrupt,
                  file_cache=config.file_cache, cache_dir=config.cache_dir or None)
    data = config.data or None
    if config.dataset == "tiny_imagenet":
        return data_lib.tiny_imagenet(data, **common)
    if config.dataset == "cifar10":
        return data_lib.cifar10(data, **common)
    if data is None:
        raise config_lib.ConfigError("dataset 'folder' needs --data=PATH (a folder or zip of class folders)")
    return data_lib.image_folder(data, **common)


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
    return optimizer


def _strategy(config):
    if config.distribution == "mirrored":
        return tf.distribute.MirroredStrategy()
    if config.distribution == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def _dtype_policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def prepare_workdir(config, workdir, overwrite=False):
    """Creates `workdir`, or checks that it belongs to `config` (refused unless `overwrite`)."""
    path = os.path.join(workdir, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        current = config_lib.to_dict(config)
        differ = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        if differ and not overwrite:
            details = ", ".join(f"{k}: {previous.get(k)!r} -> {current.get(k)!r}" for k in differ)
            raise config_lib.ConfigError(
                f"{workdir} holds a run of a different config ({details}); "
                "pass --overwrite to start it afresh, or choose another --run-dir")
        if differ:
            shutil.rmtree(workdir)
    elif overwrite and os.path.isdir(workdir):
        shutil.rmtree(workdir)
    os.makedirs(os.path.join(workdir, "checkpoints"), exist_ok=True)
    _write_json(path, config_lib.to_dict(config))


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def train_and_evaluate(config, workdir, overwrite=False):
    """Trains `config` in `workdir`, resuming from its backup if there is one.

    Args:
        config: a `Config`.
        workdir: the run directory; a rerun of the same config resumes it.
        overwrite: start afresh even if `workdir` holds a different config.

    Returns:
        The dict written to `results.json`.

    Raises:
        ConfigError: for a bad config or a run directory of another config.
        TrainingDiverged: if the loss became NaN/inf (last good state kept).
        Interrupted: on Ctrl-C, after saving the current model.
    """
    config = config_lib.validate(config)
    spec = spec_lib.parse_spec(config.spec or config.preset)
    prepare_workdir(config, workdir, overwrite)
    keras.utils.set_random_seed(config.seed)
    augment = PaperAugment(config.flip_prob, config.crop_prob, seed=config.seed) if config.augment else None
    datasets = load_datasets(config, augment if config.augment_on == "data" else None)
    num_classes = len(datasets.class_names)
    steps = datasets.num_train // config.batch_size
    if steps == 0:
        raise config_lib.ConfigError(
            f"batch_size {config.batch_size} exceeds the {datasets.num_train} training images")
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    train = datasets.train.repeat()

    with _dtype_policy(config.precision), _strategy(config).scope():
        model = build_model(spec, datasets.image_shape, num_classes, variant=config.variant,
                            block_dropout=config.block_dropout, shortcut=config.shortcut,
                            width=config.width, name=config.preset if not config.spec else "spec")
        trainer = model
        if augment is not None and config.augment_on == "model":
            inputs = keras.Input(datasets.image_shape, name="images")
            trainer = keras.Model(inputs, model(augment(inputs)), name=model.name + "_augmented")
        loss = (SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        def metrics():
            return [keras.metrics.SparseCategoricalAccuracy(name="top1"),
                    keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5")]

        trainer.compile(optimizer=make_optimizer(config, steps), loss=loss, metrics=metrics())
        if trainer is not model:  # the inference model is evaluated on its own
            model.compile(loss=loss, metrics=metrics())

    _write_run_files(workdir, config, spec, model, datasets)
    history_path = os.path.join(workdir, "history.csv")
    checkpoints = os.path.join(workdir, "checkpoints")
    best = keras.callbacks.ModelCheckpoint(os.path.join(checkpoints, "best.keras"), monitor="val_top1",
                                           mode="max", save_best_only=True)
    previous = [r["val_top1"] for r in read_history(history_path) if "val_top1" in r]
    if previous:  # a resumed run must not replace its best with a worse epoch
        best.best = max(previous)
    # Order matters: the history row of an epoch is written before its backup,
    # so a kill between the two repeats the epoch (and its row is replaced)
    # rather than losing the row.
    callbacks = [
        StopOnNaN(os.path.join(checkpoints, "last.keras")),
        EpochHistory(history_path, config.batch_size),
        AtomicBackup(os.path.join(workdir, "backup"), save_steps=config.checkpoint_steps),
        best,
        keras.callbacks.ModelCheckpoint(os.path.join(checkpoints, "last.keras")),
        keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard"), write_graph=False),
    ]
    start = time.perf_counter()
    try:
        trainer.fit(train, epochs=config.epochs, steps_per_epoch=steps, validation_data=datasets.validation,
                    callbacks=callbacks, verbose=config.verbose, shuffle=False)
    except KeyboardInterrupt:
        model.save(os.path.join(checkpoints, "interrupted.keras"))
        raise Interrupted(f"interrupted; the last finished epoch is backed up in {workdir}/backup; "
                          "rerun the same command to resume") from None
    wall = time.perf_counter() - start
    model.save(os.path.join(workdir, "model.keras"))
    results = _evaluate(config, spec, model, datasets, history_path, wall)
    _write_json(os.path.join(workdir, "results.json"), results)
    from tinyresnet import report
    report.plot_curves(read_history(history_path), os.path.join(workdir, "curves.png"),
                       title=f"{model.name} ({config.variant})")
    return results


def _write_run_files(workdir, config, spec, model, datasets):
    with open(os.path.join(workdir, "spec.txt"), "w") as f:
        f.write(spec_lib.format_spec(spec) + "\n")
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    with open(os.path.join(workdir, "summary.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    _write_json(os.path.join(workdir, "class_names.json"), datasets.class_names)


def _evaluate(config, spec, model, datasets, history_path, wall):
    history = read_history(history_path)
    val = model.evaluate(datasets.validation, verbose=0, return_dict=True)
    # Train accuracy in inference mode (no dropout, no augmentation), as the paper reports it.
    train = model.evaluate(datasets.train_eval, verbose=0, return_dict=True)
    timed = history[1:] if len(history) > 1 else history  # the first epoch includes tracing
    train_seconds = sum(r.get("train_seconds", 0) for r in timed)
    images = sum(r.get("images", 0) for r in timed)
    shape = datasets.image_shape
    return {
        "val_top1": val["top1"], "val_top5": val["top5"], "val_loss": val["loss"],
        "best_val_top1": max([r.get("val_top1", 0.0) for r in history] + [val["top1"]]),
        "train_top1": train["top1"], "train_top5": train["top5"], "train_loss": train["loss"],
        "gap": train["top1"] - val["top1"],
        "params": model.count_params(),
        "layers": spec_lib.count_layers(spec),
        "forward_gflops": spec_lib.forward_flops(spec, shape, len(datasets.class_names), config.width,
                                                 config.shortcut) / 1e9,
        "epochs": len(history),
        "images_per_sec": images / train_seconds if train_seconds else 0.0,
        "wall_seconds": wall,
        "num_train": datasets.num_train, "num_validation": datasets.num_validation,
        "skipped_images": datasets.skipped,
        "num_classes": len(datasets.class_names), "image_shape": list(shape),
        "spec": spec_lib.format_spec(spec), "preset": "" if config.spec else config.preset,
        "variant": config.variant, "dataset": config.dataset, "precision": config.precision,
    }
