"""oneDNN's kernels are on wherever TensorFlow runs on x86, unless the user says otherwise."""

import os
import platform
import subprocess
import sys

import pytest

from tinyresnet import onednn

CHECK = "import tinyresnet; from tinyresnet import onednn; print(onednn.is_enabled())"


def test_it_is_turned_on_on_x86_only_and_never_over_the_user_s_choice():
    environ = {}
    assert onednn.enable_by_default(environ, machine="x86_64") and environ == {onednn.VARIABLE: "1"}
    environ = {onednn.VARIABLE: "0"}
    assert not onednn.enable_by_default(environ, machine="x86_64") and environ == {onednn.VARIABLE: "0"}
    environ = {}
    assert not onednn.enable_by_default(environ, machine="aarch64") and environ == {}


def _fresh_process(**extra):
    env = {k: v for k, v in os.environ.items() if k != onednn.VARIABLE}
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120,
                         env={**env, **extra})
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-1]


@pytest.mark.skipif(platform.machine().lower() not in onednn.X86, reason="oneDNN is turned on on x86 only")
def test_importing_tinyresnet_first_gives_tensorflow_onednn_kernels_on_every_x86_cpu():
    # TensorFlow alone leaves them off on x86 CPUs without AVX-512 VNNI/BF16 or AMX (an AVX2 Zen 3).
    assert _fresh_process() == "True"
    assert _fresh_process(TF_ENABLE_ONEDNN_OPTS="0") == "False"
