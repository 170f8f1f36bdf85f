"""The training config: one frozen dataclass, experiment files, `--key=value` overrides.

The defaults are the reference run: the paper's Net 1 on Tiny ImageNet with
its augmentation and block dropout. The paper does not state its optimizer or
epochs; ours is SGD with Nesterov momentum, a linear warm-up and cosine decay,
which trains these nets reliably (see README).
"""

import dataclasses
import json
import os
import runpy
from typing import Any, Dict

import yaml


@dataclasses.dataclass(frozen=True)
class Config:
    # Model.
    preset: str = "net1"  # a key of tinyresnet.spec.PRESETS; ignored when `spec` is set
    spec: str = ""  # the paper's notation, e.g. "Conv 64, Avg 2, BB 64, FC 200"
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
    steps_per_epoch: int = 0  # 0: whole epochs; >0 caps each epoch (smoke runs)
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
    augment_on: str = "data"  # "data" (tf.data, CPU) or "model" (first layer, runs on the accelerator)

    # Execution.
    precision: str = "float32"  # "float32", "mixed_bfloat16" or "mixed_float16"
    distribution: str = "default"  # "default", "mirrored" or "multi_worker" (reads TF_CONFIG)
    seed: int = 0
    checkpoint_steps: int = 0  # 0: back up at each epoch end; >0: also every N steps
    verbose: int = 1  # Keras progress bars: 1 bar, 2 a line per epoch, 0 silent


CHOICES = {
    "variant": ("residual", "plain"),
    "shortcut": ("pad", "projection"),
    "dataset": ("tiny_imagenet", "cifar10", "folder"),
    "optimizer": ("sgd", "adamw"),
    "schedule": ("cosine", "step", "constant"),
    "augment_on": ("data", "model"),
    "precision": ("float32", "mixed_bfloat16", "mixed_float16"),
    "distribution": ("default", "mirrored", "multi_worker"),
}


class ConfigError(ValueError):
    """An unknown key or a value of the wrong type or range."""


def fields():
    return {f.name: f for f in dataclasses.fields(Config)}


def _convert(key, value):
    field = fields()[key]
    kind = type(field.default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    try:
        converted = kind(value) if not (kind is int and isinstance(value, str)) else int(value.strip())
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}") from None
    if key in CHOICES and converted not in CHOICES[key]:
        raise ConfigError(f"{key}: expected one of {', '.join(CHOICES[key])}, got {converted!r}")
    return converted


def validate(config: Config) -> Config:
    """Checks ranges that types alone do not; returns the config."""
    checks = [
        ("width", config.width > 0, "must be > 0"),
        ("block_dropout", 0 <= config.block_dropout < 1, "must be in [0, 1)"),
        ("validation_fraction", 0 < config.validation_fraction < 1, "must be in (0, 1)"),
        ("batch_size", config.batch_size > 0, "must be > 0"),
        ("epochs", config.epochs > 0, "must be > 0"),
        ("steps_per_epoch", config.steps_per_epoch >= 0, "must be >= 0"),
        ("learning_rate", config.learning_rate > 0, "must be > 0"),
        ("weight_decay", config.weight_decay >= 0, "must be >= 0"),
        ("label_smoothing", 0 <= config.label_smoothing < 1, "must be in [0, 1)"),
        ("flip_prob", 0 <= config.flip_prob <= 1, "must be in [0, 1]"),
        ("crop_prob", 0 <= config.crop_prob <= 1, "must be in [0, 1]"),
        ("warmup_epochs", config.warmup_epochs >= 0, "must be >= 0"),
        ("checkpoint_steps", config.checkpoint_steps >= 0, "must be >= 0"),
    ]
    for key, ok, message in checks:
        if not ok:
            raise ConfigError(f"{key} {message}, got {getattr(config, key)!r}")
    for key in CHOICES:
        _convert(key, getattr(config, key))
    return config


def override(config: Config, values: Dict[str, Any]) -> Config:
    """Returns `config` with `values` applied, type-checked; unknown keys are refused."""
    known = fields()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(known)}")
    changes = {key: _convert(key, value) for key, value in values.items()}
    return validate(dataclasses.replace(config, **changes))


def parse_overrides(args):
    """`["--epochs=3", "--width=0.25"]` -> `{"epochs": "3", "width": "0.25"}`."""
    values = {}
    for arg in args:
        if not arg.startswith("--") or "=" not in arg:
            raise ConfigError(f"expected --key=value, got {arg!r}")
        key, value = arg[2:].split("=", 1)
        values[key.replace("-", "_")] = value
    return values


def load_file(path, base: Config = Config()) -> Config:
    """Applies an experiment file to `base`.

    A `.py` file defines `config` (a `Config`, e.g. `Config(epochs=3)` or
    `dataclasses.replace(...)`) or a dict `overrides`; a `.yaml`/`.yml`/`.json`
    file is a mapping of overrides.
    """
    if not os.path.exists(path):
        raise ConfigError(f"{path}: no such experiment file")
    if path.endswith(".py"):
        namespace = runpy.run_path(path)
        if isinstance(namespace.get("config"), Config):
            return validate(namespace["config"])
        if isinstance(namespace.get("overrides"), dict):
            return override(base, namespace["overrides"])
        raise ConfigError(f"{path}: define `config = Config(...)` or a dict `overrides`")
    with open(path) as f:
        values = json.load(f) if path.endswith(".json") else yaml.safe_load(f)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys to values")
    return override(base, values)


def to_dict(config: Config) -> Dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(values: Dict[str, Any]) -> Config:
    return override(Config(), values)
