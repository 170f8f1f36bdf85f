"""`augment_on="auto"` and `jit_compile="auto"`: where the augmentation runs and whether XLA compiles the step.

Both follow one fact, whether TensorFlow sees a GPU (`gpu_visible`, the one
function tests stub):

- `augment_on`: with a GPU, in the model (`PaperAugment` as its first layer,
  on the GPU, compiled with the step); without one, in `tf.data`, where the
  CPU augments the next batches while it trains on this one. A run keeps the
  place it started with (its `config.json`; a run from before the key was
  there augmented in `tf.data`), so a resumed run draws the same random
  stream as an uninterrupted one, on any machine.
- `jit_compile`: on with a GPU (XLA fuses the step's element-wise ops into
  the convolutions around them), off on a CPU, where XLA's convolutions are
  about 10x slower than oneDNN's (README, Performance), and off under
  `distribution=mirrored`, where Keras 3 does not compile the step (its own
  "auto" turns XLA off under `tf.distribute`). Decided afresh at every start.

Like `precision="auto"` (`tinyresnet.precision`), each choice has a reason;
`train_and_evaluate` prints the ones it decided and records all of them in
`results.json`. Both keys only change where and how the same computation
runs, so they are `config.EXECUTION_KEYS`: a rerun may change them.
"""

import dataclasses
import os
from typing import Dict, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Choice:
    value: str  # the config value it resolves to
    reason: str  # one line: why


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU."""
    import tensorflow as tf
    return bool(tf.config.list_physical_devices("GPU"))


def augment_started_with(workdir) -> Optional[str]:
    """Where a run directory's run augmented: "data" or "model"; None if no run there, or one that recorded "auto".

    A `config.json` without the key was written before it existed, when augmentation ran in `tf.data`.
    """
    from tinyresnet import runs
    try:
        values = runs.read_json(os.path.join(workdir, runs.CONFIG))
    except (OSError, ValueError):
        return None
    if not isinstance(values, dict):
        return None
    place = values.get("augment_on", "data")
    return place if place in ("data", "model") else None


def resolve_augment_on(value: str, workdir=None) -> Choice:
    """The place of `augment_on=value` for a run in `workdir`: kept from the run's start, else by `gpu_visible`."""
    if value != "auto":
        return Choice(value, "asked for")
    previous = augment_started_with(workdir) if workdir else None
    if previous:
        return Choice(previous, "auto, kept from the run's start")
    if gpu_visible():
        return Choice("model", "auto: a GPU is visible, so the augmentation runs on it, as the model's first layer")
    return Choice("data", "auto: no GPU, so the CPU augments in tf.data, beside the training step")


def resolve_jit_compile(value: str, distribution: str = "default") -> Choice:
    """`jit_compile=value` as "true" or "false"."""
    if value != "auto":
        return Choice(value, "asked for")
    if not gpu_visible():
        return Choice("false", "auto: no GPU; XLA's CPU convolutions are about 10x slower than oneDNN's")
    if distribution == "mirrored":
        return Choice("false", "auto: distribution=mirrored, under which Keras does not compile the step with XLA")
    return Choice("true", "auto: a GPU is visible; XLA compiles the training step")


def resolve(config, workdir=None) -> Tuple[object, Dict[str, str]]:
    """`(config with augment_on and jit_compile decided, {key: reason})` for a run in `workdir` (or none)."""
    augment = resolve_augment_on(config.augment_on, workdir)
    jit = resolve_jit_compile(config.jit_compile, config.distribution)
    config = dataclasses.replace(config, augment_on=augment.value, jit_compile=jit.value)
    return config, {"augment_on": augment.reason, "jit_compile": jit.reason}
