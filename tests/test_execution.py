"""`augment_on="auto"` and `jit_compile="auto"`, with the GPU detection stubbed at its boundary."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from fixtures import stop_before_epoch, tiny_config
from tinyresnet import execution, export, runs, train
from tinyresnet import config as config_lib
from tinyresnet.config import Config, ConfigError, override


@pytest.fixture
def gpu(monkeypatch):
    """`gpu(True)` makes this process see a GPU as far as the auto choices go."""
    return lambda visible: monkeypatch.setattr(execution, "gpu_visible", lambda: visible)


def test_auto_places_the_augmentation_on_a_visible_gpu_else_in_tf_data(gpu):
    gpu(True)
    assert execution.resolve_augment_on("auto").value == "model"
    assert "a GPU is visible" in execution.resolve_augment_on("auto").reason
    gpu(False)
    assert execution.resolve_augment_on("auto") == execution.Choice(
        "data", "auto: no GPU, so the CPU augments in tf.data, beside the training step")
    assert execution.resolve_augment_on("model") == execution.Choice("model", "asked for")


def test_auto_compiles_with_xla_on_a_gpu_only_and_not_under_mirrored(gpu):
    gpu(True)
    assert execution.resolve_jit_compile("auto").value == "true"
    assert execution.resolve_jit_compile("auto", "mirrored").value == "false"
    gpu(False)
    assert execution.resolve_jit_compile("auto").value == "false"
    assert "10x slower" in execution.resolve_jit_compile("auto").reason
    assert execution.resolve_jit_compile("true") == execution.Choice("true", "asked for")


def test_a_run_keeps_the_place_it_started_with_and_an_older_run_augmented_in_tf_data(tmp_path, gpu):
    gpu(True)
    (tmp_path / "config.json").write_text(json.dumps({"augment_on": "model"}))
    gpu(False)
    assert execution.resolve_augment_on("auto", str(tmp_path)) == execution.Choice(
        "model", "auto, kept from the run's start")
    gpu(True)
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 3}))  # written before augment_on existed
    assert execution.resolve_augment_on("auto", str(tmp_path)).value == "data"
    (tmp_path / "config.json").write_text(json.dumps({"augment_on": "auto"}))
    assert execution.resolve_augment_on("auto", str(tmp_path)).value == "model"
    assert execution.resolve_augment_on("auto", str(tmp_path / "no run")).value == "model"


def test_jit_compile_reads_true_false_words_and_refuses_others():
    assert override(Config(), {"jit_compile": True}).jit_compile == "true"
    assert override(Config(), {"jit_compile": "off"}).jit_compile == "false"
    assert override(Config(), {"jit_compile": "auto"}).jit_compile == "auto"
    with pytest.raises(ConfigError, match=r"jit_compile: expected one of auto, true, false, got 'xla'"):
        override(Config(), {"jit_compile": "xla"})
    with pytest.raises(ConfigError, match=r"augment_on: expected one of auto, data, model, got 'gpu'"):
        override(Config(), {"augment_on": "gpu"})


@pytest.mark.slow  # trains two runs, or one in two sittings, under XLA
def test_a_visible_gpu_trains_with_the_augmentation_in_the_model_under_xla_and_a_resume_keeps_the_place(
        tmp_path, folder_zip, gpu, capsys):
    # With the GPU stubbed, XLA compiles the step for this CPU: augmentation, dropout and callbacks included.
    run, config = tmp_path / "run", tiny_config(folder_zip, steps_per_epoch=2, epochs=2, verbose=2)
    gpu(True)
    with pytest.raises(train.Interrupted):
        train.train_and_evaluate(config, str(run), callbacks=(stop_before_epoch(1),))
    out = capsys.readouterr().out
    assert "augment_on: model (auto: a GPU is visible" in out and "jit_compile: true (auto: a GPU is visible" in out
    saved = json.loads((run / "config.json").read_text())
    assert (saved["augment_on"], saved["jit_compile"]) == ("model", "true")
    assert [r["epoch"] for r in runs.read_history(str(run))] == [0]
    # Resumed without a GPU: the augmentation stays in the model (the same random stream), XLA is decided afresh.
    gpu(False)
    results = train.train_and_evaluate(config, str(run))
    assert (results["augment_on"], results["augment_on_reason"]) == ("model", "auto, kept from the run's start")
    assert (results["jit_compile"], results["jit_compile_reason"]) == ("false", execution.resolve_jit_compile(
        "auto").reason)
    assert results["precision_reason"] and results["epochs"] == 2 and np.isfinite(results["val_loss"])
    assert [r["epoch"] for r in runs.read_history(str(run))] == [0, 1]


def test_an_older_run_without_the_keys_resumes_augmenting_in_tf_data(tmp_path, folder_zip, gpu):
    run, config = tmp_path / "run", tiny_config(folder_zip, steps_per_epoch=1, jit_compile="false")  # no XLA: faster
    older = {k: v for k, v in config_lib.to_dict(config).items() if k not in ("augment_on", "jit_compile")}
    runs.start(str(run), {**older, "precision": "float32"})  # a run directory written before the keys existed
    gpu(True)
    results = train.train_and_evaluate(config, str(run))
    assert (results["augment_on"], results["augment_on_reason"]) == ("data", "auto, kept from the run's start")
    assert results["epochs"] == 1


class _StepLosses(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


@pytest.mark.slow  # trains two runs, or one in two sittings, under XLA
def test_jit_compile_gives_the_same_first_losses_and_an_export_that_serves_the_same(tmp_path, folder_zip):
    # No dropout, no augmentation: XLA draws other random numbers, so only a step without any compares exactly.
    losses = {}
    for jit_compile in ("false", "true"):
        losses[jit_compile] = _StepLosses()
        config = tiny_config(folder_zip, steps_per_epoch=3, block_dropout=0.0, augment=False,
                             precision="float32", jit_compile=jit_compile)
        results = train.train_and_evaluate(config, str(tmp_path / jit_compile), callbacks=(losses[jit_compile],))
        assert results["jit_compile"] == jit_compile and results["jit_compile_reason"] == "asked for"
    assert len(losses["true"].losses) == 3 and all(np.isfinite(losses["true"].losses))
    np.testing.assert_allclose(losses["true"].losses, losses["false"].losses, rtol=1e-4)
    # The export of the XLA-trained model serves what its weights compute without XLA.
    served = tf.saved_model.load(export.export_run(str(tmp_path / "true"), str(tmp_path / "exported")))
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype("float32")
    probabilities = served.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    model = keras.saving.load_model(tmp_path / "true" / "model.keras", compile=False)
    np.testing.assert_allclose(probabilities, tf.nn.softmax(model(images, training=False)).numpy(), atol=1e-6)
