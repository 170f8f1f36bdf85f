"""Keep TensorFlow's native start-up lines off a CPU-only user's first screen.

On a machine without CUDA, `import tensorflow` and its first device listing
write lines such as `cudart_stub.cc:31] Could not find cuda drivers` and
`E0000 ... failed call to cuInit` straight to file descriptor 2, before
absl logging is set up, so `TF_CPP_MIN_LOG_LEVEL` cannot hide them. The
console scripts load TensorFlow through `load_tensorflow()`, which on a
machine without an NVIDIA driver drops exactly those lines and passes
everything else through. Where a driver is present nothing is dropped: the
same files then report a real problem (a missing CUDA library, a driver
version mismatch) that the user must see.
"""

import contextlib
import glob
import os
import re
import sys
import tempfile

# Start-up lines that say only "no GPU here", repeat absl's set-up notice, or say that oneDNN is on
# (tinyresnet.onednn turns it on on purpose; README, Performance, says so).
NOISE = re.compile(rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                   rb"|[IWE]\d{4} [\d:. ]+\d+ (cudart_stub\.cc|cuda_platform\.cc|cuda_executor\.cc|"
                   rb"cuda_diagnostics\.cc|cuda_fft\.cc|cuda_dnn\.cc|cuda_blas\.cc|gpu_device\.cc).*"
                   rb"|.*Unable to register cu(DNN|FFT|BLAS) factory.*"
                   rb"|[IWE]\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on.*"
                   rb"|.*computation placer already registered.*"
                   rb"|.*TF-TRT Warning: Could not find TensorRT.*)\r?\n?$")


# What libjpeg writes to stderr itself when TensorFlow decodes a corrupt or truncated JPEG, although
# TensorFlow reports the failure (or recovers) as it should: "Improper call to JPEG library in state 201"
# for a JPEG cut short in its header.
DECODER_NOISE = re.compile(rb"^(Improper call to JPEG library in state \d+|Corrupt JPEG data: .*"
                           rb"|Premature end of JPEG file|Invalid JPEG file structure: .*|Not a JPEG file: .*"
                           rb"|Bogus [A-Za-z ]+ .*|Unsupported JPEG process: .*)\r?\n?$")


@contextlib.contextmanager
def native_noise_filtered(noise=NOISE):
    """Within the block, file descriptor 2 goes to a temporary file; afterwards every line that
    does not match `noise` (start-up noise by default) is written to stderr, in order."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured if not noise.match(line)]
            if kept:
                sys.stderr.buffer.write(b"".join(kept))
                sys.stderr.flush()


_LOADED = False

# Libraries that TensorFlow and Keras import at start-up for features no command uses (SciPy sparse and
# pandas inputs to `fit`, Keras' plotting utilities), each import guarded by `except ImportError`: 1.4 of
# the 5 s that `import tensorflow, keras` takes here. They are left out while those two load and may be
# imported again afterwards (tinyresnet imports pandas and matplotlib itself, where it needs them).
DEFERRED = ("scipy", "pandas", "matplotlib")


def has_nvidia_driver():
    return os.path.exists("/proc/driver/nvidia") or bool(glob.glob("/dev/nvidia[0-9]*"))


def load_tensorflow(sklearn=False):
    """Imports TensorFlow and lists its devices (where CUDA start-up is tried), minus the noise.

    Ctrl-C during the import (a few seconds) exits with 130, as Ctrl-C does later.

    Args:
        sklearn: leave scikit-learn importable after the load (keras-tuner[bayesian] installs it; its
            Bayesian oracle needs it). Otherwise `import sklearn` raises ImportError in this process:
            Keras imports it for wrappers no command uses, about 1 of the 6.5 s TensorFlow takes to load
            here.

    Keras' own plotting utilities (`keras.visualization`) and its wrappers of scikit-learn do not work in
    a process that loaded TensorFlow here (`DEFERRED`); the package uses neither.
    """
    global _LOADED
    if sklearn and "sklearn" in sys.modules and sys.modules["sklearn"] is None:
        del sys.modules["sklearn"]  # left out by an earlier load in this process (a script, a notebook)
    if _LOADED:
        return
    if not sklearn:
        sys.modules.setdefault("sklearn", None)  # `import sklearn` raises ImportError, which Keras expects
    # scikit-learn needs SciPy: while SciPy is left out, Keras' import of it would fail half-way and leave
    # parts of it in sys.modules. So it is left out too, and the Bayesian oracle's own import loads it whole.
    deferred = [name for name in DEFERRED + (("sklearn",) if sklearn else ()) if name not in sys.modules]
    sys.modules.update(dict.fromkeys(deferred, None))
    filtered = native_noise_filtered() if not has_nvidia_driver() else contextlib.nullcontext()
    try:
        with filtered:
            import tensorflow as tf
            import keras  # noqa: F401  (it loads its optional libraries at once, so within the deferral)
            tf.config.list_physical_devices()
    except KeyboardInterrupt:
        print("\ninterrupted while loading TensorFlow", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        for name in deferred:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    _LOADED = True
