"""One trial in a process of its own: what `SpecTuner` runs for each trial by default.

TensorFlow keeps every traced training step of a process alive (its graphs are
held from C++: `keras.backend.clear_session()`, `gc.collect()`, removing the
functions from the eager context and resetting the context all leave them),
about 15-25 MiB per trial; a search of hundreds of trials in one process runs
out of memory (keras-tuner #395, #873, #1031). A trial's process ends with the
trial, and all of that with it. It costs a start of Python and TensorFlow per
trial (`experiments/tune_memory.py` measures both).

    python -m tinyresnet.tuning.trial_process REQUEST_JSON

REQUEST_JSON: {"config": {...}, "trial_dir", "trial_id", "tuner_id", "hyperparameters", "progress",
"parent" (the tuner's pid)}.
Exit codes as `tinyresnet-train`'s: 0 done, 2 bad input, 3 diverged, 130 interrupted.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys

EXIT_INTERRUPTED = 130


def _die_with_parent(parent):
    """Linux: SIGTERM when the tuner that started this trial dies (a `kill -9` of a worker must not
    leave its trial training on as an orphan). False if it is gone already."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (AttributeError, OSError):
            pass
    return os.getppid() == parent  # it may have died before prctl


def run(request, grace=60):
    """Runs the trial of `request` in a new process; returns its exit code (output goes to this screen).

    The trial has a session of its own, so a Ctrl-C reaches it only from here, once (a second one
    stops training without saving): on KeyboardInterrupt it is asked to stop, given `grace` seconds
    to save, then killed, and the KeyboardInterrupt goes on.
    """
    command = [sys.executable, "-m", "tinyresnet.tuning.trial_process", json.dumps({**request, "parent": os.getpid()})]
    process = subprocess.Popen(command, start_new_session=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    request = json.loads(argv[0])
    if not _die_with_parent(request["parent"]):
        return 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Keras imports scikit-learn, where it is installed (keras-tuner[bayesian] installs it), for
    # wrappers a trial never uses: about 3 of the 8 s that loading TensorFlow took here.
    sys.modules.setdefault("sklearn", None)
    from tinyresnet import onednn, quiet
    onednn.enable_by_default()
    quiet.load_tensorflow()
    from tinyresnet import config as config_lib
    from tinyresnet.cli import run_training
    from tinyresnet.tuning.tuner import train_trial
    config = config_lib.from_dict(request["config"])

    def work():
        train_trial(config, request["trial_dir"], request["trial_id"], request["tuner_id"], request["hyperparameters"],
                    request["progress"], lambda line: print(line, flush=True))
    _, code = run_training(work)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
