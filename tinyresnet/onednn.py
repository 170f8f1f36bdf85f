"""oneDNN's CPU kernels for training on every x86 CPU, not only the newest.

TensorFlow 2.21 turns oneDNN on by itself only on x86 CPUs with AVX-512
VNNI/BF16 or AMX. Elsewhere (an AVX2 AMD EPYC Zen 3, say) it runs Eigen's
kernels, which train this package's nets 2-4x slower (README, Performance:
`experiments/before_after.py`). So what trains turns it on, on x86, unless
the user has set `TF_ENABLE_ONEDNN_OPTS` (`=0` keeps Eigen's kernels): the
console scripts that train (`tinyresnet-train`, `-tune`, `-bench`, the
experiments runner) and `import tinyresnet.train`.

Serving does not: there oneDNN answers one image about 10x slower (31 ms
against 2.7 ms for Net 1 at width 0.25 on that Zen 3, though batch-64
throughput is 1.5x higher), so `tinyresnet-predict` and `tinyresnet-export`
keep TensorFlow's own choice.

TensorFlow reads the variable once, when it is imported: a program that
imports TensorFlow before `tinyresnet.train` keeps TensorFlow's default.
"""

import os
import platform

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
X86 = ("x86_64", "amd64", "i386", "i686")


def enable_by_default(environ=os.environ, machine=None):
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` on an x86 machine where it is not set; returns whether it did."""
    machine = (machine or platform.machine()).lower()
    if machine not in X86 or VARIABLE in environ:
        return False
    environ[VARIABLE] = "1"
    return True


def is_enabled():
    """Whether this process's TensorFlow runs oneDNN's kernels (imports TensorFlow)."""
    from tensorflow.python.util import _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())
