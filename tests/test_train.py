import json
import os
import signal
import subprocess
import sys
import threading

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import copy_run
from fixtures import TINY_SPEC, class_folder_files, tiny_config, write_zip
from tinyresnet import runs, train
from tinyresnet.config import Config, ConfigError
from tinyresnet.runs import RunDirError, read_history

def test_one_step_end_to_end(tiny_run):
    run, results = tiny_run  # train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1), run)
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == [0] and history["images"].tolist() == [8]
    assert results["epochs"] == 1 and results["num_classes"] == 3 and results["layers"] == 4
    assert results["skipped_images"] == 0


def test_one_epoch_writes_the_whole_run_directory(tmp_path, tiny_zip):
    run = tmp_path / "run"
    cfg = tiny_config(tiny_zip, dataset="tiny_imagenet", batch_size=4, epochs=2, augment_on="model")
    results = train.train_and_evaluate(cfg, str(run))
    for name in ("config.json", "spec.txt", "summary.txt", "class_names.json", "history.csv", "model.keras",
                 "results.json", "curves.png", "checkpoints/best.keras", "checkpoints/last.keras"):
        assert (run / name).exists(), name
    assert os.listdir(run / "tensorboard")
    history = pd.read_csv(run / "history.csv")
    assert list(history.columns[:9]) == ["epoch", "loss", "top1", "top5", "val_loss", "val_top1", "val_top5",
                                         "lr", "seconds"]
    assert history["epoch"].tolist() == [0, 1] and history["images"].tolist() == [12, 12]
    saved = json.loads((run / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    for key in ("val_top1", "val_top5", "best_val_top1", "train_top1", "gap", "params", "layers", "epochs",
                "images_per_sec"):
        assert key in saved
    assert 0 <= saved["val_top1"] <= 1 and saved["gap"] == pytest.approx(saved["train_top1"] - saved["val_top1"])
    assert saved["best_val_top1"] >= saved["val_top1"] - 1e-6
    assert json.loads((run / "class_names.json").read_text()) == ["alpha", "beta", "gamma"]
    # The saved model is the inference model: no augmentation layer inside.
    import warnings
    with warnings.catch_warnings():
        # "Skipping variable loading for optimizer 'rm_sprop'" of model.keras; of the checkpoints, "... for
        # optimizer 'sgd', because it has 12 variables whereas the saved optimizer has 0 variables".
        warnings.simplefilter("error")
        model = keras.saving.load_model(run / "model.keras")
        last = keras.saving.load_model(run / "checkpoints" / "last.keras")
        best = keras.saving.load_model(run / "checkpoints" / "best.keras")
    assert model.output.shape == (None, 3) and "paper_augment" not in [l.name for l in model.layers]
    assert saved["params"] == model.count_params()
    # Issue 30, defect 5: with the augmentation in the model, model.keras held Keras' default RMSprop.
    assert type(model.optimizer) is type(last.optimizer) is type(best.optimizer) is keras.optimizers.SGD
    assert int(model.optimizer.iterations) == int(last.optimizer.iterations) == 6  # 2 epochs of 3 steps


def test_a_run_dir_of_another_config_is_refused_and_overwrite_removes_only_the_run_s_own_files(
        tmp_path, folder_zip, tiny_run):
    run = copy_run(tiny_run[0], tmp_path / "run")  # a finished run of tiny_config(folder_zip, steps_per_epoch=1)
    with pytest.raises(RunDirError, match=r"holds a run of a different config \(width: 1.0 -> 2.0\)"):
        train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, width=2.0), str(run))
    (run / "my_notes.txt").write_text("keep me")
    (run / "history.csv.tmp-99999").write_text("left by a killed write")
    results = train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, width=2.0), str(run),
                                       overwrite=True)
    assert results["epochs"] == 1
    assert (run / "my_notes.txt").read_text() == "keep me"
    assert not (run / "history.csv.tmp-99999").exists()
    assert json.loads((run / "config.json").read_text())["width"] == 2.0


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_state(tmp_path, folder_zip, monkeypatch):
    class Explodes(keras.optimizers.schedules.LearningRateSchedule):
        # Sane for the first epoch (4 steps), then a step size that overflows the weights.
        def __call__(self, step):
            return keras.ops.where(step < 4, 0.01, 1e38)

        def get_config(self):
            return {}

    monkeypatch.setattr(train, "make_optimizer", lambda config, steps: keras.optimizers.SGD(Explodes()))
    run = tmp_path / "run"
    with pytest.raises(train.TrainingDiverged, match=r"at epoch 1 step \d+$") as raised:
        train.train_and_evaluate(tiny_config(folder_zip, epochs=3, steps_per_epoch=4, precision="float32"), str(run))
    # Issue 30, defect 3: the remedy named a file that may not exist and float32 to a float32 run.
    assert raised.value.remedy == (f"its 1 finished epoch is kept in {run}; lower --learning_rate (it is 0.01), "
                                   "then rerun with --overwrite (which starts it afresh), or give another --run-dir")
    assert read_history(str(run / "history.csv"))[-1]["epoch"] == 0
    good = keras.saving.load_model(run / "checkpoints" / "last.keras", compile=False)
    assert all(np.isfinite(w).all() for w in good.get_weights())
    assert json.loads((run / "backup" / "state.json").read_text())["epoch"] == 1


class _ExplodesAtStep(keras.optimizers.schedules.LearningRateSchedule):
    """A sane step size, then one that overflows the weights at exactly step `at` (0-based)."""

    def __init__(self, at):
        self.at = at

    def __call__(self, step):
        return keras.ops.where(keras.ops.equal(step, self.at), float("inf"), 0.01)

    def get_config(self):
        return {"at": self.at}


@pytest.mark.parametrize("checkpoint_steps, at, where", [(0, 3, "end"), (2, 1, "step 1")])
def test_weights_broken_by_the_last_step_of_an_epoch_or_interval_are_never_saved(
        tmp_path, folder_zip, monkeypatch, checkpoint_steps, at, where):
    # The loss of step `at` is computed before its update, so it is finite; the
    # update breaks the weights just before the epoch end (or a mid-epoch backup).
    monkeypatch.setattr(train, "make_optimizer", lambda config, steps: keras.optimizers.SGD(_ExplodesAtStep(at)))
    run = tmp_path / "run"
    with pytest.raises(train.TrainingDiverged, match=f"at epoch 0 {where}"):
        train.train_and_evaluate(tiny_config(folder_zip, epochs=3, steps_per_epoch=4,
                                             checkpoint_steps=checkpoint_steps), str(run))
    assert read_history(str(run / "history.csv")) == []
    assert not (run / "checkpoints" / "last.keras").exists() and not (run / "checkpoints" / "best.keras").exists()
    state = runs.read_json(str(run / "backup" / "state.json"))
    assert state is None  # the only backups due were of broken weights, so none was written


def _train_command(data, run_dir, epochs):
    return [sys.executable, "-m", "tinyresnet.cli", f"--spec={TINY_SPEC}", "--dataset=folder", f"--data={data}",
            f"--run-dir={run_dir}", f"--epochs={epochs}", "--batch_size=4", "--warmup_epochs=0",
            "--validation_fraction=0.25", "--quiet"]


def _start_training(data, run_dir, epochs, stderr=subprocess.DEVNULL):
    """`tinyresnet-train` in a fresh process whose stdout is read line by line (unbuffered)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(_train_command(data, run_dir, epochs), env=env, stdout=subprocess.PIPE, stderr=stderr,
                            text=True)


def _wait_for_line(process, start, timeout=600):
    """Reads `process`'s stdout up to the first line that starts with `start` (what Keras prints as an epoch
    begins: `Epoch 3/6` once epochs 1 and 2 are written down and backed up); fails if the process ends first."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        for line in process.stdout:
            if line.startswith(start):
                return
    finally:
        timer.cancel()
    pytest.fail(f"the run ended (exit {process.wait()}) before printing {start!r}")


def _train_here(capsys, data, run_dir, epochs):
    """`_train_command`'s `tinyresnet-train` run in this process (a start of TensorFlow less than a process of its
    own): a `CompletedProcess` of its exit code and output."""
    from tinyresnet.cli import train_main
    capsys.readouterr()
    code = train_main(_train_command(data, run_dir, epochs)[3:])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(_train_command(data, run_dir, epochs), code, out.out, out.err)


@pytest.mark.slow
def test_killed_mid_run_resumes_without_losing_or_repeating_epochs(tmp_path, capsys):
    data = write_zip(tmp_path / "d.zip", class_folder_files(("a", "b", "c"), per_class=80, size=(32, 32)))
    run = tmp_path / "run"
    process = _start_training(data, run, 6)
    _wait_for_line(process, "Epoch 3/")  # inside the third epoch, the first two finished
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(read_history(str(run / "history.csv")))
    assert 2 <= done_before < 6, "the run must be killed mid-way"
    resumed = _train_here(capsys, data, run, 6)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    first = int(resumed.stdout.split("Epoch ")[1].split("/")[0])  # Keras prints epochs 1-based
    assert first - 1 >= done_before - 1 and first > 1
    epochs = [row["epoch"] for row in read_history(str(run / "history.csv"))]
    assert epochs == list(range(6))
    assert json.loads((run / "results.json").read_text())["epochs"] == 6


def test_cli_refuses_unknown_keys_and_lists_presets(capsys):
    from tinyresnet.cli import train_main
    assert train_main(["--epoch=3"]) == 2
    assert "unknown config key(s) epoch; valid keys:" in capsys.readouterr().err
    assert train_main(["--spec=Conv 8, Foo 2, FC 10", "--summary"]) == 2
    assert "item 2 ('Foo 2'): unknown layer" in capsys.readouterr().err
    assert train_main(["--list-presets"]) == 0
    assert "net6" in capsys.readouterr().out


def test_cli_summary_prints_counts(capsys):
    from tinyresnet.cli import train_main
    assert train_main(["--preset=net1", "--summary"]) == 0
    out = capsys.readouterr().out
    assert "layers:      15" in out and "parameters:  6,652,808" in out
    assert "GFLOPs:      1.789 forward per 64x64 image, 5.367 per training image" in out


@pytest.mark.slow
def test_ctrl_c_saves_and_exits_cleanly_then_resumes(tmp_path, capsys):
    data = write_zip(tmp_path / "d.zip", class_folder_files(("a", "b", "c"), per_class=80, size=(32, 32)))
    run = tmp_path / "run"
    process = _start_training(data, run, 4, stderr=subprocess.PIPE)
    _wait_for_line(process, "Epoch 2/")  # the first epoch finished
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "interrupted; the last finished epoch is backed up" in err
    assert (run / "checkpoints" / "interrupted.keras").exists()
    resumed = _train_here(capsys, data, run, 4)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [row["epoch"] for row in read_history(str(run / "history.csv"))] == list(range(4))


@pytest.fixture(scope="module")
def smoothed_run(folder_zip, tmp_path_factory):
    """`(run directory, results)` of a run under the mirrored strategy with label smoothing 0.1."""
    run = tmp_path_factory.mktemp("smoothed") / "run"
    cfg = tiny_config(folder_zip, steps_per_epoch=2, distribution="mirrored", label_smoothing=0.1)
    return run, train.train_and_evaluate(cfg, str(run))


def test_mirrored_strategy_and_label_smoothing(smoothed_run):
    run, results = smoothed_run
    assert results["epochs"] == 1 and 0 <= results["val_top1"] <= 1
    # The checkpoint carries the smoothed loss, and smoothing changes its value.
    trainer = keras.saving.load_model(run / "checkpoints" / "last.keras")
    loss = trainer.loss
    assert loss.label_smoothing == 0.1
    logits, labels = np.array([[4.0, 0.0, -2.0]]), np.array([0])
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    # With smoothing 0.1 over 3 classes the target is [0.933, 0.033, 0.033]: a larger loss.
    assert float(loss(labels, logits)) > float(plain) + 0.05


def test_the_smoothed_loss_is_registered_by_a_module_that_loading_a_model_imports_and_train_is_not():
    # What lets a fresh process load a smoothed checkpoint without tinyresnet.train (the slow test below
    # loads one in a fresh process): the class is registered where tinyresnet.models imports it from.
    from test_imports import imports_of, package_modules
    from tinyresnet.losses import SmoothedSparseCrossentropy
    assert keras.saving.get_registered_name(SmoothedSparseCrossentropy) == "tinyresnet>SmoothedSparseCrossentropy"
    assert type(train.classification_loss(0.1)) is SmoothedSparseCrossentropy
    modules, loaded, todo = package_modules(), set(), ["tinyresnet.models"]
    while todo:  # what `import tinyresnet.models` imports, at the top or inside functions
        module = todo.pop()
        if module not in loaded:
            loaded.add(module)
            todo += imports_of(module, modules) | {m for m in modules if module.startswith(m + ".")}  # and packages
    assert SmoothedSparseCrossentropy.__module__ in loaded and "tinyresnet.train" not in loaded


@pytest.mark.slow
def test_a_smoothed_model_loads_without_importing_train(smoothed_run):
    code = ("import sys, keras, tinyresnet.models; "
            f"m = keras.saving.load_model({str(smoothed_run[0] / 'checkpoints' / 'last.keras')!r}); "
            "assert 'tinyresnet.train' not in sys.modules; print(type(m.loss).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "SmoothedSparseCrossentropy"


@pytest.mark.slow  # two sittings; resuming from the backup: the resume test; a killed run: the slow kill test
def test_backup_survives_a_death_while_writing(tmp_path, folder_zip, monkeypatch):
    run = tmp_path / "run"
    cfg = tiny_config(folder_zip, epochs=2, steps_per_epoch=2)
    from tinyresnet.callbacks import AtomicBackup
    real_write = AtomicBackup._write
    calls = []

    def dies_on_the_second_backup(self, filepath):
        calls.append(filepath)
        if len(calls) == 2:  # epoch 1's backup: half a file, then the process "dies"
            open(filepath, "wb").write(b"half a file")
            raise KeyboardInterrupt
        return real_write(self, filepath)

    monkeypatch.setattr(AtomicBackup, "_write", dies_on_the_second_backup)
    with pytest.raises(train.Interrupted):
        train.train_and_evaluate(cfg, str(run))
    monkeypatch.undo()
    state = json.loads((run / "backup" / "state.json").read_text())
    assert state["epoch"] == 1 and (run / "backup" / state["weights"]).exists()
    results = train.train_and_evaluate(cfg, str(run))
    assert results["epochs"] == 2
    assert [row["epoch"] for row in read_history(str(run / "history.csv"))] == [0, 1]


def _interrupted_after_epoch_0_config(folder_zip):
    return tiny_config(folder_zip, epochs=2, steps_per_epoch=1)


@pytest.fixture(scope="module")
def interrupted_after_epoch_0(folder_zip, tmp_path_factory):
    """A run of `_interrupted_after_epoch_0_config` stopped (Ctrl-C) before its epoch 1: epoch 0 is backed up.
    Tests only read it; to change it, `copy_run` it first."""
    from fixtures import stop_before_epoch
    run = tmp_path_factory.mktemp("interrupted") / "run"
    with pytest.raises(train.Interrupted):
        train.train_and_evaluate(_interrupted_after_epoch_0_config(folder_zip), str(run),
                                 callbacks=[stop_before_epoch(1)])
    return run


@pytest.mark.parametrize("damage", ["truncated", "empty", "deleted"])
def test_a_damaged_backup_is_refused_in_one_line_naming_it_and_its_remedy_works(tmp_path, folder_zip, damage,
                                                                                interrupted_after_epoch_0):
    # From the hunt of the .npz backup: a damaged backup (a disk fault) ended the command in a traceback of numpy's
    # or h5py's that named no file, in this version and the one before.
    run = copy_run(interrupted_after_epoch_0, tmp_path / "run")
    cfg = _interrupted_after_epoch_0_config(folder_zip)
    backup = run / "backup" / json.loads((run / "backup" / "state.json").read_text())["weights"]
    if damage == "deleted":
        backup.unlink()
    else:
        backup.write_bytes(backup.read_bytes()[:backup.stat().st_size // 2] if damage == "truncated" else b"")
    with pytest.raises(RunDirError) as refused:
        train.train_and_evaluate(cfg, str(run))
    assert str(refused.value).startswith(f"{backup}: the run's backup cannot be read (")
    assert str(refused.value).endswith(f"delete {run / 'backup'} to train the run again from its first epoch")
    if damage == "truncated":  # the remedy, the same whatever the damage
        import shutil
        shutil.rmtree(run / "backup")  # as the message says
        assert train.train_and_evaluate(cfg, str(run))["epochs"] == 2
        assert [row["epoch"] for row in read_history(str(run / "history.csv"))] == [0, 1]


def test_a_backup_s_temporary_file_left_by_a_killed_writer_is_removed_and_a_live_one_s_kept(
        tmp_path, folder_zip, interrupted_after_epoch_0):
    # From the hunt of the .npz backup: a process killed while writing its backup left `.tmp-<pid>...` for good.
    run = copy_run(interrupted_after_epoch_0, tmp_path / "run")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run / "backup" / f".tmp-{gone.pid}.npz").write_bytes(b"half a file")
    (run / "backup" / f".tmp-{gone.pid}.weights.h5").write_bytes(b"half a file")  # an earlier version's
    (run / "backup" / f"state.json.tmp-{gone.pid}-1").write_bytes(b"{")  # runs.write_json's
    live = run / "backup" / f".tmp-{os.getppid()}.npz"  # a writer that is still at it
    live.write_bytes(b"")
    train.train_and_evaluate(_interrupted_after_epoch_0_config(folder_zip), str(run))
    assert sorted(os.listdir(run / "backup")) == [live.name, "backup-2.npz", "state.json"]


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path, folder_zip):
    project = tmp_path / "my_project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"is not a tinyresnet run directory .* nothing was deleted"):
        train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1), str(project), overwrite=True)
    assert (project / "notes.txt").read_text() == "mine"


@pytest.mark.slow  # a second sitting of a run; test_config checks that these keys do not define a run
def test_execution_keys_may_change_on_a_rerun(tmp_path, folder_zip, tiny_run):
    run = str(copy_run(tiny_run[0], tmp_path / "run"))  # a finished run of tiny_config(folder_zip, steps_per_epoch=1)
    again = tiny_config(folder_zip, epochs=1, steps_per_epoch=1, verbose=2, checkpoint_steps=1,
                        file_cache=True, cache_dir=str(tmp_path / "cache"))
    assert train.train_and_evaluate(again, run)["epochs"] == 1
    assert json.loads((tmp_path / "run" / "config.json").read_text())["verbose"] == 2


def test_a_bad_data_path_leaves_no_run_directory(tmp_path, folder_zip):
    from tinyresnet.data import DataError
    run = tmp_path / "run"
    with pytest.raises(DataError, match="no such file or folder"):
        train.train_and_evaluate(tiny_config(str(tmp_path / "typo.zip"), steps_per_epoch=1), str(run))
    with pytest.raises(ConfigError, match="batch_size 512 exceeds the 36 training images"):
        train.train_and_evaluate(tiny_config(folder_zip, batch_size=512), str(run))
    assert not run.exists()  # so a run there starts as a fresh one does (tiny_run is one)


def _whole_config(folder_zip):
    return tiny_config(folder_zip, epochs=3, steps_per_epoch=3, learning_rate=0.05, warmup_epochs=1)


@pytest.fixture(scope="module")
def whole(folder_zip, tmp_path_factory):
    """`(run directory, results)` of `_whole_config` trained without a stop (tests only read it)."""
    run = tmp_path_factory.mktemp("whole") / "whole"
    return run, train.train_and_evaluate(_whole_config(folder_zip), str(run))


def _keras_h5_backups(self, path):
    """How backups were written before they were `.npz` files: Keras' `save_weights`."""
    self.model.save_weights(path, overwrite=True)


@pytest.mark.parametrize("backup", ["npz", pytest.param("keras weights.h5 of earlier versions",
                                                         marks=pytest.mark.slow)])  # the same path, a format apart
def test_an_interrupted_run_resumes_to_the_same_weights_optimizer_and_schedule(tmp_path, folder_zip, monkeypatch,
                                                                               whole, backup):
    cfg = _whole_config(folder_zip)
    real = train.make_callbacks
    if backup != "npz":  # a run of an earlier version resumed by this one
        from tinyresnet import callbacks
        monkeypatch.setattr(callbacks.AtomicBackup, "SUFFIX", ".weights.h5")
        monkeypatch.setattr(callbacks.AtomicBackup, "_write", _keras_h5_backups)

    def stops_before_epoch_2(config, workdir):
        class Stop(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 2:
                    raise KeyboardInterrupt
        return real(config, workdir) + [Stop()]

    monkeypatch.setattr(train, "make_callbacks", stops_before_epoch_2)
    with pytest.raises(train.Interrupted):
        train.train_and_evaluate(cfg, str(tmp_path / "split"))
    monkeypatch.undo()
    assert runs.resume_epoch(str(tmp_path / "split")) == 2
    written = "backup-2" + (".npz" if backup == "npz" else ".weights.h5")
    assert sorted(os.listdir(tmp_path / "split" / "backup")) == [written, "state.json"]
    train.train_and_evaluate(cfg, str(tmp_path / "split"))

    whole_dir, whole = whole[0], keras.saving.load_model(whole[0] / "checkpoints" / "last.keras")
    split = keras.saving.load_model(tmp_path / "split" / "checkpoints" / "last.keras")
    # The learning-rate step (optimizer iterations), the momentum slots and the weights all
    # continue as if the run had never stopped; the data order of epoch 2 is replayed too.
    assert int(split.optimizer.iterations) == int(whole.optimizer.iterations) == 9
    for a, b in zip(whole.optimizer.variables, split.optimizer.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    for a, b in zip(whole.get_weights(), split.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    lr_whole = [r["lr"] for r in read_history(str(whole_dir / "history.csv"))]
    lr_split = [r["lr"] for r in read_history(str(tmp_path / "split" / "history.csv"))]
    np.testing.assert_allclose(lr_split, lr_whole, rtol=1e-6)


@pytest.mark.parametrize("augment_on", ["data", "model"])
def test_a_fresh_run_traces_its_training_step_once(tmp_path, folder_zip, monkeypatch, augment_on):
    # Keras built the optimizer's slots inside the first trace of the step, and TensorFlow, having seen variables
    # created there, traced the step again: about 1 s of every fresh run of a small net (a trial, a test). Two
    # on the old code.
    traces = []
    step = keras.Model.train_step

    def counted(self, data):
        traces.append(self.name)  # Python runs the step only while TensorFlow traces it
        return step(self, data)
    monkeypatch.setattr(keras.Model, "train_step", counted)
    train.train_and_evaluate(tiny_config(folder_zip, epochs=2, steps_per_epoch=1, augment_on=augment_on),
                             str(tmp_path / "run"))
    assert len(traces) == 1, traces


def test_multi_worker_is_refused_with_the_way_to_scale_out(tmp_path, folder_zip):
    with pytest.raises(ConfigError, match=r"keras-team/keras#20585.*tinyresnet-tune"):
        train.train_and_evaluate(Config(**{**vars(tiny_config(folder_zip)), "distribution": "multi_worker"}),
                                 str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_the_final_numbers_equal_a_fresh_evaluation_of_the_saved_model(folder_zip, whole):
    run, results = whole  # 3 epochs of 3 steps
    model = keras.saving.load_model(run / "model.keras", compile=False)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1")])
    datasets = train.load_datasets(tiny_config(folder_zip))
    fresh = model.evaluate(datasets.batches("validation", 64), verbose=0, return_dict=True)
    assert results["val_top1"] == pytest.approx(fresh["top1"], abs=1e-6)
    assert results["val_loss"] == pytest.approx(fresh["loss"], rel=1e-4)
    assert results["train_eval_images"] == datasets.num_train == 36
    assert set(results["phase_seconds"]) == {"data", "build", "fit", "save_model", "evaluate", "plot"}


def test_ctrl_c_is_taken_at_a_batch_end_and_a_finished_epoch_is_kept(tmp_path, folder_zip, monkeypatch):
    real = train.make_callbacks

    def sends_sigint(config, workdir):
        class Sender(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if self.params and batch == 1 and len(read_history(str(tmp_path / "run" / "history.csv"))) == 1:
                    os.kill(os.getpid(), signal.SIGINT)  # in epoch 1; the handler only sets a flag
        return [Sender()] + real(config, workdir)

    monkeypatch.setattr(train, "make_callbacks", sends_sigint)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN under nohup, Python's default otherwise
    with pytest.raises(train.Interrupted):
        train.train_and_evaluate(tiny_config(folder_zip, epochs=3, steps_per_epoch=3), str(tmp_path / "run"))
    assert [r["epoch"] for r in read_history(str(tmp_path / "run" / "history.csv"))] == [0]
    assert (tmp_path / "run" / "checkpoints" / "interrupted.keras").exists()
    assert signal.getsignal(signal.SIGINT) == before  # restored


@pytest.mark.slow  # Ctrl-C during training, taken at a batch end: the test above
def test_a_ctrl_c_after_the_last_epoch_check_is_not_lost(tmp_path, folder_zip, monkeypatch):
    # In Keras' on_train_end, after the stopper's last check: the run stopped anyway, and the caller
    # (a confirm worker told to stop) must hear of it rather than train on.
    real = train.make_callbacks

    def sends_sigint_at_train_end(config, workdir):
        class Sender(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                os.kill(os.getpid(), signal.SIGINT)
        return [Sender()] + real(config, workdir)

    monkeypatch.setattr(train, "make_callbacks", sends_sigint_at_train_end)
    with pytest.raises(train.Interrupted):
        train.train_and_evaluate(tiny_config(folder_zip, epochs=1, steps_per_epoch=2), str(tmp_path / "run"))
    assert [r["epoch"] for r in read_history(str(tmp_path / "run" / "history.csv"))] == [0]  # kept



@pytest.mark.slow  # a second run of `whole`; the resume test's split run ends with `whole`'s weights (rtol 1e-4)
def test_the_same_seed_gives_the_same_run(tmp_path, folder_zip, whole):
    # With oneDNN's kernels too (tinyresnet.onednn): two runs of one config end with equal weights.
    train.train_and_evaluate(_whole_config(folder_zip), str(tmp_path / "b"))  # `whole` is the first of the two
    a = keras.saving.load_model(whole[0] / "checkpoints" / "last.keras")
    b = keras.saving.load_model(tmp_path / "b" / "checkpoints" / "last.keras")
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    assert read_history(str(whole[0] / "history.csv"))[-1]["loss"] == \
        read_history(str(tmp_path / "b" / "history.csv"))[-1]["loss"]


@pytest.mark.slow
def test_a_diverged_run_says_what_is_true_of_it_in_one_line(tmp_path, folder_zip):
    # Issue 30, defect 3: it named checkpoints/last.keras (not written: no epoch had finished) and told a
    # float32 run to use float32.
    run = tmp_path / "run"
    out = subprocess.run(_train_command(folder_zip, run, 2) + ["--learning_rate=1e9", "--precision=float32"],
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 3, out.stderr[-2000:]
    (line,) = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: training diverged: loss became nan at epoch 0 step "), line
    assert f"no epoch had finished in {run}; lower --learning_rate (it is 1e+09), then rerun with --overwrite" in line
    assert "float32" not in line and "last.keras" not in line and "Traceback" not in out.stderr
