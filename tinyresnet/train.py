"""`train_and_evaluate(config, workdir)`: the one way models get trained.

The CLI, the tests, the experiments and the tuner all call it. It is made of
small named steps that other drivers reuse: `make_strategy`, `load_datasets`,
`build_trainer`, `make_callbacks`, `fit`, `evaluate`. The run directory's
layout lives in `tinyresnet.runs`.
"""

import contextlib
import dataclasses
import os
import statistics
import time

from tinyresnet import onednn

onednn.enable_by_default()  # before TensorFlow loads (this module trains; see tinyresnet/onednn.py)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tinyresnet import config as config_lib
from tinyresnet import data as data_lib
from tinyresnet import execution
from tinyresnet import precision as precision_lib
from tinyresnet import runs
from tinyresnet import spec as spec_lib
from tinyresnet.augment import PaperAugment
from tinyresnet.callbacks import (AtomicBackup, EpochHistory, StopOnNaN, StopOnSignal, TrainingDiverged,
                                  ctrl_c_at_batch_ends)
from tinyresnet.losses import classification_loss
from tinyresnet.models import build_model
from tinyresnet.optimizer import make_optimizer

__all__ = ["train_and_evaluate", "TrainingDiverged", "Interrupted"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the run directory can be resumed."""


# The decoded data of the last run in this process, reused by the next run on
# the same data (tuning trials, experiment arms): decoding happens once.
_DECODED = {}


def _data_key(config):
    data = os.path.abspath(os.path.expanduser(config.data)) if config.data else ""
    return (config.dataset, data, config.validation_fraction, config.skip_corrupt, config.file_cache,
            config.cache_dir)


def load_datasets(config, reuse=True):
    """The decoded `Datasets` of `config`; the same object for the same data within a process.

    The returned object holds no per-run settings (batch size, seed and
    augmentation are given when its pipelines are made), so any run on the
    same data can use it.
    """
    key = _data_key(config)
    if reuse and key in _DECODED:
        return _DECODED[key]
    common = dict(validation_fraction=config.validation_fraction,
                  skip_corrupt=config.skip_corrupt, file_cache=config.file_cache,
                  cache_dir=config.cache_dir or None)
    data = config.data or None
    if config.dataset == "tiny_imagenet":
        datasets = data_lib.tiny_imagenet(data, with_test=False, **common)
    elif config.dataset == "cifar10":
        datasets = data_lib.cifar10(data, **common)
    elif data is None:
        raise config_lib.ConfigError("dataset 'folder' needs --data=PATH (a folder or zip of class folders)")
    else:
        datasets = data_lib.image_folder(data, **common)
    _DECODED.clear()  # hold one dataset, not one per data source ever seen
    _DECODED[key] = datasets
    return datasets


def make_strategy(config):
    """The `tf.distribute` strategy of `config.distribution`.

    Create it before any other TensorFlow op of the process (some strategies
    configure the runtime) and pass it to `train_and_evaluate(strategy=)`.
    """
    if config.distribution == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


@contextlib.contextmanager
def _dtype_policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def steps_per_epoch(config, datasets):
    """Training steps per epoch; a batch larger than the training set is a `ConfigError`."""
    steps = datasets.num_train // config.batch_size
    if steps == 0:
        raise config_lib.ConfigError(
            f"batch_size {config.batch_size} exceeds the {datasets.num_train} training images")
    return min(steps, config.steps_per_epoch) if config.steps_per_epoch else steps


def build_trainer(config, spec, image_shape, num_classes, steps, strategy=None):
    """Compiles the model and the one that trains (with the augmentation inside, if `augment_on=model`).

    It needs shapes, not data: `tinyresnet-bench` times the very step that
    `train_and_evaluate` runs.

    Args:
        config: a validated `Config` whose `precision` is a dtype policy (not "auto"); `augment_on` and
            `jit_compile` "auto" are decided for this machine (`tinyresnet.execution`).
        spec: the parsed spec.
        image_shape: `(height, width, channels)`.
        num_classes: units of the classifier.
        steps: training steps per epoch (the learning-rate schedule's unit).
        strategy: a `tf.distribute` strategy (default: the current one).

    Returns:
        `(model, trainer)`: the inference model, and the model `fit` trains
        (the same object unless the augmentation is a layer of the model).
    """
    strategy = strategy or tf.distribute.get_strategy()
    config, _ = execution.resolve(config)
    jit_compile = config.jit_compile == "true"
    image_shape = tuple(image_shape)
    with _dtype_policy(config.precision), strategy.scope():
        model = build_model(spec, image_shape, num_classes, variant=config.variant,
                            block_dropout=config.block_dropout, shortcut=config.shortcut,
                            width=config.width, name=spec_lib.preset_name(config.net) or "spec")
        trainer = model
        if config.augment and config.augment_on == "model":
            # Gathers, not crop_and_resize: the step then compiles with XLA (jit_compile) on a GPU.
            augment = PaperAugment(config.flip_prob, config.crop_prob, seed=config.seed, resample="gather")
            inputs = keras.Input(image_shape, name="images")
            trainer = keras.Model(inputs, model(augment(inputs)), name=model.name + "_augmented")
        trainer.compile(optimizer=make_optimizer(config, steps), loss=classification_loss(config.label_smoothing),
                        metrics=_metrics(num_classes), jit_compile=jit_compile)
        # Built here, or Keras builds the optimizer's slots inside the first trace of the training step, and
        # TensorFlow, having seen variables created, traces the step a second time (about 1 s of a tiny net's
        # 2-epoch run here).
        trainer.optimizer.build(trainer.trainable_variables)
    return model, trainer


def _metrics(num_classes):
    return [keras.metrics.SparseCategoricalAccuracy(name="top1"),
            keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes), name="top5")]


def compile_inference_model(model, trainer):
    """Compiles the inference model inside a trainer that augments (`build_trainer`) with the trainer's
    optimizer, loss and metrics, to evaluate and save it on its own: model.keras then holds the trainer's
    optimizer and its state, not Keras' default RMSprop.

    Only after training: the trainer's checkpoints (best.keras, last.keras) hold the inference model as a
    layer, and a compiled one there saved a second, empty copy of the optimizer that loading them warned of
    ("Skipping variable loading for optimizer 'sgd' ... the saved optimizer has 0 variables").
    """
    if trainer is not model and not model.compiled:
        with trainer.distribute_strategy.scope():  # where the trainer was compiled: its metrics' variables
            model.compile(optimizer=trainer.optimizer, loss=trainer.loss, metrics=_metrics(model.output_shape[-1]),
                          jit_compile=trainer.jit_compile)


def model_key(config, spec, image_shape, num_classes):
    """What a training step's speed depends on, as text: the key of `precision="auto"`'s per-model cache."""
    config, _ = execution.resolve(config)
    augment = config.augment_on if config.augment else "none"
    return (f"{spec_lib.format_spec(spec_lib.with_classes(spec, num_classes))}|width {config.width}|{config.variant}|"
            f"{config.shortcut}|block_dropout {config.block_dropout}|batch {config.batch_size}|"
            f"{'x'.join(map(str, image_shape))}|augment {augment}|{config.distribution}")


def measure_bf16_speedup(config, spec, image_shape, num_classes, steps, strategy=None, budget=15.0):
    """bfloat16 / float32 speed of this model's real training step (what `precision="auto"` decides by).

    Both trainers are built as `train_and_evaluate` builds them and step on
    one random batch: each is traced once, then steps alternate (fp32, bf16,
    ...) until the allowance is spent: 2 % of the run's expected time (from
    the first timed float32 step), at most `budget` seconds, and at least
    one step each. Returns the ratio of the median step times.
    """
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (config.batch_size, *image_shape), dtype=np.uint8)
    y = rng.integers(0, num_classes, config.batch_size)
    trainers = {}
    for policy in ("float32", "mixed_bfloat16"):
        _, trainers[policy] = build_trainer(dataclasses.replace(config, precision=policy), spec, image_shape,
                                            num_classes, steps, strategy)
        trainers[policy].train_on_batch(x, y)  # tracing, not timed
    seconds = {policy: [] for policy in trainers}
    start = time.perf_counter()
    allowance = budget
    while True:
        for policy, trainer in trainers.items():
            before = time.perf_counter()
            trainer.train_on_batch(x, y)
            seconds[policy].append(time.perf_counter() - before)
        if len(seconds["float32"]) == 1:
            allowance = min(budget, 0.02 * seconds["float32"][0] * steps * config.epochs)
        if time.perf_counter() - start >= allowance:
            break
    return statistics.median(seconds["float32"]) / statistics.median(seconds["mixed_bfloat16"])


def training_data(config, datasets, initial_epoch, steps):
    """The endless training stream from `initial_epoch`: what an uninterrupted run sees from there."""
    augment = None
    config, _ = execution.resolve(config)
    if config.augment and config.augment_on == "data":
        augment = PaperAugment(config.flip_prob, config.crop_prob, seed=config.seed)
    return datasets.training(config.batch_size, augment=augment, seed=config.seed,
                             initial_epoch=initial_epoch, steps_per_epoch=steps)


def make_callbacks(config, workdir):
    """NaN stop, history, kill-safe backup, best/last checkpoints and TensorBoard, in that order."""
    history_path = os.path.join(workdir, runs.HISTORY)
    best = keras.callbacks.ModelCheckpoint(os.path.join(workdir, runs.BEST), monitor="val_top1",
                                           mode="max", save_best_only=True)
    previous = [r["val_top1"] for r in runs.read_history(history_path) if "val_top1" in r]
    if previous:  # a resumed run must not replace its best with a worse epoch
        best.best = max(previous)
    # Order matters: the NaN check runs before anything saves; the history row
    # of an epoch is written before its backup, so a kill between the two
    # repeats the epoch (and its row is replaced) rather than losing the row.
    return [
        StopOnNaN(os.path.join(workdir, runs.LAST), check_steps=config.checkpoint_steps),
        EpochHistory(history_path, config.batch_size),
        AtomicBackup(os.path.join(workdir, runs.BACKUP), save_steps=config.checkpoint_steps),
        best,
        keras.callbacks.ModelCheckpoint(os.path.join(workdir, runs.LAST)),
        keras.callbacks.TensorBoard(os.path.join(workdir, runs.TENSORBOARD), write_graph=False),
    ]


def fit(config, model, trainer, train, validation, steps, callbacks, workdir):
    """Runs `trainer.fit`; Ctrl-C saves the model and raises `Interrupted`. Returns the wall seconds."""
    start = time.perf_counter()
    stopper = StopOnSignal()
    try:
        with ctrl_c_at_batch_ends(stopper):
            # Last, so that an epoch that has ended is written down (history, backup) before stopping.
            trainer.fit(train, epochs=config.epochs, steps_per_epoch=steps, validation_data=validation,
                        callbacks=callbacks + [stopper], verbose=config.verbose, shuffle=False)
            if stopper.asked:  # after the last check (in Keras' on_train_end): not to be lost
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        compile_inference_model(model, trainer)
        model.save(os.path.join(workdir, runs.INTERRUPTED))
        saved = (f"the last finished epoch is backed up in {workdir}/{runs.BACKUP}"
                 if os.path.isdir(os.path.join(workdir, runs.BACKUP)) else "no epoch had finished")
        raise Interrupted(f"interrupted; {saved}; rerun the same command to resume") from None
    return time.perf_counter() - start


def train_and_evaluate(config, workdir, overwrite=False, datasets=None, strategy=None, callbacks=()):
    """Trains `config` in `workdir`, resuming from its backup if there is one.

    Nothing is written to `workdir` until the config, the run directory, the
    data and the batch size have been checked.

    Args:
        config: a `Config`.
        workdir: the run directory; a rerun of the same config resumes it
            (keys in `config.EXECUTION_KEYS` may differ).
        overwrite: start afresh if `workdir` holds a run of another config
            (only ever removes a run directory's own files).
        datasets: decoded `Datasets` to use (default: `load_datasets(config)`,
            reused within a process).
        strategy: a `tf.distribute` strategy made before any TensorFlow op
            (default: `make_strategy(config)`).
        callbacks: Keras callbacks to run besides the run's own (after them).

    Returns:
        The dict written to `results.json`.

    Raises:
        ConfigError: for a bad config or batch size.
        RunDirError: for a run directory of another config, or one that is not a run.
        TrainingDiverged: if the loss or weights became NaN/inf (last good state kept).
        Interrupted: on Ctrl-C, after saving the current model.
    """
    config = config_lib.validate(config)
    spec = spec_lib.parse_spec(config.net)
    remove = config_lib.admit(config, workdir, overwrite)
    strategy = strategy or make_strategy(config)
    clock = _Clock()
    datasets = datasets or load_datasets(config)
    clock.lap("data")
    steps = steps_per_epoch(config, datasets)
    list(spec_lib.feature_shapes(spec, datasets.image_shape, config.width))  # pooling fits the images
    config, reasons = decide_auto(config, spec, workdir, datasets, steps, strategy)
    if remove:
        runs.remove_run(workdir)
    runs.start(workdir, config_lib.to_dict(config))

    keras.utils.set_random_seed(config.seed)
    model, trainer = build_trainer(config, spec, datasets.image_shape, len(datasets.class_names), steps, strategy)
    _write_run_files(workdir, spec, model, datasets)
    clock.lap("build")
    train = training_data(config, datasets, runs.resume_epoch(workdir), steps)
    callbacks = make_callbacks(config, workdir) + list(callbacks)
    validation = datasets.batches("validation", config.batch_size)
    try:
        wall = fit(config, model, trainer, train, validation, steps, callbacks, workdir)
    except TrainingDiverged as e:
        e.remedy = _diverged_remedy(config, workdir)
        raise
    clock.lap("fit")
    compile_inference_model(model, trainer)
    model.save(os.path.join(workdir, runs.MODEL))
    clock.lap("save_model")
    results = evaluate(config, spec, model, datasets, workdir, wall)
    clock.lap("evaluate")
    from tinyresnet import report
    report.plot_curves(runs.read_history(workdir), os.path.join(workdir, runs.CURVES),
                       title=f"{model.name} ({config.variant})")
    clock.lap("plot")
    results["phase_seconds"] = clock.laps
    results.update({f"{key}_reason": reason for key, reason in reasons.items()},
                   augment_on=config.augment_on, jit_compile=config.jit_compile)
    runs.write_json(os.path.join(workdir, runs.RESULTS), results)
    return results


def _diverged_remedy(config, workdir):
    """What `tinyresnet-train` can do about a run that diverged: only what is true of this run."""
    kept = runs.resume_epoch(workdir)
    where = (f"its {kept} finished epoch{'s are' if kept != 1 else ' is'} kept in {workdir}" if kept
             else f"no epoch had finished in {workdir}")
    change = f"lower --learning_rate (it is {config.learning_rate:g})"
    if config.precision != "float32":
        change += f" or train in float32 (--precision=float32; it is {config.precision})"
    return f"{where}; {change}, then rerun with --overwrite (which starts it afresh), or give another --run-dir"


def decide_auto(config, spec, workdir, datasets, steps, strategy):
    """`(config with every "auto" decided, {key: reason})`: precision, augment_on and jit_compile.

    The decisions that are "auto" are printed (unless `verbose=0`); a run in
    `workdir` keeps the precision and the augmentation's place it started with.
    """
    asked = config
    config, reasons = execution.resolve(config, workdir)
    choice = precision_lib.Choice(config.precision, "asked for")
    if config.precision == "auto":
        # Decided per machine and model (or kept from the run's start); the run records the policy itself.
        shape, classes = datasets.image_shape, len(datasets.class_names)
        choice = precision_lib.resolve(
            config.precision, workdir, model=model_key(config, spec, shape, classes),
            measure=lambda: measure_bf16_speedup(config, spec, shape, classes, steps, strategy))
        config = dataclasses.replace(config, precision=choice.policy)
    reasons = {"precision": choice.reason, **reasons}
    if config.verbose:
        for key, reason in reasons.items():
            if getattr(asked, key) == "auto":
                print(f"{key}: {getattr(config, key)} ({reason})", flush=True)
    return config, reasons


class _Clock:
    """Seconds spent in each named phase of a run (for results.json and the fixed-cost benchmark)."""

    def __init__(self):
        self.laps = {}
        self._last = time.perf_counter()

    def lap(self, name):
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _write_run_files(workdir, spec, model, datasets):
    built = spec_lib.with_classes(spec, len(datasets.class_names))
    runs.write_text(os.path.join(workdir, runs.SPEC), spec_lib.format_spec(built) + "\n")
    lines = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    runs.write_text(os.path.join(workdir, runs.SUMMARY), "\n".join(lines) + "\n")
    runs.write_json(os.path.join(workdir, runs.CLASS_NAMES), datasets.class_names)


def evaluate(config, spec, model, datasets, workdir, wall):
    """Validation and inference-mode train accuracy, sizes and speed: the `results.json` dict."""
    history = runs.read_history(workdir)
    start = time.perf_counter()
    last = history[-1] if history else {}
    if last.get("epoch") == config.epochs - 1 and all(k in last for k in ("val_top1", "val_top5", "val_loss")):
        # fit validated the final weights at its last epoch: the same numbers, without a second pass.
        val = {"top1": last["val_top1"], "top5": last["val_top5"], "loss": last["val_loss"]}
    else:
        val = model.evaluate(datasets.batches("validation", config.batch_size), verbose=0, return_dict=True)
    val_seconds = time.perf_counter() - start
    # Train accuracy in inference mode (no dropout, no augmentation), as the paper reports it.
    train_eval = datasets.batches("train", config.batch_size, max_images=config.train_eval_images)
    train = model.evaluate(train_eval, verbose=0, return_dict=True)
    train_eval_seconds = time.perf_counter() - start - val_seconds
    timed = history[1:] if len(history) > 1 else history  # the first epoch includes tracing
    train_seconds = sum(r.get("train_seconds", 0) for r in timed)
    images = sum(r.get("images", 0) for r in timed)
    shape = datasets.image_shape
    num_classes = len(datasets.class_names)
    return {
        "val_top1": val["top1"], "val_top5": val["top5"], "val_loss": val["loss"],
        "best_val_top1": max([r.get("val_top1", 0.0) for r in history] + [val["top1"]]),
        "train_top1": train["top1"], "train_top5": train["top5"], "train_loss": train["loss"],
        "train_eval_images": min(datasets.num_train, config.train_eval_images),
        "gap": train["top1"] - val["top1"],
        "params": model.count_params(),
        "layers": spec_lib.count_layers(spec),
        "forward_gflops": spec_lib.forward_flops(spec, shape, num_classes, config.width, config.shortcut) / 1e9,
        "epochs": len(history),
        "images_per_sec": images / train_seconds if train_seconds else 0.0,
        "wall_seconds": wall, "val_eval_seconds": val_seconds, "train_eval_seconds": train_eval_seconds,
        "num_train": datasets.num_train, "num_validation": datasets.num_validation,
        "skipped_images": datasets.skipped,
        "num_classes": num_classes, "image_shape": list(shape),
        "spec": spec_lib.format_spec(spec_lib.with_classes(spec, num_classes)),
        "preset": spec_lib.preset_name(config.net) or "",
        "variant": config.variant, "dataset": config.dataset, "precision": config.precision,
    }
