import keras
import numpy as np
import pytest
from keras import layers

import tinyresnet
from tinyresnet import spec
from tinyresnet.models import build_model

NETS = [n for n in spec.PRESETS if n.startswith("net")]
CIFAR = ["cifar7", "cifar9"]
TINY = "Conv 8, BB 16, Avg 2, FC 10"


def _adds(model):
    return [layer for layer in model.layers if isinstance(layer, layers.Add)]


@pytest.mark.parametrize("variant", ["residual", "plain"])
@pytest.mark.parametrize("name", NETS + CIFAR)
def test_every_preset_builds_and_gives_logits(name, variant):
    size = 32 if name in CIFAR else 64
    model = build_model(name, (size, size, 3), num_classes=20, variant=variant, width=0.125)
    logits = model(np.zeros((2, size, size, 3), np.uint8), training=False)
    assert logits.shape == (2, 20)
    blocks = sum(isinstance(layer, spec.BasicBlock) for layer in spec.parse_spec(name))
    assert len(_adds(model)) == (blocks if variant == "residual" else 0)


def test_full_width_net1_matches_its_plain_twin_in_parameters():
    residual = build_model("net1", (64, 64, 3), 200)
    plain = build_model("net1", (64, 64, 3), 200, variant="plain")
    assert residual.output.shape == (None, 200)
    assert residual.count_params() == plain.count_params() == 6_652_808
    assert "bb3_add" in [layer.name for layer in residual.layers]
    assert "bb3_add" not in [layer.name for layer in plain.layers]


def test_parameter_count_by_hand():
    # conv1: 3*3*3*8 = 216 weights, no bias; BN 4*8 = 32 (half of it moving stats).
    # bb1: conv1 3*3*8*16 = 1,152 + BN 64; conv2 3*3*16*16 = 2,304 + BN 64; pad shortcut 0.
    # Avg 2 -> 4*4*16 = 256 features; fc 256*10 + 10 = 2,570.
    model = build_model(TINY, (8, 8, 3))
    assert model.count_params() == 216 + 32 + 1_152 + 64 + 2_304 + 64 + 2_570
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert non_trainable == 2 * (8 + 16 + 16)
    # The projection shortcut adds a 1x1 conv 8->16 (128) and its BN (64).
    assert build_model(TINY, (8, 8, 3), shortcut="projection").count_params() == 6_402 + 128 + 64


def test_layer_names_are_predictable():
    names = [layer.name for layer in build_model(TINY, (8, 8, 3)).layers]
    assert names == ["images", "rescale", "conv1_conv", "conv1_bn", "conv1_relu",
                     "bb1_conv1", "bb1_bn1", "bb1_relu1", "bb1_dropout", "bb1_conv2", "bb1_pad",
                     "bb1_bn2", "bb1_add", "bb1_out", "pool1", "flatten", "fc"]


def test_num_classes_overrides_the_spec_and_none_keeps_it():
    assert build_model("cifar7", (32, 32, 3)).output.shape == (None, 10)
    assert build_model("net1", (64, 64, 3), 20, width=0.125).output.shape == (None, 20)


def test_inputs_are_raw_pixels_uint8_or_float():
    model = build_model(TINY, (8, 8, 3))
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(model(images, training=False), model(images.astype("float32"), training=False),
                               rtol=1e-6, atol=1e-6)
    assert model.get_layer("rescale")(np.array([0.0, 255.0])).numpy().tolist() == [-1.0, 1.0]


def test_block_dropout_zero_removes_the_dropout_layers():
    names = [layer.name for layer in build_model(TINY, (8, 8, 3), block_dropout=0).layers]
    assert "bb1_dropout" not in names


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="variant must be one of"):
        build_model(TINY, (8, 8, 3), variant="dense")
    with pytest.raises(ValueError, match="shortcut must be"):
        build_model(TINY, (8, 8, 3), shortcut="conv")
    with pytest.raises(spec.SpecError, match="pooling a 1x1 feature map"):
        build_model("Conv 8, Avg 2, Avg 2, FC 10", (2, 2, 3))


def test_package_api():
    assert set(tinyresnet.PRESETS) == {"net1", "net2", "net3", "net4", "net5", "net6", "cifar7", "cifar9"}
    assert tinyresnet.build_model("net1", (64, 64, 3), 200).name == "net1_residual"


def test_fused_batch_norm_matches_keras_batch_normalization():
    from tinyresnet.blocks import BatchNorm
    x = np.random.default_rng(0).normal(2, 3, (8, 5, 5, 4)).astype("float32")
    reference, fused = layers.BatchNormalization(), BatchNorm()
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), atol=1e-6)
    # The fused kernel averages the unbiased variance: n/(n-1) = 200/199 of Keras' update.
    n = 8 * 5 * 5
    expected = 0.99 + 0.01 * (reference.moving_variance.numpy() - 0.99) / 0.01 * n / (n - 1)
    np.testing.assert_allclose(fused.moving_variance.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False), atol=5e-3)
    assert BatchNorm.from_config(fused.get_config()).get_config() == fused.get_config()


@pytest.mark.parametrize("rate", [0.5, 0.3, 0.25])
def test_dropout_drops_units_at_its_rate_scales_the_rest_and_passes_gradients_through_its_mask(rate):
    import tensorflow as tf
    from tinyresnet.blocks import Dropout
    layer = Dropout(rate, seed=7)
    x = tf.ones((64, 32, 32, 8))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * tf.range(8, dtype=y.dtype))
    y, grad = y.numpy(), tape.gradient(loss, x).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)
    # 524,288 units: the kept fraction's standard error is 0.0007; 5 of them is a bug, not chance.
    assert abs(kept.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / kept.size)
    np.testing.assert_allclose(grad, kept * np.arange(8) / (1 - rate), rtol=1e-6)
    # Units are independent: neighbouring units (the two halves of one random word) are not correlated.
    pairs = kept.reshape(-1, 2)
    assert abs(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]) < 0.01
    # A new mask every call; none at inference; the same masks from the same seed.
    assert not np.array_equal(layer(x, training=True).numpy() != 0, kept)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
    np.testing.assert_array_equal(Dropout(rate, seed=7)(x, training=True).numpy() != 0, kept)
    assert keras.saving.get_registered_name(Dropout) == "tinyresnet>Dropout"
    assert Dropout.from_config(layer.get_config()).get_config() == layer.get_config()


def test_models_use_the_package_dropout():
    from tinyresnet.blocks import Dropout
    model = build_model("Conv 8, BB 8, Dropout 0.3, FC 4", (8, 8, 3))
    assert {type(model.get_layer(n)) for n in ("bb1_dropout", "dropout1")} == {Dropout}
