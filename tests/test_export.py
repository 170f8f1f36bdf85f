import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from fixtures import jpeg
from tinyresnet import export
from tinyresnet.models import build_model

from conftest import CLASSES  # the fixtures run_dir and exported (conftest.py) are shared with test_predict.py


def _images(n, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3)).astype("uint8")


def test_layout_versions_and_metadata(exported, run_dir):
    assert exported.endswith(os.path.join("tiny", "1"))
    assert os.path.exists(os.path.join(exported, "saved_model.pb"))
    meta = json.loads(open(os.path.join(exported, "metadata.json")).read())
    assert meta["class_names"] == CLASSES and meta["input_shape"] == [16, 16, 3]
    assert meta["spec"] == "Conv 8, BB 16, Avg 2, Dropout 0.3, FC 7" and meta["metrics"]["val_top1"] == 0.25
    assert meta["versions"]["tensorflow"] == tf.__version__ and meta["training_config"]["dataset"] == "folder"
    root = os.path.dirname(exported)
    assert export.next_version(root) == 2
    with pytest.raises(export.ExportError, match="exists; pass overwrite=True"):
        export.export_run(str(run_dir), os.path.dirname(root), version=1)


def test_predictions_equal_the_keras_model_in_inference_mode(exported, run_dir):
    model = keras.saving.load_model(run_dir / "model.keras")
    images = _images(10)
    expected = tf.nn.softmax(model.predict(images, verbose=0)).numpy()
    loaded = tf.saved_model.load(exported)
    out = loaded.signatures["serving_default"](images=tf.constant(images, tf.float32))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-5)
    out8 = loaded.signatures["serving_uint8"](images=tf.constant(images))
    np.testing.assert_allclose(out8["probabilities"].numpy(), expected, atol=1e-5)
    # Dropout is inactive: the same input gives the same output.
    again = loaded.signatures["serving_default"](images=tf.constant(images, tf.float32))
    np.testing.assert_array_equal(out["probabilities"].numpy(), again["probabilities"].numpy())
    top = np.argsort(-expected, axis=1)[:, :5]
    np.testing.assert_array_equal(out["top_k_indices"].numpy(), top)
    assert [l.decode() for l in out["top_k_labels"].numpy()[0]] == [CLASSES[i] for i in top[0]]


def test_bytes_signature_decodes_like_the_pipeline(exported, run_dir):
    model = keras.saving.load_model(run_dir / "model.keras")
    images = _images(3)
    pngs = [tf.io.encode_png(image).numpy() for image in images]
    out = tf.saved_model.load(exported).signatures["serve_image_bytes"](image_bytes=tf.constant(pngs))
    np.testing.assert_allclose(out["probabilities"].numpy(), tf.nn.softmax(model(images)).numpy(), atol=1e-5)


def test_wrong_input_shape_or_dtype_is_refused_clearly(exported):
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError),
                       match=r"expected images of shape \[N, 16, 16, 3\]"):
        serve(images=tf.zeros((2, 32, 32, 3)))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError),
                       match="expected to be a float tensor but is a int32 tensor"):
        serve(images=tf.zeros((2, 16, 16, 3), tf.int32))


@pytest.fixture(scope="module")
def fresh_tensorflow(exported, tmp_path_factory):
    """What one fresh process with only TensorFlow (and oneDNN's kernels on) gets from the export:
    `{check: (passed, its last words)}` of the two checks below, run in that one interpreter."""
    image = tmp_path_factory.mktemp("image") / "x.jpg"
    image.write_bytes(jpeg(3, size=(40, 30), channels=1))  # other size, grayscale
    script = textwrap.dedent(f"""
        import json, sys, traceback
        import numpy as np, tensorflow as tf

        def empty_batch():
            signatures = tf.saved_model.load({exported!r}).signatures
            for name, inputs in [("serving_default", {{"images": tf.zeros((0, 16, 16, 3))}}),
                                 ("serving_uint8", {{"images": tf.zeros((0, 16, 16, 3), tf.uint8)}}),
                                 ("serve_image_bytes", {{"image_bytes": tf.constant([], tf.string)}})]:
                out = signatures[name](**inputs)
                assert out["probabilities"].shape == (0, 7), name
                assert out["top_k_indices"].shape == out["top_k_scores"].shape == out["top_k_labels"].shape == (0, 5)
            assert signatures["serving_default"](images=tf.zeros((2, 16, 16, 3)))["probabilities"].shape == (2, 7)
            return "ok"

        def only_tensorflow():
            m = tf.saved_model.load({exported!r})
            a = m.signatures["serving_default"](images=tf.zeros((2, 16, 16, 3)))
            b = m.signatures["serve_image_bytes"](image_bytes=tf.constant([open({str(image)!r}, "rb").read()]))
            assert a["probabilities"].shape == (2, 7) and b["top_k_labels"].shape == (1, 5)
            assert not any(name.startswith("tinyresnet") for name in sys.modules), "imported tinyresnet"
            return "ok " + b["top_k_labels"].numpy()[0][0].decode()

        results = {{}}
        for check in (empty_batch, only_tensorflow):
            try:
                results[check.__name__] = (True, check())
            except Exception:
                results[check.__name__] = (False, traceback.format_exc())
        print(json.dumps(results))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.slow  # a fresh TensorFlow interpreter; the signatures are checked in this process above
def test_an_empty_batch_gets_empty_outputs_of_every_signature(fresh_tensorflow):
    # oneDNN's convolution (on where TensorFlow turns it on itself, and in what trains) fails on no images
    # ("input depth must be evenly divisible by filter depth: 3 vs 8"): a fresh process with it on.
    passed, words = fresh_tensorflow["empty_batch"]
    assert passed and words == "ok", words[-3000:]


@pytest.mark.slow  # a fresh TensorFlow interpreter; the signatures are checked in this process above
def test_a_fresh_process_with_only_tensorflow_runs_both_signatures(fresh_tensorflow):
    # The same interpreter as the empty batches' (oneDNN's kernels on, as TensorFlow has them on CPUs with
    # AVX-512 VNNI or AMX): a file of another size, in grayscale, through the bytes signature.
    passed, words = fresh_tensorflow["only_tensorflow"]
    assert passed, words[-3000:]
    assert words.split()[1] in CLASSES


def _saved_model_cli(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.slow
def test_saved_model_cli_shows_and_runs_the_signatures(exported, tmp_path):
    shown = _saved_model_cli("show", "--dir", exported, "--all")
    assert shown.returncode == 0, shown.stderr[-2000:]
    text = shown.stdout
    for signature in ("serving_default", "serving_uint8", "serve_image_bytes"):
        assert f"signature_def['{signature}']" in text
    assert "inputs['images'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 16, 16, 3)" in text
    assert "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in text
    for output in ("probabilities", "top_k_indices", "top_k_scores", "top_k_labels"):
        assert f"outputs['{output}']" in text
    np.save(tmp_path / "batch.npy", _images(2).astype("float32"))
    ran = _saved_model_cli("run", "--dir", exported, "--tag_set", "serve", "--signature_def", "serving_default",
                           "--inputs", f"images={tmp_path / 'batch.npy'}")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Result for output key probabilities" in ran.stdout and "top_k_labels" in ran.stdout


def test_an_interrupted_export_leaves_no_version_behind(run_dir, tmp_path, monkeypatch):
    def dies(self, path, **kwargs):
        os.makedirs(os.path.join(path, "variables"))
        open(os.path.join(path, "saved_model.pb"), "w").write("half")
        raise KeyboardInterrupt

    # ExportArchive() builds a backend-specific subclass; patch the class actually used.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", dies)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(str(run_dir), str(tmp_path))
    assert os.listdir(tmp_path / "tiny") == []


def test_export_errors(tmp_path):
    with pytest.raises(export.ExportError, match="no such model"):
        export.export_run(str(tmp_path))
    model = build_model("Conv 8, FC 3", (8, 8, 3))
    with pytest.raises(export.ExportError, match="2 class names for a model of 3 outputs"):
        export.export_model(model, str(tmp_path / "m" / "1"), ["a", "b"])


@pytest.mark.slow  # trains a run; exporting a run: the exported fixture; the inference model: test_train's one_epoch
def test_a_checkpoint_of_an_in_model_augmentation_run_exports_its_inference_model(tmp_path, folder_zip):
    from fixtures import tiny_config
    from tinyresnet import train
    run = tmp_path / "run"
    train.train_and_evaluate(tiny_config(folder_zip, steps_per_epoch=1, augment_on="model"), str(run))
    checkpoint = keras.saving.load_model(run / "checkpoints" / "best.keras", compile=False)
    assert any(isinstance(layer, export.PaperAugment) for layer in checkpoint.layers)  # the training wrapper
    path = export.export_run(str(run / "checkpoints" / "best.keras"), str(tmp_path / "out"))
    meta = json.loads(open(os.path.join(path, "metadata.json")).read())
    assert meta["class_names"] == ["a", "b", "c"] and meta["labels_from"] == "run"
    assert meta["training_config"]["augment_on"] == "model" and meta["spec"] == "Conv 8, BB 8, Avg 4, FC 3"
    inner = export.inference_model(checkpoint)
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype("float32")
    out = tf.saved_model.load(path).signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(out["probabilities"].numpy(), tf.nn.softmax(inner(images)).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["../outside", "a/b", "/abs", "..", ""])
def test_a_name_cannot_leave_the_output_root(run_dir, tmp_path, name):
    with pytest.raises(export.ExportError, match="use letters, digits"):
        export.export_run(str(run_dir), str(tmp_path / "root"), name=name)
    assert not (tmp_path / "outside").exists() and not (tmp_path / "root").exists()


def test_version_zero_is_refused(run_dir, tmp_path):
    with pytest.raises(export.ExportError, match="version must be an integer >= 1, got 0"):
        export.export_run(str(run_dir), str(tmp_path), version=0)


def test_overwrite_keeps_the_old_version_until_the_new_one_is_in_place(run_dir, tmp_path, monkeypatch):
    path = export.export_run(str(run_dir), str(tmp_path), version=1)
    before = open(os.path.join(path, "saved_model.pb"), "rb").read()

    def dies(self, folder, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", dies)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(str(run_dir), str(tmp_path), version=1, overwrite=True)
    assert open(os.path.join(path, "saved_model.pb"), "rb").read() == before
    assert sorted(os.listdir(tmp_path / "tiny")) == ["1"]
    monkeypatch.undo()
    assert export.export_run(str(run_dir), str(tmp_path), version=1, overwrite=True) == path
    assert sorted(os.listdir(tmp_path / "tiny")) == ["1"]


def test_work_folders_of_killed_exports_are_cleaned(run_dir, tmp_path):
    root = tmp_path / "tiny"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    for name in (f".tmp-3-{dead}", f".old-1-{dead}", f".tmp-4-{os.getppid()}", ".tmp-mine"):
        (root / name).mkdir(parents=True)
    export.export_run(str(run_dir), str(tmp_path))
    # A dead process's work folders go; a live process's, and folders that are not ours, stay.
    assert sorted(os.listdir(root)) == [".tmp-4-" + str(os.getppid()), ".tmp-mine", "1"]


def test_load_model_takes_a_keras_file_or_a_run_directory_and_names_what_is_missing(run_dir, tmp_path):
    import tinyresnet
    assert tinyresnet.load_model(str(run_dir)).name == tinyresnet.load_model(str(run_dir / "model.keras")).name
    with pytest.raises(FileNotFoundError, match=r"model.keras: no such .keras file"):
        tinyresnet.load_model(str(tmp_path))
