"""What every console script shares, below them all (`cli` and `tuning.command` import it, never
each other): one error line, how training's outcomes end a command, and option spelling."""

import sys

from tinyresnet import runs


def fail(message, code=2):
    """Prints `error: message` on stderr; returns the exit code."""
    print(f"error: {message}", file=sys.stderr)
    return code


_SIGNALLED = []  # the signals `raise_interrupt` took, in this process


def raise_interrupt(signum, frame):
    """A signal handler: SIGINT, or SIGTERM (a scheduler, `kill`, a launcher's death), stops a command as
    Ctrl-C does, and is remembered: Python drops a KeyboardInterrupt raised inside a destructor
    (TensorFlow's, between two runs), so `check_interrupted` raises it again where it is safe."""
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def check_interrupted():
    """Raises KeyboardInterrupt if `raise_interrupt` took a signal (one a destructor may have swallowed)."""
    if _SIGNALLED:
        raise KeyboardInterrupt


def was_interrupted():
    return bool(_SIGNALLED)


def forget_interrupts():
    """A process that goes on after an interrupted task (a pool's trial process) starts the next one afresh."""
    _SIGNALLED.clear()


def run_training(work, errors=(), interrupted_hint=True):
    """Runs `work()` (training, then whatever follows) the way every command reports it.

    `interrupted_hint=False`: Ctrl-C returns 130 unsaid (a launcher of several says it once).

    Returns:
        `(result, None)`, or `(None, exit code)` once the reason is printed: 2 for bad input
        (a config, spec, data or run directory error, or one of `errors`), 3 when training
        diverged, 130 on Ctrl-C (finished epochs are kept).
    """
    from tinyresnet import config as config_lib
    from tinyresnet import spec as spec_lib
    from tinyresnet import train
    from tinyresnet.data import DataError
    try:
        return work(), None
    except (config_lib.ConfigError, spec_lib.SpecError, DataError, runs.RunDirError, *errors) as e:
        return None, fail(e)
    except train.TrainingDiverged as e:
        return None, fail(f"training diverged: {e}" + (f"; {e.remedy}" if e.remedy else ""), code=3)
    except train.Interrupted as e:
        if interrupted_hint:
            print(f"\n{e}", file=sys.stderr)
        return None, 130


def dashed_options(parser, argv):
    """`argv` with the parser's own options also taken in underscore spelling (`--run_dir` as `--run-dir`),
    as config keys are: `-` and `_` are the same in every key a command takes."""
    known = {option for action in parser._actions for option in action.option_strings}
    out = []
    for arg in argv:
        name, sep, value = arg.partition("=")
        if name.startswith("--") and name not in known and name.replace("_", "-") in known:
            arg = name.replace("_", "-") + sep + value
        out.append(arg)
    return out
