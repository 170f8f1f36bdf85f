"""What issue 20's speed-ups buy: the same training steps timed before and after them, in one run.

Usage:
    python experiments/before_after.py [--rounds 2] [--json]

"Before" is TensorFlow's own kernels on this CPU (`TF_ENABLE_ONEDNN_OPTS=0`;
TensorFlow turns oneDNN on by itself only on CPUs with AVX-512 VNNI/BF16 or
AMX) and Keras' `Dropout`; "after" is the package as it is (`tinyresnet.onednn`,
`tinyresnet.blocks.Dropout`). Each side runs in its own process (the kernel
choice is made when TensorFlow is imported), alternately, `--rounds` times;
each times the nets of issue 20's table (the committed search's trials 06
and 08, with their dropout, and Net 1 at widths 0.125 and 0.25) with
`tinyresnet.bench.time_net` (the real step: model, loss, metrics, optimizer
and callbacks of training) in float32 and mixed_bfloat16. Run it from the
project root (it reads tuning/results/*/trials.csv). Medians over rounds; the fixed per-step cost is
the bench's least-squares intercept over the nets, per side.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

TRIALS = {"trial 06": "search trial 06 (smallest)", "trial 08": "search best (trial 08)"}
PRESETS = ("net1@0.125", "net1@0.25")


def side(name, repeats):
    """Times the nets in this process as `name` ("before" or "after"); returns {label: {policy: ms/step}}."""
    if name == "before":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # before TensorFlow is imported
    from tinyresnet import onednn
    onednn.enable_by_default()  # "after": on before TensorFlow loads ("before" has set it to 0)
    import keras

    from tinyresnet import bench, blocks
    if name == "before":
        blocks.Dropout = keras.layers.Dropout
    settings = bench.Settings(repeats=repeats, seconds=0.5, steps=4)
    import tempfile
    out = {}
    with tempfile.TemporaryDirectory() as workdir:
        trials = [n for n in bench.expand_nets(["search"]) if n.label in TRIALS]  # with their own dropout
        for i, net in enumerate(trials + bench.expand_nets(PRESETS)):
            entry = bench.time_net(net, settings, {p: 1.0 for p in bench.PRECISIONS}, os.path.join(workdir, str(i)),
                                   log=lambda *a: print(*a, file=sys.stderr))
            out[TRIALS.get(net.label, net.label)] = {
                "train_gflops_per_step": entry["train_gflops_per_step"],
                **{p: {"ms_per_step": entry[p]["ms_per_step"]} for p in bench.PRECISIONS}}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="before/after pairs, alternated (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per net within a side (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--side", choices=("before", "after"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        print(json.dumps(side(args.side, args.repeats)))
        return 0
    if args.rounds < 1 or args.repeats < 1:
        parser.error("--rounds and --repeats must be at least 1")
    from tinyresnet import bench, bench_table
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    runs = {"before": [], "after": []}
    for r in range(args.rounds):
        for name in runs:
            print(f"round {r + 1}/{args.rounds}: {name} ...", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, os.path.abspath(__file__), f"--side={name}",
                                   f"--repeats={args.repeats}"], env=env, stdout=subprocess.PIPE, text=True,
                                  check=True)
            runs[name].append(json.loads(done.stdout))
    result = {"rounds": args.rounds, "repeats": args.repeats, "nets": {}, "fixed_cost": {}}
    for label in runs["after"][0]:
        entry = {"train_gflops_per_step": runs["after"][0][label]["train_gflops_per_step"]}
        for policy in bench.PRECISIONS:
            for name in runs:
                entry.setdefault(name, {})[policy] = statistics.median(
                    r[label][policy]["ms_per_step"] for r in runs[name])
            entry.setdefault("speedup", {})[policy] = entry["before"][policy] / entry["after"][policy]
        result["nets"][label] = entry
    for name in runs:
        for policy in bench.PRECISIONS:
            points = [{"train_gflops_per_step": e["train_gflops_per_step"],
                       policy: {"ms_per_step": e[name][policy]}} for e in result["nets"].values()]
            result["fixed_cost"].setdefault(name, {})[policy] = bench.fixed_cost(points, policy)
    print(json.dumps(result, indent=2) if args.json else bench_table.before_after_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
