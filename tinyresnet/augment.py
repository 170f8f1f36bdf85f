"""The paper's stochastic augmentation (section 4.2) as a Keras layer."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tinyresnet")
class PaperAugment(keras.layers.Layer):
    """Per image: flip horizontally with `flip_prob`, then with `crop_prob` crop
    a random `crop_size` window and rescale it to the input size (bilinear).

    Both steps are one bilinear resampling per batch: an unflipped, uncropped
    image samples every pixel exactly, so it passes through unchanged.
    Identity when `training=False`, so the layer can sit inside a model (and
    run on its device) or in `tf.data.Dataset.map` on batches. Output shape
    and dtype equal the input's.

    Random draws: given `seed=` (a `[2]` int tensor) in the call, they are a
    pure function of it (stateless random ops), so parallel `tf.data` maps
    stay reproducible; the pipeline passes one derived from (layer seed,
    epoch, batch index). Without it, as inside a model under `fit`, they come
    from the layer's `SeedGenerator`, one draw per call in order.

    Args:
        flip_prob: probability of a horizontal flip (the paper's 0.5).
        crop_prob: probability of a crop (the paper's 0.7).
        crop_size: `(height, width)` or an int for the crop window; None takes
            56/64 of the input size (the paper's 56x56 crops of 64x64 images).
        seed: seed of the layer's `SeedGenerator`.
        resample: how the sampled points are read, both at the points
            `crop_and_resize` samples (outputs agree to 1e-4 on [0, 255]):
            "crop_and_resize", one op, 2-3x faster on a CPU, for `tf.data`;
            or "gather", row gathers and arithmetic, each with a GPU and an
            XLA kernel (`CropAndResize` has no XLA kernel), for the layer
            inside a model that may be compiled with `jit_compile=True`.
    """

    def __init__(self, flip_prob=0.5, crop_prob=0.7, crop_size=None, seed=None, resample="crop_and_resize",
                 **kwargs):
        super().__init__(**kwargs)
        for name, p in (("flip_prob", flip_prob), ("crop_prob", crop_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if resample not in RESAMPLERS:
            raise ValueError(f"resample must be one of {', '.join(RESAMPLERS)}, got {resample!r}")
        self.flip_prob = flip_prob
        self.crop_prob = crop_prob
        self.crop_size = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
        self.seed = seed
        self.resample = resample
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def window(self, height, width):
        """The crop window for inputs of `height` x `width`."""
        if self.crop_size is not None:
            ch, cw = self.crop_size
        else:
            ch, cw = round(height * 56 / 64), round(width * 56 / 64)
        if not (0 < ch <= height and 0 < cw <= width):
            raise ValueError(f"crop_size {(ch, cw)} does not fit in {height}x{width} images")
        return ch, cw

    def sample(self, batch_size, height, width, seed=None):
        """Draws the random transformation of a batch.

        Args:
            seed: a `[2]` int tensor for stateless draws; None draws from the
                layer's `SeedGenerator`.

        Returns:
            `(flip, crop, top, left)`: bool `[B]` flags and int32 `[B]` window
            offsets (0 for images that are not cropped).
        """
        ch, cw = self.window(height, width)
        if seed is None:
            u = keras.random.uniform((4, batch_size), seed=self.seed_generator)
        else:
            u = tf.random.stateless_uniform((4, batch_size), seed=seed)
        flip = u[0] < self.flip_prob
        crop = u[1] < self.crop_prob
        # Offsets uniform over the valid range [0, size - window].
        top = tf.cast(tf.floor(u[2] * (height - ch + 1)), tf.int32)
        left = tf.cast(tf.floor(u[3] * (width - cw + 1)), tf.int32)
        zero = tf.zeros_like(top)
        return flip, crop, tf.where(crop, top, zero), tf.where(crop, left, zero)

    def batch_seed(self, epoch, batch):
        """The stateless seed of batch `batch` of epoch `epoch`: `[2]` int64."""
        base = tf.stack([tf.constant(self.seed or 0, tf.int64), tf.cast(epoch, tf.int64)])
        return tf.random.experimental.stateless_fold_in(base, tf.cast(batch, tf.int64))

    def call(self, images, training=True, seed=None):
        if not training or (self.flip_prob == 0 and self.crop_prob == 0):
            return images
        dtype = images.dtype
        height, width = images.shape[1], images.shape[2]
        flip, crop, top, left = self.sample(tf.shape(images)[0], height, width, seed)
        ch, cw = self.window(height, width)
        windows = (tf.where(crop, ch, height), tf.where(crop, cw, width))
        out = RESAMPLERS[self.resample](tf.cast(images, tf.float32), flip, top, left, windows)
        if dtype.is_integer:
            out = tf.round(tf.clip_by_value(out, dtype.min, dtype.max))
        return tf.cast(out, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "flip_prob": self.flip_prob, "crop_prob": self.crop_prob,
                "crop_size": self.crop_size, "seed": self.seed, "resample": self.resample}


def _crop_and_resize(images, flip, top, left, windows):
    """Each image's window (from row `top`, column `left`, of `windows` pixels) resized to the image size and
    mirrored where `flip`, by one `crop_and_resize` (a box from x2 back to x1 mirrors)."""
    height, width = images.shape[1], images.shape[2]
    win_h, win_w = windows
    # Normalised box corners: pixel i of a side of n is at i / (n - 1).
    y1 = tf.cast(top, tf.float32) / (height - 1)
    y2 = tf.cast(top + win_h - 1, tf.float32) / (height - 1)
    x1 = tf.cast(left, tf.float32) / (width - 1)
    x2 = tf.cast(left + win_w - 1, tf.float32) / (width - 1)
    x1, x2 = tf.where(flip, x2, x1), tf.where(flip, x1, x2)
    boxes = tf.stack([y1, x1, y2, x2], axis=1)
    return tf.image.crop_and_resize(images, boxes, tf.range(tf.shape(images)[0]), (height, width),
                                    method="bilinear")


def _gather(images, flip, top, left, windows):
    """What `_crop_and_resize` computes, from the same sample points, with ops that XLA compiles."""
    height, width = images.shape[1], images.shape[2]
    win_h, win_w = windows
    # crop_and_resize's points: output pixel i reads window pixel i * (window - 1) / (size - 1).
    rows = tf.cast(top, tf.float32)[:, None] + _offsets(height, win_h)
    steps = _offsets(width, win_w)
    last = tf.cast(left + win_w - 1, tf.float32)[:, None]
    cols = tf.where(flip[:, None], last - steps, tf.cast(left, tf.float32)[:, None] + steps)
    out = _interpolate_rows(images, rows)
    # Columns as the rows of the transposed batch: gathering whole rows is 2.5x faster on a CPU.
    return tf.transpose(_interpolate_rows(tf.transpose(out, [0, 2, 1, 3]), cols), [0, 2, 1, 3])


def _offsets(size, window):
    """`[B, size]`: `i * (window - 1) / (size - 1)` for output pixel i of each image's window."""
    scale = tf.cast(window - 1, tf.float32) / (size - 1)
    return tf.range(size, dtype=tf.float32)[None, :] * scale[:, None]


def _interpolate_rows(images, coords):
    """`[B, N, W, C]`: rows of `images` `[B, H, W, C]` linearly interpolated at `coords` `[B, N]`.

    An integer coordinate gives its row exactly (weight 1, its neighbour's 0).
    """
    size = images.shape[1]
    coords = tf.clip_by_value(coords, 0.0, size - 1.0)  # a mirrored window's far edge may round to -1e-6
    low = tf.floor(coords)
    weight = (coords - low)[:, :, None, None]
    low = tf.cast(low, tf.int32)
    before = tf.gather(images, low, axis=1, batch_dims=1)
    after = tf.gather(images, tf.minimum(low + 1, size - 1), axis=1, batch_dims=1)
    return before + (after - before) * weight


RESAMPLERS = {"crop_and_resize": _crop_and_resize, "gather": _gather}
