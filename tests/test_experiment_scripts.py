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
