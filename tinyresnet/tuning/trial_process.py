"""Trials in a process apart from the tuner's: what `SpecTuner` runs them in by default.

TensorFlow keeps every traced training step of a process alive (its graphs are
held from C++: `keras.backend.clear_session()`, `gc.collect()`, removing the
functions from the eager context and resetting the context all leave them),
about 15-25 MiB per trial; a search of hundreds of trials in one process runs
out of memory (keras-tuner #395, #873, #1031). So trials train in a process
of their own, which trains the next ones too until it has grown by
`recycle_mib` since its first trial, then ends, and all of that with it. A
start of Python and TensorFlow (about 7 s here) is paid once per recycling
instead of once per trial (`experiments/tune_memory.py` measures both).

    python -m tinyresnet.tuning.trial_process TUNER_PID RECYCLE_MIB REPLY_FD

Requests come one JSON line at a time on stdin: {"config": {...}, "trial_dir",
"trial_id", "tuner_id", "hyperparameters", "progress"}. Each gets a JSON line on
REPLY_FD: {"code": exit code as `tinyresnet-train`'s (0 done, 2 bad input,
3 diverged, 130 interrupted), "recycle": whether this process ends now}.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys

EXIT_INTERRUPTED = 130
EXIT_DIVERGED = 3
RECYCLE_MIB = 512  # ~25 trials of ~20 MiB each: a restart costs ~0.3 s a trial, memory stays bounded


def die_with_parent(parent):
    """Linux: SIGTERM when the process `parent` that started this one dies (a `kill -9` of a worker must
    not leave its trial training on as an orphan). False if it is gone already."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (AttributeError, OSError):
            pass
    return os.getppid() == parent  # it may have died before prctl


def _rss_mib():
    """This process's resident memory (Linux), or None where /proc is not there."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return None


class TrialProcess:
    """The tuner's side: sends trials to a process of their own, started (again) when needed.

    Args:
        recycle_mib: the process ends after the trial that grows it by more than this since its first
            trial (0: a new process for every trial; where memory cannot be read, every 10 trials).
        grace: seconds a trial gets to save after a Ctrl-C before it is killed.
    """

    def __init__(self, recycle_mib=RECYCLE_MIB, grace=60):
        self.recycle_mib, self.grace = recycle_mib, grace
        self.process = self._replies = None
        self.pid = None  # of the process that ran the last trial
        self.message = ""  # why the last trial failed, in a few words, when its process says

    def run(self, request):
        """Trains the trial of `request`; returns its exit code (its output goes to this screen).

        The process has a session of its own, so a Ctrl-C reaches the trial only from here, once (a
        second one stops training without saving): on KeyboardInterrupt it is asked to stop, given
        `grace` seconds to save, then killed, and the KeyboardInterrupt goes on.
        """
        if self.process is not None and self.process.poll() is not None:
            self._end()  # it died between trials (out of memory, say): the trial gets a new one
        if self.process is None:
            self._start()
        self.pid = self.process.pid
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply = self._replies.readline()
        except BrokenPipeError:
            reply = ""
        except KeyboardInterrupt:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(self.grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self._end()
            raise
        if not reply:  # it died: its exit code (negative for a signal) says how
            self.message = ""
            return self._end()
        reply = json.loads(reply)
        self.message = reply.get("message", "")
        if reply["recycle"]:
            self._end()
        return reply["code"]

    def close(self):
        """Ends the process (it is waiting for a trial, so it just exits)."""
        if self.process is not None:
            self._end()

    def _start(self):
        read, write = os.pipe()
        command = [sys.executable, "-m", "tinyresnet.tuning.trial_process", str(os.getpid()),
                   str(self.recycle_mib), str(write)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, text=True, pass_fds=(write,),
                                        start_new_session=True)
        os.close(write)
        self._replies = os.fdopen(read)

    def _end(self):
        """Closes its stdin (an idle process then exits), waits for it; returns its exit code."""
        try:
            self.process.stdin.close()
        except BrokenPipeError:  # it died with a request unread
            pass
        code = self.process.wait()
        self._replies.close()
        self.process = self._replies = None
        return code


_INTERRUPTED = []  # set by this process's SIGINT handler; fit has its own while it trains


def _on_sigint(signum, frame):
    _INTERRUPTED.append(signum)
    raise KeyboardInterrupt


def serve(requests, replies, recycle_mib):
    """The trial process's loop: trains each request of `requests` (lines), answers on `replies`.
    Returns the exit code of the last trial."""
    from tinyresnet import config as config_lib
    from tinyresnet.commands import run_training
    from tinyresnet.train import TrainingDiverged
    from tinyresnet.tuning.trial import train_trial
    import keras
    first_rss, served, code = None, 0, 0
    for line in requests:
        request = json.loads(line)
        config = config_lib.from_dict(request["config"])
        keras.backend.clear_session()

        diverged = []

        def work():
            try:
                train_trial(config, request["trial_dir"], request["trial_id"], request["tuner_id"],
                            request["hyperparameters"], request["progress"], lambda text: print(text, flush=True))
            except TrainingDiverged as e:  # the tuner says it, in a line of its own; no training advice
                diverged.append(f"diverged ({e})")
        _INTERRUPTED.clear()
        try:
            _, code = run_training(work)
        except Exception:
            # A Ctrl-C while TensorFlow builds the pipeline or traces comes out of its C++ as another error.
            if not _INTERRUPTED:
                raise
            print("\ninterrupted before the trial's first epoch ended; rerun the same command to resume",
                  file=sys.stderr, flush=True)
            code = EXIT_INTERRUPTED
        code = code or (EXIT_DIVERGED if diverged else 0)
        served += 1
        rss = _rss_mib()
        first_rss = rss if first_rss is None else first_rss
        grown = (rss - first_rss > recycle_mib) if rss is not None else served >= 10
        recycle = code != 0 or recycle_mib == 0 or grown
        replies.write(json.dumps({"code": code, "recycle": recycle, "message": diverged[0] if diverged else ""})
                      + "\n")
        replies.flush()
        if recycle:
            break
    return code


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parent, recycle_mib, reply_fd = int(argv[0]), float(argv[1]), int(argv[2])
    if not die_with_parent(parent):
        return 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Keras imports scikit-learn, where it is installed (keras-tuner[bayesian] installs it), for
    # wrappers a trial never uses: about 3 of the 8 s that loading TensorFlow took here.
    sys.modules.setdefault("sklearn", None)
    from tinyresnet import onednn, startup
    onednn.enable_by_default()
    startup.load_tensorflow()
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        with os.fdopen(reply_fd, "w") as replies:
            return serve(sys.stdin, replies, recycle_mib)
    except KeyboardInterrupt:  # a Ctrl-C that came between two trials
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
