"""Datasets: Tiny ImageNet, CIFAR-10 and image folders as ready tf.data pipelines."""

from tinyresnet.data.datasets import cifar10, image_folder, load_tiny_imagenet_arrays, tiny_imagenet
from tinyresnet.data.files import DataError, FileTree
from tinyresnet.data.pipeline import Datasets, make_dataset, stratified_split
from tinyresnet.data import tfds_tiny_imagenet  # registers tfds "tiny_imagenet"
