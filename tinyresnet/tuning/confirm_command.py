"""`tinyresnet-tune confirm`: the command line of the confirmation (`tinyresnet.tuning.confirm`).

    tinyresnet-tune confirm PROJECT_DIR --epochs=E [--top=3] [--seeds=3] [--reference=net1,net6] [--workers=N]

Confirmations that share a project share its runs (each run is claimed while it trains), so
`--workers=N` is N of them on this machine, each with its share of the cores, and a cluster is
the same command on machines that share the project folder.
"""

import argparse
import os
import signal
import subprocess
import sys

from tinyresnet import onednn, options, startup
from tinyresnet.tuning import local_cluster, trial_process
from tinyresnet.commands import fail as _fail, raise_interrupt as _interrupt
from tinyresnet.tuning.project import PROJECT_MARKER, is_project

EXIT_DIVERGED = 3  # as tinyresnet-train's


def _parser():
    parser = options.Parser(
        prog="tinyresnet-tune confirm",
        description="Retrain the best distinct nets of a search and the reference nets with seeds at a longer "
                    "budget, then the best of them at the first reference's training FLOPs; writes confirmed.csv "
                    "and a confirmed section in leaderboard.md with a verdict per reference.",
        epilog="Runs go to PROJECT_DIR/confirm/<net>/e<EPOCHS>-seed<S>/ (ordinary run directories). Rerun the "
               "same command to resume: finished runs are kept, a killed one continues from its last epoch; more "
               "--top or --seeds adds runs. Confirmations of one project on several machines (sharing the "
               "folder) share its runs: each run is trained by one of them.")
    parser.add_argument("project_dir", metavar="PROJECT_DIR")
    parser.add_argument("--epochs", type=int, required=True, help="epochs of every run (the longer budget)")
    parser.add_argument("--steps-per-epoch", type=int, default=0,
                        help="steps of each of those epochs (default 0: whole epochs, whatever the search's "
                             "trials took)")
    parser.add_argument("--top", type=int, default=3, help="how many of the best distinct nets (default 3)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per net, 0..N-1 (default 3)")
    parser.add_argument("--reference", action="append",
                        help="the nets to beat, at the search's reference width: study arms or presets, comma-"
                             "separated (net1,net6,net1_no_dropout), or one net in the notation with its settings "
                             "('(Conv 16) x 2, Avg 2, FC 20; block_dropout=0'); repeatable (default net1,net6). "
                             "The first one sets the equal-FLOPs budget")
    parser.add_argument("--workers", type=int, default=1,
                        help="runs trained side by side on this machine, each with its share of the cores "
                             "(default 1); small nets train more images a second that way")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch output")
    parser.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)  # a --workers launcher's
    return parser


def main(argv):
    from tinyresnet.commands import dashed_options
    parser = _parser()
    argv = dashed_options(parser, argv)
    args = parser.parse_args(argv)
    from tinyresnet.tuning import references as references_lib
    try:
        references = references_lib.parse(args.reference or ["net1,net6"])
    except ValueError as e:
        return _fail(e)
    if not references:
        return _fail("--reference: no net given")
    if not is_project(args.project_dir):
        return _fail(f"{args.project_dir}: not a search project (no {PROJECT_MARKER}); give the project folder of a "
                     "tinyresnet-tune search (its --project-dir)")
    for name, value in (("--epochs", args.epochs), ("--top", args.top), ("--seeds", args.seeds),
                        ("--workers", args.workers)):
        if value < 1:
            return _fail(f"{name} must be >= 1, got {value}")
    if args.steps_per_epoch < 0:
        return _fail(f"--steps-per-epoch must be >= 0, got {args.steps_per_epoch}")
    from tinyresnet.tuning import confirm
    try:  # other settings than the project's are refused before the data are loaded
        confirm.check_settings(args.project_dir, args.epochs, [r.name for r in references], args.steps_per_epoch,
                               record=False)
    except confirm.ConfirmError as e:
        return _fail(e)
    if args.workers > 1:
        code = _run_workers(args, argv)
    else:
        code = _confirm(args, references)
    if args.parent_pid:
        return code or 0
    return _report(args.project_dir, code)


def _confirm(args, references):
    """This process's share of the runs (every run, as far as no other confirmation holds it): an exit
    code, or None once every run is finished or diverged."""
    from tinyresnet.commands import run_training
    from tinyresnet.tuning import confirm
    from tinyresnet.tuning import leaderboard
    child = bool(args.parent_pid)
    # SIGTERM (a job scheduler, `kill`, the death of the --workers launcher) stops it as Ctrl-C does:
    # the run saves its last epoch, and a rerun resumes it.
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C as SIGTERM: remembered, so that one landing in a destructor between two runs still stops it.
    # (The launcher stops its workers with SIGINT, which a shell ignores for a background job's processes:
    # without a handler of ours Python never turns it into KeyboardInterrupt.)
    signal.signal(signal.SIGINT, _interrupt)
    if child:
        if not trial_process.die_with_parent(args.parent_pid):
            return 130  # the launcher is gone already
    prefix = f"[pid {os.getpid()}] " if child else ""

    def log(line):  # one write: workers share the terminal, and unbuffered print writes the newline apart
        sys.stdout.write(f"{prefix}{line}\n")
        sys.stdout.flush()
    try:
        onednn.enable_by_default()
        startup.load_tensorflow()
        trials = leaderboard.trials_table(args.project_dir)
        # Workers share one terminal: a line per epoch naming the run, not Keras' lines that name none.
        _, code = run_training(lambda: confirm.run(args.project_dir, trials, args.top, args.seeds, args.epochs,
                                                   references, verbose=0 if args.quiet or child else 2, log=log,
                                                   steps_per_epoch=args.steps_per_epoch,
                                                   epoch_lines=child and not args.quiet),
                               errors=(confirm.ConfirmError,), interrupted_hint=not child)
        return code
    except KeyboardInterrupt:  # while waiting for a run another one holds, or loading
        if not child:
            print("\ninterrupted; rerun the same command to resume the confirmation", file=sys.stderr)
        return 130


def _run_workers(args, argv):
    """`--workers N`: N confirmations of this project as processes of this machine.

    Each goes through every run, training those no other one holds and waiting for the others, so one
    that ends with 0 means the whole confirmation is done, whatever became of the rest.
    """
    environ = local_cluster.worker_environment(args.workers)
    print(f"{args.workers} workers, each training with {environ['TF_NUM_INTRAOP_THREADS']} intra-op thread(s)",
          flush=True)
    command = [sys.executable, "-m", "tinyresnet.tuning.command", "confirm",
               *local_cluster.without_options(argv, ("--workers",)), f"--parent-pid={os.getpid()}"]
    processes = [subprocess.Popen(command, env=environ) for _ in range(args.workers)]
    # A worker that dies leaves its run to the others (its claim goes with it): nothing to stop early.
    if local_cluster.supervise(processes, what="the confirmation")[1]:
        return 130
    done = any(p.returncode == 0 for p in processes)
    interrupted = {130, -signal.SIGINT, -signal.SIGTERM}
    if not done and all(p.returncode in interrupted for p in processes):  # a Ctrl-C that reached them, not us
        print("\ninterrupted; rerun the same command to resume the confirmation", file=sys.stderr)
        return 130
    for p in processes:
        if p.returncode:
            how = "was interrupted" if p.returncode == 130 else local_cluster.how_it_ended(p.returncode)
            print(f"worker pid {p.pid} {how}" + ("; the other workers trained its runs" if done else ""),
                  file=sys.stderr, flush=True)
    if done:
        return None
    return max(128 - p.returncode if p.returncode < 0 else p.returncode for p in processes)


def _report(project_dir, code):
    """Writes and shows what finished, even when a later run failed or was interrupted; the exit code."""
    from tinyresnet import locks
    from tinyresnet.tuning import confirm
    from tinyresnet.tuning import leaderboard
    if confirm.table(project_dir) is not None:
        # One writer at a time: confirmations on other machines may finish together.
        with locks.claim(os.path.join(project_dir, confirm.CONFIRM_DIR, "results"), wait=True):
            confirmed = confirm.table(project_dir)
            leaderboard.write(project_dir)
        if code is None:
            print(confirm.markdown(confirmed, confirm.waiting(project_dir, confirmed)))
        print(f"written: {project_dir}/{confirm.CONFIRMED}, leaderboard.md")
    diverged = confirm.diverged_runs(project_dir)
    if code is None and diverged:
        return _fail(f"{confirm._count(len(diverged), 'run')} diverged and stay{'s' if len(diverged) == 1 else ''} out of the results: "
                     f"{', '.join(diverged)} (each one's {confirm.DIVERGED} says where; delete it to train the run "
                     "again)", EXIT_DIVERGED)
    return code or 0
