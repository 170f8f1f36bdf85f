"""Datasets: Tiny ImageNet, CIFAR-10 and image folders as ready tf.data pipelines.

The tensorflow-datasets builder `tiny_imagenet` is registered by
`import tinyresnet.data.tfds_tiny_imagenet` (tensorflow-datasets is slow to
import, and only that path needs it).
"""

from tinyresnet.data.datasets import cifar10, image_folder, load_tiny_imagenet_arrays, tiny_imagenet
from tinyresnet.data.files import DataError, FileTree
from tinyresnet.data.pipeline import Datasets, make_dataset, stratified_split

__all__ = ["DataError", "Datasets", "FileTree", "cifar10", "image_folder", "load_tiny_imagenet_arrays",
           "make_dataset", "stratified_split", "tiny_imagenet"]
