"""`precision="auto"`: bfloat16 where this machine trains *this model* faster with it, float32 elsewhere.

The choice depends on the model as well as the machine: on a CPU with
AVX512_BF16, full-width Net 1 trains 1.7x faster in bfloat16, but the
search's smallest net 3x slower (its step is bound by per-op costs, not by
matmuls). So it is made per model, once per process, and cached per machine
and model in `~/.keras/tinyresnet/precision.json` (keyed by CPU model, flags,
TensorFlow version and the model's shape):

- a GPU with bfloat16 (compute capability >= 8.0) gives `mixed_bfloat16`, an
  older GPU `mixed_float16`;
- a CPU without bfloat16 instructions (`avx512_bf16`, `amx_bf16`) gives
  `float32` without measuring: oneDNN then emulates bfloat16, at 0.1-0.35x
  the float32 speed;
- a CPU with them gives `mixed_bfloat16` only if a short measurement of the
  model's real training step (`tinyresnet.train.measure_bf16_speedup`: at
  most ~2 % of the run's expected time, or 15 s, beyond tracing) shows
  bfloat16 at least `MIN_SPEEDUP` times faster. Without a model (`auto()`),
  a 1024-square matmul is measured instead.
"""

import dataclasses
import json
import os
import time
from typing import Callable, Optional, Sequence

from tinyresnet import cpu

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
MIN_SPEEDUP = 1.2  # below this, bfloat16's lower precision is not worth it


def default_cache():
    """`$KERAS_HOME/tinyresnet/precision.json` (Keras' own folder, `~/.keras` by default)."""
    return os.path.join(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"), "tinyresnet", "precision.json")


@dataclasses.dataclass(frozen=True)
class Choice:
    policy: str  # a Keras dtype policy name
    reason: str  # one line: why
    speedup: Optional[float] = None  # measured bf16/fp32 matmul speed, where measured


def cpu_info(path="/proc/cpuinfo"):
    """`(model name, set of flags)` of this CPU; empty where unknown (not Linux)."""
    return cpu.model_and_flags(path)


def decide(gpu_capabilities: Sequence[tuple], cpu_flags, measure: Callable[[], float],
           measured: str = "matmul") -> Choice:
    """The policy for a machine; `measure()` gives the bf16/fp32 speed ratio (called only if needed).

    Args:
        gpu_capabilities: `(major, minor)` compute capability of each GPU; empty for none.
        cpu_flags: the CPU's feature flags.
        measure: runs the short measurement.
        measured: what `measure` times, for the reason ("matmul", "training of this model").
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
        return Choice("mixed_bfloat16",
                      f"CPU with {', '.join(found)}: bfloat16 {measured} {speedup:.2f}x float32", speedup)
    return Choice("float32", f"CPU with {', '.join(found)}, but bfloat16 {measured} only {speedup:.2f}x float32",
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


_CHOICES = {}  # model key -> Choice, in this process


def auto(model: str = "", measure: Optional[Callable[[], float]] = None, cache_path: Optional[str] = "") -> Choice:
    """What `precision="auto"` means for `model` on this machine (measured once, then cached).

    Args:
        model: a key naming the model's shape (`tinyresnet.train.model_key`);
            "" for the machine alone.
        measure: bf16/fp32 training speed of that model, called only on a CPU
            with bfloat16 instructions and no cached answer (default: a matmul).
        cache_path: the cache file ("": `default_cache()`); None measures without caching.
    """
    if model in _CHOICES:
        return _CHOICES[model]
    gpus = _gpu_capabilities()
    name, flags = cpu_info()
    measured = "training of this model" if measure else "matmul"
    measure = measure or measure_bf16_speedup
    if gpus or cache_path is None:
        choice = decide(gpus, flags, measure, measured)
    else:
        import tensorflow as tf
        machine = f"{name}|{' '.join(sorted(f for f in flags if 'bf16' in f or 'avx512' in f or 'amx' in f))}|" \
                  f"{tf.__version__}"
        key = f"{machine}|{model}" if model else machine
        path = os.path.expanduser(cache_path or default_cache())
        choice = _valid_choice(_read(path).get(key))
        if not choice:
            choice = decide(gpus, flags, measure, measured)
            _write(path, {**_read(path), key: dataclasses.asdict(choice)})
    _CHOICES[model] = choice
    return choice


def started_with(workdir) -> Optional[str]:
    """The policy a run directory's run started with (None if no run, or one that recorded "auto")."""
    from tinyresnet import runs
    try:
        policy = (runs.read_json(os.path.join(workdir, runs.CONFIG)) or {}).get("precision")
    except (OSError, ValueError, AttributeError):
        return None
    return policy if policy in POLICIES else None


def resolve(name: str, workdir=None, model: str = "", measure: Optional[Callable[[], float]] = None) -> Choice:
    """The policy for a config's `precision` in `workdir`.

    An explicit policy is kept; `auto` keeps the policy a run in `workdir`
    started with (so a resumed run never changes precision), else is decided
    for this machine and `model` (see `auto`).
    """
    if name != "auto":
        return Choice(name, "asked for")
    previous = started_with(workdir) if workdir else None
    if previous:
        return Choice(previous, "auto, kept from the run's start")
    return auto(model, measure)


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
