"""Where the seconds of a short run go: the fixed cost every tuning trial and experiment arm pays.

Usage:
    python experiments/fixed_cost.py --data ../shared/data/tiny-imagenet-200-sub20.zip [--json]

Times, in one process after measuring the start-up in fresh processes:
process start and imports, data decode, model build, first-step tracing,
training epochs, validation, checkpoints/TensorBoard, saving the model, the
final evaluations (validation and the inference-mode train accuracy) and
plotting, for two runs: the quickstart run (Net 1 at width 0.25, 3 epochs)
and a tuning-sized run (the same net, 1 epoch). Prints a table, or JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def startup_seconds(repeats=3):
    """Median seconds of `python -c 'import tinyresnet.train'`, and of a bare interpreter."""
    def timed(code):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    return {"python": timed("pass"), "imports": timed("import tinyresnet.train")}


def savings(config, run_dir):
    """Seconds that the cuts save per run, measured on the finished run: what the code did before.

    - the final validation pass (now read from the last epoch's validation in fit);
    - the inference pass over the whole train set (now a fixed sample of `train_eval_images`);
    - decoding the unlabelled test split (training never uses it).
    """
    import keras
    from tinyresnet import data as data_lib
    from tinyresnet import runs, saving, train
    datasets = train.load_datasets(config)
    model = saving.load_model(os.path.join(run_dir, runs.MODEL), compile=False)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1")])
    model.evaluate(datasets.batches("validation", config.batch_size), verbose=0)  # trace outside the timings

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    full_val = timed(lambda: model.evaluate(datasets.batches("validation", config.batch_size), verbose=0))
    full_train = timed(lambda: model.evaluate(datasets.batches("train", config.batch_size), verbose=0))
    sample = timed(lambda: model.evaluate(
        datasets.batches("train", config.batch_size, max_images=config.train_eval_images), verbose=0))
    test = timed(lambda: data_lib.load_tiny_imagenet_arrays(config.data, splits=("test",)))
    return {"final_validation_pass": full_val, "train_set_evaluation_whole": full_train,
            "train_set_evaluation_sample": sample, "test_split_decode": test}


def breakdown(results, history):
    """Splits a run's seconds into the phases above (from results.json and history.csv)."""
    phases = results["phase_seconds"]
    steps_rest = [(r["train_seconds"] - r["first_step_seconds"]) / max(1, r["images"] / results["batch_size"] - 1)
                  for r in history]
    tracing = max(0.0, history[0]["first_step_seconds"] - steps_rest[0])
    epochs = sum(r["train_seconds"] for r in history) - tracing
    validation = sum(r["seconds"] - r["train_seconds"] for r in history)
    callbacks = max(0.0, phases["fit"] - sum(r["seconds"] for r in history))
    return {
        "data_decode": phases["data"],
        "model_build": phases["build"],
        "first_step_tracing": tracing,
        "training_epochs": epochs,
        "validation_in_fit": validation,
        "checkpoints_tensorboard_fit_setup": callbacks,
        "save_model": phases["save_model"],
        "final_validation": results["val_eval_seconds"],
        "train_set_evaluation": results["train_eval_seconds"],
        "plot": phases["plot"],
        "total_in_process": sum(phases.values()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/tiny-imagenet-200-sub20.zip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = {"startup": startup_seconds()}
    from tinyresnet import runs, train
    from tinyresnet.config import Config
    settings = {"quickstart (net1 x0.25, 3 epochs)": 3, "tuning trial (net1 x0.25, 1 epoch)": 1}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, epochs) in enumerate(settings.items()):
            config = Config(net="net1", data=args.data, width=0.25, epochs=epochs, verbose=0, precision="float32")
            run_dir = os.path.join(tmp, f"run{i}")
            train._DECODED.clear()  # each run decodes, as a fresh process would
            results = train.train_and_evaluate(config, run_dir)
            results["batch_size"] = config.batch_size
            out[name] = breakdown(results, runs.read_history(run_dir))
            out[name]["saved_by_the_cuts"] = savings(config, run_dir)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    names = [n for n in settings]
    print(f"process start {out['startup']['python']:.2f} s, imports (tinyresnet.train) "
          f"{out['startup']['imports'] - out['startup']['python']:.2f} s")
    import pandas as pd

    from tinyresnet import tables
    rows = [[phase] + [f"{out[n][phase]:.2f}" for n in names]
            for phase in out[names[0]] if phase != "saved_by_the_cuts"]
    rows += [[f"before the cuts: {key}"] + [f"{out[n]['saved_by_the_cuts'][key]:.2f}" for n in names]
             for key in out[names[0]]["saved_by_the_cuts"]]
    print(tables.markdown(pd.DataFrame(rows, columns=["phase (seconds)"] + names)))


if __name__ == "__main__":
    main()
