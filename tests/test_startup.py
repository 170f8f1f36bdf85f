"""Only TensorFlow's CUDA start-up noise is dropped from a command's screen; everything else passes."""

import subprocess
import sys

import pytest

from tinyresnet import startup

NOISY = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796008466.190841    2093 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.\n"
    "E0000 00:00:1796008471.266204    2093 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)\n"
    "I0000 00:00:1796020162.590628    4358 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.\n"
    "E0000 00:00:1796008471.266204    2093 some_kernel.cc:12] a real error\n"
    "error: the package's own line\n")


def test_native_start_up_noise_is_dropped_and_the_rest_kept_in_order():
    code = ("import os, sys\n"
            "from tinyresnet import startup\n"
            "with startup.native_noise_filtered():\n"
            f"    os.write(2, {NOISY.encode()!r})\n"
            "    print('python line', file=sys.stderr)\n"
            "print('after', file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stderr.splitlines() == ["E0000 00:00:1796008471.266204    2093 some_kernel.cc:12] a real error",
                                       "error: the package's own line", "python line", "after"]


def test_an_exception_inside_the_block_still_reaches_the_screen():
    code = ("from tinyresnet import startup\n"
            "with startup.native_noise_filtered():\n"
            "    raise SystemExit('error: named failure')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "error: named failure" in out.stderr


def test_tensorflow_loads_without_scikit_learn_unless_the_bayesian_oracle_needs_it(monkeypatch):
    # Keras imports scikit-learn for wrappers no command uses: ~1 s of every command's start.
    monkeypatch.setattr(startup, "_LOADED", False)
    monkeypatch.delitem(sys.modules, "sklearn", raising=False)
    startup.load_tensorflow()
    assert sys.modules["sklearn"] is None  # `import sklearn` raises ImportError, as where it is not installed
    startup.load_tensorflow(sklearn=True)  # a search after a command in one process (helper's hunt: the Bayesian
    assert "sklearn" not in sys.modules    # oracle said "Please install scikit-learn")
    monkeypatch.setattr(startup, "_LOADED", False)
    startup.load_tensorflow(sklearn=True)  # the search's: KerasTuner's Bayesian oracle imports it
    assert "sklearn" not in sys.modules


@pytest.mark.slow  # a fresh TensorFlow interpreter
def test_scipy_pandas_and_matplotlib_are_left_out_while_tensorflow_loads_and_import_afterwards():
    # A fresh process: Keras imports them at start-up for `fit` inputs and plots no command uses, 1.4 of the
    # 5 s `import tensorflow, keras` takes; each command imports what it uses itself, after.
    # As the search loads it (its Bayesian oracle imports scikit-learn, which needs SciPy): the fresh-eyes hunt
    # found parts of scikit-learn left in sys.modules by Keras' import of it failing half-way without SciPy.
    code = ("import sys\n"
            "from tinyresnet import startup\n"
            "startup.load_tensorflow(sklearn=True)\n"
            "loaded = {name.split('.')[0] for name in sys.modules}\n"
            "print(sorted({'scipy', 'pandas', 'matplotlib', 'sklearn'} & loaded))\n"
            "import keras, pandas, scipy.sparse, matplotlib.pyplot, sklearn.gaussian_process\n"
            "assert sklearn._config.get_config()\n"
            "from tinyresnet import report\n"
            "print(report.to_markdown(pandas.DataFrame([{'run': 'a', 'val_top1': 0.5}])).splitlines()[2])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0] == "[]"
    assert out.stdout.splitlines()[1].replace(" ", "") == "|a|50.0%|"
