"""The user's path: each console script in a fresh process, on a finished run directory, in the README's order.

Tests that call library functions in a process that has already built a model
hide what a user meets (a custom layer registered by luck, say). Here every
step is a subprocess of the installed console scripts, with the environment a
user has (no TF_CPP_MIN_LOG_LEVEL, a fresh home), and each asserts on what it
leaves behind, not only on its exit code.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import SHARED
from fixtures import tiny_imagenet_files, write_zip

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
SPEC = "Conv 8, Avg 2, BB 8, Avg 4, FC 3"
# What a CPU-only machine's TensorFlow prints on its own before absl logging starts, and the
# setuptools banner of an editable install: none of it may reach a user's screen.
NOISE = re.compile(r"cuInit|cudart_stub|absl::InitializeLog|cuda_|Editable installation|Traceback")


def user_env(home):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def run(argv, cwd, env, timeout=300, code=0, own_screen=True):
    """Runs a command as a user would; returns (stdout, stderr) after checking its exit code and its screen
    (with `own_screen`, that it shows only the package's own lines: our commands, not plain Python)."""
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    screen = out.stdout + out.stderr
    assert out.returncode == code, f"{argv} exited {out.returncode}:\n{screen[-4000:]}"
    noise = [line for line in screen.splitlines() if NOISE.search(line) and (own_screen or "Traceback" in line)]
    assert not noise, f"{argv[0]} printed lines that are not the package's own:\n" + "\n".join(noise)
    return out.stdout, out.stderr


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    """A user's working folder with a small Tiny ImageNet-layout archive, a fresh home and some photos."""
    root = tmp_path_factory.mktemp("user")
    home = root / "home"
    home.mkdir()
    data = write_zip(root / "tiny.zip", tiny_imagenet_files(train_per_class=8, val=6, test=4))
    photos = root / "photos"
    photos.mkdir()
    files = tiny_imagenet_files(train_per_class=1, val=0, test=3)
    for i in range(3):
        (photos / f"p{i}.jpg").write_bytes(files[f"test/images/test_{i}.JPEG"])
    return {"root": root, "env": user_env(home), "data": data, "photos": str(photos)}


def test_1_train_with_the_space_form_of_overrides(user):
    stdout, _ = run(["tinyresnet-train", f"--spec={SPEC}", "--data", user["data"], "--epochs", "2",
                     "--batch-size", "4", "--steps-per-epoch=2", "--warmup-epochs=0", "--run-dir=runs/tiny",
                     "--quiet", "--export"], user["root"], user["env"])
    run_dir = user["root"] / "runs" / "tiny"
    assert "run directory: runs/tiny" in stdout
    assert "exported: exported_models/spec/1" in stdout  # --export alone: the default root
    assert (user["root"] / "exported_models" / "spec" / "1" / "saved_model.pb").exists()
    for name in (".tinyresnet-run", "config.json", "model.keras", "results.json", "history.csv", "curves.png",
                 "checkpoints/best.keras", "class_names.json"):
        assert (run_dir / name).exists(), name
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs"] == 2 and 0.0 <= results["val_top1"] <= 1.0
    assert results["spec"] == "Conv 8, Avg 2, BB 8, Avg 4, FC 3"
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2


def test_2_export_in_a_fresh_process(user):
    stdout, _ = run(["tinyresnet-export", "runs/tiny"], user["root"], user["env"])
    assert "exported: exported_models/spec/2" in stdout  # the next version after train's --export
    export = user["root"] / "exported_models" / "spec" / "2"
    assert (export / "saved_model.pb").exists()
    metadata = json.loads((export / "metadata.json").read_text())
    names = json.loads((user["root"] / "runs" / "tiny" / "class_names.json").read_text())
    assert metadata["class_names"] == names and metadata["metrics"]["epochs"] == 2


def test_3_load_the_keras_file_from_plain_keras_in_a_fresh_process(user):
    # The two ways of tinyresnet/README.md; `import tinyresnet` alone registers nothing (it is lazy).
    code = ("import sys, keras, tinyresnet\n"
            "m = keras.saving.load_model(sys.argv[1], custom_objects=tinyresnet.custom_objects())\n"
            "n = tinyresnet.load_model(sys.argv[1])\n"
            "print(m.count_params() == n.count_params(), m.output_shape)\n")
    stdout, _ = run([sys.executable, "-c", code, "runs/tiny/model.keras"], user["root"], user["env"], own_screen=False)
    assert stdout.strip().endswith("True (None, 3)")


def test_4_predict_with_more_labels_than_the_export_s_top_k_is_honoured_or_refused(user):
    model = "exported_models/spec/2"
    stdout, _ = run(["tinyresnet-predict", model, user["photos"], "--output", "pred.csv", "--top", "3"],
                    user["root"], user["env"])
    with open(user["root"] / "pred.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and "written: pred.csv" in stdout
    names = set(json.loads((user["root"] / "runs" / "tiny" / "class_names.json").read_text()))
    for row in rows:
        labels, scores = row["top_k_labels"].split("|"), [float(s) for s in row["top_k_scores"].split("|")]
        assert len(labels) == 3 and set(labels) <= names and row["label"] == labels[0]
        assert scores == sorted(scores, reverse=True) and 0.0 <= scores[-1] <= scores[0] <= 1.0
    _, stderr = run(["tinyresnet-predict", model, user["photos"], "--top", "7"], user["root"], user["env"], code=2)
    assert "3" in stderr and "--top" in stderr


def test_5_report_compares_finished_runs(user):
    stdout, _ = run(["tinyresnet-report", "runs/tiny", "--out", "report"], user["root"], user["env"])
    assert "tiny" in stdout
    for name in ("comparison.csv", "comparison.md", "comparison.png"):
        assert (user["root"] / "report" / name).exists()
    with open(user["root"] / "report" / "comparison.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert 0.0 <= float(row["val_top1"]) <= 1.0


SEARCH = """
base: {{dataset: tiny_imagenet, data: {data}, epochs: 1, batch_size: 4, steps_per_epoch: 2, warmup_epochs: 0,
        learning_rate: 0.01, precision: float32}}
search: {{oracle: random, max_trials: 2, seed: 0}}
budget: {{max_params: 30000}}
space:
  stages: {{min: 1, max: 2}}
  blocks: 1
  stem_convs: 1
  base_width: [8, 16]
  growth: [2.0]
  block_dropout: [0.0, 0.5]
  pool: [avg]
"""


def test_6_tune_two_trials_then_retrain_the_best(user):
    search = user["root"] / "search.yaml"
    search.write_text(SEARCH.format(data=user["data"]))
    stdout, _ = run(["tinyresnet-tune", f"--search={search}", "--project-dir=runs/tune"], user["root"],
                    user["env"], timeout=600)
    assert "best: trial" in stdout
    with open(user["root"] / "runs" / "tune" / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert len(trials) == 2 and all(0.0 <= float(t["val_top1"]) <= 1.0 for t in trials)
    stdout, _ = run(["tinyresnet-tune", "report", "runs/tune", "--retrain-best", "1", "--export", "best"],
                    user["root"], user["env"], timeout=600)
    retrained = [d for d in os.listdir(user["root"] / "runs" / "tune") if d.startswith("best-trial_")]
    assert len(retrained) == 1
    assert json.loads((user["root"] / "runs" / "tune" / retrained[0] / "results.json").read_text())["epochs"] == 1
    assert (user["root"] / "best" / "tune-best" / "1" / "saved_model.pb").exists()


def test_7_report_only_on_a_copy_of_the_committed_experiments_keeps_every_result(user, tmp_path):
    copy = tmp_path / "checkout"
    shutil.copytree(os.path.join(REPO, "experiments"), copy / "experiments",
                    ignore=shutil.ignore_patterns("runs", "__pycache__"))
    before = {p: p.read_bytes() for p in (copy / "experiments").rglob("*") if p.is_file()}
    stdout, _ = run([sys.executable, "-m", "experiments.run", "all", "--report-only"], copy, user["env"])
    for claim in ("resnet_vs_convnet", "overfitting_gap", "dropout_augmentation", "cifar_depth", "table1"):
        assert f"{claim}: " in stdout
    changed = [str(p.relative_to(copy)) for p, data in before.items() if p.read_bytes() != data]
    assert not changed, f"--report-only rewrote committed results: {changed}"


def test_8_the_quickstart_end_to_end_with_a_few_steps(user, tmp_path):
    """`bash experiments/quickstart.sh`, the README's first command, with its smoke settings (and the final
    train accuracy on 64 images instead of 5,000)."""
    data = os.path.join(SHARED, "tiny-imagenet-200-sub20.zip") if SHARED else None
    if not data or not os.path.exists(data):
        data = write_zip(tmp_path / "tiny.zip", tiny_imagenet_files(train_per_class=70, val=20, test=8))
    env = {**user["env"], "DATA": data, "RUN": str(tmp_path / "qs"), "EXPORTS": str(tmp_path / "exports"),
           "IMAGES": str(tmp_path / "images")}
    stdout, stderr = run(["bash", os.path.join(REPO, "experiments", "quickstart.sh"), "--epochs=1",
                          "--steps-per-epoch=2", "--train-eval-images=64"], REPO, env, timeout=900)
    assert f"exported: {tmp_path / 'exports'}/net1/1" in stdout
    assert "train wall time:" in stderr + stdout
    assert json.loads((tmp_path / "qs" / "results.json").read_text())["epochs"] == 1
    with open(tmp_path / "images-predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == 8
