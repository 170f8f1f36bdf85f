import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = os.path.join(ROOT, "experiments")


def _help(script, cwd):
    """Runs `python experiments/<script> --help` in `cwd`; returns (completed process, seconds)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    start = time.monotonic()
    out = subprocess.run([sys.executable, os.path.join(EXPERIMENTS, script), "--help"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=60)
    return out, time.monotonic() - start


@pytest.mark.parametrize("script, option, work", [
    ("conv_ceiling.py", None, "matmul ceiling fp32:"),
    ("preset_table.py", None, "| `net1` |"),
    ("train_step_profile.py", "--keras-bn", "forward (infer)"),
    ("step_ops.py", "--net", "| op type |"),
    ("before_after.py", "--rounds", "round 1/"),
    ("batch_sweep.py", "--batch-sizes", "| batch size |"),
])
def test_help_of_an_experiment_script_prints_usage_and_runs_nothing(tmp_path, script, option, work):
    out, seconds = _help(script, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("usage:") and script in out.stdout
    assert option is None or option in out.stdout
    assert seconds < 15  # the work itself (TensorFlow, models, timings) would take far longer
    assert work not in out.stdout  # a line the work prints


def test_help_of_the_preset_table_rewrites_nothing(tmp_path):
    readme = os.path.join(ROOT, "README.md")
    before = os.stat(readme).st_mtime_ns
    out, _ = _help("preset_table.py", tmp_path)
    assert out.returncode == 0 and "| `net1` |" not in out.stdout
    assert os.stat(readme).st_mtime_ns == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_batch_sweep_times_the_real_step_per_batch_size_and_fits_a_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
           "KERAS_HOME": str(tmp_path / "keras")}
    out = subprocess.run([sys.executable, os.path.join(EXPERIMENTS, "batch_sweep.py"), "--net=Conv 8, Avg 2, FC 20",
                          "--batch-sizes=4,2", "--steps=1", "--repeats=1", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert [r["batch_size"] for r in result["rows"]] == [2, 4]
    assert all(r["ms_per_step"] > 0 and r["images_per_s"] == pytest.approx(r["batch_size"] * 1000 / r["ms_per_step"])
               for r in result["rows"])
    # Every layer's float32 output for one 64x64 image: rescale, conv, BN and ReLU (64x64x8), pool and
    # flatten (32x32x8), FC 20.
    assert result["forward_activation_bytes_per_image"] == 4 * (64 * 64 * 3 + 3 * 64 * 64 * 8 + 2 * 32 * 32 * 8 + 20)
    (a, ya), (b, yb) = [(r["batch_size"], r["ms_per_step"]) for r in result["rows"]]
    assert result["ms_per_image"] == pytest.approx((yb - ya) / (b - a))  # two points: the line through them
    assert result["copy_gb_per_s"] > 0.1


@pytest.mark.parametrize("args, message", [
    (["--batch-sizes=64"], "at least two distinct sizes"),
    (["--batch-sizes=64,x"], "comma-separated integers"),
    (["--net=search trial 99", "--batch-sizes=2,4"], "no completed trial '99'"),
    (["--net=Conv x, FC 2", "--batch-sizes=2,4"], "--net 'Conv x, FC 2'"),
])
def test_the_batch_sweep_refuses_bad_options_naming_them(args, message):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, os.path.join(EXPERIMENTS, "batch_sweep.py"), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_the_batch_sweep_table_gives_the_line_or_says_there_is_none():
    from tinyresnet.bench_table import batch_sweep_table
    rows = [{"batch_size": 16, "ms_per_step": 14.0, "images_per_s": 1143.0},
            {"batch_size": 64, "ms_per_step": 30.0, "images_per_s": 2133.0}]
    result = {"rows": rows, "fixed_ms_per_step": 8.67, "ms_per_image": 1 / 3, "limit_images_per_s": 3000.0,
              "forward_activation_bytes_per_image": 900 * 1024, "forward_activation_gb_per_s_at_limit": 2.76,
              "copy_gb_per_s": 21.5}
    table = batch_sweep_table(result)
    assert "| 64 | 30.0 | 2133 |" in table and "**8.7 ms per step + 333 µs per image**" in table
    assert "**3,000 images/s**" in table and "900 KiB" in table and "against 21.5 GB/s" in table
    flat = batch_sweep_table({**result, "ms_per_image": -0.1, "limit_images_per_s": None,
                              "forward_activation_gb_per_s_at_limit": None})
    assert "no line to fit" in flat and "µs per image" not in flat
