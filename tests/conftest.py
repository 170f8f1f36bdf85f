import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Keras' folder (and tinyresnet's precision cache in it) of the tests is their own, never the user's ~/.keras.
os.environ["KERAS_HOME"] = __import__("tempfile").mkdtemp(prefix="tinyresnet-tests-keras-")

import re
import threading
import time

import pytest

SHARED = os.environ.get("TINYRESNET_SHARED_DATA")


def unpadded(markdown):
    """A Markdown table without its cells' padding (tinyresnet.tables pads every column to its widest
    cell): `|  net1 |   55.0 |` reads `| net1 | 55.0 |`, so a test names a row by its cells alone."""
    return re.sub(r" +\|", " |", re.sub(r"\| +", "| ", markdown))


def shared_file(name):
    """Path of a real-data archive, or skips the test with the reason."""
    if not SHARED:
        pytest.skip("real data not available: set TINYRESNET_SHARED_DATA (bash .ci/run does)")
    path = os.path.join(SHARED, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture
def tiny_zip(tmp_path):
    from fixtures import tiny_imagenet_files, write_zip
    return write_zip(tmp_path / "tiny-imagenet-200.zip", tiny_imagenet_files())


@pytest.fixture(scope="session")
def folder_zip(tmp_path_factory):
    """A 3-class archive of 16x16 JPEGs, 16 per class, in `shapes/<class>/` (one per session: only read)."""
    from fixtures import class_folder_files, write_zip
    return write_zip(tmp_path_factory.mktemp("folder_zip") / "shapes.zip",
                     class_folder_files(("a", "b", "c"), per_class=16, size=(16, 16)), prefix="shapes/")


@pytest.fixture(scope="session")
def tiny_run(folder_zip, tmp_path_factory):
    """`(run directory, results)` of one finished one-step run of `fixtures.tiny_config(folder_zip,
    steps_per_epoch=1)`, trained once per session. Tests only read it; to change it, `copy_run` it first."""
    from fixtures import tiny_config
    from tinyresnet import train
    run = tmp_path_factory.mktemp("tiny_run") / "run"
    return run, train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1), str(run))


def copy_run(run, destination):
    """A copy of a finished run directory at `destination` (a path that does not exist yet)."""
    import shutil
    shutil.copytree(run, destination)
    return destination


def searches_archive(path):
    """Writes the searches' archive at `path`: 3 classes of 24 16x16 JPEGs each, class folders at the top."""
    from fixtures import class_folder_files, write_zip
    return write_zip(path, class_folder_files(("a", "b", "c"), per_class=24, size=(16, 16)))


@pytest.fixture
def data(tmp_path):
    """The searches' archive (`searches_archive`) in the test's folder."""
    return searches_archive(tmp_path / "d.zip")


class Lines:
    """The stdout of a `subprocess.Popen(..., stdout=PIPE, text=True)`, read line by line on a thread of its
    own: a test waits for the line that says a thing happened (an epoch ended, a run started), not for a file
    it polls against a long deadline. Every line is kept (`text`); read the process through this alone."""

    def __init__(self, process):
        self.process = process
        self.lines = []
        self._next = 0  # where the next `wait_for` starts looking
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def from_now(self):
        """The next `wait_for` looks at the lines that come from now on only."""
        with self._changed:
            self._next = len(self.lines)

    def wait_for(self, pattern, timeout=300):
        """The match of `pattern` (`re.search`) in the first line that has one after the line of the last
        match; fails, killing the process, if its output ends first or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for i in range(self._next, len(self.lines)):
                    found = re.search(pattern, self.lines[i])
                    if found:
                        self._next = i + 1
                        return found
                self._next = len(self.lines)
                left = deadline - time.monotonic()
                if self._ended or left <= 0:
                    break
                self._changed.wait(left)
        self.process.kill()
        why = "the output ended" if self._ended else f"{timeout} s passed"
        pytest.fail(f"{why} before a line matched {pattern!r}:\n{self.text[-3000:]}")

    def wait(self, timeout=300):
        """The process's exit code, once it ended and its output is read to the end (`text`)."""
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    @property
    def text(self):
        with self._changed:
            return "".join(self.lines)


CLASSES = ["cat", "dog", "emu", "fox", "gnu", "hen", "owl"]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """A run directory as training leaves it, with a model whose BN statistics are not trivial (only read)."""
    import json
    import keras
    import numpy as np
    from tinyresnet.models import build_model
    run = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    model = build_model("Conv 8, BB 16, Avg 2, Dropout 0.3, FC 7", (16, 16, 3), name="tiny")
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3)).astype("uint8")
    model.fit(images, np.arange(32) % 7, epochs=1, verbose=0)
    model.save(run / "model.keras")
    (run / "class_names.json").write_text(json.dumps(CLASSES))
    (run / "config.json").write_text(json.dumps({"dataset": "folder", "variant": "residual"}))
    (run / "results.json").write_text(json.dumps({"spec": "Conv 8, BB 16, Avg 2, Dropout 0.3, FC 7",
                                                  "val_top1": 0.25, "epochs": 1}))
    return run


@pytest.fixture(scope="session")
def exported(run_dir, tmp_path_factory):
    """The export of `run_dir` (version 1 under a root of its own; only read)."""
    from tinyresnet import export
    return export.export_run(str(run_dir), str(tmp_path_factory.mktemp("exports")))
