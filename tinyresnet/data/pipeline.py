"""Fast tf.data pipelines: decode once, cache uint8, shuffle, batch, augment per batch, prefetch."""

import dataclasses
import hashlib
import os
from typing import List, Optional

import numpy as np
import tensorflow as tf

from tinyresnet.augment import PaperAugment
from tinyresnet.data.decode import decode_images

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass
class Arrays:
    """A decoded split: uint8 images `[N, H, W, 3]`, int64 labels, file names."""

    images: np.ndarray
    labels: np.ndarray
    files: List[str]
    skipped: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Datasets:
    """What every dataset function returns."""

    train: tf.data.Dataset  # shuffled, augmented if asked, partial batch dropped
    validation: tf.data.Dataset
    test: Optional[tf.data.Dataset]  # labels -1 where unlabelled
    train_eval: tf.data.Dataset  # train in order, not augmented: for inference-mode accuracy
    class_names: List[str]
    image_shape: tuple
    num_train: int
    num_validation: int
    skipped: int  # images left out by skip_corrupt, all splits


def load_arrays(tree, files, labels, size, resize=False, skip_corrupt=False, cache_dir=None):
    """Reads and decodes `files` of `tree` once; with `cache_dir`, keeps the result in an .npz.

    Returns:
        `Arrays` with the images that decoded and the names of those skipped.
    """
    cache = None
    if cache_dir:
        st = os.stat(tree.path)
        key = f"{os.path.abspath(tree.path)}|{st.st_size}|{st.st_mtime_ns}|{size}|{resize}|{skip_corrupt}|{len(files)}|{files[:1]}"
        cache = os.path.join(cache_dir, f"decoded-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz")
        if os.path.exists(cache):
            with np.load(cache) as z:
                return Arrays(z["images"], z["labels"], list(z["files"]), list(z["skipped"]))
    blobs = [tree.read(f) for f in files]
    images, kept = decode_images(blobs, [tree.describe(f) for f in files], size, resize, skip_corrupt)
    kept_set = set(kept.tolist())
    skipped = [tree.describe(f) for i, f in enumerate(files) if i not in kept_set]
    arrays = Arrays(images, np.asarray(labels)[kept], [files[i] for i in kept], skipped)
    if cache:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = cache + ".tmp.npz"
        np.savez(tmp, images=arrays.images, labels=arrays.labels,
                 files=np.array(arrays.files, dtype=str), skipped=np.array(skipped, dtype=str))
        os.replace(tmp, cache)
    return arrays


def stratified_split(labels, fraction, seed=0):
    """Seeded, stratified hold-out: `round(fraction * n_c)` of each class's indices.

    Returns:
        `(train_indices, validation_indices)`, each sorted.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    val = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        val.append(rng.permutation(members)[: int(round(fraction * len(members)))])
    val = np.sort(np.concatenate(val))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val


def make_dataset(images, labels, batch_size, training=False, augment=None, seed=0):
    """A batched pipeline over decoded uint8 arrays held in memory.

    Shuffling permutes indices and each batch is gathered from the cached
    array, so an epoch costs one gather per batch; augmentation (a layer such
    as `PaperAugment`) runs on whole batches; prefetch keeps the next batches
    ready while the model trains.

    Args:
        images: uint8 `[N, H, W, 3]` (an array, or a tensor to share it between pipelines).
        labels: int `[N]`.
        batch_size: images per batch.
        training: shuffle each epoch (seeded), drop the last partial batch and augment.
        augment: a layer applied to training batches; None for none.
        seed: shuffle seed.
    """
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(np.asarray(labels, np.int64))
    ds = tf.data.Dataset.range(int(images.shape[0]))
    if training:
        ds = ds.shuffle(int(images.shape[0]), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=training and images.shape[0] >= batch_size)
    ds = ds.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)), num_parallel_calls=AUTOTUNE)
    if training and augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def paper_augment(augment, seed):
    """`augment` as a layer: True gives the paper's `PaperAugment`, False/None none."""
    if augment is True:
        return PaperAugment(seed=seed)
    return augment or None


def build_datasets(splits, class_names, batch_size, augment=True, seed=0,
                   validation_fraction=0.1):
    """Pipelines from decoded `splits` (`{"train": Arrays, ...}`); holds out validation if absent."""
    train = splits["train"]
    val = splits.get("validation")
    if val is None or len(val.labels) == 0:
        train_idx, val_idx = stratified_split(train.labels, validation_fraction, seed)
        val = Arrays(train.images[val_idx], train.labels[val_idx], [train.files[i] for i in val_idx])
        train = Arrays(train.images[train_idx], train.labels[train_idx], [train.files[i] for i in train_idx])
    test = splits.get("test")
    layer = paper_augment(augment, seed)
    # One copy of the train images, shared by the shuffled and the in-order pipeline.
    images = tf.constant(train.images)
    return Datasets(
        train=make_dataset(images, train.labels, batch_size, True, layer, seed),
        train_eval=make_dataset(images, train.labels, batch_size),
        validation=make_dataset(val.images, val.labels, batch_size),
        test=make_dataset(test.images, test.labels, batch_size) if test is not None and len(test.labels) else None,
        class_names=list(class_names),
        image_shape=tuple(train.images.shape[1:]),
        num_train=len(train.labels),
        num_validation=len(val.labels),
        skipped=sum(len(s.skipped) for s in splits.values()),
    )
