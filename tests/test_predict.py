import json
import os

import numpy as np
import pytest
import tensorflow as tf

from fixtures import jpeg
from conftest import CLASSES  # and the fixtures exported and run_dir
from tinyresnet import predict
from tinyresnet.cli import predict_main


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg(1, size=(16, 16)))
    (folder / "b.png").write_bytes(tf.io.encode_png(tf.zeros((50, 20, 4), tf.uint8)).numpy())  # RGBA, other size
    (folder / "sub" / "c.jpg").write_bytes(jpeg(2, size=(64, 64), channels=1))  # grayscale
    (folder / "broken.jpg").write_bytes(jpeg(3)[:200])
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_predicts_folders_globs_and_files_of_any_size_and_mode(exported, images):
    results = predict.predict_files(exported, [str(images / "a.jpg"), str(images / "sub"),
                                               str(images / "*.png")], batch_size=2)
    assert [os.path.basename(r.file) for r in results] == ["a.jpg", "c.jpg", "b.png"]
    for r in results:
        assert r.error is None and len(r.labels) == 5 and set(r.labels) <= set(CLASSES)
        assert r.scores == sorted(r.scores, reverse=True) and 0 < sum(r.scores) <= 1.0001


def test_unreadable_files_are_named_and_the_rest_go_on(exported, images, tmp_path, capsys):
    out = tmp_path / "out.json"
    code = predict_main([exported, str(images), str(images / "missing.jpg"), "--output", str(out)])
    assert code == 1
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.out and "ERROR: not a decodable image" in captured.out
    assert "missing.jpg  ERROR: no such file (and no file matches it as a pattern)" in captured.out
    assert "2 of 5 files could not be classified" in captured.err
    saved = {os.path.basename(p["file"]): p for p in json.loads(out.read_text())}
    assert saved["a.jpg"]["labels"][0] in CLASSES and saved["broken.jpg"]["error"]


def test_csv_output_and_success_exit_code(exported, images, tmp_path):
    out = tmp_path / "out.csv"
    assert predict_main([exported, str(images / "a.jpg"), str(images / "b.png"), "--output", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "file,label,score,top_k_labels,top_k_scores,error"
    assert len(lines) == 3 and lines[1].split(",")[1] in CLASSES


def test_not_an_export(tmp_path, capsys):
    assert predict_main([str(tmp_path), "x.jpg"]) == 2
    assert "not an exported model" in capsys.readouterr().err


def test_globs_take_image_files_only(exported, images):
    (images / "folder.jpg").mkdir()
    results = predict.predict_files(exported, [str(images / "*")])
    assert sorted(os.path.basename(r.file) for r in results) == ["a.jpg", "b.png", "broken.jpg"]


def test_a_batch_the_model_refuses_is_reported_per_file(exported, images, monkeypatch):
    poisoned = (images / "a.jpg").read_bytes()
    real = tf.saved_model.load(exported).signatures["serve_image_bytes"]

    class Loaded:
        signatures = {"serve_image_bytes": lambda image_bytes: (_ for _ in ()).throw(
            tf.errors.InvalidArgumentError(None, None, "cannot take this image"))
            if poisoned in image_bytes.numpy().tolist() else real(image_bytes=image_bytes)}

    monkeypatch.setattr(tf.saved_model, "load", lambda path: Loaded())  # predict loads TensorFlow on first use
    results = predict.predict_files(exported, [str(images / "a.jpg"), str(images / "sub"), str(images / "b.png")],
                                    batch_size=8)
    assert [r.error is None for r in results] == [False, True, True]
    assert "could not classify it (cannot take this image)" in results[0].error
    assert results[1].labels and results[2].labels


def _labels_in_table(output, name):
    (line,) = [line for line in output.splitlines() if name in line]
    return line.split(name, 1)[1].split()[::2]  # "cat (0.2)  dog (0.1)" -> names


def test_top_up_to_every_class_is_shown_and_written(exported, images, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert predict_main([exported, str(images / "a.jpg"), "--top", "7", "--output", str(out)]) == 0
    table = capsys.readouterr().out
    assert "top-7 (score)" in table and sorted(_labels_in_table(table, "a.jpg")) == sorted(CLASSES)
    (saved,) = json.loads(out.read_text())
    assert sorted(saved["labels"]) == sorted(CLASSES) and len(saved["scores"]) == 7
    assert saved["scores"] == sorted(saved["scores"], reverse=True) and sum(saved["scores"]) == pytest.approx(1, 1e-4)
    assert [CLASSES[i] for i in saved["indices"]] == saved["labels"]


def test_the_output_file_holds_as_many_labels_as_asked(exported, images, tmp_path):
    out = tmp_path / "out.csv"
    assert predict_main([exported, str(images / "a.jpg"), "--top", "6", "--output", str(out)]) == 0
    header, row = out.read_text().splitlines()
    assert header == "file,label,score,top_k_labels,top_k_scores,error"
    labels = row.split(",")[3].split("|")
    assert len(labels) == 6 and labels[0] == row.split(",")[1]


def test_a_ranking_deeper_than_the_export_s_top_5_agrees_with_its_signature(exported, images):
    (deep,) = predict.predict_files(exported, [str(images / "a.jpg")], top_k=7)
    out = tf.saved_model.load(exported).signatures["serve_image_bytes"](
        image_bytes=tf.constant([(images / "a.jpg").read_bytes()]))
    assert deep.indices[:5] == out["top_k_indices"].numpy()[0].tolist()
    assert deep.labels[:5] == [label.decode() for label in out["top_k_labels"].numpy()[0]]
    assert deep.scores[:5] == pytest.approx(out["top_k_scores"].numpy()[0].tolist())


@pytest.mark.parametrize("top", ["0", "8", "-1"])
def test_top_outside_1_to_the_number_of_classes_is_refused_naming_the_limit(exported, images, top,
                                                                             capsys):
    assert predict_main([exported, str(images / "a.jpg"), "--top", top]) == 2
    err = capsys.readouterr().err
    assert f"--top must be between 1 and 7 (the model's number of classes), got {top}" in err
    assert "Traceback" not in err


def test_an_export_without_class_names_is_named(exported, images, tmp_path, capsys):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    (copy / "metadata.json").write_text("{}")
    assert predict_main([str(copy), str(images / "a.jpg")]) == 2
    assert f"{copy / 'metadata.json'}: no class_names list" in capsys.readouterr().err


def test_nothing_to_classify_a_bad_output_or_batch_size_is_refused_before_any_work(exported, tmp_path,
                                                                                  capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert predict_main([exported, str(empty)]) == 2
    assert f"no image files in {empty}" in capsys.readouterr().err
    photo = tmp_path / "p.jpg"
    photo.write_bytes(jpeg(3, size=(16, 16)))
    assert predict_main([exported, str(photo), "--output", str(tmp_path / "missing" / "o.csv")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert predict_main([exported, str(photo), "--output", str(tmp_path / "o.txt")]) == 2
    assert predict_main([exported, str(photo), "--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err


def test_the_output_extension_is_taken_in_any_case(exported, images, tmp_path):
    for name in ("O.CSV", "O.Json"):
        out = tmp_path / name
        assert predict_main([exported, str(images / "a.jpg"), "--output", str(out)]) == 0
        text = out.read_text()
        assert text.startswith("file,label") if name.endswith("CSV") else json.loads(text)[0]["labels"]


def test_an_output_that_cannot_be_written_is_refused_before_any_prediction(exported, images, tmp_path,
                                                                           capsys, monkeypatch):
    (tmp_path / "D.csv").mkdir()
    monkeypatch.setattr(predict, "predict_files", lambda *a, **k: pytest.fail("predicted before refusing"))
    for output, message in [(tmp_path / "D.csv", "is a folder"), ("/proc/o.csv", "cannot write in /proc")]:
        assert predict_main([exported, str(images / "a.jpg"), f"--output={output}"]) == 2
        err = capsys.readouterr().err
        assert f"--output {output}: {message}" in err and "Traceback" not in err


def test_webp_is_read_in_folders_as_when_named(exported, images):
    import io
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(buffer, "WEBP")
    (images / "d.webp").write_bytes(buffer.getvalue())
    named = predict.predict_files(exported, [str(images / "d.webp")])
    walked = {os.path.basename(r.file): r for r in predict.predict_files(exported, [str(images)])}
    assert named[0].error is None and walked["d.webp"].error is None
    assert walked["d.webp"].labels == named[0].labels


def test_a_jpeg_cut_short_is_reported_without_libjpeg_s_own_line(exported, images, capfd):
    results = predict.predict_files(exported, [str(images / "broken.jpg"), str(images / "a.jpg")])
    assert "not a decodable image" in results[0].error and results[1].error is None
    assert "JPEG library" not in capfd.readouterr().err
