"""Where a Net 1 training step goes on a CPU: forward (inference vs training mode) and the full step.

Usage: python experiments/train_step_profile.py [--keras-bn]

A raw `tf.function` step (no Keras fit loop), batch 64 at 64x64. With
--keras-bn the model uses Keras' own BatchNormalization instead of the fused
`tinyresnet.blocks.BatchNorm`, to compare the two.
"""

import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keras-bn", action="store_true",
                        help="Keras' own BatchNormalization instead of the fused tinyresnet.blocks.BatchNorm")
    return parser.parse_args(argv)


def main(batch=64, keras_bn=False):
    # Imported here, not at the top: `--help` answers without loading TensorFlow.
    import keras
    import numpy as np
    import tensorflow as tf

    from tinyresnet import blocks, spec
    from tinyresnet.bench import median_seconds
    from tinyresnet.models import build_model

    if keras_bn:
        blocks.BatchNorm = keras.layers.BatchNormalization
    model = build_model("net1", (64, 64, 3), 200)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (batch, 64, 64, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, 200, batch))
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    forward_infer = tf.function(lambda: model(x, training=False))
    forward_train = tf.function(lambda: model(x, training=True))
    flops = spec.forward_flops("net1", (64, 64, 3)) * batch
    s, fi, ft = (median_seconds(lambda f=f: f().numpy(), 3) for f in (step, forward_infer, forward_train))
    print(f"BN: {'keras' if keras_bn else 'fused'}")
    print(f"train step      {s:.2f} s  {batch / s:.1f} images/s  {3 * flops / s / 1e9:.0f} GFLOP/s")
    print(f"forward (infer) {fi:.2f} s  {flops / fi / 1e9:.0f} GFLOP/s")
    print(f"forward (train) {ft:.2f} s  {flops / ft / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main(keras_bn=parse_args().keras_bn)
