"""The training config: one frozen dataclass, experiment files, `--key=value` overrides.

The defaults are the reference run: the paper's Net 1 on Tiny ImageNet with
its augmentation and block dropout. The paper does not state its optimizer or
epochs; ours is SGD with Nesterov momentum, a linear warm-up and cosine decay,
which trains these nets reliably (see README).
"""

import dataclasses
import json
import math
import os
import runpy
import traceback
from typing import Any, Dict

import yaml

from tinyresnet import spec as spec_lib


@dataclasses.dataclass(frozen=True)
class Config:
    # Model.
    net: str = "net1"  # a key of tinyresnet.spec.PRESETS, or the paper's notation ("Conv 64, Avg 2, BB 64, FC 200")
    variant: str = "residual"  # or "plain": the same layers without shortcuts
    width: float = 1.0  # multiplier of every conv width (min 8 filters)
    block_dropout: float = 0.5  # dropout between the two convs of each BB
    shortcut: str = "pad"  # "pad" (parameter-free) or "projection" (1x1 conv + BN)

    # Data.
    dataset: str = "tiny_imagenet"  # "tiny_imagenet", "cifar10" or "folder"
    data: str = ""  # archive or folder; "" downloads (Tiny ImageNet, md5-checked) or uses TFDS (CIFAR-10)
    validation_fraction: float = 0.1  # held out of train when the data has no validation split
    skip_corrupt: bool = False  # leave undecodable images out (reported) instead of failing
    file_cache: bool = False  # keep decoded uint8 arrays on disk for the next run
    cache_dir: str = ""  # downloads and file cache; "" is ~/.keras

    # Optimisation.
    batch_size: int = 64
    epochs: int = 30
    steps_per_epoch: int = 0  # 0: whole epochs; >0 caps each epoch (a fresh random subset each epoch)
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum) or "adamw"
    learning_rate: float = 0.05  # peak, after warm-up, for batch_size 64
    momentum: float = 0.9
    schedule: str = "cosine"  # "cosine", "step" (x0.1 at 50% and 75%) or "constant"
    warmup_epochs: float = 1.0
    weight_decay: float = 5e-4  # decoupled; BN and biases are excluded
    label_smoothing: float = 0.0

    # Augmentation (the paper's: flip p=0.5, then p=0.7 a 56/64 crop rescaled).
    augment: bool = True
    flip_prob: float = 0.5
    crop_prob: float = 0.7
    augment_on: str = "auto"  # "auto" (model with a GPU, else data), "data" (tf.data, CPU) or "model" (first layer)

    # Execution.
    precision: str = "auto"  # "auto" (bf16 where this machine trains faster with it), "float32", "mixed_bfloat16", "mixed_float16"
    distribution: str = "default"  # "default" (one device) or "mirrored" (all local GPUs)
    jit_compile: str = "auto"  # XLA for the training step: "auto" (on with a GPU, off on a CPU), "true", "false"
    seed: int = 0
    checkpoint_steps: int = 0  # 0: back up at each epoch end; >0: also every N steps
    # The final inference-mode train accuracy (for the gap) is measured on a fixed sample of this many
    # train images, the same for every run: 5,000 give a standard error of at most 0.7 points and cost
    # about a fifth of an epoch less than the whole 20-class train set; a search's short trials take fewer.
    train_eval_images: int = 5000
    verbose: int = 1  # Keras progress bars: 1 bar, 2 a line per epoch, 0 silent


CHOICES = {
    "variant": spec_lib.VARIANTS,
    "shortcut": spec_lib.SHORTCUTS,
    "dataset": ("tiny_imagenet", "cifar10", "folder"),
    "optimizer": ("sgd", "adamw"),
    "schedule": ("cosine", "step", "constant"),
    "augment_on": ("auto", "data", "model"),
    "precision": ("auto", "float32", "mixed_bfloat16", "mixed_float16"),
    "distribution": ("default", "mirrored"),
    "jit_compile": ("auto", "true", "false"),
}

# Text keys whose other values are a switch: true/false words and booleans are read as "true"/"false".
SWITCHES = frozenset({"jit_compile"})

# Keys that change how a run is carried out or logged, not its result: a
# rerun in the same run directory may change them (the others define the run).
# augment_on and jit_compile change where the same computation runs (and so which
# random numbers it draws: XLA has its own), not what it computes (tinyresnet/execution.py).
EXECUTION_KEYS = frozenset({"verbose", "checkpoint_steps", "cache_dir", "file_cache", "augment_on", "jit_compile"})

# Older names, still read from experiment files and run directories.
ALIASES = {"preset": "net", "spec": "net"}

_NO_MULTI_WORKER = (
    "distribution: 'multi_worker' is not supported: Keras 3 does not run MultiWorkerMirroredStrategy "
    "(keras-team/keras#20585). Use 'mirrored' for the GPUs of one machine, and a distributed search "
    "(tinyresnet-tune --workers / --role) to spread trials across machines")


MAX_SEED = 2**32 - 1

_TRUE_WORDS = ("1", "true", "yes", "on")
_FALSE_WORDS = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """An unknown key or a value of the wrong type or range."""


def fields():
    return {f.name: f for f in dataclasses.fields(Config)}


def _convert(key, value):
    if key == "distribution" and value == "multi_worker":
        raise ConfigError(_NO_MULTI_WORKER)
    field = fields()[key]
    kind = type(field.default)
    if key in SWITCHES and (isinstance(value, bool) or _is_bool_word(str(value))):
        return "true" if value is True or str(value).strip().lower() in _TRUE_WORDS else "false"
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE_WORDS:
            return True
        if text in _FALSE_WORDS:
            return False
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if isinstance(value, bool) and kind in (int, float):  # `epochs: true` is a typo, not 1
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    try:
        converted = kind(value) if not (kind is int and isinstance(value, str)) else int(value.strip())
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}") from None
    if kind is float and not math.isfinite(converted):
        raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    if key in CHOICES and converted not in CHOICES[key]:
        raise ConfigError(f"{key}: expected one of {', '.join(CHOICES[key])}, got {converted!r}")
    if key in ("data", "cache_dir") and converted.startswith("~"):
        converted = os.path.expanduser(converted)  # a shell leaves the ~ of --data=~/x.zip as it is
    return converted


def _check_types(config: Config) -> None:
    for key, field in fields().items():
        value, kind = getattr(config, key), type(field.default)
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")


def validate(config: Config) -> Config:
    """Checks types, ranges and the network's notation; returns the config.

    Raises:
        ConfigError: naming the key (and, for `net`, the item of the notation).
    """
    _check_types(config)
    try:
        spec_lib.parse_spec(config.net)
    except spec_lib.SpecError as e:
        raise ConfigError(f"net: {e}") from None
    checks = [
        ("width", config.width > 0, "must be > 0"),
        ("block_dropout", spec_lib.is_dropout_rate(config.block_dropout), f"must be in {spec_lib.DROPOUT_RANGE}"),
        ("validation_fraction", 0 < config.validation_fraction < 1, "must be in (0, 1)"),
        ("batch_size", config.batch_size > 0, "must be > 0"),
        ("epochs", config.epochs > 0, "must be > 0"),
        ("steps_per_epoch", config.steps_per_epoch >= 0, "must be >= 0"),
        ("learning_rate", config.learning_rate > 0, "must be > 0"),
        ("momentum", 0 <= config.momentum < 1, "must be in [0, 1)"),
        ("weight_decay", config.weight_decay >= 0, "must be >= 0"),
        ("label_smoothing", 0 <= config.label_smoothing < 1, "must be in [0, 1)"),
        ("flip_prob", 0 <= config.flip_prob <= 1, "must be in [0, 1]"),
        ("crop_prob", 0 <= config.crop_prob <= 1, "must be in [0, 1]"),
        ("warmup_epochs", config.warmup_epochs >= 0, "must be >= 0"),
        ("checkpoint_steps", config.checkpoint_steps >= 0, "must be >= 0"),
        ("train_eval_images", config.train_eval_images > 0, "must be > 0"),
        # numpy's and Keras' generators take seeds of 32 bits: any other one fails after the run has started.
        ("seed", 0 <= config.seed <= MAX_SEED, f"must be in [0, {MAX_SEED}]"),
        ("verbose", config.verbose in (0, 1, 2), "must be 0, 1 or 2"),
    ]
    for key, ok, message in checks:
        if not ok:
            raise ConfigError(f"{key} {message}, got {getattr(config, key)!r}")
    for key in CHOICES:
        _convert(key, getattr(config, key))
    return config


def check_inputs(config: Config) -> Config:
    """Checks what a run of `config` reads and writes outside its run directory, before anything is
    written or TensorFlow loads: `data` is a folder or a zip archive that opens (a `folder` dataset
    needs one), and `cache_dir` can be written. Returns the config.

    Raises:
        ConfigError: naming the key.
    """
    from tinyresnet import options
    from tinyresnet.data import files
    if config.dataset == "folder" and not config.data:
        raise ConfigError("data: dataset 'folder' needs data=PATH (--data), a folder or zip of class folders")
    if config.data:
        try:
            files.check_source(config.data)
        except files.DataError as e:
            raise ConfigError(f"data: {e}") from None
    if config.cache_dir:
        try:
            options.output_folder("cache_dir", os.path.expanduser(config.cache_dir))
        except options.UsageError as e:
            raise ConfigError(str(e)) from None
    return config


def _unalias(values: Dict[str, Any]) -> Dict[str, Any]:
    # {"preset": "net3", "spec": ""} -> {"net": "net3"}: a non-empty spec wins, as it always did.
    values = dict(values)
    old = {key: values.pop(key) for key in ALIASES if key in values}
    chosen = old.get("spec") or old.get("preset")
    if chosen and "net" not in values:
        values["net"] = chosen
    return values


def override(config: Config, values: Dict[str, Any]) -> Config:
    """Returns `config` with `values` applied, type-checked; unknown keys are refused."""
    known = fields()
    values = _unalias(values)
    unknown = sorted(str(key) for key in set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(known)}")
    changes = {key: _convert(key, value) for key, value in values.items()}
    return validate(dataclasses.replace(config, **changes))


def parse_overrides(args):
    """`["--epochs=3", "--width", "0.5", "--augment"]` -> `{"epochs": "3", "width": "0.5", "augment": "true"}`.

    `--key=value` and `--key value` are the same, and so are dashes and
    underscores in keys. A true/false key takes a following true/false word;
    given alone, or before anything else, it means true.
    """
    values = {}
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"expected --key=value or --key value, got {arg!r}")
        key, has_value, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        i += 1
        if not has_value:
            following = args[i] if i < len(args) else None
            value, taken = _separate_value(key, arg, following)
            i += taken
        values[key] = value
    return values


def _separate_value(key, arg, following):
    """The value of `--key` given without `=`, and how many tokens it took (0 or 1)."""
    field = fields().get(key)
    if field is not None and type(field.default) is bool:
        if following is not None and _is_bool_word(following):
            return following, 1
        return "true", 0
    # An unknown key takes its value too, so that `override` names it as unknown.
    if following is not None and not following.startswith("--"):
        return following, 1
    raise ConfigError(f"expected --key=value or --key value, got {arg!r}")


def _is_bool_word(text):
    return text.strip().lower() in _TRUE_WORDS + _FALSE_WORDS


def load_file(path, base: Config = Config()) -> Config:
    """Applies an experiment file to `base`.

    A `.py` file defines `config` (a `Config`, e.g. `Config(epochs=3)` or
    `dataclasses.replace(...)`) or a dict `overrides`; a `.yaml`/`.yml`/`.json`
    file is a mapping of overrides.
    """
    if not os.path.exists(path):
        raise ConfigError(f"{path}: no such experiment file")
    if path.endswith(".py"):
        # The file is executed as Python code; its mistakes are reported as config errors.
        try:
            namespace = runpy.run_path(path)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        except Exception as e:
            line = _line_in(e, path)
            raise ConfigError(f"{path}{line}: {type(e).__name__}: {e}") from None
        try:
            if isinstance(namespace.get("config"), Config):
                return validate(namespace["config"])
            if isinstance(namespace.get("overrides"), dict):
                return override(base, namespace["overrides"])
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        raise ConfigError(f"{path}: define `config = Config(...)` or a dict `overrides`")
    values = read_mapping(path)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys to values")
    try:
        return override(base, values)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def read_mapping(path):
    """The parsed contents of a `.yaml`/`.yml`/`.json` file.

    Raises:
        ConfigError: for a syntax error, naming the file and its line.
    """
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}, line {e.lineno}: {e.msg}") from None
    except yaml.YAMLError as e:
        mark, context = getattr(e, "problem_mark", None), getattr(e, "context_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""  # yaml counts lines from 0
        opened = (f" ({e.context} at line {context.line + 1})"
                  if context is not None and getattr(e, "context", None) and context.line != mark.line else "")
        raise ConfigError(f"{path}{line}: {getattr(e, 'problem', None) or e}{opened}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror})") from None
    if isinstance(values, dict) and not all(isinstance(key, str) for key in values):
        bad = next(key for key in values if not isinstance(key, str))
        raise ConfigError(f"{path}: keys must be config names, got {bad!r}")
    return values


def _line_in(error, path):
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == os.path.abspath(path)]
    return f", line {frames[-1].lineno}" if frames else ""


def run_defining(values: Dict[str, Any]) -> Dict[str, Any]:
    """The keys of a config dict that define a run's result (all but `EXECUTION_KEYS`).

    Older key names are read as today's, so a run directory written before a
    rename still matches the same config.
    """
    try:
        values = to_dict(from_dict(values))
    except (ConfigError, ValueError):
        values = dict(values)  # not a valid config today: compared as written
    return {key: value for key, value in values.items() if key not in EXECUTION_KEYS}


def to_dict(config: Config) -> Dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(values: Dict[str, Any]) -> Config:
    return override(Config(), values)


def admit(config: Config, workdir, overwrite=False, remedy=None) -> bool:
    """Checks, before TensorFlow loads, that `workdir` may hold a run of `config`; writes nothing.

    The one check the CLI, the experiments runner and `train_and_evaluate` share.
    `precision="auto"` is compared as the policy the run in `workdir` started
    with, since a resumed run keeps it.

    Returns:
        True if the run of another config there must be removed first (`overwrite`).

    Raises:
        tinyresnet.runs.RunDirError: a run of another config (and not
            `overwrite`), or a folder that is not a run.
    """
    from tinyresnet import fingerprint, precision, runs
    values = to_dict(config)
    if config.precision == "auto":
        values["precision"] = precision.started_with(workdir) or "auto"
    recorded = (runs.read_json(os.path.join(workdir, runs.CONFIG)) if os.path.isdir(workdir) else None) or {}
    if isinstance(recorded, dict) and isinstance(recorded.get("data"), str) and \
            fingerprint.same_data(recorded["data"], config.data):
        values["data"] = recorded["data"]  # the same archive by another path (another checkout, a relative one)
    return runs.check(workdir, values, run_defining, overwrite, remedy)
