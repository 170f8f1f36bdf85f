"""Fast tf.data pipelines: decode once, cache uint8, shuffle, batch, augment per batch, prefetch."""

import dataclasses
import hashlib
import os
import zipfile
from typing import List

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


class Datasets:
    """Decoded splits held in memory, and the `tf.data` pipelines over them.

    Decoding happens once; the pipelines are cheap to make, so one `Datasets`
    serves many runs of different batch sizes, seeds and augmentations (the
    tuner and the experiments share one per process). It holds data only: each
    pipeline is given its batch size, augmentation and seed when it is made
    (`training`, `batches`).

    Args:
        splits: `{"train": Arrays, "validation": Arrays, "test": Arrays}`
            (test optional), validation already held out.
        class_names: one name per label.
        skipped: images left out by skip_corrupt, all splits.
    """

    def __init__(self, splits, class_names, skipped=0):
        self.splits = splits
        self.class_names = list(class_names)
        self.skipped = skipped
        self._tensors = {}

    @property
    def image_shape(self):
        return tuple(self.splits["train"].images.shape[1:])

    @property
    def num_train(self):
        return len(self.splits["train"].labels)

    @property
    def num_validation(self):
        return len(self.splits["validation"].labels)

    def _tensor(self, split):
        # One in-graph copy of each split's images, shared by all its pipelines.
        if split not in self._tensors:
            arrays = self.splits[split]
            self._tensors[split] = (tf.constant(arrays.images), tf.constant(np.asarray(arrays.labels, np.int64)))
        return self._tensors[split]

    def has_split(self, split):
        """Whether the data has `split` with images (a class subset may have no test split)."""
        return split in self.splits and len(self.splits[split].labels) > 0

    def batches(self, split, batch_size, max_images=None):
        """`split` in order, not augmented, the last batch partial: for evaluation and prediction.

        With `max_images` below the split's size, a fixed sample of that many
        (the first of a seed-0 permutation, the same for every run) instead.
        Test labels are -1 where the data is unlabelled.
        """
        if not self.has_split(split):
            raise ValueError(f"the data has no {split!r} split (it has {', '.join(sorted(self.splits))})")
        _check_batch_size(batch_size)
        images, labels = self._tensor(split)
        n = int(images.shape[0])
        if max_images and max_images < n:
            keep = np.sort(np.random.default_rng(0).permutation(n)[:max_images])
            images, labels = tf.gather(images, keep), tf.gather(labels, keep)
        return make_dataset(images, labels, batch_size)

    def training(self, batch_size, augment=None, seed=0, initial_epoch=None, steps_per_epoch=None):
        """Shuffled, augmented training batches (see `make_dataset`).

        Args:
            batch_size: images per batch.
            augment: a layer applied to each batch (e.g. `PaperAugment(seed=...)`), True for
                the paper's augmentation seeded with `seed`, or None/False for none.
            seed: the order (and augmentation) seed.
            initial_epoch: None for one epoch per iteration, a new (seeded) order each time;
                an int for an endless stream of epochs from that one (what `fit` with a resume needs).
            steps_per_epoch: cap on batches per epoch (None: all).
        """
        _check_batch_size(batch_size)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        return make_dataset(*self._tensor("train"), batch_size, training=True, augment=paper_augment(augment, seed),
                            seed=seed, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch)


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def load_arrays(tree, files, labels, size, resize=False, skip_corrupt=False, cache_dir=None):
    """Reads and decodes `files` of `tree` once; with `cache_dir`, keeps the result in an .npz.

    Returns:
        `Arrays` with the images that decoded and the names of those skipped.
    """
    cache = None
    if cache_dir:
        cache = os.path.join(cache_dir, f"decoded-{cache_key(tree, files, labels, size, resize, skip_corrupt)}.npz")
        cached = _read_cache(cache)
        if cached is not None:
            return cached
    blobs = [tree.read(f) for f in files]
    images, kept = decode_images(blobs, [tree.describe(f) for f in files], size, resize, skip_corrupt)
    kept_set = set(kept.tolist())
    skipped = [tree.describe(f) for i, f in enumerate(files) if i not in kept_set]
    arrays = Arrays(images, np.asarray(labels)[kept], [files[i] for i in kept], skipped)
    if cache:
        _write_cache(cache, arrays)
    return arrays


def _read_cache(cache):
    """The `Arrays` in a decoded-data cache file; None where there is none, or it is unreadable."""
    if not os.path.exists(cache):
        return None
    try:
        with np.load(cache) as z:
            return Arrays(z["images"], z["labels"], list(z["files"]), list(z["skipped"]))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        # Cut short by a full disk or an interrupted copy: decoding again replaces it.
        print(f"decoded-data cache {cache} is unreadable ({type(e).__name__}: {e}); decoding again")
        return None


def _write_cache(cache, arrays):
    """Writes `arrays` to `cache` atomically: a reader sees the whole file or none."""
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    # One temporary file per process: the chief and the workers may decode the same data at once.
    tmp = f"{cache}.tmp-{os.getpid()}.npz"
    try:
        np.savez(tmp, images=arrays.images, labels=arrays.labels,
                 files=np.array(arrays.files, dtype=str), skipped=np.array(arrays.skipped, dtype=str))
        os.replace(tmp, cache)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def cache_key(tree, files, labels, size, resize, skip_corrupt):
    """A digest of everything the decoded arrays depend on.

    It covers the archive or folder, every file name in order with its label
    and its fingerprint (size and CRC in a zip; size and mtime in a folder),
    and the decoding options: renaming a class folder, relabelling, or
    rewriting one image gives a new key, never a stale cache.
    """
    digest = hashlib.sha256()
    digest.update(f"{os.path.abspath(tree.path)}|{tuple(size)}|{resize}|{skip_corrupt}|{len(files)}\n".encode())
    for name, label in zip(files, np.asarray(labels).tolist()):
        digest.update(f"{name}|{label}|{tree.fingerprint(name)}\n".encode())
    return digest.hexdigest()[:24]


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


def make_dataset(images, labels, batch_size, training=False, augment=None, seed=0, initial_epoch=None,
                 steps_per_epoch=None):
    """A batched pipeline over decoded uint8 images held in memory.

    For training, each epoch is a permutation of the indices drawn from
    (seed, epoch) with stateless random ops; each batch is gathered from the
    cached array and augmented with draws from (seed, epoch, batch index).
    So two fresh pipelines give identical batches, the parallel map stays
    reproducible, and a run resumed at epoch k replays epochs k, k+1, ...
    exactly as an uninterrupted run would have seen them.

    Args:
        images: uint8 `[N, H, W, 3]` (an array, or a tensor to share it between pipelines).
        labels: int `[N]`.
        batch_size: images per batch.
        training: shuffle, drop the last partial batch and augment.
        augment: a layer applied to training batches; None for none. A
            `PaperAugment` gets its per-batch seed; other layers are called as they are.
        seed: the shuffle (and augmentation) seed.
        initial_epoch: None: one epoch per iteration of the dataset, a new
            (seeded) epoch each time; an int: an endless stream of epochs
            starting at that epoch number.
        steps_per_epoch: cap on batches per epoch (None: all).
    """
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(np.asarray(labels, np.int64) if not tf.is_tensor(labels) else labels)
    n = int(images.shape[0])
    if not training:
        ds = tf.data.Dataset.range(n).batch(batch_size)
        return ds.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)),
                      num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        ds = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=n >= batch_size)
        if steps_per_epoch:
            ds = ds.take(steps_per_epoch)
        return ds.enumerate().map(lambda batch, index: (epoch, batch, index))

    if initial_epoch is None:
        # A new epoch number per iteration, deterministic for a seed.
        epochs = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        epochs = epochs.map(lambda e: e % (2 ** 31))
    else:
        epochs = tf.data.Dataset.range(initial_epoch, 2 ** 62)
    ds = epochs.flat_map(epoch_batches)
    layer_seed = getattr(augment, "batch_seed", None)

    def gather(epoch, batch, index):
        x, y = tf.gather(images, index), tf.gather(labels, index)
        if augment is not None:
            x = augment(x, training=True, seed=layer_seed(epoch, batch)) if layer_seed else augment(x, training=True)
        return x, y

    return ds.map(gather, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def paper_augment(augment, seed):
    """`augment` as a layer: True gives the paper's `PaperAugment`, False/None none."""
    if augment is True:
        return PaperAugment(seed=seed)
    return augment or None


def build_datasets(splits, class_names, validation_fraction=0.1):
    """`Datasets` from decoded `splits` (`{"train": Arrays, ...}`).

    Without a validation split, a stratified `validation_fraction` of train is
    held out, always with seed 0: runs of different seeds are then compared
    on the same images.
    """
    train = splits["train"]
    val = splits.get("validation")
    if val is None or len(val.labels) == 0:
        train_idx, val_idx = stratified_split(train.labels, validation_fraction, seed=0)
        val = Arrays(train.images[val_idx], train.labels[val_idx], [train.files[i] for i in val_idx])
        train = Arrays(train.images[train_idx], train.labels[train_idx], [train.files[i] for i in train_idx])
    held = {"train": train, "validation": val}
    if splits.get("test") is not None and len(splits["test"].labels):
        held["test"] = splits["test"]
    return Datasets(held, class_names, skipped=sum(len(s.skipped) for s in splits.values()))
