"""`precision="auto"`: bfloat16 where this machine trains faster with it, float32 elsewhere.

The choice is made once per process, and cached per machine in
`~/.keras/tinyresnet/precision.json` (keyed by CPU model, flags and
TensorFlow version):

- a GPU with bfloat16 (compute capability >= 8.0) gives `mixed_bfloat16`, an
  older GPU `mixed_float16`;
- a CPU without bfloat16 instructions (`avx512_bf16`, `amx_bf16`) gives
  `float32`: oneDNN then emulates bfloat16, at about 0.3x the float32 speed;
- a CPU with them gives `mixed_bfloat16` only if a short matmul measurement
  (~0.3 s) shows bfloat16 at least `MIN_SPEEDUP` times faster.
"""

import dataclasses
import json
import os
import platform
import time
from typing import Callable, Optional, Sequence

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
MIN_SPEEDUP = 1.2  # below this, bfloat16's lower precision is not worth it
CACHE = os.path.join("~", ".keras", "tinyresnet", "precision.json")


@dataclasses.dataclass(frozen=True)
class Choice:
    policy: str  # a Keras dtype policy name
    reason: str  # one line: why
    speedup: Optional[float] = None  # measured bf16/fp32 matmul speed, where measured


def cpu_info(path="/proc/cpuinfo"):
    """`(model name, set of flags)` of this CPU; empty where unknown (not Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key in ("flags", "Features"):
                    flags = set(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model, flags


def decide(gpu_capabilities: Sequence[tuple], cpu_flags, measure: Callable[[], float]) -> Choice:
    """The policy for a machine; `measure()` gives the bf16/fp32 speed ratio (called only if needed).

    Args:
        gpu_capabilities: `(major, minor)` compute capability of each GPU; empty for none.
        cpu_flags: the CPU's feature flags.
        measure: runs the short measurement.
    """
    if gpu_capabilities:
        if min(gpu_capabilities) >= (8, 0):
            return Choice("mixed_bfloat16", f"GPU with bfloat16 (compute capability {min(gpu_capabilities)})")
        return Choice("mixed_float16", f"GPU without bfloat16 (compute capability {min(gpu_capabilities)})")
    found = [flag for flag in BF16_FLAGS if flag in cpu_flags]
    if not found:
        return Choice("float32", "CPU without avx512_bf16/amx_bf16: bfloat16 would be emulated (slower)")
    speedup = measure()
    if speedup >= MIN_SPEEDUP:
        return Choice("mixed_bfloat16", f"CPU with {', '.join(found)}: bfloat16 matmul {speedup:.2f}x float32",
                      speedup)
    return Choice("float32", f"CPU with {', '.join(found)}, but bfloat16 matmul only {speedup:.2f}x float32",
                  speedup)


def measure_bf16_speedup(size=1024, seconds=0.12):
    """bf16/fp32 speed of `size`-square matmuls, each timed for about `seconds` after a warm-up."""
    import tensorflow as tf

    def rate(dtype):
        a = tf.random.stateless_uniform((size, size), seed=(1, 2), dtype=tf.float32)
        a = tf.cast(a, dtype)
        tf.linalg.matmul(a, a).numpy()  # warm-up: kernel selection
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            tf.linalg.matmul(a, a).numpy()
            count += 1
        return count / (time.perf_counter() - start)

    return rate(tf.bfloat16) / rate(tf.float32)


def _gpu_capabilities():
    import tensorflow as tf
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability", (0, 0))))
    return capabilities


_CHOICE = None


def auto(cache_path=CACHE) -> Choice:
    """What `precision="auto"` means on this machine (measured once, then cached)."""
    global _CHOICE
    if _CHOICE is not None:
        return _CHOICE
    gpus = _gpu_capabilities()
    model, flags = cpu_info()
    if gpus:
        _CHOICE = decide(gpus, flags, measure_bf16_speedup)
        return _CHOICE
    import tensorflow as tf
    key = f"{model}|{' '.join(sorted(f for f in flags if 'bf16' in f or 'avx512' in f or 'amx' in f))}|{tf.__version__}"
    path = os.path.expanduser(cache_path)
    cached = _valid_choice(_read(path).get(key))
    if cached:
        _CHOICE = cached
    else:
        _CHOICE = decide(gpus, flags, measure_bf16_speedup)
        _write(path, {**_read(path), key: dataclasses.asdict(_CHOICE)})
    return _CHOICE


def started_with(workdir) -> Optional[str]:
    """The policy a run directory's run started with (None if no run, or one that recorded "auto")."""
    from tinyresnet import runs
    try:
        policy = (runs.read_json(os.path.join(workdir, runs.CONFIG)) or {}).get("precision")
    except (OSError, ValueError, AttributeError):
        return None
    return policy if policy in POLICIES else None


def resolve(name: str, workdir=None) -> Choice:
    """The policy for a config's `precision` in `workdir`.

    An explicit policy is kept; `auto` keeps the policy a run in `workdir`
    started with (so a resumed run never changes precision), else is decided
    for this machine.
    """
    if name != "auto":
        return Choice(name, "asked for")
    previous = started_with(workdir) if workdir else None
    if previous:
        return Choice(previous, "auto, kept from the run's start")
    return auto()


def _read(path):
    # A cache that is not a mapping (hand-edited, or another program's) is no cache.
    try:
        with open(path) as f:
            values = json.load(f)
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def _valid_choice(entry) -> Optional[Choice]:
    """The `Choice` a cache entry holds; None where it is not one (then it is measured again)."""
    if not isinstance(entry, dict) or set(entry) - {"policy", "reason", "speedup"}:
        return None
    policy, reason, speedup = entry.get("policy"), entry.get("reason"), entry.get("speedup")
    if policy not in POLICIES or not isinstance(reason, str):
        return None
    if speedup is not None and (isinstance(speedup, bool) or not isinstance(speedup, (int, float))):
        return None
    return Choice(policy, reason, speedup)


def _write(path, values):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(values, f, indent=2)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: decide again next time
