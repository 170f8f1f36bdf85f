"""`build_model`: one loop over a parsed spec gives the residual net or its plain twin."""

import keras
from keras import layers

from tinyresnet import blocks
from tinyresnet import losses  # noqa: F401  (registers the losses that saved models refer to)
from tinyresnet import spec as spec_lib

VARIANTS = spec_lib.VARIANTS


def build_model(spec, input_shape=(64, 64, 3), num_classes=None, variant="residual",
                block_dropout=0.5, shortcut="pad", width=1.0, name=None):
    """Builds a Keras functional model from a spec in the paper's notation.

    Args:
        spec: notation text (`"Conv 64, Avg 2, BB 64, FC 200"`), a preset
            name from `spec.PRESETS`, or a parsed spec tuple.
        input_shape: `(height, width, channels)` of the images.
        num_classes: units of the final FC; None keeps the spec's.
        variant: "residual", or "plain" for the same layers without shortcuts.
        block_dropout: dropout rate inside every BB (the paper's 0.5).
        shortcut: "pad" (the paper's parameter-free shortcut) or "projection".
        width: multiplier of every conv width (rounded, at least 8).
        name: model name; defaults to `<preset or "spec">_<variant>`.

    Returns:
        A `keras.Model` mapping images in [0, 255] (uint8 or float) to logits.
        The logits are float32 whatever the dtype policy.
    """
    spec_lib.check_choice("variant", variant, spec_lib.VARIANTS)
    spec_lib.check_choice("shortcut", shortcut, spec_lib.SHORTCUTS)
    if not spec_lib.is_dropout_rate(block_dropout):
        raise ValueError(f"block_dropout must be in {spec_lib.DROPOUT_RANGE}, got {block_dropout!r}")
    preset = spec_lib.preset_name(spec)
    parsed = spec_lib.parse_spec(spec)
    # Fails early, naming the item, if pooling would go below 1x1.
    list(spec_lib.feature_shapes(parsed, input_shape, width))

    inputs = keras.Input(shape=tuple(input_shape), name="images")
    # Normalisation lives in the model so an export needs no outside preprocessing.
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    counts = {}
    for layer in parsed[:-1]:
        kind = type(layer).__name__
        counts[kind] = counts.get(kind, 0) + 1
        index = counts[kind]
        if isinstance(layer, spec_lib.Conv):
            x = blocks.conv_bn_relu(x, spec_lib.scale_width(layer.filters, width), f"conv{index}")
        elif isinstance(layer, spec_lib.BasicBlock):
            x = blocks.basic_block(x, spec_lib.scale_width(layer.filters, width), f"bb{index}",
                                   dropout=block_dropout, residual=variant == "residual",
                                   shortcut=shortcut)
        elif isinstance(layer, spec_lib.Pool):
            pool = layers.AveragePooling2D if layer.kind == "avg" else layers.MaxPooling2D
            x = pool(layer.size, name=f"pool{index}")(x)
        elif isinstance(layer, spec_lib.Dropout):
            x = blocks.Dropout(layer.rate, name=f"dropout{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    units = num_classes or parsed[-1].units
    # The classifier stays float32 under mixed precision, for stable logits.
    outputs = layers.Dense(units, dtype="float32", name="fc")(x)
    return keras.Model(inputs, outputs, name=name or f"{preset or 'spec'}_{variant}")
