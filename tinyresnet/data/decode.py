"""Decode encoded images once, in parallel, into one uint8 array."""

import re

import numpy as np
import tensorflow as tf

from tinyresnet import startup
from tinyresnet.data.files import DataError


def decode_image(blob, size, resize):
    """One encoded image -> uint8 `[height, width, 3]`; resized when `resize`, else checked."""
    # channels=3: Tiny ImageNet has grayscale JPEGs; PNGs may carry alpha.
    image = tf.io.decode_image(blob, channels=3, expand_animations=False)
    if resize:
        def resized():
            out = tf.image.resize(image, size, antialias=True)
            return tf.cast(tf.round(tf.clip_by_value(out, 0, 255)), tf.uint8)
        same = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))
        image = tf.cond(same, lambda: image, resized)
    return tf.ensure_shape(image, (*size, 3))


def _decode_all(blobs, size, resize):
    """Fast path: one map_fn per batch of 256; fails on the first bad image."""
    spec = tf.TensorSpec((*size, 3), tf.uint8)

    def decode_batch(batch):
        return tf.map_fn(lambda blob: decode_image(blob, size, resize), batch, fn_output_signature=spec)

    ds = tf.data.Dataset.from_tensor_slices(tf.constant(blobs)).batch(256)
    ds = ds.map(decode_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return np.concatenate(list(ds.as_numpy_iterator()))


def _decode_each(blobs, size, resize):
    """Slow path: image by image; bad ones are dropped and found again by their missing index."""
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(blobs), dtype=tf.int64), tf.constant(blobs)))
    ds = ds.map(lambda i, b: (i, decode_image(b, size, resize)), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    kept, images = [], []
    for index, batch in ds.ignore_errors().batch(1024).as_numpy_iterator():
        kept.append(index)
        images.append(batch)
    kept = np.concatenate(kept) if kept else np.zeros((0,), np.int64)
    images = np.concatenate(images) if images else np.zeros((0, *size, 3), np.uint8)
    return images, kept


def _why(blob, size):
    try:
        image = tf.io.decode_image(blob, channels=3, expand_animations=False)
    except tf.errors.OpError as e:
        reason = re.sub(r"\{\{[^}]*\}\}\s*", "", e.message).splitlines()[0]
        return f"cannot decode image ({reason})"
    return f"image is {image.shape[0]}x{image.shape[1]}, expected {size[0]}x{size[1]}"


def decode_images(blobs, names, size, resize=False, skip_corrupt=False):
    """Decodes JPEG/PNG/BMP/GIF/WebP bytes to a `[N, height, width, 3]` uint8 array.

    Args:
        blobs: list of encoded images.
        names: a name for each (file path), used in errors.
        size: `(height, width)` every image must have.
        resize: resize images of another size instead of refusing them.
        skip_corrupt: drop undecodable images instead of raising.

    Returns:
        `(images, kept)`: the array and the indices of `blobs` it holds.

    Raises:
        DataError: naming the first bad file, unless `skip_corrupt`.
    """
    size = tuple(size)
    if not blobs:
        return np.zeros((0, *size, 3), np.uint8), np.zeros((0,), np.int64)
    # A truncated JPEG makes libjpeg write a line of its own to stderr, besides the error reported here.
    with startup.native_noise_filtered(startup.DECODER_NOISE):
        try:
            return _decode_all(blobs, size, resize), np.arange(len(blobs))
        except tf.errors.OpError:
            images, kept = _decode_each(blobs, size, resize)
        bad = np.setdiff1d(np.arange(len(blobs)), kept)
        why = _why(blobs[int(bad[0])], size) if len(bad) and not skip_corrupt else None
    if why:
        first = int(bad[0])
        raise DataError(f"{names[first]}: {why}"
                        + (f" (and {len(bad) - 1} more bad images)" if len(bad) > 1 else "")
                        + "; pass skip_corrupt=True (--skip_corrupt=true or --skip-corrupt) to leave them out")
    return images, kept
