"""Does memory stay flat over many tuning trials? Process RSS after each of N small trials.

Usage:
    python experiments/tune_memory.py --data ../shared/data/tiny-imagenet-200-sub20.zip [--trials 10] [--json]

Runs a random search of `--trials` small nets (1 epoch of `--steps` steps each)
in this process, through `SpecTuner` (decoded data shared, `clear_session`
between trials), and prints the resident set size after each trial, and the
growth per trial from the third trial on (the first ones load kernels and caches).
"""

import argparse
import json
import os
import tempfile

import psutil

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
    args = parser.parse_args()
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
        datasets = train.load_datasets(search.base)
        before = process.memory_info().rss / 2 ** 20
        tuner = SpecTuner(search, datasets, os.path.join(tmp, "project"), log=lambda line: None)
        tuner.on_trial_end = _recording(tuner.on_trial_end, process, rss)
        tuner.search(verbose=0)
    growth = (rss[-1] - rss[2]) / (len(rss) - 3) if len(rss) > 3 else float("nan")
    out = {"rss_mib_after_data": before, "rss_mib_after_each_trial": rss, "growth_mib_per_trial_from_3rd": growth}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"RSS after decoding the data: {before:.0f} MiB")
    print("RSS after each trial (MiB): " + ", ".join(f"{r:.0f}" for r in rss))
    print(f"growth per trial from the 3rd trial on: {growth:.1f} MiB")


def _recording(on_trial_end, process, rss):
    def wrapped(trial):
        on_trial_end(trial)
        rss.append(process.memory_info().rss / 2 ** 20)
    return wrapped


if __name__ == "__main__":
    main()
