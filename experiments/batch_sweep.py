"""What bounds a small net's training speed: its step time against the batch size.

Usage:
    python experiments/batch_sweep.py [--net NET] [--batch-sizes 16,32,64,128,256] [--steps 8] [--repeats 3]
                                      [--json]

Times the training step `train_and_evaluate` runs (`tinyresnet.bench.time_net`:
model, loss, metrics, optimizer and callbacks, float32) of one net at several
batch sizes, and fits `ms/step = fixed + per image x batch` by least squares.
The intercept is what a step costs whatever its size (Keras' loop, callbacks,
the optimizer's per-variable updates, one dispatch per op); the slope is the
work per image (the kernels over its activations). By the line, `1000 / slope`
is the speed no batch size passes: if it is near the speed at batch 64, the
step's fixed cost is no longer what holds the net back, its kernels are (R²
and the residuals say how well a line fits). The forward activations per
image (every Keras layer's float32 output, BatchNorm and ReLU counted apart
although oneDNN fuses them: an upper bound) put that slope beside the memory
it moves, and a 256 MiB copy (one thread, bytes read + written) gives what
the memory can move. The default net is the committed search's
smallest, trial 06, with its own block dropout; run from the project root.
"""

import argparse
import glob
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="search trial 06",
                        help="one net: a preset (net1, net1@0.25), a net in the notation at width 1, or "
                             "'search trial ID' (a trial of the committed searches, tuning/results/*/trials.csv, "
                             "with its own dropout; default: search trial 06)")
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
    """The one `bench_nets.Net` that `--net` names, checked against its input size before TensorFlow loads."""
    from tinyresnet import bench_nets
    text = text.strip()
    try:
        if text.startswith("search trial "):
            net = _search_trial(text.removeprefix("search trial ").strip())
        elif text == "search" or text.startswith("search="):
            _refuse(f"--net {text!r} names every net of a search; give one: 'search trial ID' "
                    "(e.g. 'search trial 06')")
        else:
            net = bench_nets.expand_nets([text], flag="--net")[0]  # a preset or the notation: one net
    except ValueError as error:
        _refuse(str(error))
    return net


def _search_trial(wanted):
    """The trial `wanted` of the committed searches, found from the project root: its id as written
    ("06"), else the one trial whose id has that number ("6")."""
    from tinyresnet import bench_nets
    paths = sorted(glob.glob(os.path.join(ROOT, bench_nets.SEARCH_TRIALS)))
    nets = [n for p in paths for n in bench_nets.expand_nets([f"search={p}"], flag="--net")]
    ids = [n.label.removeprefix("trial ") for n in nets]
    found = [n for n, i in zip(nets, ids) if i == wanted] or [
        n for n, i in zip(nets, ids) if wanted.isdigit() and i.isdigit() and int(i) == int(wanted)]
    if len(found) != 1:
        what = "no completed trial" if not found else f"{len(found)} trials"
        _refuse(f"--net: {what} {wanted!r} in {os.path.join(ROOT, bench_nets.SEARCH_TRIALS)} "
                f"(trials: {', '.join(ids) or 'none'})")
    return found[0]


def _refuse(message):
    print(f"batch_sweep.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def fit_line(points):
    """`(fixed ms, ms per image, R², residuals in ms)` of the least-squares line through `[(batch, ms/step)]`."""
    import numpy as np
    x, y = np.array(points, dtype=float).T
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (intercept + slope * x)
    r2 = 1 - (residuals ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12)
    return float(intercept), float(slope), float(r2), [float(r) for r in residuals]


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
    from tinyresnet import bench, onednn
    rows, model = [], None
    with tempfile.TemporaryDirectory() as workdir:
        for b in batch_sizes:
            settings = bench.Settings(nets=(), precisions=("float32",), batch_size=b, steps=steps, seconds=2.0,
                                      repeats=repeats)
            entry = bench.time_net(net, settings, {"float32": 1.0}, os.path.join(workdir, str(b)), log=log,
                                   decide_auto=False)
            model = entry.pop("_model")
            rows.append({"batch_size": b, **{k: entry["float32"][k]
                                             for k in ("ms_per_step", "images_per_s", "steps_per_repeat")}})
    fixed, per_image, r2, residuals = fit_line([(r["batch_size"], r["ms_per_step"]) for r in rows])
    for row, residual in zip(rows, residuals):
        row["residual_ms"] = residual
    activations = activation_bytes(model)
    # A bound only where the line says so: a negative intercept would put it below speeds measured.
    bounded = per_image > 0 and fixed >= 0
    return {"net": net.label, "spec": net.spec, "width": net.width, "block_dropout": net.block_dropout,
            "precision": "float32", "onednn": onednn.is_enabled(), "steps": steps, "repeats": repeats,
            "rows": rows, "fixed_ms_per_step": fixed, "ms_per_image": per_image, "r2": r2,
            "limit_images_per_s": 1000 / per_image if bounded else None,
            "forward_activation_bytes_per_image": activations,
            "forward_activation_gb_per_s_at_limit": activations / (per_image / 1000) / 1e9 if bounded else None,
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
