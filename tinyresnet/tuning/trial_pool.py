"""Trials in a process apart from the tuner's: what `SpecTuner` runs them in by default.

TensorFlow keeps every traced training step of a process alive (its graphs are
held from C++: `keras.backend.clear_session()`, `gc.collect()`, removing the
functions from the eager context and resetting the context all leave them),
about 15-25 MiB per trial; a search of hundreds of trials in one process runs
out of memory (keras-tuner #395, #873, #1031). So trials train in a
`concurrent.futures.ProcessPoolExecutor` of one process, which Python replaces
after `trials_per_process` trials (`max_tasks_per_child`), and all of that with
it. A start of Python and TensorFlow (about 7 s here) is paid once per
replacement instead of once per trial (`experiments/tune_memory.py`).

This module imports no TensorFlow: the pool's process loads it in its
initializer, with TensorFlow's start-up noise filtered as a command's.
"""

import concurrent.futures
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

EXIT_INTERRUPTED = 130
EXIT_DIVERGED = 3
TRIALS_PER_PROCESS = 25  # ~20 MiB each: a process stays within ~0.5 GiB of its start, a start costs ~0.3 s a trial


class Outcome(NamedTuple):
    code: int  # as `tinyresnet-train`'s: 0 done, 2 bad input, 3 diverged, 130 interrupted; -N killed by signal N
    message: str  # why it failed, in a few words ("diverged (loss became nan ...)"), or ""
    pid: int  # of the process that ran it


def _start(tuner_pid):
    """The pool process's initializer."""
    # A session of its own: a Ctrl-C reaches the trial once, from the tuner (a second would stop it unsaved).
    os.setsid()
    from tinyresnet import onednn, processes, startup
    from tinyresnet.commands import raise_interrupt
    if not processes.die_with_parent(tuner_pid):
        # Its tuner died before it could ask to die with it (kill -9 as the pool started): no trial will come, and
        # its call queue never ends (it holds that pipe's other end), so it would wait for ever.
        os._exit(EXIT_INTERRUPTED)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    onednn.enable_by_default()
    try:
        startup.load_tensorflow()
    except SystemExit as e:  # a Ctrl-C while it loads (said there): end here, not in the pool's traceback
        sys.stderr.flush()
        os._exit(e.code if isinstance(e.code, int) else EXIT_INTERRUPTED)
    signal.signal(signal.SIGINT, raise_interrupt)


def train_one(request) -> Outcome:
    """Trains the trial of `request` in this process: {"config", "trial_dir", "trial_id", "tuner_id",
    "hyperparameters", "progress"}."""
    import keras
    from tinyresnet import config as config_lib
    from tinyresnet.commands import forget_interrupts, run_training, was_interrupted
    from tinyresnet.train import TrainingDiverged
    from tinyresnet.tuning.trial import train_trial
    config = config_lib.from_dict(request["config"])
    keras.backend.clear_session()
    diverged = []

    def work():
        try:
            train_trial(config, request["trial_dir"], request["trial_id"], request["tuner_id"],
                        request["hyperparameters"], request["progress"], lambda text: print(text, flush=True))
        except TrainingDiverged as e:  # the tuner says it, in a line of its own; no training advice
            diverged.append(f"diverged ({e})")
    forget_interrupts()
    interrupted = False
    try:
        _, code = run_training(work)
    except Exception:
        # A Ctrl-C while TensorFlow builds the pipeline or traces comes out of its C++ as another error.
        if not was_interrupted():
            raise
        interrupted = True
    except KeyboardInterrupt:  # between the trial's set-up steps
        interrupted = True
    if interrupted:
        print("\ninterrupted before the trial's first epoch ended; rerun the same command to resume",
              file=sys.stderr, flush=True)
        code = EXIT_INTERRUPTED
    sys.stdout.flush()
    return Outcome(code or (EXIT_DIVERGED if diverged else 0), diverged[0] if diverged else "", os.getpid())


class TrialPool:
    """The tuner's side: a pool of one process, started when first needed and again after it breaks.

    Args:
        trials_per_process: trials a process trains before Python replaces it (1: a new one per trial).
        grace: seconds a trial gets to save after a Ctrl-C before its process is killed.
    """

    def __init__(self, trials_per_process=TRIALS_PER_PROCESS, grace=60):
        self.trials_per_process, self.grace = trials_per_process, grace
        self._pool = None

    def run(self, request) -> Outcome:
        """Trains the trial of `request` in the pool's process; its output goes to this screen."""
        try:
            future = self._start_pool().submit(train_one, request)
        except BrokenProcessPool:  # broken since `_start_pool` looked: a new one
            self.close()
            future = self._start_pool().submit(train_one, request)
        try:
            return future.result()
        except BrokenProcessPool:  # its process died (the OOM killer, say): its exit code says how
            # The pool terminates its other processes (SIGTERM) once one dies; a trial process ended by SIGTERM
            # from outside is the one that died when no other did.
            ended = [p for p in self._processes() if p.exitcode not in (None, 0)]
            died = [p for p in ended if p.exitcode != -signal.SIGTERM] or ended
            self.close()
            return Outcome(died[0].exitcode if died else -signal.SIGKILL, "", died[0].pid if died else 0)
        except KeyboardInterrupt:
            # Its process has a session of its own: ask it to stop, as Ctrl-C asks a run, then wait for it to save.
            # It answers and stays in the pool, idle: wait for its answer, not for its end (a whole `grace`).
            for process in self._processes():
                if process.is_alive() and not future.done():  # an idle one would die of it, with a traceback
                    os.kill(process.pid, signal.SIGINT)
            concurrent.futures.wait([future], timeout=self.grace)
            if not future.done():
                for process in self._processes():
                    if process.is_alive():
                        process.kill()
            self.close()
            raise

    def _start_pool(self):
        if self._pool is not None and any(p.exitcode not in (None, 0) for p in self._processes()):
            self.close()  # its idle process died between trials (out of memory, say): the next trial gets a new one
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_start,
                                             initargs=(os.getpid(),), max_tasks_per_child=self.trials_per_process)
        return self._pool

    def _processes(self):
        # Private: a ProcessPoolExecutor has no public way to reach the process it started (to signal it, or to
        # read how it died).
        return list(self._pool._processes.values())

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
