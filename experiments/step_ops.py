"""Where a training step's time goes, per TensorFlow op type, from the TensorFlow profiler.

Usage:
    python experiments/step_ops.py [--net SPEC_OR_PRESET] [--width W] [--batch-size 64] [--steps 20] [--top 15]

Builds the net as training does (`train.build_trainer`, float32), traces and
warms it up with `fit` on one in-memory batch, then profiles `--steps` steps
of `fit` with the run's own callbacks. Prints the wall ms/step and, per op
type, the op time per step summed over TensorFlow's threads (so the column
can exceed the wall time when ops run in parallel) and its share. The
default net is the committed search's smallest (trial 06).
"""

import argparse
import collections
import glob
import os
import sys
import tempfile
import time

TRIAL_06 = "Conv 8, Avg 2, BB 8, Avg 2, BB 16, Avg 2, Dropout 0.3, FC 20"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default=TRIAL_06, help="a preset or a net in the notation (default: trial 06)")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="profiled steps")
    parser.add_argument("--top", type=int, default=15, help="op types listed")
    args = parser.parse_args(argv)
    if min(args.width, args.batch_size, args.steps, args.top) <= 0:
        parser.error("--width, --batch-size, --steps and --top must be positive")
    return args


def op_seconds(logdir):
    """`{op type: seconds}` summed over the TensorFlow threads of a profile written to `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    totals = collections.Counter()
    for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as f:
            space.ParseFromString(f.read())
        for plane in space.planes:
            names = plane.event_metadata
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = names[event.metadata_id].name
                    if ":" in name.replace("::", ""):  # "layer/op_name:OpType"; the rest are executor frames
                        totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e12
    return totals


def main(argv=None):
    args = parse_args(argv)
    from tinyresnet import onednn
    onednn.enable_by_default()  # first: TensorFlow's kernels as training has them
    import numpy as np
    import tensorflow as tf

    from tinyresnet import config as config_lib
    from tinyresnet import runs, spec, train
    config = config_lib.validate(config_lib.Config(net=args.net, width=args.width, batch_size=args.batch_size,
                                                   precision="float32", verbose=0))
    parsed = spec.parse_spec(config.net)
    classes = parsed[-1].units
    _, trainer = train.build_trainer(config, parsed, (64, 64, 3), classes, steps=100)
    rng = np.random.default_rng(0)
    batch = (rng.integers(0, 256, (args.batch_size, 64, 64, 3), dtype=np.uint8),
             rng.integers(0, classes, args.batch_size))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    with tempfile.TemporaryDirectory() as tmp:
        def fit(name):
            workdir = os.path.join(tmp, name)
            runs.start(workdir, config_lib.to_dict(config))
            trainer.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0, shuffle=False,
                        callbacks=train.make_callbacks(config, workdir))
        fit("warm-up")
        logdir = os.path.join(tmp, "profile")
        tf.profiler.experimental.start(logdir)
        start = time.perf_counter()
        fit("profiled")
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
        totals = op_seconds(logdir)
    total = sum(totals.values())
    print(f"{config.net} at width {args.width}, batch {args.batch_size}, float32: "
          f"{1000 * wall / args.steps:.1f} ms/step wall (profiled, with fit's set-up), "
          f"{1000 * total / args.steps:.1f} ms/step of op time over the threads")
    import pandas as pd

    from tinyresnet import tables
    rows = [[name, f"{1000 * seconds / args.steps:.2f}", f"{seconds / total:.0%}"]
            for name, seconds in totals.most_common(args.top)]
    print(tables.markdown(pd.DataFrame(rows, columns=["op type", "ms/step (all threads)", "share"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
