"""`tinyresnet-bench`: how much of this machine training and serving turn into work.

Everything is measured in one process, interleaved (A, B, A, B, ...), and
reported as medians, so that ratios hold on a noisy, shared machine:

- the ceiling: fp32 and bf16 matmul GFLOP/s through TensorFlow;
- per net and precision, the training step that `train_and_evaluate` runs
  (the model, loss, metrics, optimizer and callbacks of `train.build_trainer`
  and `train.make_callbacks`, on one in-memory batch): ms/step, images/s,
  achieved GFLOP/s (3 x forward FLOPs per image) and its fraction of the
  same-precision ceiling; and what `precision="auto"` chooses for the net;
- the fixed per-step cost: a least-squares line of step time against
  training FLOPs per step over the nets (its intercept), per precision;
- the real input pipeline (archive -> decoded cache -> shuffle -> augment ->
  batches) for the first net: decode+cache images/s, an augmented epoch from
  cache without a model, and training images/s beside the in-memory figure;
- the first net exported as a SavedModel: batch-64 images/s beside
  `model.predict`, and the p50/p95 latency of one image.
"""

import dataclasses
import os
import statistics
import tempfile
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from tinyresnet import config as config_lib
from tinyresnet import data as data_lib
from tinyresnet import precision as precision_lib
from tinyresnet import runs
from tinyresnet import spec as spec_lib
from tinyresnet import train
from tinyresnet.augment import PaperAugment
from tinyresnet.bench_nets import PRECISIONS, SMOKE, Net, Settings, expand_nets  # noqa: F401  (the CLI's)
from tinyresnet.bench_table import format_table  # noqa: F401  (the CLI prints it)

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


def _config(net, settings, precision):
    return config_lib.validate(config_lib.Config(
        net=net.spec, width=net.width, precision=precision, batch_size=settings.batch_size, verbose=0,
        block_dropout=net.block_dropout, variant=net.variant, shortcut=net.shortcut))


class _StepTimer(keras.callbacks.Callback):
    """Seconds between the first and the last batch end of a `fit`: steps only, no set-up or epoch end."""

    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append((batch, time.perf_counter()))

    def seconds_per_step(self):
        (first, start), (last, end) = self.ends[0], self.ends[-1]
        return (end - start) / (last - first)


class _Trainer:
    """One net in one precision, built as `train_and_evaluate` builds it; `step()` times `steps` real steps."""

    def __init__(self, net, settings, precision, classes, workdir):
        self.config = _config(net, settings, precision)
        spec = spec_lib.parse_spec(self.config.net)
        self.model, self.trainer = train.build_trainer(self.config, spec, net.input_shape, classes, steps=100)
        self.workdir, self.calls, self.steps = workdir, 0, min(2, settings.steps)

    def step(self, dataset):
        # A fresh run directory per call: the backup callback would otherwise resume a finished epoch.
        self.calls += 1
        workdir = os.path.join(self.workdir, f"{self.config.precision}-{self.calls}")
        runs.start(workdir, config_lib.to_dict(self.config))
        timer = _StepTimer()
        with warnings.catch_warnings():  # the best-model checkpoint has no validation to watch here
            warnings.filterwarnings("ignore", message="Can save best model only with")
            self.trainer.fit(dataset, steps_per_epoch=self.steps + 1, epochs=1, verbose=0, shuffle=False,
                             callbacks=train.make_callbacks(self.config, workdir) + [timer])
        return timer.seconds_per_step()


def _interleaved(runs_, repeats):
    """Median seconds of each named callable, measured A, B, A, B, ...

    A callable may return the seconds it measured itself; otherwise its wall
    time counts.
    """
    for fn in runs_.values():
        fn()
    times = {name: [] for name in runs_}
    for _ in range(repeats):
        for name, fn in runs_.items():
            start = time.perf_counter()
            measured = fn()
            times[name].append(measured if isinstance(measured, float) else time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def time_net(net, settings, ceilings, workdir, log, decide_auto=True):
    """The `nets` entry of one net: per precision ms/step, images/s, GFLOP/s, ceiling fraction; `auto`.

    `decide_auto=False` leaves out what `precision="auto"` would choose (on a CPU with bfloat16
    instructions, that choice trains the net in both precisions once more).
    """
    classes = spec_lib.parse_spec(net.spec)[-1].units
    forward = spec_lib.forward_flops(net.spec, net.input_shape, classes, net.width)
    entry = {"label": net.label, "spec": net.spec, "width": net.width, "batch_size": settings.batch_size,
             "forward_gflops": forward / 1e9, "train_gflops_per_step": 3 * forward * settings.batch_size / 1e9}
    rng = np.random.default_rng(0)
    batch = (rng.integers(0, 256, (settings.batch_size, *net.input_shape), dtype=np.uint8),
             rng.integers(0, classes, settings.batch_size).astype(np.int64))
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    trainers = {p: _Trainer(net, settings, p, classes, workdir) for p in settings.precisions}
    for trainer in trainers.values():  # warm-up (tracing is in its first step); then as many steps as fit
        seconds = trainer.step(dataset)
        trainer.steps = max(1, min(settings.steps, int(settings.seconds / seconds)))
    seconds = _interleaved({p: (lambda t=t: t.step(dataset)) for p, t in trainers.items()}, settings.repeats)
    for policy, s in seconds.items():
        gflops = entry["train_gflops_per_step"] / s
        entry[policy] = {"ms_per_step": 1000 * s, "images_per_s": settings.batch_size / s, "gflops": gflops,
                         "ceiling_fraction": gflops / ceilings[policy], "steps_per_repeat": trainers[policy].steps}
    timed = [p for p in settings.precisions if p in entry]
    entry["_model"] = trainers[timed[0]].model
    timings = f"  {net.label}: " + ", ".join(f"{p} {entry[p]['ms_per_step']:.1f} ms/step" for p in timed)
    if not decide_auto:
        log(timings)
        return entry
    config = _config(net, settings, "auto")
    spec = spec_lib.parse_spec(config.net)
    choice = precision_lib.auto(
        train.model_key(config, spec, net.input_shape, classes),
        measure=lambda: train.measure_bf16_speedup(config, spec, net.input_shape, classes, steps=1000),
        cache_path=None)
    entry["auto"], entry["auto_reason"] = choice.policy, choice.reason
    if choice.policy in timed and len(timed) > 1:
        best = max(entry[p]["images_per_s"] for p in timed)
        entry["auto_of_best"] = entry[choice.policy]["images_per_s"] / best
    log(timings + f"; auto {choice.policy}")
    return entry


def fixed_cost(nets, policy):
    """Least-squares `step seconds = fixed + train GFLOP per step / rate` over the nets timed in `policy`."""
    points = [(n["train_gflops_per_step"], n[policy]["ms_per_step"]) for n in nets if policy in n]
    if len(points) < 2 or len({x for x, _ in points}) < 2:
        return None
    x, y = np.array(points).T
    slope, intercept = np.polyfit(x, y, 1)
    predicted = intercept + slope * x
    r2 = 1 - ((y - predicted) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12)
    return {"fixed_ms_per_step": float(intercept), "marginal_gflops": float(1000 / slope) if slope > 0 else None,
            "r2": float(r2), "nets": len(points)}


def run(settings: Settings, log=print):
    """Runs every measurement; returns the `--json` dict."""
    nets = expand_nets(settings.nets, settings.width)
    out = {"settings": dataclasses.asdict(settings), "tensorflow": tf.__version__,
           "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                       "cpus": os.cpu_count()}}
    from tinyresnet import onednn
    out["onednn"] = onednn.is_enabled()
    model_name, flags = precision_lib.cpu_info()
    out["cpu"] = model_name
    out["cpu_bf16_flags"] = sorted(f for f in flags if f in precision_lib.BF16_FLAGS)
    log("ceiling: matmul ...")
    dtypes = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16}
    ceilings = {p: matmul_ceiling(dtypes[p], settings.matmul_sizes) for p in settings.precisions}
    for policy, key in (("float32", "ceiling_gflops_fp32"), ("mixed_bfloat16", "ceiling_gflops_bf16")):
        if policy in ceilings:
            out[key] = ceilings[policy]
    log(f"training: {len(nets)} nets x {', '.join(settings.precisions)}, batch {settings.batch_size} ...")
    out["nets"] = []
    with tempfile.TemporaryDirectory() as workdir:
        for i, net in enumerate(nets):
            out["nets"].append(time_net(net, settings, ceilings, os.path.join(workdir, str(i)), log))
    first = out["nets"][0].pop("_model")
    for entry in out["nets"][1:]:
        entry.pop("_model")
    out["fixed_cost"] = {p: fixed_cost(out["nets"], p) for p in settings.precisions}
    if settings.data:
        out.update(_pipeline(settings, nets[0], log))
    out.update(_serving(settings, first, nets[0].input_shape, log))
    return out


def _pipeline(settings, net, log):
    log("pipeline: decode + cache ...")
    start = time.perf_counter()
    arrays, layout = data_lib.load_tiny_imagenet_arrays(settings.data, splits=("train",))
    decode_seconds = time.perf_counter() - start
    split = arrays["train"]
    result = {"decode_cache_ips": len(split.labels) / decode_seconds, "pipeline_images": len(split.labels)}
    if tuple(net.input_shape) != split.images.shape[1:]:
        log(f"pipeline: {net.label}'s input {net.input_shape} differs from the data's; training figures skipped")
        return result
    epoch = data_lib.make_dataset(split.images, split.labels, settings.batch_size, training=True,
                                  augment=PaperAugment(seed=0))
    log("pipeline: one augmented epoch from cache, no model ...")
    seconds = median_seconds(lambda: [None for _ in epoch], max(1, settings.repeats // 2))
    result["augmented_epoch_ips"] = len(split.labels) // settings.batch_size * settings.batch_size / seconds
    log("pipeline: training float32, real pipeline vs in memory ...")
    in_memory = tf.data.Dataset.from_tensors((split.images[:settings.batch_size],
                                              split.labels[:settings.batch_size].astype(np.int64))).repeat()
    classes = spec_lib.parse_spec(net.spec)[-1].units
    with tempfile.TemporaryDirectory() as workdir:
        trainer = _Trainer(net, settings, "float32", classes, workdir)
        trainer.steps = settings.steps
        seconds = _interleaved({"memory": lambda: trainer.step(in_memory),
                                "pipeline": lambda: trainer.step(epoch.repeat())}, settings.repeats)
    result["pipeline_ips"] = settings.batch_size / seconds["pipeline"]
    result["pipeline_memory_ips"] = settings.batch_size / seconds["memory"]
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
