import json
import os
import subprocess
import sys
import time

import pytest

from conftest import unpadded

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
    ("preset_table.py", None, "| `net1`"),
    ("train_step_profile.py", "--keras-bn", "forward (infer)"),
    ("step_ops.py", "--net", "| op type"),
    ("before_after.py", "--rounds", "round 1/"),
    ("batch_sweep.py", "--batch-sizes", "| batch size"),
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
    assert out.returncode == 0 and "| `net1`" not in out.stdout
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
    assert result["onednn"] is True and all(r["steps_per_repeat"] == 1 for r in result["rows"])
    assert result["copy_gb_per_s"] > 0.1


@pytest.mark.parametrize("args, message", [
    (["--batch-sizes=64"], "at least two distinct sizes"),
    (["--batch-sizes=64,x"], "comma-separated integers"),
    (["--net=search trial 99", "--batch-sizes=2,4"], "no completed trial '99'"),
    (["--net=Conv x, FC 2", "--batch-sizes=2,4"], "--net 'Conv x, FC 2'"),
    (["--net=Conv 8, Avg 128, FC 20", "--batch-sizes=2,4"], "pooling a 64x64 feature map by 128"),
    (["--net=search", "--batch-sizes=2,4"], "names every net of a search"),
    (["--net=search trial 6", "--batch-sizes=2,4"], "trials '6' in"),  # as many as committed searches have
])
def test_the_batch_sweep_refuses_bad_options_naming_them(tmp_path, args, message):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    # From another folder (the committed searches are found from the project root), saying at exit
    # whether TensorFlow was imported.
    run = ("import atexit, runpy, sys; atexit.register(lambda: print('tf', 'tensorflow' in sys.modules)); "
           f"sys.argv = {['batch_sweep.py', *args]!r}; runpy.run_path({os.path.join(EXPERIMENTS, 'batch_sweep.py')!r},"
           " run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", run], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    assert out.stdout.strip() == "tf False"  # refused before TensorFlow loads


def test_the_batch_sweep_table_gives_the_bound_only_where_the_line_gives_one():
    from tinyresnet.bench_table import batch_sweep_table
    rows = [{"batch_size": 16, "ms_per_step": 14.0, "images_per_s": 1143.0, "residual_ms": 0.2},
            {"batch_size": 64, "ms_per_step": 30.0, "images_per_s": 2133.0, "residual_ms": -0.2}]
    result = {"rows": rows, "fixed_ms_per_step": 8.67, "ms_per_image": 1 / 3, "r2": 0.987,
              "limit_images_per_s": 3000.0, "forward_activation_bytes_per_image": 900 * 1024,
              "forward_activation_gb_per_s_at_limit": 2.76, "copy_gb_per_s": 21.5}
    table = unpadded(batch_sweep_table(result))
    assert "| 64 | 30.0 | 2133 | -0.2 ms |" in table and "**8.7 ms per step + 333 µs per image**" in table
    assert "R² 0.987" in table and "no batch size passes **3,000 images/s**" in table
    assert "at most 900 KiB" in table and "against 21.5 GB/s" in table
    flat = batch_sweep_table({**result, "ms_per_image": -0.1, "limit_images_per_s": None,
                              "forward_activation_gb_per_s_at_limit": None})
    assert "did not grow" in flat and "passes" not in flat
    # Rows 400 and 333 images/s under a line that would bound them at 286: no bound is stated.
    below = batch_sweep_table({**result, "fixed_ms_per_step": -2.0, "ms_per_image": 3.5, "limit_images_per_s": None,
                               "forward_activation_gb_per_s_at_limit": None})
    assert "negative fixed cost" in below and "passes" not in below
