"""Rerun the study's claims: `python -m experiments.run CLAIM [CLAIM ...]`.

Every arm and seed trains through `tinyresnet.train.train_and_evaluate` in its
own run directory, `RUNS/<scale>/<arm>/seed_<n>`. A finished run is skipped
and an interrupted one resumes, so an experiment can be stopped (Ctrl-C, a
killed session) and continued by running the same command. After each run,
the claims it belongs to rewrite `experiments/results/<claim>/` (results.csv,
summary.md, curves.png), so results can be committed as arms finish.
"""

import argparse
import os
import sys

from tinyresnet import locks, onednn, processes, runner, runs, startup

from experiments import ladder
from experiments import claim_results
from experiments.claims import ARMS, CLAIMS, SCALES, scale as make_scale

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SEEDS = (0, 1)


def plan(claim_names, seeds, arms=None):
    """The (arm, seed) runs the claims need (or only `arms`), each once, in claim order."""
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


def planned_folders(claim_names, scale, seeds=DEFAULT_SEEDS, runs_root=None, arms=None):
    """The run directories of the runs the claims need (or only `arms`), in plan order."""
    runs_root = runs_root or os.path.join(HERE, "runs")
    return [claim_results.run_dir(runs_root, scale.name, *key) for key in plan(claim_names, seeds, arms or scale.arms)]


def run_claims(claim_names, scale, seeds=DEFAULT_SEEDS, runs_root=None, results_root=None, arms=None,
               overrides=None, train_runs=True, readme=None, shard=(0, 1), log=print, epoch_lines=False):
    """Trains what the claims need that is not finished, writing each claim's results as its runs end.

    Each run is claimed while it trains (`tinyresnet.locks`): runners on
    several machines sharing `runs_root` never train the same run, and the
    claim of a killed runner is taken over. With `shard=(i, n)`, this runner
    takes every n-th run from the i-th; the results are then written once
    every run of the plan is finished, by whichever runner finishes last.

    With `train_runs=False`, only writes the results of the runs that are finished.
    With `readme`, also rewrites the claims table in that file.

    Returns:
        `{claim: Verdict}`.
    """
    runs_root = runs_root or os.path.join(HERE, "runs")
    results_root = results_root or os.path.join(HERE, "results")
    todo = plan(claim_names, seeds, arms or scale.arms)
    configs = {(arm, seed): arm_config(arm, scale, seed, overrides) for arm, seed in todo}
    folders = {key: claim_results.run_dir(runs_root, scale.name, *key) for key in todo}
    for key, config in configs.items():
        _check_run_dir(config, folders[key])

    def finish():
        # One writer at a time: runners of other shards may finish together.
        with locks.claim(os.path.join(runs_root, scale.name, "results"), wait=True):
            # With the committed table, every claim: a run may serve several, and the table shows them all.
            verdicts = {name: claim_results.write(name, scale, seeds, runs_root,
                                                claim_results.claim_dir(results_root, name, scale),
                                                command_for(name, scale))
                        for name in (CLAIMS if readme else claim_names)}
            if readme:
                claim_results.write_claims_table(readme, scale, seeds, verdicts, command_for)
            if scale.name in ladder.SCALES:  # the ladders of the claims written, not of the others
                ladder.write(results_root, [name for name in verdicts if name in ladder.COMPARISONS])
        return {name: verdicts[name] for name in claim_names}

    if not train_runs:
        return finish()
    planned = [runner.Planned(f"{arm} seed {seed}", folders[(arm, seed)], configs[(arm, seed)]) for arm, seed in todo]
    runner.train_runs(planned, log=log, shard=shard, epoch_lines=epoch_lines,
                      after_each=finish if shard[1] == 1 else None)
    left = [key for key in todo if not runner.is_settled(folders[key])]
    if left:
        print(f"{len(left)} of {len(todo)} runs are not finished (other shards); the runner that finishes the last "
              "one writes the results", flush=True)
        return None
    return finish()


def parse_args(argv=None):
    names = ", ".join(CLAIMS)
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m experiments.run",
        description="Rerun claims of the study: every arm and seed is a tinyresnet run directory; finished runs "
                    "are skipped, interrupted ones resume; results go to experiments/results/<claim>/.",
        epilog="claims: " + "; ".join(f"{c.name} ({c.paper_figure})" for c in CLAIMS.values()))
    parser.add_argument("claims", nargs="+", metavar="CLAIM", help=f"one or more of: {names}, or 'all'")
    parser.add_argument("--scale", default="cpu", choices=SCALES,
                        help="cpu: the shared 20-class Tiny ImageNet and CIFAR-10 archives at small widths (what is "
                             "committed); cpu_w025, cpu_w05: the cpu scale's Tiny ImageNet claims at width 0.25 and "
                             "0.5 (results in results/<claim>/<scale>/); cpu_c100: the width-0.25 rung's settings on the 100-class "
                             "archive (arms net1, net1_plain, net6, net1_no_dropout); paper: full width, 200 classes, 30 epochs "
                             "(for a GPU). Default cpu")
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
    parser.add_argument("--distribution", choices=("default", "mirrored"), default=None,
                        help="mirrored: each run trains on every GPU of this machine (tf.distribute.MirroredStrategy, "
                             "the batch split among them); it defines the run, so a run started one way resumes "
                             "the same way (default: the config's, one device)")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs trained side by side on this machine, each with its share of the cores "
                             "(default 1); small nets train more images a second that way. The same command on "
                             "machines sharing --runs-dir shares the runs the same way")
    parser.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)  # a --workers launcher's
    parser.add_argument("--shard", default="0/1", metavar="I/N",
                        help="train every N-th run from the I-th (I = 0..N-1), as one task of a job array on "
                             "machines sharing --runs-dir (e.g. --shard=$SLURM_ARRAY_TASK_ID/4); each run is "
                             "claimed while it trains, and the runner that finishes the last run writes the "
                             "results (default 0/1: all runs)")
    args = parser.parse_args(argv)
    chosen = make_scale(args.scale, "/")  # for its claims only: no data is read here
    claims = [c for c in CLAIMS if chosen.has(CLAIMS[c])] if args.claims == ["all"] else args.claims
    unknown = [c for c in claims if c not in CLAIMS]
    if unknown:
        parser.error(f"unknown claim(s) {', '.join(unknown)}; choose from {names}, or 'all'")
    elsewhere = [c for c in claims if not chosen.has(CLAIMS[c])]
    if elsewhere:
        parser.error(f"{', '.join(elsewhere)}: not at the {args.scale} scale (it has "
                     f"{', '.join(c for c in CLAIMS if chosen.has(CLAIMS[c]))})")
    try:
        index, count = (int(x) for x in args.shard.split("/"))
        assert 0 <= index < count
    except (ValueError, AssertionError):
        parser.error(f"--shard: expected I/N with 0 <= I < N, got {args.shard!r}")
    args.shard = (index, count)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    needed = {arm for c in claims for arm in CLAIMS[c].arms}
    if set(arms) - needed:
        parser.error(f"--arms: {', '.join(sorted(set(arms) - needed))} not in the claims' arms "
                     f"({', '.join(sorted(needed))})")
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if args.workers > 1 and args.report_only:
        parser.error("--workers trains runs side by side; --report-only trains none: give one of them")
    return args, claims, arms


def run_overrides(args):
    """The config values the command line sets in every run: verbose, and distribution and steps where given."""
    overrides = {"verbose": args.verbose}
    if args.distribution:
        overrides["distribution"] = args.distribution
    if args.steps_per_epoch:
        overrides["steps_per_epoch"] = args.steps_per_epoch
    return overrides


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
    overrides = run_overrides(args)
    # The committed table shows the committed (cpu scale, default folders) results only.
    default_folders = not (args.runs_dir or args.results_dir or args.arms or args.steps_per_epoch
                           or args.seeds != len(DEFAULT_SEEDS))
    readme = os.path.join(HERE, "README.md") if args.scale == "cpu" and default_folders else None
    from tinyresnet import config as config_lib
    child = bool(args.parent_pid)
    train_runs = not args.report_only
    if args.workers > 1:
        argv = sys.argv[1:] if argv is None else list(argv)
        code = processes.run_copies([sys.executable, "-m", "experiments.run",
                                     *processes.without_options(argv, ("--workers",))], args.workers, "the experiments")
        if code is not None:
            sys.exit(code)
        train_runs = False  # every run is settled: the verdicts, once
        folders = planned_folders(claims, scale, tuple(range(args.seeds)), args.runs_dir, arms)
        if args.shard[1] > 1 and not all(runner.is_settled(f) for f in folders):
            print("runs of other shards are not finished; the runner that finishes the last one writes the results")
            return
    else:
        onednn.enable_by_default()
        # Ctrl-C and SIGTERM (a Slurm job's end) stop the runner between epochs; remembered, so that one landing in
        # a destructor between two runs is not lost.
        if not processes.stop_as_ctrl_c(args.parent_pid):
            sys.exit(130)  # the launcher is gone already
        startup.load_tensorflow()
    # Workers share one terminal: a line per epoch naming the run, not Keras' lines that name none.
    if child:
        overrides["verbose"] = 0
    try:
        verdicts = run_claims(claims, scale, tuple(range(args.seeds)), args.runs_dir, args.results_dir, arms,
                              overrides, train_runs=train_runs, readme=readme, shard=args.shard,
                              log=runner.line_log(f"[pid {os.getpid()}] " if child else ""), epoch_lines=child)
    except (config_lib.ConfigError, runs.RunDirError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:  # in a run (train.Interrupted) or between two
        if child:
            sys.exit(130)  # the launcher says it once
        sys.exit("interrupted: finished epochs are kept; run the same command to resume")
    if child:
        return
    for name, (verdict, why, ours) in (verdicts or {}).items():
        print(f"{name}: {verdict} ({why}). Ours: {ours}")
    diverged = runner.diverged_runs(planned_folders(claims, scale, tuple(range(args.seeds)), args.runs_dir, arms))
    if diverged:  # a rerun trains them no more: said at every end, as confirm says it
        print(f"error: {runner.diverged_message(diverged)}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
