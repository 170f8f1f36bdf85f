"""Runs x seeds: trains a planned list of runs, each once, across processes and machines sharing the folder.

`python -m experiments.run` (the study's arms x seeds) and `tinyresnet-tune confirm` (searched nets
and references x seeds) both hand their plan to `train_runs`. Each run is an ordinary run directory:

- a finished run is skipped, an interrupted one resumes after its last finished epoch;
- a run is trained under its lock (`tinyresnet.locks`), so runners sharing the folder (`--workers`,
  several machines, a Slurm array's `--shard=I/N`) never train the same run; one another runner holds
  is waited for at the end, and trained here if its holder stopped before finishing it;
- a run that diverges is marked once (`diverged.txt`) and left out of the results; the others go on.
"""

import dataclasses
import os
import sys
import time
from typing import Callable, List, Optional, Sequence

from tinyresnet import locks, runs

DIVERGED = "diverged.txt"  # in a run directory whose training diverged: it stays out of the results


@dataclasses.dataclass(frozen=True)
class Planned:
    label: str  # how log lines name it: "net1 seed 0"
    folder: str  # its run directory
    config: object  # its `Config`
    note: str = ""  # said when it starts: "(equal FLOPs)"


def is_diverged(folder):
    return os.path.isfile(os.path.join(folder, DIVERGED)) and not runs.is_finished(folder)


def is_settled(folder):
    """Finished, or diverged: nothing left to train."""
    return runs.is_finished(folder) or os.path.isfile(os.path.join(folder, DIVERGED))


def diverged_runs(folders: Sequence[str]) -> List[str]:
    return [folder for folder in folders if is_diverged(folder)]


def diverged_message(diverged: Sequence[str]) -> str:
    """What a command says at its end of the runs `diverged` left out: a rerun trains them no more."""
    return (f"{count(len(diverged), 'run')} diverged and stay{'s' if len(diverged) == 1 else ''} out of the results: "
            f"{', '.join(diverged)} (each one's {DIVERGED} says where; delete it to train the run again)")


def count(n, what):
    return f"{n} {what}" + ("" if n == 1 else "s")


def train_runs(planned: Sequence[Planned], log=print, verbose=None, after_each: Optional[Callable] = None,
               epoch_lines=False, shard=(0, 1), root=None):
    """Trains the unsettled runs of `planned` (this runner's shard of them) under their locks.

    Args:
        log: where the runner's lines go (one write per line: workers share a terminal).
        verbose: Keras' progress output of each run (None: its config's).
        after_each: called after each run this runner finished (results to commit as soon as a run ends).
        epoch_lines: a line per epoch through `log`, naming the run (for workers sharing one terminal).
        shard: `(i, n)`: every n-th run of the plan from the i-th.
        root: log lines name run directories relative to it (None: as planned).

    Returns:
        The number of runs this runner trained to the end.
    """
    from tinyresnet.commands import check_interrupted
    index, of = shard
    mine = [p for i, p in enumerate(planned) if i % of == index]
    left = [p for p in mine if not is_settled(p.folder)]
    diverged = len(diverged_runs([p.folder for p in mine]))
    log(f"{count(len(mine), 'run')}, {len(mine) - len(left) - diverged} finished already"
        + (f", {diverged} diverged" if diverged else ""))
    held, trained = [], 0
    for i, p in enumerate(left, start=1):
        check_interrupted()  # a Ctrl-C that a destructor swallowed after the last run
        head = f"[{i}/{len(left)}] {p.label}"
        try:
            trained += _train_one(p, head, log, verbose, epoch_lines, after_each, root)
        except locks.Claimed as e:
            log(f"{head}: skipped, {e}")
            held.append((head, p))
    for head, p in held:
        check_interrupted()
        log(f"{head}: waiting for its holder, to train it here if that one stops before the end")
        trained += _train_one(p, head, log, verbose, epoch_lines, after_each, root, wait=True)
    return trained


def _train_one(p: Planned, head, log, verbose, epoch_lines, after_each, root, wait=False):
    from tinyresnet import train
    with locks.claim(p.folder, wait=wait):
        if is_settled(p.folder):  # by another runner, while this one trained or waited
            log(f"{head}: {'finished' if runs.is_finished(p.folder) else 'diverged'} in another runner")
            return 0
        resumed = runs.resume_epoch(p.folder)
        shown = os.path.relpath(p.folder, root) if root else p.folder
        log(f"{head}{f', {p.note}' if p.note else ''}{' (taken over)' if wait else ''}: "
            f"{f'resuming after epoch {resumed}' if resumed else 'training'} in {shown}")
        config = p.config if verbose is None else dataclasses.replace(p.config, verbose=verbose)
        start = time.perf_counter()
        strategy = _strategy(config)  # before the run's first TensorFlow op
        try:
            results = train.train_and_evaluate(config, p.folder, datasets=train.load_datasets(config),
                                               strategy=strategy,
                                               callbacks=_epoch_lines(head, config.epochs, log, epoch_lines))
        except train.TrainingDiverged as e:
            # Not the training command's advice (--learning_rate, --overwrite): a runner takes neither.
            runs.write_text(os.path.join(p.folder, DIVERGED), f"{e}.\nThis run stays out of the results; delete "
                            "this file to train it again from its last good epoch.\n")
            log(f"{head}: diverged ({e}); it stays unfinished and out of the results: delete "
                f"{os.path.join(p.folder, DIVERGED)} to train it again")
            return 0
    log(f"{head}: val top-1 {100 * results['val_top1']:.1f} %, train top-1 {100 * results['train_top1']:.1f} %, "
        f"{time.perf_counter() - start:.0f} s")
    _release_memory()
    if after_each:
        after_each()
    return 1


_STRATEGIES = {}


def _strategy(config):
    # One per kind for the process: a MirroredStrategy is made once, before the first run's TensorFlow ops.
    from tinyresnet import train
    if config.distribution not in _STRATEGIES:
        _STRATEGIES[config.distribution] = train.make_strategy(config)
    return _STRATEGIES[config.distribution]


def _release_memory():
    # Each run builds a new model; without this, graphs of earlier runs stay in memory.
    import gc
    import keras
    keras.backend.clear_session()
    gc.collect()


def _epoch_lines(head, epochs, log, wanted):
    if not wanted:
        return ()
    import keras
    started = {}
    return (keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: started.update(at=time.perf_counter()),
        on_epoch_end=lambda epoch, logs=None: log(
            f"{head} epoch {epoch + 1}/{epochs}: val top-1 {(logs or {}).get('val_top1', float('nan')):.3f}, "
            f"{time.perf_counter() - started.get('at', time.perf_counter()):.0f} s")),)


def line_log(prefix=""):
    """A log of whole lines, each one write (unbuffered print writes the newline apart: workers sharing a
    terminal would cut each other's lines)."""
    def log(line):
        sys.stdout.write(f"{prefix}{line}\n")
        sys.stdout.flush()
    return log
