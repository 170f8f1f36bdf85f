"""What bounds Net 1's training FLOP/s on a CPU: the 3x3 conv kernels themselves.

Usage: python experiments/conv_ceiling.py

Times, in one process, a large fp32 matmul and each distinct 3x3 conv of
Net 1 (batch 64, the feature-map size where Net 1 runs it): forward alone,
and forward + both backward passes (what a training step does), as GFLOP/s.
BN, ReLU, dropout and the Keras step add nothing measurable on top (removing
them does not change Net 1's training images/s), so the conv kernels'
fraction of the matmul ceiling is the bound on the training fraction.
"""

import argparse

# (feature map size, in channels, out channels) of Net 1's 3x3 convs.
CONVS = [(64, 64, 64), (32, 64, 128), (32, 128, 128), (16, 128, 256), (16, 256, 256), (4, 256, 512), (4, 512, 512)]


def parse_args(argv=None):
    """The command line: `--help` only; this script takes no options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser.parse_args(argv)


def main(batch=64):
    # Imported here, not at the top: `--help` answers without loading TensorFlow.
    import tensorflow as tf

    import pandas as pd

    from tinyresnet import tables
    from tinyresnet.bench import matmul_ceiling, median_seconds

    ceiling = matmul_ceiling(tf.float32, (4096,))
    print(f"matmul ceiling fp32: {ceiling:.0f} GFLOP/s\n")
    rows = []
    for size, cin, cout in CONVS:
        x = tf.random.normal((batch, size, size, cin))
        w = tf.Variable(tf.random.normal((3, 3, cin, cout)) * 0.05)
        flops = 2 * batch * size * size * 9 * cin * cout
        forward = tf.function(lambda: tf.nn.conv2d(x, w, 1, "SAME"))

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.nn.conv2d(x, w, 1, "SAME")
            return tape.gradient(y, [x, w])

        f = flops / median_seconds(lambda: forward().numpy(), 5) / 1e9
        t = 3 * flops / median_seconds(lambda: [g.numpy() for g in step()], 5) / 1e9
        rows.append([f"{size}x{size}, {cin} -> {cout}", f"{f:.0f}", f"{f / ceiling:.2f}", f"{t:.0f}",
                     f"{t / ceiling:.2f}"])
    print(tables.markdown(pd.DataFrame(rows, columns=["conv (HxW, in -> out)", "forward GFLOP/s", "fraction",
                                                      "train step GFLOP/s", "fraction"])))


if __name__ == "__main__":
    parse_args()
    main()
