"""The run directory: its file names, atomic writes, reading a run back, and who may delete it.

A run directory holds everything a run leaves::

    .tinyresnet-run  config.json  spec.txt  summary.txt  class_names.json
    history.csv  tensorboard/  backup/  checkpoints/{best,last,interrupted}.keras
    model.keras  results.json  curves.png

`train`, `report`, `export`, the CLI, the tuner and the experiments read and
write it through this module only. It imports no TensorFlow.
"""

import csv
import json
import os
import shutil
import threading
from typing import Any, Dict, List, Optional

MARKER = ".tinyresnet-run"
CONFIG = "config.json"
SPEC = "spec.txt"
SUMMARY = "summary.txt"
CLASS_NAMES = "class_names.json"
HISTORY = "history.csv"
RESULTS = "results.json"
CURVES = "curves.png"
MODEL = "model.keras"
BACKUP = "backup"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
BEST = os.path.join(CHECKPOINTS, "best.keras")
LAST = os.path.join(CHECKPOINTS, "last.keras")
INTERRUPTED = os.path.join(CHECKPOINTS, "interrupted.keras")
BACKUP_STATE = os.path.join(BACKUP, "state.json")
EXPORT_ROOT = "exported_models"  # where exports go unless told (tinyresnet-export, tinyresnet-train --export)

# Everything a run writes; removing a run removes these (and their leftover
# `<name>.tmp-<pid>-<thread>` files from a killed write) and nothing else.
OWNED = (MARKER, CONFIG, SPEC, SUMMARY, CLASS_NAMES, HISTORY, RESULTS, CURVES, MODEL,
         BACKUP, CHECKPOINTS, TENSORBOARD)

HISTORY_COLUMNS = ("epoch", "loss", "top1", "top5", "val_loss", "val_top1", "val_top5",
                   "lr", "seconds", "train_seconds", "images", "first_step_seconds")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (another config, or not a run at all)."""


def process_alive(pid) -> bool:
    """Whether process `pid` runs: a lock or work folder whose owner is gone may be taken over."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _temporary_name(path) -> str:
    # Per process and thread: the chief's oracle saves from its gRPC server's threads.
    return f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"


def write_json(path, value) -> None:
    """Writes JSON atomically: a temporary file beside `path`, then a rename."""
    tmp = _temporary_name(path)
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def write_text(path, text) -> None:
    tmp = _temporary_name(path)
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_csv(path, rows, columns) -> None:
    """Writes dict rows as CSV atomically; keys outside `columns` are left out."""
    tmp = _temporary_name(path)
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_json(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def read_history(path) -> List[Dict[str, Any]]:
    """Rows of a `history.csv` (a file or a run directory) as dicts of floats, epoch as int; [] if absent."""
    if os.path.isdir(path):
        path = os.path.join(path, HISTORY)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""} for row in rows]


def write_history(path, rows) -> None:
    write_csv(path, rows, HISTORY_COLUMNS)


def is_run(path) -> bool:
    """True for a folder that tinyresnet made: it holds the package's marker file.

    A `config.json` alone is not enough: any project may have one. A run written
    before the marker existed (tinyresnet < 0.2) is not recognised; `touch
    RUN/.tinyresnet-run` makes it one again.
    """
    return os.path.isfile(os.path.join(path, MARKER))


def is_finished(path) -> bool:
    return os.path.isfile(os.path.join(path, RESULTS))


def find_run_dir(path) -> Optional[str]:
    """The run directory a file or folder belongs to (itself, or a parent such as that of
    `RUN/checkpoints/best.keras`); None if there is none."""
    path = os.path.abspath(path)
    for candidate in (path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
        if os.path.isdir(candidate) and is_run(candidate):
            return candidate
    return None


def resume_epoch(workdir) -> int:
    """The epoch a rerun in `workdir` starts at: that of its backup, 0 if none."""
    state = read_json(os.path.join(workdir, BACKUP_STATE), {})
    return int(state.get("epoch", 0))


def _differences(previous: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    return sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))


def check(workdir, config_values: Dict[str, Any], run_defining, overwrite=False, remedy=None) -> bool:
    """Checks that `workdir` can hold a run of `config_values`; writes nothing.

    Args:
        workdir: the run directory.
        config_values: the new run's config as a dict.
        run_defining: maps a config dict to the keys that define a run's result
            (normalising older key names).
        overwrite: a run of another config may be removed.
        remedy: what the error for a run of another config tells the user to
            do, in the words of the calling command (None: tinyresnet-train's).

    Returns:
        True if the existing run there must be removed before starting.

    Raises:
        RunDirError: `workdir` holds a run of another config and not
            `overwrite`, or `overwrite` is asked of a folder that is not a run.
    """
    if not os.path.isdir(workdir):
        if os.path.exists(workdir):
            raise RunDirError(f"{workdir} exists and is not a folder")
        return False
    if not is_run(workdir):
        clashes = sorted(set(os.listdir(workdir)) & set(OWNED))
        if (overwrite and os.listdir(workdir)) or clashes:
            held = f" and holds {', '.join(clashes)}, which a run would write over" if clashes else ""
            raise RunDirError(
                f"{workdir} is not a tinyresnet run directory (no {MARKER} file){held}; tinyresnet only ever "
                f"removes or replaces files of its own run directories, so nothing was deleted. "
                f"{remedy or 'Choose another --run-dir'} (a run written by tinyresnet before 0.2 has no marker: "
                f"`touch {workdir}/{MARKER}` makes it a run again)")
        return False
    previous = read_json(os.path.join(workdir, CONFIG), None)
    if previous is None:  # a marker without config: a run that never started
        return False
    before, now = run_defining(previous), run_defining(config_values)
    differ = _differences(before, now)
    if not differ:
        return False
    if overwrite:
        return True
    details = ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in differ)
    remedy = remedy or "pass --overwrite to start it afresh, or choose another --run-dir"
    raise RunDirError(f"{workdir} holds a run of a different config ({details}); {remedy}")


def remove_run(workdir) -> None:
    """Removes what a run wrote in `workdir` (and the folder, if nothing else is left).

    Refuses a folder that is not a run; files that are not a run's are kept.
    """
    if not is_run(workdir):
        raise RunDirError(f"{workdir} is not a tinyresnet run directory; refusing to delete it")
    leftovers = [n for n in os.listdir(workdir) if n.startswith(tuple(f"{o}.tmp" for o in OWNED))]
    for name in list(OWNED) + leftovers:
        path = os.path.join(workdir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
    if not os.listdir(workdir):
        os.rmdir(workdir)


def start(workdir, config_values: Dict[str, Any]) -> None:
    """Makes `workdir` a run directory of `config_values`: marker and config.json."""
    os.makedirs(workdir, exist_ok=True)
    if not os.path.exists(os.path.join(workdir, MARKER)):  # first, so that all that follows is a run's
        write_json(os.path.join(workdir, MARKER), {"kind": "tinyresnet run directory"})
    os.makedirs(os.path.join(workdir, CHECKPOINTS), exist_ok=True)
    write_json(os.path.join(workdir, CONFIG), config_values)


def load(run_dir) -> Dict[str, Any]:
    """What a finished run directory holds: results, history, config and class names.

    Raises:
        FileNotFoundError: naming what is missing.
    """
    results = read_json(os.path.join(run_dir, RESULTS))
    if results is None:
        raise FileNotFoundError(f"{run_dir}: no {RESULTS} (has the run finished?)")
    return {"results": results, "history": read_history(run_dir),
            "config": read_json(os.path.join(run_dir, CONFIG), {}),
            "class_names": read_json(os.path.join(run_dir, CLASS_NAMES))}
