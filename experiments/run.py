"""Rerun the study's claims: `python -m experiments.run CLAIM [CLAIM ...]`.

Every arm and seed trains through `tinyresnet.train.train_and_evaluate` in its
own run directory, `RUNS/<scale>/<arm>/seed_<n>`. A finished run is skipped
and an interrupted one resumes, so an experiment can be stopped (Ctrl-C, a
killed session) and continued by running the same command. After each run,
the claims it belongs to rewrite `experiments/results/<claim>/` (results.csv,
summary.md, curves.png), so results can be committed as arms finish.
"""

import argparse
import contextlib
import os
import sys
import time

from tinyresnet import quiet, runs

from experiments import results as results_lib
from experiments.claims import ARMS, CLAIMS, scale as make_scale

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SEEDS = (0, 1)


def plan(claim_names, seeds, arms=None):
    """The (arm, seed) runs the claims need, each once, in claim order."""
    planned = []
    for name in claim_names:
        for arm in CLAIMS[name].arms:
            if arms and arm not in arms:
                continue
            planned += [(arm, seed) for seed in seeds if (arm, seed) not in planned]
    return planned


def command_for(claim_name, scale):
    """The command that reproduces a claim's results at `scale`."""
    return f"python -m experiments.run {claim_name}" + ("" if scale.name == "cpu" else f" --scale={scale.name}")


def arm_config(arm, scale, seed, overrides=None):
    """The `Config` of one arm and seed at `scale` (overrides last: e.g. verbose, a smoke run's steps)."""
    from tinyresnet import config as config_lib
    values = {**scale.datasets[ARMS[arm].data], **ARMS[arm].config_values(), "seed": seed,
              **(overrides or {})}
    return config_lib.from_dict(values)


def _check_run_dir(config, folder):
    """Fails before any training if a run directory holds a run of another setting."""
    from tinyresnet import config as config_lib
    config_lib.admit(config, folder,
                     remedy="remove that run directory to train this setting in its place (its run is then lost), "
                            "or pass another --runs-dir")


def run_claims(claim_names, scale, seeds=DEFAULT_SEEDS, runs_root=None, results_root=None, arms=None,
               overrides=None, train_runs=True, readme=None):
    """Trains what the claims need that is not finished, writing each claim's results as its runs end.

    With `train_runs=False`, only writes the results of the runs that are finished.
    With `readme`, also rewrites the claims table in that file.

    Returns:
        `{claim: Verdict}`.
    """
    runs_root = runs_root or os.path.join(HERE, "runs")
    results_root = results_root or os.path.join(HERE, "results")
    todo = plan(claim_names, seeds, arms)
    configs = {(arm, seed): arm_config(arm, scale, seed, overrides) for arm, seed in todo}
    for (arm, seed), config in configs.items():
        _check_run_dir(config, results_lib.run_dir(runs_root, scale.name, arm, seed))

    def finish():
        # With the committed table, every claim: a run may serve several, and the table shows them all.
        verdicts = {name: results_lib.write(name, scale, seeds, runs_root, os.path.join(results_root, name),
                                            command_for(name, scale))
                    for name in (CLAIMS if readme else claim_names)}
        if readme:
            results_lib.write_claims_table(readme, scale, seeds, verdicts, command_for)
        return {name: verdicts[name] for name in claim_names}

    if not train_runs:
        return finish()
    with _runner_lock(os.path.join(runs_root, scale.name)):
        _train(todo, configs, runs_root, scale, finish)
    return finish()


def _train(todo, configs, runs_root, scale, finish):
    from tinyresnet import train

    strategy = None
    for i, ((arm, seed), config) in enumerate(configs.items(), 1):
        folder = results_lib.run_dir(runs_root, scale.name, arm, seed)
        if runs.is_finished(folder):
            print(f"[{i}/{len(todo)}] {arm} seed {seed}: finished, skipped ({folder})", flush=True)
            continue
        resumed = runs.resume_epoch(folder)
        print(f"[{i}/{len(todo)}] {arm} seed {seed}: " + (f"resuming at epoch {resumed}" if resumed else "training")
              + f" in {folder}", flush=True)
        strategy = strategy or train.make_strategy(config)
        start = time.perf_counter()
        try:
            result = train.train_and_evaluate(config, folder, datasets=train.load_datasets(config),
                                              strategy=strategy)
        except train.TrainingDiverged as e:
            print(f"    {arm} seed {seed} diverged ({e}); it stays unfinished and out of the results", flush=True)
            continue
        print(f"    val top-1 {100 * result['val_top1']:.1f}%, train top-1 {100 * result['train_top1']:.1f}%, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        _release_memory()
        finish()  # results to commit as soon as a run ends


class Busy(RuntimeError):
    """Another live runner is training in the same runs folder."""


@contextlib.contextmanager
def _runner_lock(folder):
    """One runner per runs folder: two would train the same run directories at once."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, ".runner.pid")
    try:
        with open(path) as f:
            other = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        other = 0
    if other and other != os.getpid() and runs.process_alive(other):
        raise Busy(f"another experiments runner (pid {other}) is training in {folder}; wait for it or stop it "
                   f"(a stale {path} is taken over once its process is gone)")
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _release_memory():
    # Each run builds a new model; without this, graphs of earlier runs stay in memory.
    import gc
    import keras
    keras.backend.clear_session()
    gc.collect()


def parse_args(argv=None):
    names = ", ".join(CLAIMS)
    parser = argparse.ArgumentParser(
        prog="python -m experiments.run",
        description="Rerun claims of the study: every arm and seed is a tinyresnet run directory; finished runs "
                    "are skipped, interrupted ones resume; results go to experiments/results/<claim>/.",
        epilog="claims: " + "; ".join(f"{c.name} ({c.paper_figure})" for c in CLAIMS.values()))
    parser.add_argument("claims", nargs="+", metavar="CLAIM", help=f"one or more of: {names}, or 'all'")
    parser.add_argument("--scale", default="cpu", choices=("cpu", "paper"),
                        help="cpu: the shared 20-class Tiny ImageNet and CIFAR-10 archives at small widths (what is "
                             "committed); paper: full width, 200 classes, 30 epochs (for a GPU). Default cpu")
    parser.add_argument("--seeds", type=int, default=len(DEFAULT_SEEDS), help="seeds per arm, 0..N-1 (default 2)")
    parser.add_argument("--arms", default="", help="comma-separated arms to run (default: all the claims need)")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the cpu scale's archives (default $TINYRESNET_SHARED_DATA or ../shared/data)")
    parser.add_argument("--runs-dir", default=None, help="run directories (default experiments/runs)")
    parser.add_argument("--results-dir", default=None, help="claims' results (default experiments/results)")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2),
                        help="Keras progress: 1 bars, 2 a line per epoch (default), 0 silent")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the claims' results from the runs that are finished")
    parser.add_argument("--steps-per-epoch", type=int, default=0, help="cap steps per epoch (smoke runs only)")
    args = parser.parse_args(argv)
    claims = list(CLAIMS) if args.claims == ["all"] else args.claims
    unknown = [c for c in claims if c not in CLAIMS]
    if unknown:
        parser.error(f"unknown claim(s) {', '.join(unknown)}; choose from {names}, or 'all'")
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    needed = {arm for c in claims for arm in CLAIMS[c].arms}
    if set(arms) - needed:
        parser.error(f"--arms: {', '.join(sorted(set(arms) - needed))} not in the claims' arms "
                     f"({', '.join(sorted(needed))})")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    return args, claims, arms


def main(argv=None):
    args, claims, arms = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    scale = make_scale(args.scale, args.data_dir)
    if args.steps_per_epoch and not args.results_dir:
        sys.exit("error: --steps-per-epoch makes runs of another setting than the scale's; their results must not "
                 "replace the committed ones: give --results-dir (and --runs-dir) for them")
    for dataset, values in ({} if args.report_only else scale.datasets).items():
        if values.get("data") and not os.path.exists(values["data"]):
            if any(ARMS[a].data == dataset for c in claims for a in CLAIMS[c].arms if not arms or a in arms):
                sys.exit(f"error: {values['data']} not found (the {scale.name} scale's {dataset} archive); "
                         "pass --data-dir or set TINYRESNET_SHARED_DATA")
    overrides = {"verbose": args.verbose}
    if args.steps_per_epoch:
        overrides["steps_per_epoch"] = args.steps_per_epoch
    # The committed table shows the committed (cpu scale, default folders) results only.
    default_folders = not (args.runs_dir or args.results_dir or args.arms or args.steps_per_epoch
                           or args.seeds != len(DEFAULT_SEEDS))
    readme = os.path.join(HERE, "README.md") if args.scale == "cpu" and default_folders else None
    quiet.load_tensorflow()
    from tinyresnet import config as config_lib, train
    try:
        verdicts = run_claims(claims, scale, tuple(range(args.seeds)), args.runs_dir, args.results_dir, arms,
                              overrides, train_runs=not args.report_only, readme=readme)
    except (config_lib.ConfigError, runs.RunDirError, Busy) as e:
        sys.exit(f"error: {e}")
    except train.Interrupted:
        sys.exit("interrupted: finished epochs are kept; run the same command to resume")
    for name, (verdict, why, ours) in verdicts.items():
        print(f"{name}: {verdict} ({why}). Ours: {ours}")


if __name__ == "__main__":
    main()
