"""Datasets: Tiny ImageNet, CIFAR-10 and image folders as ready tf.data pipelines.

The tensorflow-datasets builder `tiny_imagenet` is registered by
`import tinyresnet.data.tfds_tiny_imagenet` (tensorflow-datasets is slow to
import, and only that path needs it).

Importing this package loads no TensorFlow: its names load on first use, so
that `tinyresnet.data.files` (archives and folders) and `tinyresnet.data.folders`
check an input before a command loads TensorFlow.
"""

import importlib

_LAZY = {"cifar10": "datasets", "image_folder": "datasets", "load_tiny_imagenet_arrays": "datasets",
         "tiny_imagenet": "datasets", "DataError": "files", "FileTree": "files", "Datasets": "pipeline",
         "make_dataset": "pipeline", "stratified_split": "pipeline"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'tinyresnet.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tinyresnet.data.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = ["DataError", "Datasets", "FileTree", "cifar10", "image_folder", "load_tiny_imagenet_arrays",
           "make_dataset", "stratified_split", "tiny_imagenet"]
