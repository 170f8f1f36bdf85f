import json

import pytest

from fixtures import tiny_config
from tinyresnet import precision, train
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
    monkeypatch.setattr(precision, "_CHOICE", None)
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", {"avx512_bf16"}))
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: calls.append(1) or 1.8)
    cache = tmp_path / "precision.json"
    assert precision.auto(str(cache)).policy == "mixed_bfloat16"
    monkeypatch.setattr(precision, "_CHOICE", None)  # a new process
    assert precision.auto(str(cache)).policy == "mixed_bfloat16"
    assert calls == [1] and len(json.loads(cache.read_text())) == 1


def _stub_machine(monkeypatch, calls):
    monkeypatch.setattr(precision, "_CHOICE", None)
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", {"avx512_bf16"}))
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda: calls.append(1) or 1.8)


def test_a_cache_that_is_not_a_mapping_is_measured_again_and_rewritten(tmp_path, monkeypatch):
    calls = []
    _stub_machine(monkeypatch, calls)
    cache = tmp_path / "precision.json"
    cache.write_text("[]")
    assert precision.auto(str(cache)).policy == "mixed_bfloat16"
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
    precision.auto(str(cache))
    (key,) = json.loads(cache.read_text())
    cache.write_text(json.dumps({key: entry, "other machine": {"policy": "float32", "reason": "kept"}}))
    monkeypatch.setattr(precision, "_CHOICE", None)  # a new process
    choice = precision.auto(str(cache))
    assert (choice.policy, choice.speedup) == ("mixed_bfloat16", 1.8)
    assert calls == [1, 1]
    rewritten = json.loads(cache.read_text())
    assert rewritten[key]["policy"] == "mixed_bfloat16" and rewritten[key]["speedup"] == 1.8
    assert rewritten["other machine"] == {"policy": "float32", "reason": "kept"}


def test_a_valid_cache_entry_without_a_speedup_is_used(tmp_path, monkeypatch):
    calls = []
    _stub_machine(monkeypatch, calls)
    cache = tmp_path / "precision.json"
    precision.auto(str(cache))
    (key,) = json.loads(cache.read_text())
    cache.write_text(json.dumps({key: {"policy": "float32", "reason": "edited", "speedup": None}}))
    monkeypatch.setattr(precision, "_CHOICE", None)
    assert precision.auto(str(cache)) == Choice("float32", "edited", None)
    assert calls == [1]


def test_explicit_precision_always_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "auto", lambda: pytest.fail("auto consulted"))
    assert precision.resolve("float32").policy == "float32"
    assert precision.resolve("mixed_bfloat16", str(tmp_path)).policy == "mixed_bfloat16"


def test_auto_trains_in_the_chosen_policy_records_it_and_keeps_it_on_resume(tmp_path, folder_zip, monkeypatch,
                                                                              capsys):
    run = tmp_path / "run"
    monkeypatch.setattr(precision, "auto", lambda: Choice("mixed_bfloat16", "stub: bf16 faster", 1.9))
    results = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, epochs=2, verbose=2), str(run))
    assert capsys.readouterr().out.startswith("precision: mixed_bfloat16 (stub: bf16 faster)")
    assert results["precision"] == "mixed_bfloat16"
    assert json.loads((run / "config.json").read_text())["precision"] == "mixed_bfloat16"
    import keras
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert model.get_layer("conv1_conv").compute_dtype == "bfloat16"
    # Another machine (or a changed cache) now says float32: the run keeps the policy it started with.
    monkeypatch.setattr(precision, "auto", lambda: Choice("float32", "stub: bf16 slower"))
    again = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, epochs=2), str(run))
    assert again["precision"] == "mixed_bfloat16"
    fresh = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1), str(tmp_path / "other"))
    assert fresh["precision"] == "float32"
