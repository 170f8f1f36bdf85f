"""`tinyresnet-tune`: search jobs over the notation (on one process, or KerasTuner's chief and workers),
and their `report` and `confirm` subcommands.

    tinyresnet-tune --search=tuning/tiny20.yaml [--data=...] [--oracle=random|bayesian|hyperband]
                    [--max-trials=N] [--max-hours=H] [--project-dir=DIR] [--key=value ...]
    tinyresnet-tune ... --workers=2                          # a chief and 2 workers on this machine
    tinyresnet-tune ... --role=chief --oracle=HOST:PORT      # one process of a multi-machine search
    tinyresnet-tune ... --role=worker --oracle=HOST:PORT --tuner-id=worker3
    tinyresnet-tune report PROJECT_DIR [--out DIR] [--retrain-best EPOCHS] [--export DIR]
    tinyresnet-tune confirm PROJECT_DIR --epochs=E [--top=3] [--seeds=3] [--reference=net1,net6] [--workers=N]

Confirmations that share a project share its runs (`tinyresnet.runner`: each run is trained under its
lock), so `confirm --workers=N` is N of them on this machine, and a cluster is the same command on
machines that share the project folder.
"""

import argparse
import dataclasses
import os
import socket
import subprocess
import sys

from tinyresnet import onednn, options, processes, runner, runs, startup
from tinyresnet.commands import dashed_options, fail as _fail
from tinyresnet.tuning.project import PROJECT_MARKER, admit_search, is_project

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_CHIEF_GONE = 4
EXIT_NO_TRIAL = 3  # no trial finished (they failed or diverged), as a diverged `tinyresnet-train` run exits
EXIT_DIVERGED = 3  # a confirmation run diverged, as tinyresnet-train's
ORACLE_TIMEOUT = 300.0  # seconds a worker waits for the chief (--oracle-timeout)


def _search_parser():
    parser = options.Parser(
        prog="tinyresnet-tune",
        description="Search depth, width and dropout of residual nets written in the paper's notation, with "
                    "KerasTuner (random, Bayesian or Hyperband), resumable and distributed over KerasTuner's "
                    "chief/worker protocol. `tinyresnet-tune report PROJECT_DIR` writes the results again; "
                    "`tinyresnet-tune confirm PROJECT_DIR --epochs=E` retrains the best nets with seeds.",
        epilog="Any config field of the search's base can be overridden as --key=value (e.g. --epochs=2). "
               "Rerun the same command to resume a search: finished trials are kept, an interrupted one "
               "continues from its last epoch.")
    parser.add_argument("--search", required=True, help="search file (YAML): base config, search settings, space")
    parser.add_argument("--data", help="archive or folder (overrides the search file's base)")
    parser.add_argument("--oracle", help="random, bayesian or hyperband; or HOST:PORT of the chief with --role")
    parser.add_argument("--max-trials", type=int, help="trials to run in all, >= 1 (default: the search file's)")
    parser.add_argument("--max-hours", type=float, help="start no new trial after this many hours (> 0)")
    parser.add_argument("--project-dir", help="where the trials and results go (default runs/tune/<search name>)")
    parser.add_argument("--workers", type=int, default=0,
                        help="run a chief and this many worker processes on this machine (KerasTuner's protocol)")
    parser.add_argument("--role", choices=("chief", "worker"), help="one process of a distributed search")
    parser.add_argument("--tuner-id", help="with --role=worker: this worker's id (default worker0); a restarted "
                                           "worker with the same id continues its trial")
    parser.add_argument("--oracle-timeout", type=float,
                        help=f"with --role=worker or --workers: seconds a worker waits for the chief before giving up "
                             f"(default {ORACLE_TIMEOUT:.0f})")
    parser.add_argument("--reference", action="append", default=[],
                        help="nets trained on the same settings at the search's reference width, marked in "
                             "search.png: study arms or presets, comma-separated (net1,net6,net1_no_dropout), or "
                             "one net in the notation with its settings ('(Conv 16) x 2, Avg 2, FC 20; "
                             "block_dropout=0'); repeatable")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch output from the trials")
    parser.add_argument("--trials-in-process", action="store_true",
                        help="train every trial in this process, where memory grows by ~20 MiB per trial. By "
                             "default trials train in a process apart, replaced every 25 trials (a start of "
                             "TensorFlow each time), reading the decoded data from the file cache "
                             "($KERAS_HOME/tinyresnet or the base's cache_dir)")
    parser.add_argument("--oracle-kind", help=argparse.SUPPRESS)  # --workers passes the kind on to its processes
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # --workers: die with the launcher
    return parser


def _report_parser():
    parser = options.Parser(prog="tinyresnet-tune report",
                            description="Write trials.csv, leaderboard.md and search.png of a search.")
    parser.add_argument("project_dir", metavar="PROJECT_DIR")
    parser.add_argument("--out", help="folder for the results (default: the project dir)")
    parser.add_argument("--retrain-best", type=int, metavar="EPOCHS",
                        help="train the best trial's net for EPOCHS as an ordinary run, then export it")
    parser.add_argument("--export", help=f"with --retrain-best: where it exports (default {runs.EXPORT_ROOT}/)")
    return parser


def _confirm_parser():
    parser = options.Parser(
        prog="tinyresnet-tune confirm",
        description="Retrain the best distinct nets of a search and the reference nets with seeds at a longer "
                    "budget, then each of them at the first reference's training FLOPs; writes confirmed.csv "
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


def _address(args):
    value = args.oracle if args.oracle and ":" in args.oracle else None
    if args.role and not value:
        raise ValueError("--role needs --oracle=HOST:PORT, the chief's address")
    if value and not args.role:  # a worker without --role used to start a search of its own
        raise ValueError(f"--oracle={value} is the chief's address: add --role=chief to serve the search there, or "
                         "--role=worker to train for the chief at that address")
    if not value:
        return None
    return options.host_port("--oracle", value)


def _check_port_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As gRPC binds: a restarted chief may take its port while the old one's connections wind down.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ValueError(f"port {port} on {host} is not free ({e.strerror}); choose another --oracle "
                             "HOST:PORT") from None


def _load(args, overrides):
    from tinyresnet import config as config_lib
    from tinyresnet.tuning import space as space_lib
    values = config_lib.parse_overrides(overrides)
    if args.data:
        values["data"] = args.data
    if args.quiet:
        values["verbose"] = 0
    config_lib.override(config_lib.Config(), values)  # a bad --key=value is named as given, not as the file's
    try:
        search = space_lib.load_search(args.search, values)
    except space_lib.SearchError as e:
        raise space_lib.SearchError(f"--search {e}") from None
    config_lib.check_inputs(search.base)  # the data and cache folder, before anything is written
    kind = args.oracle_kind or (args.oracle if args.oracle and ":" not in args.oracle else None)
    if kind:
        if kind not in space_lib.ORACLES:
            raise space_lib.SearchError(f"--oracle: expected one of {', '.join(space_lib.ORACLES)} or HOST:PORT, "
                                        f"got {kind!r}")
        search = dataclasses.replace(search, oracle=kind)
        if search.hyperband_iterations != 1 and kind != "hyperband":
            raise space_lib.SearchError(f"--oracle={kind}: the search file sets search.hyperband_iterations, which "
                                        "only Hyperband takes")
    if search.oracle == "hyperband" and args.max_trials:
        raise space_lib.SearchError("--max-trials does not apply to hyperband: its brackets decide how many trials "
                                    "run (from the base's epochs); use --max-hours to bound the search")
    from tinyresnet.tuning import references as references_lib
    try:  # found now, not after a search of hours
        args.references = references_lib.parse(args.reference)
    except ValueError as e:
        raise space_lib.SearchError(str(e)) from None
    return search


def _project_dir(args):
    name = os.path.splitext(os.path.basename(args.search))[0]
    return args.project_dir or os.path.join("runs", "tune", name)


def _train_references(search, references, datasets, project_dir):
    from tinyresnet import train
    from tinyresnet.tuning import leaderboard
    for reference in references:
        run_dir = os.path.join(project_dir, leaderboard.REFERENCE_DIR, reference.name)
        if not runs.is_finished(run_dir):
            print(f"reference {reference.name}: training on the search's settings", flush=True)
            config = reference.config(dataclasses.replace(search.base, verbose=0),
                                      search.reference_width or search.base.width)
            train.train_and_evaluate(config, run_dir, datasets=datasets)


def _check_options(args):
    """The search's options on their own, before the search file is read (`options.UsageError`)."""
    options.at_least("--max-trials", args.max_trials, 1)
    options.positive("--max-hours", args.max_hours)
    options.positive("--oracle-timeout", args.oracle_timeout)
    options.at_least("--workers", args.workers, 0)
    if args.workers and args.role:
        raise options.UsageError("--workers starts its own chief and workers: give it without --role")
    if args.tuner_id is not None:
        if args.role != "worker":
            raise options.UsageError("--tuner-id names a worker: give it with --role=worker" +
                                     (" (--workers names its own workers worker0, worker1, ...)" if args.workers
                                      else ""))
        options.folder_name("--tuner-id", args.tuner_id)
    # Only a worker waits for the chief; --workers passes the option on to its processes.
    if args.oracle_timeout is not None and args.role != "worker" and not args.workers and not args.parent_pid:
        raise options.UsageError("--oracle-timeout is how long a worker waits for the chief: give it with "
                                 "--role=worker or --workers")
    if args.role == "worker" and not args.parent_pid:  # the chief decides what runs
        given = [name for name, value in (("--max-trials", args.max_trials), ("--max-hours", args.max_hours),
                                          ("--reference", args.reference)) if value]
        if given:
            raise options.UsageError(f"{given[0]}: the chief decides the trials: give it to the chief (--role=chief), "
                                     "not to a worker")
    options.output_folder("--project-dir", args.project_dir)


def search_main(argv):
    parser = _search_parser()
    args, overrides = parser.parse_known_args(dashed_options(parser, argv))
    from tinyresnet.config import ConfigError
    from tinyresnet.tuning.space import SearchError
    try:
        _check_options(args)
        search = _load(args, overrides)
        address = _address(args)
        if args.role == "chief":
            _check_port_free(*address)
    except (ConfigError, SearchError, ValueError) as e:  # options.UsageError too
        return _fail(e)
    args.oracle_timeout = args.oracle_timeout or ORACLE_TIMEOUT
    project_dir = _project_dir(args)
    if runs.is_run(project_dir):
        return _fail(f"{project_dir} is a training run directory, not a search project; choose another --project-dir")
    try:
        admit_search(search, project_dir, record=args.role != "worker")
    except SearchError as e:
        return _fail(e)
    if args.workers:
        code = _run_local_search(args, argv, search)
        if code:  # the chief, on success, has written and shown the results
            _write_results(project_dir)
        return code
    # SIGTERM (a job scheduler, `kill`, or the death of the --workers launcher) stops the search as Ctrl-C
    # does: the running trial saves, and a rerun resumes it.
    if not processes.stop_as_ctrl_c(args.parent_pid):
        return 130  # the launcher is gone already
    if args.role:
        os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"] = address[0], str(address[1])
        os.environ["KERASTUNER_TUNER_ID"] = "chief" if args.role == "chief" else (args.tuner_id or "worker0")
    onednn.enable_by_default()
    startup.load_tensorflow(sklearn=True)  # for the Bayesian oracle
    # Private: KerasTuner waits an hour for a chief that is gone, with no public setting; a worker should say so sooner.
    from keras_tuner.src.distribute import oracle_client
    oracle_client.TIMEOUT = args.oracle_timeout
    import grpc
    from tinyresnet import train
    from tinyresnet.data import DataError
    from tinyresnet.tuning.tuner import SpecTuner, plan_text
    try:
        # The trial process reads the decoded data from the file cache written here.
        datasets = train.load_datasets(dataclasses.replace(search.base, file_cache=search.base.file_cache or not args.trials_in_process))
        tuner = SpecTuner(search, datasets, project_dir, args.max_trials, args.max_hours,
                          log=lambda line: print(line, flush=True), in_process=args.trials_in_process)
        if args.role != "worker":
            print(f"search {search.path}: {search.oracle} oracle, "
                  f"{plan_text(search, tuner.oracle, tuner.max_trials)}, project {project_dir}", flush=True)
        tuner.search(verbose=0)
        if args.role == "chief":
            # KerasTuner's chief saves its oracle before it drops the last ended trial from the
            # ongoing ones; save the final state, or a rerun would hand that trial out again.
            tuner.oracle.save()
        if args.role != "worker" and args.reference:
            _train_references(search, args.references, datasets, project_dir)
    except (ConfigError, SearchError, DataError, ValueError) as e:
        return _fail(e)
    except grpc.RpcError as e:
        where = f"{address[0]}:{address[1]}" if address else "the chief"
        return _fail(f"the chief at {where} did not answer within {args.oracle_timeout:.0f} s "
                     f"({e.code().name}); is it running? Restart this worker with the same --tuner-id once it is",
                     EXIT_CHIEF_GONE)
    except KeyboardInterrupt:
        if not args.parent_pid:  # a --workers launcher says it once for all of them
            print("\ninterrupted; rerun the same command to resume the search", file=sys.stderr)
        return 130
    except RuntimeError as e:
        if "consecutive failures" not in str(e):
            raise
        # KerasTuner stops after 3 failed trials in a row; each one's error is above.
        if args.role != "worker":
            _write_results(project_dir)
        return _fail("the search stopped: 3 trials in a row failed (their errors are above)"
                     + _diverged_hint(project_dir, search.base.precision), EXIT_NO_TRIAL)
    if args.role != "worker":
        table = _write_results(project_dir)
        if len(table) and not (table["status"] == "COMPLETED").any():
            return _fail(f"no trial finished (their errors are above){_diverged_hint(project_dir, search.base.precision)}",
                         EXIT_NO_TRIAL)
    return 0


def _run_local_search(args, argv, search):
    """`--workers N`: a KerasTuner chief and N workers as processes of this machine, over 127.0.0.1 as a
    cluster's would talk (`tinyresnet.processes`: how they share the cores and stop); the worst exit code."""
    port = _free_port()
    kept = processes.without_options(argv, ("--workers", "--oracle"))
    base = [sys.executable, "-m", "tinyresnet.tuning.command", *kept, f"--oracle-kind={search.oracle}",
            f"--parent-pid={os.getpid()}"]  # a killed launcher takes them with it
    chief = subprocess.Popen(base + ["--role=chief", f"--oracle=127.0.0.1:{port}"])
    environ = processes.announced_environment(args.workers)
    workers = [subprocess.Popen(base + ["--role=worker", f"--oracle=127.0.0.1:{port}", f"--tuner-id=worker{i}"],
                                env=environ) for i in range(args.workers)]
    started, culprit = [chief] + workers, []

    def chief_or_worker_failed():
        if chief.poll() not in (None, 0):  # the chief failed: the workers would wait for it in vain
            culprit.append(chief.returncode)
            return ""
        died = [i for i, p in enumerate(workers) if p.poll() not in (None, 0)]
        if died:  # its trial stays its own: the chief would wait for it for ever
            culprit.append(workers[died[0]].returncode)
            how = processes.how_it_ended(culprit[0])
            return f"error: worker{died[0]} {how}; stopping the search: rerun the same command to resume it"
        return None
    code, interrupted = processes.supervise(started, chief_or_worker_failed, "the search")
    if culprit and not interrupted:  # the one that failed says how, not the 130 of those stopped after it
        return 128 - culprit[0] if culprit[0] < 0 else culprit[0]
    return code


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _diverged_hint(project_dir, precision):
    """What to change when trials diverged: a project keeps its base settings, so a new project."""
    from tinyresnet.tuning import leaderboard
    table = leaderboard.trials_table(project_dir)
    if "message" not in table or not table["message"].fillna("").str.startswith("diverged").any():
        return ""
    change = "lower base.learning_rate in the search file"
    # float32 only where a trial did not run in it (`auto` is float32 on a CPU without bfloat16).
    policies = {(runs.read_json(os.path.join(project_dir, f"trial_{t}", runs.CONFIG)) or {}).get("precision")
                for t in table["trial"]}
    if precision != "float32" and policies - {"float32"}:
        change += " (or set base.precision: float32 there)"
    return f"; trials diverged: {change} and run it with another --project-dir (a project keeps its base settings)"


def _write_results(project_dir):
    from tinyresnet.tuning import leaderboard
    table = leaderboard.write(project_dir)
    best = leaderboard.best_trial(table)
    if len(table):  # the final table: the ten best trials, and the references trained beside them
        print("\n" + leaderboard.markdown(table.head(10), leaderboard.references(project_dir)))
    print(f"results: {project_dir}/trials.csv, leaderboard.md, search.png ({len(table)} trials)")
    if best is not None:
        print(f"best: trial {best['trial']}  val top-1 {best['val_top1']:.3f}  {best['spec']}")
    return table


def report_main(argv):
    args = _report_parser().parse_args(argv)
    if not is_project(args.project_dir):
        return _fail(f"{args.project_dir}: not a search project (no {PROJECT_MARKER}); give the --project-dir "
                     "of a tinyresnet-tune search")
    if args.retrain_best is not None and args.retrain_best < 1:
        return _fail(f"--retrain-best: epochs must be >= 1, got {args.retrain_best}")
    if args.export is not None and args.retrain_best is None:
        return _fail("--export is where --retrain-best exports: give it with --retrain-best")
    try:  # before anything is written
        options.output_folder("--out", args.out)
        if args.retrain_best is not None:
            options.output_folder("--export", args.export or runs.EXPORT_ROOT)
    except options.UsageError as e:
        return _fail(e)
    args.export = args.export or runs.EXPORT_ROOT
    from tinyresnet.tuning import leaderboard
    table = leaderboard.write(args.project_dir, args.out)
    out = args.out or args.project_dir
    print(leaderboard.markdown(table.head(10), leaderboard.references(args.project_dir)))
    from tinyresnet.tuning import confirm, verdicts
    confirmed = confirm.table(args.project_dir)
    if confirmed is not None:
        print(verdicts.markdown(confirmed, confirm.waiting(args.project_dir, confirmed)))
    print(f"written: {out}/trials.csv, leaderboard.md, search.png" + (f", {confirm.CONFIRMED}" if confirmed is not None
                                                                      else ""))
    if args.retrain_best is not None:
        return _retrain_best(args, table)
    return 0


def _retrain_best(args, table):
    onednn.enable_by_default()
    startup.load_tensorflow()
    from tinyresnet import config as config_lib
    from tinyresnet import export, train
    from tinyresnet.commands import run_training
    from tinyresnet.tuning import leaderboard
    best = leaderboard.best_trial(table)
    if best is None:
        return _fail(f"{args.project_dir}: no finished trial to retrain")
    trial_dir = os.path.join(args.project_dir, f"trial_{best['trial']}")
    config = config_lib.from_dict(runs.read_json(os.path.join(trial_dir, runs.CONFIG)))
    config = config_lib.override(config, {"epochs": args.retrain_best, "verbose": 2})
    run_dir = os.path.join(args.project_dir, f"best-trial_{best['trial']}-{args.retrain_best}epochs")
    name = f"{os.path.basename(os.path.abspath(args.project_dir))}-best"
    print(f"retraining trial {best['trial']} for {runner.count(args.retrain_best, 'epoch')}: {best['spec']}",
          flush=True)
    def work():
        export.check_name(name)
        return train.train_and_evaluate(config, run_dir), export.export_run(run_dir, args.export, name=name)
    done, code = run_training(work, errors=(export.ExportError,))
    if code is not None:
        return code
    results, path = done
    print(f"run directory: {run_dir}  val top-1 {results['val_top1']:.3f}\nexported: {path}")
    return 0


def confirm_main(argv):
    parser = _confirm_parser()
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
        command = [sys.executable, "-m", "tinyresnet.tuning.command", "confirm",
                   *processes.without_options(argv, ("--workers",))]
        code = processes.run_copies(command, args.workers, "the confirmation")
    else:
        code = _confirm(args, references)
    if args.parent_pid:
        return code or 0
    return _confirm_report(args.project_dir, code)


def _confirm(args, references):
    """This process's share of the runs (every run, as far as no other confirmation holds it): an exit
    code, or None once every run is finished or diverged."""
    from tinyresnet.commands import run_training
    from tinyresnet.tuning import confirm
    from tinyresnet.tuning import leaderboard
    child = bool(args.parent_pid)
    # SIGTERM (a job scheduler, `kill`, the death of the --workers launcher) stops it as Ctrl-C does: the run
    # saves its last epoch, and a rerun resumes it. Remembered, so that one landing in a destructor between
    # two runs still stops it.
    if not processes.stop_as_ctrl_c(args.parent_pid):
        return 130  # the launcher is gone already
    log = runner.line_log(f"[pid {os.getpid()}] " if child else "")
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


def _confirm_report(project_dir, code):
    """Writes and shows what finished, even when a later run failed or was interrupted; the exit code."""
    from tinyresnet import locks
    from tinyresnet.tuning import confirm, leaderboard, verdicts
    if confirm.table(project_dir) is not None:
        # One writer at a time: confirmations on other machines may finish together.
        with locks.claim(os.path.join(project_dir, confirm.CONFIRM_DIR, "results"), wait=True):
            confirmed = confirm.table(project_dir)
            leaderboard.write(project_dir)
        if code is None:
            print(verdicts.markdown(confirmed, confirm.waiting(project_dir, confirmed)))
        print(f"written: {project_dir}/{confirm.CONFIRMED}, leaderboard.md")
    diverged = confirm.diverged_runs(project_dir)
    if code is None and diverged:
        return _fail(runner.diverged_message(diverged), EXIT_DIVERGED)
    return code or 0


def main(argv=None):
    """`tinyresnet-tune [search options]`, `tinyresnet-tune report ...` or `tinyresnet-tune confirm ...`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    subcommands = {"report": report_main, "confirm": confirm_main}
    if argv[:1] and argv[0] in subcommands:
        return subcommands[argv[0]](argv[1:])
    return search_main(argv)


if __name__ == "__main__":
    sys.exit(main())
