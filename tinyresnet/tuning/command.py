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

from tinyresnet import onednn, quiet, runs
from tinyresnet.tuning import local_cluster, trial_process

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_CHIEF_GONE = 4
PROJECT_MARKER = "oracle.json"  # KerasTuner's saved oracle: what makes a folder a search project
SEARCH_DEFINITION = "search.json"  # what the project's trials depend on (space, budget, base, oracle)


def _fail(message, code=2):
    print(f"error: {message}", file=sys.stderr)
    return code


def _search_parser():
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
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
    parser.add_argument("--max-trials", type=int, help="trials to run in all (default: the search file's)")
    parser.add_argument("--max-hours", type=float, help="start no new trial after this many hours")
    parser.add_argument("--project-dir", help="where the trials and results go (default runs/tune/<search name>)")
    parser.add_argument("--workers", type=int, default=0,
                        help="run a chief and this many worker processes on this machine (KerasTuner's protocol)")
    parser.add_argument("--role", choices=("chief", "worker"), help="one process of a distributed search")
    parser.add_argument("--tuner-id", help="this worker's id (default worker0); a restarted worker with the same "
                                           "id continues its trial")
    parser.add_argument("--oracle-timeout", type=float, default=300.0,
                        help="seconds a worker waits for the chief before giving up (default 300)")
    parser.add_argument("--reference", default="",
                        help="comma-separated presets (e.g. net1,net6) trained on the same settings, marked in "
                             "search.png")
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
    parser = argparse.ArgumentParser(prog="tinyresnet-tune report", allow_abbrev=False,
                                     description="Write trials.csv, leaderboard.md and search.png of a search.")
    parser.add_argument("project_dir", metavar="PROJECT_DIR")
    parser.add_argument("--out", help="folder for the results (default: the project dir)")
    parser.add_argument("--retrain-best", type=int, metavar="EPOCHS",
                        help="train the best trial's net for EPOCHS as an ordinary run, then export it")
    parser.add_argument("--export", default=runs.EXPORT_ROOT,
                        help=f"where --retrain-best exports (default {runs.EXPORT_ROOT}/)")
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
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"--oracle: expected HOST:PORT, got {value!r}")
    return host, int(port)


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
    search = space_lib.load_search(args.search, values)
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
    from tinyresnet.spec import PRESETS
    unknown = [name for name in args.reference.split(",") if name and name not in PRESETS]
    if unknown:  # found now, not after a search of hours
        raise space_lib.SearchError(f"--reference: {', '.join(unknown)} not a preset; choose from "
                                    f"{', '.join(PRESETS)}")
    return search


def _project_dir(args):
    name = os.path.splitext(os.path.basename(args.search))[0]
    return args.project_dir or os.path.join("runs", "tune", name)


def _admit_search(search, project_dir):
    """Records the search's definition in a new project; refuses to resume one of another definition."""
    from tinyresnet import config as config_lib
    from tinyresnet.tuning import space as space_lib
    path = os.path.join(project_dir, SEARCH_DEFINITION)
    now = json.loads(json.dumps(space_lib.definition(search)))  # tuples as lists, as read back
    saved = runs.read_json(path)
    if saved is not None:
        saved = {"hyperband_iterations": 1, **saved}  # a project from before the key existed
        if isinstance(saved.get("base"), dict):  # by today's run-defining keys (augment_on became an execution key)
            saved["base"] = json.loads(json.dumps(config_lib.run_defining(saved["base"])))
    if saved is None:
        if is_project(project_dir):
            return  # a project of an older version: nothing to compare with
        os.makedirs(project_dir, exist_ok=True)
        runs.write_json(path, now)
        runs.write_json(os.path.join(project_dir, space_lib.STARTED), {"time": time.time()})
        return
    changes = space_lib.definition_changes(saved, now)
    if changes:
        raise space_lib.SearchError(
            f"{project_dir} holds a search of another definition ({'; '.join(changes)}); KerasTuner would resume "
            "the old one. Give another --project-dir for the new search, or undo the change to resume")


def _train_references(search, names, datasets, project_dir, precision):
    from tinyresnet import train
    from tinyresnet import spec as spec_lib
    from tinyresnet.tuning import results as results_lib
    for name in names:
        if name not in spec_lib.PRESETS:
            raise ValueError(f"--reference: {name!r} is not a preset")
        run_dir = os.path.join(project_dir, results_lib.REFERENCE_DIR, name)
        if not runs.is_finished(run_dir):
            print(f"reference {name}: training on the search's settings", flush=True)
            config = dataclasses.replace(search.base, net=name, verbose=0, precision=precision,
                                         width=search.reference_width or search.base.width)
            train.train_and_evaluate(config, run_dir, datasets=datasets)


def search_main(argv):
    from tinyresnet.cli import dashed_options
    parser = _search_parser()
    args, overrides = parser.parse_known_args(dashed_options(parser, argv))
    from tinyresnet.config import ConfigError
    from tinyresnet.tuning.space import SearchError
    try:
        search = _load(args, overrides)
        address = _address(args)
        if args.workers < 0:
            raise ValueError("--workers must be >= 0")
        if args.workers and args.role:
            raise ValueError("--workers starts its own chief and workers: give it without --role")
        if args.role == "chief":
            _check_port_free(*address)
    except (ConfigError, SearchError, ValueError) as e:
        return _fail(e)
    project_dir = _project_dir(args)
    if runs.is_run(project_dir):
        return _fail(f"{project_dir} is a training run directory, not a search project; choose another --project-dir")
    if args.role != "worker":
        try:
            _admit_search(search, project_dir)
        except SearchError as e:
            return _fail(e)
    if args.workers:
        code = local_cluster.run(args, argv, search)
        if code:  # the chief, on success, has written and shown the results
            _write_results(project_dir)
        return code
    # SIGTERM (a job scheduler, `kill`, or the death of the --workers launcher) stops the search as Ctrl-C
    # does: the running trial saves, and a rerun resumes it.
    signal.signal(signal.SIGTERM, _interrupt)
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
    quiet.load_tensorflow()
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
            _train_references(search, [n for n in args.reference.split(",") if n], datasets, project_dir,
                              tuner.search_precision())
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
        return _fail("the search stopped: 3 trials in a row failed (their errors are above)", 3)
    if args.role != "worker":
        _write_results(project_dir)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _write_results(project_dir):
    from tinyresnet.tuning import results as results_lib
    table = results_lib.write(project_dir)
    best = results_lib.best_trial(table)
    if len(table):  # the final table: the ten best trials, and the references trained beside them
        print("\n" + results_lib.leaderboard(table.head(10), results_lib.references(project_dir)))
    print(f"results: {project_dir}/trials.csv, leaderboard.md, search.png ({len(table)} trials)")
    if best is not None:
        print(f"best: trial {best['trial']}  val top-1 {best['val_top1']:.3f}  {best['spec']}")


def is_project(folder):
    """Whether `folder` is a search project: KerasTuner's oracle state is there."""
    return os.path.isfile(os.path.join(folder, PROJECT_MARKER))


def report_main(argv):
    args = _report_parser().parse_args(argv)
    from tinyresnet.tuning import results as results_lib
    if not is_project(args.project_dir):
        return _fail(f"{args.project_dir}: not a search project (no {PROJECT_MARKER}); give the --project-dir "
                     "of a tinyresnet-tune search")
    if args.out and os.path.exists(args.out) and not os.path.isdir(args.out):
        return _fail(f"--out {args.out}: exists and is not a folder")
    if args.retrain_best is not None and args.retrain_best < 1:
        return _fail(f"--retrain-best: epochs must be >= 1, got {args.retrain_best}")
    table = results_lib.write(args.project_dir, args.out)
    out = args.out or args.project_dir
    print(results_lib.leaderboard(table.head(10), results_lib.references(args.project_dir)))
    from tinyresnet.tuning import confirm
    confirmed = confirm.table(args.project_dir)
    if confirmed is not None:
        print(confirm.markdown(confirmed))
    print(f"written: {out}/trials.csv, leaderboard.md, search.png" + (f", {confirm.CONFIRMED}" if confirmed is not None
                                                                      else ""))
    if args.retrain_best is not None:
        return _retrain_best(args, table)
    return 0


def _retrain_best(args, table):
    onednn.enable_by_default()
    quiet.load_tensorflow()
    from tinyresnet import config as config_lib
    from tinyresnet import export, train
    from tinyresnet.cli import run_training
    from tinyresnet.tuning import results as results_lib
    best = results_lib.best_trial(table)
    if best is None:
        return _fail(f"{args.project_dir}: no finished trial to retrain")
    trial_dir = os.path.join(args.project_dir, f"trial_{best['trial']}")
    config = config_lib.from_dict(runs.read_json(os.path.join(trial_dir, runs.CONFIG)))
    config = config_lib.override(config, {"epochs": args.retrain_best, "verbose": 2})
    run_dir = os.path.join(args.project_dir, f"best-trial_{best['trial']}-{args.retrain_best}epochs")
    name = f"{os.path.basename(os.path.abspath(args.project_dir))}-best"
    print(f"retraining trial {best['trial']} for {args.retrain_best} epochs: {best['spec']}", flush=True)
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
