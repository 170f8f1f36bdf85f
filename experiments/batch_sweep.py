"""What bounds a small net's training speed: its step time against the batch size.

Usage:
    python experiments/batch_sweep.py [--net SPEC_OR_PRESET] [--batch-sizes 16,32,64,128,256] [--json]

Times the training step `train_and_evaluate` runs (`tinyresnet.bench.time_net`:
model, loss, metrics, optimizer and callbacks, float32) of one net at several
batch sizes, and fits `ms/step = fixed + per image x batch` by least squares.
The intercept is what a step costs whatever its size (Keras' loop, callbacks,
the optimizer's per-variable updates, one dispatch per op); the slope is the
work per image (the kernels over its activations). `1000 / slope` is the
speed no batch size can pass: if it is near the speed at batch 64, the step's
fixed cost is no longer what holds the net back, its kernels are. The net's
forward activations per image (every layer's output, float32) put that slope
beside the memory it moves, and a 256 MiB copy (one thread, bytes read +
written) gives what the memory can move. The default net is the committed search's
smallest, trial 06, with its own block dropout; run from the project root.
"""

import argparse
import json
import os
import sys
import tempfile

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="search trial 06",
                        help="a preset (net1@0.25), a net in the notation at width 1, or 'search trial NN' "
                             "(a committed search trial with its dropout; default: search trial 06)")
    parser.add_argument("--batch-sizes", default="16,32,64,128,256", help="comma-separated (default 16,32,64,128,256)")
    parser.add_argument("--steps", type=int, default=8, help="at most this many timed steps per repeat (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, medians reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    try:
        args.batch_sizes = sorted({int(b) for b in args.batch_sizes.split(",")})
    except ValueError:
        parser.error(f"--batch-sizes: expected comma-separated integers, got {args.batch_sizes!r}")
    if len(args.batch_sizes) < 2 or args.batch_sizes[0] < 1:
        parser.error("--batch-sizes: at least two distinct sizes, each at least 1")
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be at least 1")
    return args


def the_net(text):
    """The `bench_nets.Net` that `--net` names."""
    from tinyresnet import bench_nets
    try:
        if not text.startswith("search trial "):
            return bench_nets.expand_nets([text], flag="--net")[0]
        wanted = text.removeprefix("search trial ")
        found = [n for n in bench_nets.expand_nets(["search"], flag="--net") if n.label == f"trial {wanted}"]
    except ValueError as error:
        _refuse(str(error))
    if not found:
        _refuse(f"--net: no completed trial {wanted!r} in {bench_nets.SEARCH_TRIALS} (run from the project root)")
    return found[0]


def _refuse(message):
    print(f"batch_sweep.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def fit_line(points):
    """`(fixed ms, ms per image)` of the least-squares line through `[(batch, ms/step), ...]`."""
    import numpy as np
    x, y = np.array(points, dtype=float).T
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def activation_bytes(model):
    """Bytes of every layer's float32 output for one image: what the forward pass writes."""
    import math
    return 4 * sum(math.prod(layer.output.shape[1:]) for layer in model.layers[1:])


def copy_gb_per_s(megabytes=256, repeats=3):
    """This machine's memory bandwidth as one thread's large copy sees it: bytes read + written per second."""
    import time

    import numpy as np
    src = np.ones(megabytes * 2 ** 20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats + 1):  # the first touches the pages
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def sweep(net, batch_sizes, steps, repeats, log):
    import tinyresnet.train  # noqa: F401  (oneDNN on, as training has it)
    from tinyresnet import bench
    rows, model = [], None
    with tempfile.TemporaryDirectory() as workdir:
        for b in batch_sizes:
            settings = bench.Settings(nets=(), precisions=("float32",), batch_size=b, steps=steps, seconds=2.0,
                                      repeats=repeats)
            entry = bench.time_net(net, settings, {"float32": 1.0}, os.path.join(workdir, str(b)), log=log)
            model = entry.pop("_model")
            rows.append({"batch_size": b, "ms_per_step": entry["float32"]["ms_per_step"],
                         "images_per_s": entry["float32"]["images_per_s"]})
    fixed, per_image = fit_line([(r["batch_size"], r["ms_per_step"]) for r in rows])
    activations = activation_bytes(model)
    return {"net": net.label, "spec": net.spec, "width": net.width, "block_dropout": net.block_dropout,
            "precision": "float32", "steps": steps, "repeats": repeats, "rows": rows,
            "fixed_ms_per_step": fixed, "ms_per_image": per_image,
            "limit_images_per_s": 1000 / per_image if per_image > 0 else None,
            "forward_activation_bytes_per_image": activations,
            "forward_activation_gb_per_s_at_limit": activations / (per_image / 1000) / 1e9 if per_image > 0 else None,
            "copy_gb_per_s": copy_gb_per_s()}


def main(argv=None):
    args = parse_args(argv)
    from tinyresnet import bench_table
    net = the_net(args.net)
    result = sweep(net, args.batch_sizes, args.steps, args.repeats, log=lambda *a: print(*a, file=sys.stderr))
    print(json.dumps(result, indent=2) if args.json else bench_table.batch_sweep_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
