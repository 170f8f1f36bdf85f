"""Building blocks as `x -> x` functions with predictable layer names."""

import keras
import tensorflow as tf
from keras import layers, ops

from tinyresnet import spec as spec_lib


@keras.saving.register_keras_serializable(package="tinyresnet")
class BatchNorm(layers.BatchNormalization):
    """Keras `BatchNormalization` computed by TensorFlow's fused kernel.

    One fused op instead of Keras' moments + normalize chain: Net 1 trains
    about 20% faster on CPU (see README, Performance). Same variables, config
    and moving-average momentum as the Keras layer; like TensorFlow's fused
    kernel, the moving variance takes the unbiased (n-1) batch variance.
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or len(inputs.shape) != 4 or self.axis not in (-1, 3) or self.renorm \
                or not (self.center and self.scale):
            return super().call(inputs, training=training, mask=mask)
        fused = tf.compat.v1.nn.fused_batch_norm
        if training and self.trainable:
            outputs, mean, variance = fused(
                inputs, self.gamma.value, self.beta.value, mean=self.moving_mean.value,
                variance=self.moving_variance.value, epsilon=self.epsilon, is_training=True,
                exponential_avg_factor=1.0 - self.momentum)
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
        else:
            outputs, _, _ = fused(inputs, self.gamma.value, self.beta.value, mean=self.moving_mean.value,
                                  variance=self.moving_variance.value, epsilon=self.epsilon, is_training=False)
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="tinyresnet")
class Dropout(layers.Dropout):
    """Keras `Dropout` with a mask drawn from 16 random bits per unit instead of a float.

    Drawing the random numbers is most of dropout's cost on a CPU: Keras
    draws one float32 per unit, here one 32-bit draw serves two units, and
    the backward pass is one multiply by the saved mask. The forward and
    backward pass of a small net's dropout take 0.35x the time (README,
    Performance). A unit is dropped with probability round(rate * 65536) /
    65536, within 0.00001 of `rate`, and the kept ones are scaled by
    1 / (1 - rate), as in Keras. Same config and seed state as the Keras layer.
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        return drop_units(inputs, self.rate, self.seed_generator.next())


def drop_units(inputs, rate, seed):
    """`inputs` with each unit zeroed with probability `rate` (to 1/65536), the rest scaled by 1/(1 - rate).

    Args:
        inputs: a tensor.
        rate: in [0, 1).
        seed: a shape-(2,) integer tensor, as `tf.random.stateless_*` take.
    """
    size = tf.size(inputs)
    # As Keras does for its own stateless draws: int32 seeds, whatever the seed state's dtype.
    seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
    words = tf.random.stateless_uniform([(size + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
    bits = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size]
    keep = tf.cast(bits >= round(rate * 65536), inputs.dtype) * (1.0 / (1.0 - rate))
    return inputs * tf.reshape(keep, tf.shape(inputs))


@keras.saving.register_keras_serializable(package="tinyresnet")
class ChannelPad(layers.Layer):
    """The paper's parameter-free shortcut: identity with zero-padded channels.

    When the block narrows instead, the shortcut keeps the first `channels`.
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, x):
        extra = self.channels - x.shape[-1]
        if extra <= 0:
            return x[..., : self.channels]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _conv(filters, name, kernel_size=3):
    # No bias: the BatchNorm that follows has its own shift.
    return layers.Conv2D(filters, kernel_size, padding="same", use_bias=False,
                         kernel_initializer="he_normal", name=name)


def conv_bn_relu(x, filters, name):
    """`Conv N` of the notation: conv3x3, BN, ReLU."""
    x = _conv(filters, name + "_conv")(x)
    x = BatchNorm(name=name + "_bn")(x)
    return layers.ReLU(name=name + "_relu")(x)


def basic_block(x, filters, name, dropout=0.5, residual=True, shortcut="pad"):
    """`BB N`: conv3x3-BN-ReLU, dropout, conv3x3-BN, + shortcut, ReLU.

    Args:
        x: input tensor.
        filters: width of both convs.
        name: prefix of every layer name (`bb3` gives `bb3_conv1`, `bb3_add`).
        dropout: rate of the dropout between the two convs (0 disables it).
        residual: False gives the plain twin: the same layers, no shortcut.
        shortcut: "pad" (parameter-free, zero-padded channels) or
            "projection" (1x1 conv + BN) when the width changes.

    Returns:
        Output tensor.
    """
    spec_lib.check_choice("shortcut", shortcut, spec_lib.SHORTCUTS)
    y = _conv(filters, name + "_conv1")(x)
    y = BatchNorm(name=name + "_bn1")(y)
    y = layers.ReLU(name=name + "_relu1")(y)
    if dropout:
        y = Dropout(dropout, name=name + "_dropout")(y)
    y = _conv(filters, name + "_conv2")(y)
    y = BatchNorm(name=name + "_bn2")(y)
    if residual:
        if x.shape[-1] != filters:
            if shortcut == "projection":
                x = _conv(filters, name + "_proj_conv", kernel_size=1)(x)
                x = BatchNorm(name=name + "_proj_bn")(x)
            else:
                x = ChannelPad(filters, name=name + "_pad")(x)
        y = layers.Add(name=name + "_add")([x, y])
    return layers.ReLU(name=name + "_out")(y)
