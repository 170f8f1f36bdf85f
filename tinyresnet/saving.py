"""Loading the `.keras` files tinyresnet writes, in any process.

A `.keras` file names the package's layers and losses (`tinyresnet>BatchNorm`,
...), and Keras finds them only once the modules that register them are
imported. `import tinyresnet` is lazy, so nothing is registered by luck: load
through `load_model`, or give Keras `custom_objects()`.
"""

import json
import os
import zipfile

import keras

from tinyresnet import augment, blocks, losses, runs

_SAVED_CLASSES = (blocks.BatchNorm, blocks.ChannelPad, blocks.Dropout, augment.PaperAugment, losses.SmoothedSparseCrossentropy)


def custom_objects():
    """`{registered name: class}` of everything a tinyresnet `.keras` file may refer to.

    For plain Keras: `keras.saving.load_model(path, custom_objects=tinyresnet.custom_objects())`.
    """
    return {keras.saving.get_registered_name(cls): cls for cls in _SAVED_CLASSES}


def load_model(path, compile=True):
    """Loads a `.keras` file that tinyresnet wrote (a run's `model.keras`, a checkpoint).

    Args:
        path: the `.keras` file, or a finished run directory (its `model.keras`).
        compile: also restore the optimizer, loss and metrics (False for inference only).

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: naming the file, when it is not there.
    """
    if os.path.isdir(path):
        path = os.path.join(path, runs.MODEL)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such .keras file (a run's model is RUN/{runs.MODEL}, once it has "
                                "finished; checkpoints are in RUN/checkpoints/)")
    policy = _mixed_policy(path) if compile else None
    if policy is None:
        return keras.saving.load_model(path, custom_objects=custom_objects(), compile=compile)
    # A functional model does not save its dtype policy, and Keras wraps the optimizer in a
    # LossScaleOptimizer on compile only under mixed_float16: loaded under the global float32,
    # a mixed_float16 checkpoint got a bare optimizer and lost its saved state (iterations, momentum).
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return keras.saving.load_model(path, custom_objects=custom_objects(), compile=compile)
    finally:
        keras.config.set_dtype_policy(previous)


def _mixed_policy(path):
    """The mixed dtype policy the layers of a `.keras` file were built with, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None  # not ours to judge: Keras says what is wrong with the file
    found = set()

    def walk(value):
        if isinstance(value, dict):
            if value.get("class_name") == "DTypePolicy":
                found.add((value.get("config") or {}).get("name"))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(config)
    mixed = sorted(name for name in found if isinstance(name, str) and name.startswith("mixed_"))
    return mixed[0] if len(mixed) == 1 else None
