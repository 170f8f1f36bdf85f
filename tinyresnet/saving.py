"""Loading the `.keras` files tinyresnet writes, in any process.

A `.keras` file names the package's layers and losses (`tinyresnet>BatchNorm`,
...), and Keras finds them only once the modules that register them are
imported. `import tinyresnet` is lazy, so nothing is registered by luck: load
through `load_model`, or give Keras `custom_objects()`.
"""

import os

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
    return keras.saving.load_model(path, custom_objects=custom_objects(), compile=compile)
