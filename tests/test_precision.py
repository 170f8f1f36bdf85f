import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from fixtures import TINY_SPEC, stop_before_epoch, tiny_config
from tinyresnet import export, precision, runs, saving, spec, train
from tinyresnet.precision import Choice, decide


def _never():
    pytest.fail("measured where the flags already decide")


def test_a_cpu_without_bf16_instructions_keeps_float32_without_measuring():
    choice = decide([], {"avx2", "avx512f", "avx512_vnni"}, _never)
    assert choice.policy == "float32" and "emulated" in choice.reason


@pytest.mark.parametrize("speedup, policy", [(1.9, "mixed_bfloat16"), (1.2, "mixed_bfloat16"),
                                              (1.19, "float32"), (0.35, "float32")])
def test_a_cpu_with_bf16_decides_by_the_measurement(speedup, policy):
    choice = decide([], {"avx2", "avx512_bf16"}, lambda: speedup)
    assert choice.policy == policy and choice.speedup == speedup
    assert decide([], {"amx_bf16"}, lambda: speedup).policy == policy


def test_gpus_choose_by_compute_capability():
    assert decide([(9, 0)], set(), _never).policy == "mixed_bfloat16"
    assert decide([(7, 5)], set(), _never).policy == "mixed_float16"
    assert decide([(8, 0), (7, 0)], set(), _never).policy == "mixed_float16"


def test_the_answer_is_cached_per_machine(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "_CHOICES", {})
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", {"avx512_bf16"}))
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: calls.append(1) or 1.8)
    cache = tmp_path / "precision.json"
    assert precision.auto(cache_path=str(cache)).policy == "mixed_bfloat16"
    monkeypatch.setattr(precision, "_CHOICES", {})  # a new process
    assert precision.auto(cache_path=str(cache)).policy == "mixed_bfloat16"
    assert calls == [1] and len(json.loads(cache.read_text())) == 1


def _stub_machine(monkeypatch, calls):
    monkeypatch.setattr(precision, "_CHOICES", {})
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", {"avx512_bf16"}))
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: calls.append(1) or 1.8)


def test_a_cache_that_is_not_a_mapping_is_measured_again_and_rewritten(tmp_path, monkeypatch):
    calls = []
    _stub_machine(monkeypatch, calls)
    cache = tmp_path / "precision.json"
    cache.write_text("[]")
    assert precision.auto(cache_path=str(cache)).policy == "mixed_bfloat16"
    assert calls == [1]
    (entry,) = json.loads(cache.read_text()).values()
    assert entry["policy"] == "mixed_bfloat16" and entry["speedup"] == 1.8


@pytest.mark.parametrize("entry", [
    {"policy": "float32"},  # no reason
    {"policy": "float64", "reason": "edited"},
    {"policy": "float32", "reason": 3},
    {"policy": "float32", "reason": "edited", "speedup": "fast"},
    {"policy": "float32", "reason": "edited", "speedup": True},
    {"policy": "float32", "reason": "edited", "cores": 4},
    "float32",
    None,
])
def test_a_cache_entry_that_is_not_a_valid_choice_is_measured_again_and_rewritten(tmp_path, monkeypatch, entry):
    calls = []
    _stub_machine(monkeypatch, calls)
    cache = tmp_path / "precision.json"
    precision.auto(cache_path=str(cache))
    (key,) = json.loads(cache.read_text())
    cache.write_text(json.dumps({key: entry, "other machine": {"policy": "float32", "reason": "kept"}}))
    monkeypatch.setattr(precision, "_CHOICES", {})  # a new process
    choice = precision.auto(cache_path=str(cache))
    assert (choice.policy, choice.speedup) == ("mixed_bfloat16", 1.8)
    assert calls == [1, 1]
    rewritten = json.loads(cache.read_text())
    assert rewritten[key]["policy"] == "mixed_bfloat16" and rewritten[key]["speedup"] == 1.8
    assert rewritten["other machine"] == {"policy": "float32", "reason": "kept"}


def test_a_valid_cache_entry_without_a_speedup_is_used(tmp_path, monkeypatch):
    calls = []
    _stub_machine(monkeypatch, calls)
    cache = tmp_path / "precision.json"
    precision.auto(cache_path=str(cache))
    (key,) = json.loads(cache.read_text())
    cache.write_text(json.dumps({key: {"policy": "float32", "reason": "edited", "speedup": None}}))
    monkeypatch.setattr(precision, "_CHOICES", {})
    assert precision.auto(cache_path=str(cache)) == Choice("float32", "edited", None)
    assert calls == [1]


def test_explicit_precision_always_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "auto", lambda *a, **k: pytest.fail("auto consulted"))
    assert precision.resolve("float32").policy == "float32"
    assert precision.resolve("mixed_bfloat16", str(tmp_path)).policy == "mixed_bfloat16"


@pytest.mark.slow
def test_auto_trains_in_the_chosen_policy_records_it_and_keeps_it_on_resume(tmp_path, folder_zip, monkeypatch,
                                                                              capsys):
    run = tmp_path / "run"
    monkeypatch.setattr(precision, "auto", lambda *a, **k: Choice("mixed_bfloat16", "stub: bf16 faster", 1.9))
    results = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, epochs=2, verbose=2), str(run))
    assert capsys.readouterr().out.startswith("precision: mixed_bfloat16 (stub: bf16 faster)")
    assert (results["precision"], results["precision_reason"]) == ("mixed_bfloat16", "stub: bf16 faster")
    assert json.loads((run / "config.json").read_text())["precision"] == "mixed_bfloat16"
    import keras
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert model.get_layer("conv1_conv").compute_dtype == "bfloat16"
    # Another machine (or a changed cache) now says float32: the run keeps the policy it started with.
    monkeypatch.setattr(precision, "auto", lambda *a, **k: Choice("float32", "stub: bf16 slower"))
    again = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, epochs=2), str(run))
    assert (again["precision"], again["precision_reason"]) == ("mixed_bfloat16", "auto, kept from the run's start")
    fresh = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1), str(tmp_path / "other"))
    assert fresh["precision"] == "float32"


@pytest.mark.parametrize("speedup, policy", [(1.2, "mixed_bfloat16"), (1.19, "float32")])
def test_auto_decides_per_model_at_the_boundary_and_caches_each_model(tmp_path, monkeypatch, speedup, policy):
    calls = []
    _stub_machine(monkeypatch, calls)
    cache = tmp_path / "precision.json"
    small = precision.auto("small net", measure=lambda: calls.append("small") or speedup, cache_path=str(cache))
    large = precision.auto("large net", measure=lambda: calls.append("large") or 1.9, cache_path=str(cache))
    assert (small.policy, large.policy) == (policy, "mixed_bfloat16")
    assert "training of this model" in small.reason and calls == ["small", "large"]
    monkeypatch.setattr(precision, "_CHOICES", {})  # a new process: both come from the cache
    assert precision.auto("small net", measure=lambda: pytest.fail("measured again"),
                          cache_path=str(cache)).policy == policy
    assert len(json.loads(cache.read_text())) == 2


def _bf16_cpu(monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "_CHOICES", {})
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", {"avx512_bf16"}))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))


def test_a_run_with_auto_measures_its_own_model(tmp_path, folder_zip, monkeypatch):
    _bf16_cpu(monkeypatch, tmp_path)
    seen = []

    def measure(config, spec, shape, classes, steps, strategy=None, budget=15.0):
        seen.append((train.model_key(config, spec, shape, classes), steps))
        return 1.19  # just below the boundary: float32
    monkeypatch.setattr(train, "measure_bf16_speedup", measure)
    results = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, precision="auto"),
                                       str(tmp_path / "run"))
    assert results["precision"] == "float32"
    ((key, steps),) = seen
    assert key.startswith("Conv 8") and "batch 8" in key and "16x16x3" in key and steps == 1


@pytest.mark.slow  # trains a run; the rule itself: test_a_cpu_without_bf16_instructions_keeps_float32_without_measuring
def test_auto_on_a_cpu_without_bf16_is_float32_without_measuring(tmp_path, folder_zip, monkeypatch):
    _bf16_cpu(monkeypatch, tmp_path)
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", {"avx2"}))
    monkeypatch.setattr(train, "measure_bf16_speedup", lambda *a, **k: pytest.fail("measured"))
    results = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, precision="auto"),
                                       str(tmp_path / "run"))
    assert results["precision"] == "float32"


def test_the_measurement_times_both_precisions_of_the_real_step_within_its_allowance():
    import time
    from fixtures import TINY_SPEC
    from tinyresnet import spec
    config = tiny_config("unused", batch_size=8)
    start = time.perf_counter()
    ratio = train.measure_bf16_speedup(config, spec.parse_spec(TINY_SPEC), (16, 16, 3), 3, steps=1, budget=0.0)
    assert ratio > 0 and time.perf_counter() - start < 60  # one step each after tracing, not a loop


def test_mixed_float16_trains_a_fixed_batch_with_loss_scaling_and_float32_statistics_and_loss():
    # What precision="auto" gives a GPU older than compute capability 8.0, checked on the CPU.
    config = tiny_config("", precision="mixed_float16", augment_on="model", jit_compile="false")
    model, trainer = train.build_trainer(config, spec.parse_spec(TINY_SPEC), (16, 16, 3), 3, steps=10)
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8), rng.integers(0, 3, 8)
    losses = [trainer.train_on_batch(x, y, return_dict=True)["loss"] for _ in range(3)]
    assert np.isfinite(losses).all() and float(trainer.optimizer.dynamic_scale) == 2.0 ** 15  # no overflow
    assert model.get_layer("conv1_conv").compute_dtype == "float16" and model.output.dtype == "float32"
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 3
    for layer in norms:
        assert layer.moving_mean.dtype == layer.moving_variance.dtype == "float32"
        assert np.abs(layer.moving_mean.numpy()).max() > 0  # updated by the steps
    step = tf.function(trainer.train_step).get_concrete_function(
        (tf.TensorSpec([None, 16, 16, 3], tf.uint8), tf.TensorSpec([None], tf.int64)))
    assert step.structured_outputs["loss"].dtype == tf.float32
    # Loss scaling is active: a scale at which the float16 gradients overflow skips the step and halves.
    before = [w.numpy() for w in trainer.trainable_weights]
    trainer.optimizer.dynamic_scale.assign(2.0 ** 40)
    trainer.train_on_batch(x, y)
    assert float(trainer.optimizer.dynamic_scale) == 2.0 ** 39
    for a, b in zip(before, trainer.trainable_weights):
        np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.slow  # two sittings and an export (10 s); mixed_float16 steps are checked by the test above
def test_mixed_float16_resumes_without_losing_an_epoch_and_exports(tmp_path, folder_zip):
    run = tmp_path / "run"
    config = tiny_config(folder_zip, precision="mixed_float16", steps_per_epoch=2, epochs=2, jit_compile="false")
    with pytest.raises(train.Interrupted):
        train.train_and_evaluate(config, str(run), callbacks=(stop_before_epoch(1),))
    assert runs.resume_epoch(str(run)) == 1
    results = train.train_and_evaluate(config, str(run))
    assert [r["epoch"] for r in runs.read_history(str(run))] == [0, 1] and results["epochs"] == 2
    assert results["precision"] == "mixed_float16" and np.isfinite(results["val_loss"])
    # A checkpoint loads with its loss-scaled optimizer and that optimizer's state (Keras alone drops both).
    last = saving.load_model(str(run / "checkpoints" / "last.keras"))
    assert isinstance(last.optimizer, keras.optimizers.LossScaleOptimizer) and int(last.optimizer.iterations) == 4
    assert keras.config.dtype_policy().name == "float32"
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert model.get_layer("conv1_conv").compute_dtype == "float16"
    served = tf.saved_model.load(export.export_run(str(run), str(tmp_path / "exported")))
    images = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3)).astype("float32")
    probabilities = served.signatures["serving_default"](images=tf.constant(images))["probabilities"]
    assert probabilities.dtype == tf.float32
    np.testing.assert_allclose(probabilities.numpy(), tf.nn.softmax(model(images)).numpy(), atol=1e-6)
