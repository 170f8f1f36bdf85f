"""`tinyresnet-tune`: search jobs over the notation, on one process or KerasTuner's chief and workers.

    tinyresnet-tune --search=tuning/tiny20.yaml [--data=...] [--oracle=random|bayesian|hyperband]
                    [--max-trials=N] [--max-hours=H] [--project-dir=DIR] [--key=value ...]
    tinyresnet-tune ... --workers=2                          # a chief and 2 workers on this machine
    tinyresnet-tune ... --role=chief --oracle=HOST:PORT      # one process of a multi-machine search
    tinyresnet-tune ... --role=worker --oracle=HOST:PORT --tuner-id=worker3
    tinyresnet-tune report PROJECT_DIR [--out DIR] [--retrain-best EPOCHS] [--export DIR]
    tinyresnet-tune confirm PROJECT_DIR --epochs=E [--top=3] [--seeds=3] [--reference=net1,net6]
"""

import argparse
import dataclasses
import json
import os
import signal
import socket
import sys
import time

from tinyresnet import onednn, options, startup, runs
from tinyresnet.commands import fail as _fail, raise_interrupt
from tinyresnet.tuning import local_cluster, trial_process
from tinyresnet.tuning.project import PROJECT_MARKER, SEARCH_DEFINITION, is_project  # noqa: F401  (also the API)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_CHIEF_GONE = 4
EXIT_NO_TRIAL = 3  # no trial finished (they failed or diverged), as a diverged `tinyresnet-train` run exits
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
                             "default trials train in a process apart, replaced once it has grown by 512 MiB (a "
                             "start of TensorFlow every ~25 trials), reading the decoded data from the file cache "
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


def _admit_search(search, project_dir, record=True):
    """Records the search's definition in a new project (unless not `record`: a worker); refuses to resume
    one of another definition. The data are compared by content: the same archive by another path (another
    checkout, a relative --data) is the same search."""
    from tinyresnet import fingerprint
    from tinyresnet import config as config_lib
    from tinyresnet.tuning import space as space_lib
    path = os.path.join(project_dir, SEARCH_DEFINITION)
    now = json.loads(json.dumps(space_lib.definition(search)))  # tuples as lists, as read back
    now["data_fingerprint"] = fingerprint.data_fingerprint(search.base.data)
    saved = runs.read_json(path)
    if saved is not None:
        saved = {"hyperband_iterations": 1, **saved}  # a project from before the key existed
        before = saved.get("base", {}).get("data")
        if fingerprint.same_data(before, search.base.data, saved.get("data_fingerprint")):
            now["base"]["data"] = before
        now["data_fingerprint"] = saved.get("data_fingerprint")  # compared through base.data
        if isinstance(saved.get("base"), dict):  # by today's run-defining keys (augment_on became an execution key)
            saved["base"] = json.loads(json.dumps(config_lib.run_defining(saved["base"])))
    if saved is None:
        if is_project(project_dir) or not record:
            return  # a project of an older version, or a worker's before its chief: nothing to compare with
        os.makedirs(project_dir, exist_ok=True)
        runs.write_json(path, now)
        runs.write_json(os.path.join(project_dir, space_lib.STARTED), {"time": time.time()})
        return
    changes = space_lib.definition_changes(saved, now)
    if changes:
        raise space_lib.SearchError(
            f"{project_dir} holds a search of another definition ({'; '.join(changes)}); KerasTuner would resume "
            "the old one. Give another --project-dir for the new search, or undo the change to resume")


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
    from tinyresnet.commands import dashed_options
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
        _admit_search(search, project_dir, record=args.role != "worker")
    except SearchError as e:
        return _fail(e)
    if args.workers:
        code = local_cluster.run(args, argv, search)
        if code:  # the chief, on success, has written and shown the results
            _write_results(project_dir)
        return code
    # SIGTERM (a job scheduler, `kill`, or the death of the --workers launcher) stops the search as Ctrl-C
    # does: the running trial saves, and a rerun resumes it.
    signal.signal(signal.SIGTERM, raise_interrupt)
    if args.parent_pid:
        # The launcher stops its chief and workers with SIGINT, which a shell ignores for a background
        # job's processes: Python then never turns it into KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not trial_process.die_with_parent(args.parent_pid):
            return 130  # the launcher is gone already
    if args.role:
        os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"] = address[0], str(address[1])
        os.environ["KERASTUNER_TUNER_ID"] = "chief" if args.role == "chief" else (args.tuner_id or "worker0")
    onednn.enable_by_default()
    startup.load_tensorflow()
    from keras_tuner.src.distribute import oracle_client
    # KerasTuner waits an hour for a chief that is gone; a worker should say so much sooner.
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
    from tinyresnet.tuning import confirm
    confirmed = confirm.table(args.project_dir)
    if confirmed is not None:
        print(confirm.markdown(confirmed, confirm.waiting(args.project_dir, confirmed)))
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
    from tinyresnet.tuning import confirm
    from tinyresnet.tuning import leaderboard
    best = leaderboard.best_trial(table)
    if best is None:
        return _fail(f"{args.project_dir}: no finished trial to retrain")
    trial_dir = os.path.join(args.project_dir, f"trial_{best['trial']}")
    config = config_lib.from_dict(runs.read_json(os.path.join(trial_dir, runs.CONFIG)))
    config = config_lib.override(config, {"epochs": args.retrain_best, "verbose": 2})
    run_dir = os.path.join(args.project_dir, f"best-trial_{best['trial']}-{args.retrain_best}epochs")
    name = f"{os.path.basename(os.path.abspath(args.project_dir))}-best"
    print(f"retraining trial {best['trial']} for {confirm._count(args.retrain_best, 'epoch')}: {best['spec']}",
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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    if argv[:1] == ["confirm"]:
        from tinyresnet.tuning import confirm_command
        return confirm_command.main(argv[1:])
    return search_main(argv)


if __name__ == "__main__":
    sys.exit(main())
