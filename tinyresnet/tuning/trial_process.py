"""One trial in a process of its own: what `SpecTuner` runs for each trial by default.

TensorFlow keeps every traced training step of a process alive (its graphs are
held from C++: `keras.backend.clear_session()`, `gc.collect()`, removing the
functions from the eager context and resetting the context all leave them),
about 15-25 MiB per trial; a search of hundreds of trials in one process runs
out of memory (keras-tuner #395, #873, #1031). A trial's process ends with the
trial, and all of that with it. It costs a start of Python and TensorFlow per
trial (`experiments/tune_memory.py` measures both).

    python -m tinyresnet.tuning.trial_process REQUEST_JSON

REQUEST_JSON: {"config": {...}, "trial_dir", "trial_id", "tuner_id", "hyperparameters", "progress"}.
Exit codes as `tinyresnet-train`'s: 0 done, 2 bad input, 3 diverged, 130 interrupted.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys

EXIT_INTERRUPTED = 130


def _die_with_parent():
    # Linux: the trial gets SIGTERM when the tuner that started it dies (a `kill -9` of a worker
    # must not leave its trial training on as an orphan).
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass


def run(request):
    """Runs the trial of `request` in a new process; returns its exit code (output goes to this screen)."""
    command = [sys.executable, "-m", "tinyresnet.tuning.trial_process", json.dumps(request)]
    process = subprocess.Popen(command, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    try:
        return process.wait()
    except KeyboardInterrupt:  # Ctrl-C reaches the trial too (same process group): let it save and stop
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        raise


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    request = json.loads(argv[0])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tinyresnet import onednn, quiet
    onednn.enable_by_default()
    quiet.load_tensorflow()
    from tinyresnet import config as config_lib
    from tinyresnet import spec as spec_lib
    from tinyresnet import train
    from tinyresnet.cli import run_training
    from tinyresnet.tuning import hparams
    from tinyresnet.tuning.tuner import TrialProgress
    config = config_lib.from_dict(request["config"])
    log = lambda line: print(line, flush=True)  # noqa: E731
    progress = [TrialProgress(request["trial_id"], request["tuner_id"], config.epochs, log)] \
        if request["progress"] else []

    def work():
        results = train.train_and_evaluate(config, request["trial_dir"], callbacks=progress)
        hparams.write(request["trial_dir"], request["trial_id"],
                      {**request["hyperparameters"], "net": spec_lib.format_spec(config.net)}, results)
    _, code = run_training(work)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
