"""Does memory stay flat over many tuning trials? Process RSS after each of N small trials.

Usage:
    python experiments/tune_memory.py --data ../shared/data/tiny-imagenet-200-sub20.zip [--trials 50] [--json]

Runs a random search of `--trials` small nets (1 epoch of `--steps` steps each)
through `SpecTuner` in each of three ways, each time in a fresh process: the
trials in a process apart that is replaced every `--trials-per-process` trials
(what `tinyresnet-tune` does), in a new process each (`trials_per_process=1`), and in
the tuner's process (`--trials-in-process`). For each: the tuner process's
resident set size after each trial, its growth per trial from the third trial
on by least squares (the first ones load kernels and caches), the largest trial
process, and the wall seconds per trial. `--mode` runs one of them here.
"""

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import psutil

from tinyresnet.tuning import trial_pool

MODES = ("trial-process", "process-per-trial", "in-process")
SEARCH = """
base: {{dataset: tiny_imagenet, data: {data}, epochs: 1, steps_per_epoch: {steps}, verbose: 0,
        precision: float32}}
search: {{oracle: random, max_trials: {trials}, seed: 0}}
space:
  stages: {{min: 2, max: 4}}
  blocks: {{min: 1, max: 2}}
  stem_convs: {{min: 1, max: 2}}
  base_width: [8, 16]
  growth: [1.5, 2.0]
  block_dropout: [0.0, 0.5]
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/tiny-imagenet-200-sub20.zip")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--mode", choices=MODES, help="run only this way, in this process")
    parser.add_argument("--trials-per-process", type=int, default=trial_pool.TRIALS_PER_PROCESS,
                        help="trials after which the trial process of `trial-process` is replaced "
                             f"(default {trial_pool.TRIALS_PER_PROCESS})")
    args = parser.parse_args()
    if args.mode is None:
        return _compare(args)
    args.in_process = args.mode == "in-process"
    per_process = 1 if args.mode == "process-per-trial" else args.trials_per_process
    from tinyresnet import train
    from tinyresnet.tuning import space
    from tinyresnet.tuning.tuner import SpecTuner
    process = psutil.Process()
    rss = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "search.yaml")
        with open(path, "w") as f:
            f.write(SEARCH.format(data=os.path.abspath(args.data), steps=args.steps, trials=args.trials))
        search = space.load_search(path)
        datasets = train.load_datasets(dataclasses.replace(search.base, file_cache=not args.in_process))
        before = process.memory_info().rss / 2 ** 20
        tuner = SpecTuner(search, datasets, os.path.join(tmp, "project"), log=lambda line: None,
                          in_process=args.in_process, trials_per_process=per_process)
        tuner.on_trial_end = _recording(tuner.on_trial_end, process, rss)
        start = time.perf_counter()
        tuner.search(verbose=0)
        seconds = (time.perf_counter() - start) / max(1, len(rss))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 10
    out = {"mode": args.mode, "trials": len(rss), "trials_per_process": None if args.in_process else per_process,
           "rss_mib_after_data": before, "rss_mib_after_each_trial": rss,
           "growth_mib_per_trial_from_3rd": _slope(rss[2:]),
           "largest_trial_process_mib": None if args.in_process else children, "seconds_per_trial": seconds}
    print(json.dumps(out, indent=2) if args.json else _text(out))


def _compare(args):
    out = {}
    for mode in MODES:  # each in a fresh process, so neither inherits the other's memory
        command = [sys.executable, os.path.abspath(__file__), f"--data={args.data}", f"--trials={args.trials}",
                   f"--steps={args.steps}", f"--mode={mode}", f"--trials-per-process={args.trials_per_process}", "--json"]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        out[mode] = json.loads(done.stdout)
    print(json.dumps(out, indent=2) if args.json else "\n\n".join(_text(r) for r in out.values()))


def _text(out):
    lines = [f"{out['mode']}: {out['trials']} trials",
             f"RSS after decoding the data: {out['rss_mib_after_data']:.0f} MiB",
             "RSS after each trial (MiB): " + ", ".join(f"{r:.0f}" for r in out["rss_mib_after_each_trial"]),
             f"growth per trial from the 3rd trial on (least squares): {out['growth_mib_per_trial_from_3rd']:.2f} MiB"]
    if out["largest_trial_process_mib"] is not None:
        lines.append(f"largest trial process: {out['largest_trial_process_mib']:.0f} MiB")
    lines.append(f"seconds per trial: {out['seconds_per_trial']:.1f}")
    return "\n".join(lines)


def _slope(values):
    """Least-squares slope of `values` against their index; nan for fewer than 2."""
    n = len(values)
    if n < 2:
        return float("nan")
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    return sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values)) / sum((i - mean_x) ** 2 for i in range(n))


def _recording(on_trial_end, process, rss):
    def wrapped(trial):
        on_trial_end(trial)
        rss.append(process.memory_info().rss / 2 ** 20)
    return wrapped


if __name__ == "__main__":
    main()
