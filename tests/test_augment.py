import keras
import numpy as np
import pytest
import tensorflow as tf

from tinyresnet.augment import RESAMPLERS, PaperAugment


def _coordinates(n, size=64):
    # Channel 0 holds 4 * column, channel 1 holds 4 * row: the output then
    # says where each of its pixels was sampled from.
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    image = np.stack([cols * 4, rows * 4, np.zeros_like(cols)], -1).astype("float32")
    return np.repeat(image[None], n, axis=0)


def _decode(out):
    left_col, right_col = out[:, 0, 0, 0] / 4, out[:, 0, -1, 0] / 4
    top_row, bottom_row = out[:, 0, 0, 1] / 4, out[:, -1, 0, 1] / 4
    flipped = left_col > right_col
    span = np.round(np.abs(right_col - left_col)).astype(int) + 1
    return flipped, span, np.minimum(left_col, right_col), np.maximum(left_col, right_col), top_row, bottom_row


def test_flip_and_crop_rates_match_their_probabilities():
    # 16x16 images (14x14 crops): the draws do not depend on the size (seed 3 flips and crops the same images
    # at 64x64), and 20,000 of them are 16x lighter than at 64x64.
    n = 20_000
    flipped, span, lo, hi, top, bottom = _decode(PaperAugment(seed=3)(_coordinates(n, size=16)).numpy())
    # Binomial standard errors at n=20,000: 0.0035 (p=0.5), 0.0032 (p=0.7); 4 sigma.
    assert abs(flipped.mean() - 0.5) < 0.014
    cropped = span == 14
    assert set(np.unique(span)) == {14, 16}
    assert abs(cropped.mean() - 0.7) < 0.013
    # Flip and crop are drawn independently.
    assert abs((flipped & cropped).mean() - 0.35) < 0.015


def test_crops_stay_inside_the_image_and_cover_every_offset():
    flipped, span, lo, hi, top, bottom = _decode(PaperAugment(seed=5)(_coordinates(5_000)).numpy())
    cropped = span == 56
    assert lo.min() >= 0 and hi.max() <= 63 and top.min() >= 0 and bottom.max() <= 63
    np.testing.assert_allclose(hi[cropped] - lo[cropped], 55, atol=1e-3)
    np.testing.assert_allclose(bottom[cropped] - top[cropped], 55, atol=1e-3)
    assert set(np.round(lo[cropped]).astype(int)) == set(range(9))  # offsets 0..64-56
    assert set(np.round(top[cropped]).astype(int)) == set(range(9))
    np.testing.assert_allclose(lo[~cropped], 0, atol=1e-3)


@pytest.mark.parametrize("resample", RESAMPLERS)
def test_untouched_images_pass_exactly_and_flips_mirror_exactly(resample):
    images = np.random.default_rng(0).integers(0, 256, (64, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(PaperAugment(flip_prob=0, crop_prob=0, resample=resample)(images), images)
    np.testing.assert_array_equal(PaperAugment(flip_prob=1, crop_prob=0, resample=resample)(images),
                                  images[:, :, ::-1])
    # A flip with p=1 and a crop with p=0 still resample: the identity is exact, not skipped.
    np.testing.assert_array_equal(PaperAugment(flip_prob=1e-9, crop_prob=1e-9, resample=resample)(images), images)


def test_gather_samples_the_points_crop_and_resize_samples():
    # The same draws (one seed), read two ways: the in-model resampling is the tf.data one, to float32 round-off.
    images = np.random.default_rng(2).integers(0, 256, (256, 64, 64, 3)).astype("float32")
    seed = tf.constant([5, 6])
    reference = PaperAugment(seed=1)(images, seed=seed).numpy()
    gathered = PaperAugment(seed=1, resample="gather")(images, seed=seed).numpy()
    np.testing.assert_allclose(gathered, reference, rtol=0, atol=1e-4)
    assert 0.6 < np.mean(np.abs(gathered - images).max(axis=(1, 2, 3)) > 1) < 0.95  # most images did change
    as_uint8 = PaperAugment(seed=1, resample="gather")(images.astype("uint8"), seed=seed).numpy().astype(int)
    rounded = np.round(reference).astype(int)
    # Rounding may break a tie (x.5) the other way: at most one level, at a few pixels in a million.
    assert np.abs(as_uint8 - rounded).max() <= 1 and np.mean(as_uint8 != rounded) < 1e-5


def test_gather_compiles_with_xla_and_gives_crop_and_resize_s_pixels():
    images = tf.constant(np.random.default_rng(3).integers(0, 256, (16, 64, 64, 3)).astype("float32"))
    layer = PaperAugment(seed=4)
    draws = layer.sample(16, 64, 64, seed=tf.constant([7, 8]))
    flip, crop, top, left = draws
    windows = (tf.where(crop, 56, 64), tf.where(crop, 56, 64))
    compiled = tf.function(RESAMPLERS["gather"], jit_compile=True)
    # XLA reassociates the arithmetic (a division becomes a multiply): a few thousandths of a level apart.
    np.testing.assert_allclose(compiled(images, flip, top, left, windows),
                               RESAMPLERS["crop_and_resize"](images, flip, top, left, windows), rtol=0, atol=0.01)


def test_identity_at_inference_and_same_shape_and_dtype():
    layer = PaperAugment(seed=1)
    for dtype in ("uint8", "float32"):
        images = np.random.default_rng(1).integers(0, 256, (8, 64, 64, 3)).astype(dtype)
        out = layer(images, training=True)
        assert out.shape == images.shape and out.dtype == dtype
        np.testing.assert_array_equal(layer(images, training=False), images)


def test_crop_scales_with_the_input_size():
    assert PaperAugment().window(32, 32) == (28, 28)
    assert PaperAugment(crop_size=20).window(32, 32) == (20, 20)
    with pytest.raises(ValueError, match="does not fit"):
        PaperAugment(crop_size=40)(np.zeros((1, 32, 32, 3), "float32"))
    with pytest.raises(ValueError, match="crop_prob must be in"):
        PaperAugment(crop_prob=1.5)
    with pytest.raises(ValueError, match="resample must be one of crop_and_resize, gather"):
        PaperAugment(resample="nearest")


def test_works_inside_tf_data_and_reshuffles_each_epoch():
    layer = PaperAugment(seed=7)
    images = _coordinates(256).astype("uint8") // 1
    ds = tf.data.Dataset.from_tensor_slices(images).batch(64).map(lambda x: layer(x, training=True))
    first = np.concatenate(list(ds.as_numpy_iterator()))
    second = np.concatenate(list(ds.as_numpy_iterator()))
    assert first.shape == images.shape and first.dtype == np.uint8
    assert not np.array_equal(first, second)
    assert 0.35 < _decode(first.astype("float32"))[0].mean() < 0.65


def test_seeded_layers_repeat_themselves():
    images = _coordinates(32)
    np.testing.assert_array_equal(PaperAugment(seed=11)(images), PaperAugment(seed=11)(images))


def test_serializes_and_runs_inside_a_model(tmp_path):
    layer = PaperAugment(flip_prob=0.4, crop_prob=0.6, crop_size=(50, 52), seed=2, resample="gather")
    clone = PaperAugment.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(PaperAugment(seed=1)(inputs)))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    images = _coordinates(4)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
