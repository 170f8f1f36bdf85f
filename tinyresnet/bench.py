"""`tinyresnet-bench`: how much of this machine training and serving turn into work.

Everything is measured in one process, interleaved (A, B, A, B, ...), and
reported as medians, so that ratios hold on a noisy, shared machine:

- the ceiling: fp32 and bf16 matmul GFLOP/s through TensorFlow;
- training images/s of a preset on one in-memory batch, fp32 and bf16,
  with achieved GFLOP/s (3 x forward FLOPs per image) and its fraction of
  the same-precision ceiling;
- the real input pipeline (archive -> decoded cache -> shuffle -> augment ->
  batches): decode+cache images/s, an augmented epoch from cache without a
  model, and training images/s beside the in-memory figure;
- the exported SavedModel: batch-64 images/s beside `model.predict`, and the
  p50/p95 latency of one image.
"""

import dataclasses
import os
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tinyresnet import data as data_lib
from tinyresnet import spec as spec_lib
from tinyresnet.augment import PaperAugment
from tinyresnet.bench_table import format_table  # noqa: F401  (the CLI prints it)
from tinyresnet.models import build_model


@dataclasses.dataclass
class Settings:
    preset: str = "net1"
    width: float = 1.0
    batch_size: int = 64
    steps: int = 6  # training steps per timed repeat
    repeats: int = 5  # timed repeats per measurement (after one warm-up)
    matmul_sizes: tuple = (2048, 4096, 6144)
    data: str = ""  # Tiny ImageNet archive/folder for the pipeline figures; "" skips them
    latency_calls: int = 100


SMOKE = dict(preset="cifar7", width=0.25, batch_size=16, steps=2, repeats=2, matmul_sizes=(256,), latency_calls=5)


def median_seconds(fn, repeats):
    fn()  # warm-up: tracing, allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_ceiling(dtype, sizes, repeats=3):
    """Best GFLOP/s of a square matmul over `sizes` (median of `repeats` each)."""
    best = 0.0
    for n in sizes:
        a = tf.cast(tf.random.normal((n, n)), dtype)
        matmul = tf.function(tf.linalg.matmul)
        seconds = median_seconds(lambda: matmul(a, a).numpy(), repeats)
        best = max(best, 2 * n ** 3 / seconds / 1e9)
    return best


def _model(settings, shape, classes, precision):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = build_model(settings.preset, shape, classes, width=settings.width)
    finally:
        keras.config.set_dtype_policy(previous)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def _fit_seconds(model, dataset, steps):
    """A callable timing `steps` training steps, without fit()'s own set-up.

    Each call runs two epochs of `steps` and reports the second: fit()
    creates its iterator and callbacks on every call, which is not training.
    """
    timer = _EpochTimer()

    def run():
        model.fit(dataset, steps_per_epoch=steps, epochs=2, verbose=0, shuffle=False, callbacks=[timer])
        return timer.seconds
    return run


def _interleaved(runs, repeats):
    """Median seconds of each named callable, measured A, B, A, B, ...

    A callable may return the seconds it measured itself; otherwise its wall
    time counts.
    """
    for fn in runs.values():
        fn()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            measured = fn()
            times[name].append(measured if isinstance(measured, float) else time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def run(settings: Settings, log=print):
    """Runs every measurement; returns the `--json` dict."""
    out = {"settings": dataclasses.asdict(settings), "tensorflow": tf.__version__,
           "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                       "cpus": os.cpu_count()}}
    log("ceiling: matmul ...")
    out["ceiling_gflops_fp32"] = matmul_ceiling(tf.float32, settings.matmul_sizes)
    out["ceiling_gflops_bf16"] = matmul_ceiling(tf.bfloat16, settings.matmul_sizes)

    shape = spec_lib.PRESETS[settings.preset].input_shape
    classes = spec_lib.parse_spec(settings.preset)[-1].units
    train_flops = 3 * spec_lib.forward_flops(settings.preset, shape, classes, settings.width)
    out["train_gflops_per_image"] = train_flops / 1e9
    rng = np.random.default_rng(0)
    batch = (rng.integers(0, 256, (settings.batch_size, *shape), dtype=np.uint8),
             rng.integers(0, classes, settings.batch_size).astype(np.int64))
    in_memory = tf.data.Dataset.from_tensors(batch).repeat()
    log("training: float32 vs mixed_bfloat16, in memory ...")
    fp32 = _model(settings, shape, classes, "float32")
    bf16 = _model(settings, shape, classes, "mixed_bfloat16")
    seconds = _interleaved({"fp32": _fit_seconds(fp32, in_memory, settings.steps),
                            "bf16": _fit_seconds(bf16, in_memory, settings.steps)}, settings.repeats)
    images = settings.steps * settings.batch_size
    for name in ("fp32", "bf16"):
        ips = images / seconds[name]
        out[f"train_ips_{name}"] = ips
        out[f"train_gflops_{name}"] = ips * train_flops / 1e9
        out[f"train_ceiling_fraction_{name}"] = ips * train_flops / 1e9 / out[f"ceiling_gflops_{name}"]
    out["bf16_speedup"] = out["train_ips_bf16"] / out["train_ips_fp32"]
    from tinyresnet import precision
    choice = precision.auto()
    model_name, flags = precision.cpu_info()
    out["auto_precision"] = choice.policy
    out["auto_reason"] = choice.reason
    out["cpu"] = model_name
    out["cpu_bf16_flags"] = sorted(f for f in flags if f in precision.BF16_FLAGS)
    # What `auto` gains here: the training speed of its choice over float32's.
    out["auto_speedup"] = out["train_ips_bf16"] / out["train_ips_fp32"] if choice.policy == "mixed_bfloat16" else 1.0

    if settings.data:
        out.update(_pipeline(settings, fp32, in_memory, log))
    out.update(_serving(settings, fp32, shape, log))
    return out


def _pipeline(settings, model, in_memory, log):
    log("pipeline: decode + cache ...")
    start = time.perf_counter()
    arrays, layout = data_lib.load_tiny_imagenet_arrays(settings.data, splits=("train",))
    decode_seconds = time.perf_counter() - start
    train = arrays["train"]
    result = {"decode_cache_ips": len(train.labels) / decode_seconds, "pipeline_images": len(train.labels)}
    if model.input_shape[1:] != train.images.shape[1:]:
        log(f"pipeline: preset input {model.input_shape[1:]} differs from the data's; training figures skipped")
        return result
    epoch = data_lib.make_dataset(train.images, train.labels, settings.batch_size, training=True,
                                  augment=PaperAugment(seed=0))
    dataset = epoch.repeat()
    log("pipeline: one augmented epoch from cache, no model ...")
    seconds = median_seconds(lambda: [None for _ in epoch], max(1, settings.repeats // 2))
    result["augmented_epoch_ips"] = len(train.labels) // settings.batch_size * settings.batch_size / seconds
    log("pipeline: training, real pipeline vs in memory ...")
    seconds = _interleaved({"memory": _fit_seconds(model, in_memory, settings.steps),
                            "pipeline": _fit_seconds(model, dataset, settings.steps)}, settings.repeats)
    images = settings.steps * settings.batch_size
    result["pipeline_ips"] = images / seconds["pipeline"]
    result["pipeline_memory_ips"] = images / seconds["memory"]
    result["pipeline_ratio"] = seconds["memory"] / seconds["pipeline"]
    return result


def _serving(settings, model, shape, log):
    from tinyresnet import export
    log("serving: exported SavedModel vs model.predict ...")
    classes = model.output_shape[-1]
    with tempfile.TemporaryDirectory() as tmp:
        path = export.export_model(model, os.path.join(tmp, "1"), [str(i) for i in range(classes)])
        serve = tf.saved_model.load(path).signatures["serving_default"]
        rng = np.random.default_rng(1)
        batches = 4
        images = rng.integers(0, 256, (64 * batches, *shape)).astype(np.float32)
        chunks = [tf.constant(images[i * 64:(i + 1) * 64]) for i in range(batches)]

        def exported():
            for chunk in chunks:
                serve(images=chunk)["probabilities"].numpy()

        seconds = _interleaved({"export": exported,
                                "predict": lambda: model.predict(images, batch_size=64, verbose=0)},
                               settings.repeats)
        one = tf.constant(images[:1])
        serve(images=one)
        latencies = []
        for _ in range(settings.latency_calls):
            start = time.perf_counter()
            serve(images=one)["probabilities"].numpy()
            latencies.append(1000 * (time.perf_counter() - start))
    return {"export_ips_b64": len(images) / seconds["export"], "predict_ips_b64": len(images) / seconds["predict"],
            "export_predict_ratio": seconds["predict"] / seconds["export"],
            "export_latency_p50_ms": float(np.percentile(latencies, 50)),
            "export_latency_p95_ms": float(np.percentile(latencies, 95))}
