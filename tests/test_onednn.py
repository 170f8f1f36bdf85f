"""oneDNN's kernels are on wherever TensorFlow runs on x86, unless the user says otherwise."""

import ast
import os
import platform
import subprocess
import sys

import pytest

from tinyresnet import onednn

TRAINING = "import tinyresnet.train; from tinyresnet import onednn; print(onednn.is_enabled())"
SERVING = "import tinyresnet.predict, tinyresnet.export; from tinyresnet import onednn; print(onednn.is_enabled())"


def test_it_is_turned_on_on_x86_only_and_never_over_the_user_s_choice():
    environ = {}
    assert onednn.enable_by_default(environ, machine="x86_64") and environ == {onednn.VARIABLE: "1"}
    environ = {onednn.VARIABLE: "0"}
    assert not onednn.enable_by_default(environ, machine="x86_64") and environ == {onednn.VARIABLE: "0"}
    environ = {}
    assert not onednn.enable_by_default(environ, machine="aarch64") and environ == {}


def _fresh_process(code, **extra):
    env = {k: v for k, v in os.environ.items() if k != onednn.VARIABLE}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**env, **extra})
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-1]


def _top_level(module):
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), *module.split(".")) + ".py"
    with open(path) as f:
        return ast.parse(f.read(), path).body


def _calls_enable(node):
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "enable_by_default"
               for n in ast.walk(node))


def test_the_training_module_turns_it_on_before_any_import_that_loads_tensorflow_and_serving_never_does():
    # The source side of the fresh-process test below (slow): import tinyresnet.train sets the variable
    # before its first import of anything but the standard library and tinyresnet.onednn.
    body = _top_level("tinyresnet.train")
    (call,) = [i for i, node in enumerate(body) if isinstance(node, ast.Expr) and _calls_enable(node)]
    before = [alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
              for node in body[:call] if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names]
    assert before and all(name in sys.stdlib_module_names or name == "tinyresnet.onednn" for name in before), before
    for serving in ("tinyresnet.predict", "tinyresnet.export", "tinyresnet.saving", "tinyresnet.models"):
        assert not any(_calls_enable(node) for node in _top_level(serving)), serving


@pytest.mark.slow  # three fresh TensorFlow interpreters; the test above and the two below check the parts
@pytest.mark.skipif(platform.machine().lower() not in onednn.X86, reason="oneDNN is turned on on x86 only")
def test_training_gets_tensorflow_onednn_kernels_on_every_x86_cpu_and_serving_tensorflow_s_default():
    # TensorFlow alone leaves them off on x86 CPUs without AVX-512 VNNI/BF16 or AMX (an AVX2 Zen 3).
    assert _fresh_process(TRAINING) == "True"
    assert _fresh_process(TRAINING, TF_ENABLE_ONEDNN_OPTS="0") == "False"
    from tinyresnet import precision
    _, flags = precision.cpu_info()
    if not {"avx512_vnni", "avx512_bf16", "amx_bf16", "avx_vnni"} & flags:
        assert _fresh_process(SERVING) == "False"  # oneDNN answers one image ~10x slower


class _Loaded(Exception):
    pass


@pytest.mark.parametrize("script", ["tinyresnet-train", "tinyresnet-bench"])
def test_the_training_console_scripts_turn_it_on_before_tensorflow_loads(script, monkeypatch, tmp_path):
    # They load TensorFlow (startup.load_tensorflow) before they import tinyresnet.train.
    from tinyresnet import cli, startup
    seen = []

    def load_tensorflow():
        seen.append(os.environ.get(onednn.VARIABLE))
        raise _Loaded

    monkeypatch.delenv(onednn.VARIABLE, raising=False)
    monkeypatch.setattr(startup, "load_tensorflow", load_tensorflow)
    argv = {"tinyresnet-train": ["--net=net1", f"--data={tmp_path}", f"--run-dir={tmp_path / 'run'}"],
            "tinyresnet-bench": ["--smoke"]}[script]
    main = {"tinyresnet-train": cli.train_main, "tinyresnet-bench": cli.bench_main}[script]
    with pytest.raises(_Loaded):
        main(argv)
    assert seen == ["1" if platform.machine().lower() in onednn.X86 else None]
