"""One function per dataset, each returning ready tf.data pipelines and class names."""

import os

import numpy as np

from tinyresnet.data import folders
from tinyresnet.data import tiny_imagenet_layout as tin
from tinyresnet.data.files import DataError, FileTree
from tinyresnet.data.pipeline import Arrays, build_datasets, load_arrays


def _decoded_cache_dir(cache_dir, file_cache):
    """Where `file_cache` keeps decoded arrays; None when it is off."""
    default = os.path.join((os.environ.get("KERAS_HOME") or "~/.keras"), "tinyresnet")  # Keras' own cache folder
    return os.path.expanduser(cache_dir or default) if file_cache else None


def _report_skipped(splits):
    skipped = [name for arrays in splits.values() for name in arrays.skipped]
    if skipped:
        print(f"skipped {len(skipped)} unreadable images, e.g. {skipped[0]}")


def load_tiny_imagenet_arrays(data=None, cache_dir=None, skip_corrupt=False, file_cache=False,
                              splits=tin.SPLITS):
    """Decodes the splits of a Tiny ImageNet archive/folder (downloaded when `data` is None).

    Returns:
        `(arrays, layout)`: `{split: Arrays}` and the `TinyImageNet` listing.
    """
    layout = tin.read_layout(tin.locate(data, cache_dir))
    decoded_cache = _decoded_cache_dir(cache_dir, file_cache)
    arrays = {}
    for split in splits:
        s = layout.splits[split]
        if split == "test" and not s.files:  # a class subset may have only train/ and val/
            continue
        arrays[split] = load_arrays(layout.tree, s.files, s.labels, tin.IMAGE_SIZE,
                                    skip_corrupt=skip_corrupt,
                                    cache_dir=decoded_cache)
    _report_skipped(arrays)
    return arrays, layout


def tiny_imagenet(data=None, cache_dir=None, skip_corrupt=False, file_cache=False, validation_fraction=0.1,
                  with_test=True):
    """Tiny ImageNet, decoded once, from the official zip, its folder, or a download.

    Args:
        data: `tiny-imagenet-200.zip`, an extracted folder, or a class subset
            in the same layout; None downloads the official archive (md5
            checked) into `cache_dir`.
        cache_dir: download folder (default `~/.keras`) and, with
            `file_cache`, where decoded arrays are kept.
        skip_corrupt: leave undecodable images out (and report them) instead
            of failing.
        file_cache: keep the decoded uint8 arrays in an .npz so the next run
            skips decoding.
        validation_fraction: hold-out fraction if the archive has no val split.
        with_test: decode the unlabelled test split too (training never uses it).

    Returns:
        `Datasets`: the decoded `train`, `validation` and `test` splits (test
        labels are -1; no test split in a class subset without one), whose
        `training(batch_size, augment, seed)` and `batches(split, batch_size)`
        give pipelines of `(uint8 images [B, 64, 64, 3], int64 labels [B])`;
        `class_names` (from words.txt, in wnids.txt order) and sizes.
    """
    splits = tin.SPLITS if with_test else tuple(s for s in tin.SPLITS if s != "test")
    arrays, layout = load_tiny_imagenet_arrays(data, cache_dir, skip_corrupt, file_cache, splits)
    return build_datasets(arrays, layout.class_names, validation_fraction)


def image_folder(data, image_size=None, skip_corrupt=False, file_cache=False, cache_dir=None,
                 validation_fraction=0.1):
    """A class-per-folder dataset (folder or zip), e.g. the CIFAR-10 JPEGs, decoded once.

    Images of another size than `image_size` (default: the first image's)
    are resized. Without a `val`/`validation` folder, a stratified
    `validation_fraction` of train is held out (always with seed 0, so runs of
    any seed compare on the same images). Other arguments as in
    `tiny_imagenet`.
    """
    tree, listing, class_names = folders.read_image_folder(data)
    if image_size is None:
        image_size = folders.first_image_size(tree, listing)
    decoded_cache = _decoded_cache_dir(cache_dir, file_cache)
    arrays = {split: load_arrays(tree, files, labels, image_size, resize=True,
                                 skip_corrupt=skip_corrupt, cache_dir=decoded_cache)
              for split, (files, labels) in listing.items()}
    _report_skipped(arrays)
    return build_datasets(arrays, class_names, validation_fraction)


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10(data=None, validation_fraction=0.1, **kwargs):
    """CIFAR-10: `tfds.load("cifar10")` when `data` is None, else an image folder/zip.

    With TFDS, `validation` is TFDS's `test` split. Other arguments as in
    `image_folder`.
    """
    if data is not None:
        return image_folder(data, validation_fraction=validation_fraction, **kwargs)
    import tensorflow_datasets as tfds
    arrays = {}
    for split, tfds_split in (("train", "train"), ("validation", "test")):
        ds = tfds.load("cifar10", split=tfds_split, as_supervised=True).batch(10_000)
        batches = list(tfds.as_numpy(ds))
        images = np.concatenate([x for x, _ in batches])
        labels = np.concatenate([y for _, y in batches])
        arrays[split] = Arrays(images.astype(np.uint8), labels.astype(np.int64),
                               [f"{tfds_split}[{i}]" for i in range(len(labels))])
    return build_datasets(arrays, CIFAR10_CLASSES, validation_fraction)


__all__ = ["DataError", "FileTree", "cifar10", "image_folder", "tiny_imagenet"]
