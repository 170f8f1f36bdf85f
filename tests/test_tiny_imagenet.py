import functools
import hashlib
import http.server
import os
import threading
import zipfile

import pytest

from fixtures import WNIDS, jpeg, tiny_imagenet_files, write_folder, write_zip
from tinyresnet import data
from tinyresnet.data import tiny_imagenet_layout as tin
from tinyresnet.data.files import DataError, FileTree


def test_reads_the_official_layout_from_a_zip(tiny_zip):
    layout = tin.read_layout(tiny_zip)
    assert layout.wnids == WNIDS
    assert layout.class_names == ["alpha", "beta", "gamma"]
    train, val, test = (layout.splits[s] for s in ("train", "validation", "test"))
    assert len(train.files) == 12 and train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert val.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert len(test.files) == 2 and (test.labels == -1).all()


def test_pipelines_decode_grayscale_to_three_channels(tiny_zip):
    ds = data.tiny_imagenet(tiny_zip)
    images, labels = next(iter(ds.training(batch_size=4)))
    assert images.shape == (4, 64, 64, 3) and images.dtype == "uint8"
    assert (ds.num_train, ds.num_validation) == (12, 6)
    arrays, _ = data.load_tiny_imagenet_arrays(tiny_zip)
    gray = arrays["train"].images[0]  # alpha_0 is the grayscale JPEG
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_a_folder_reads_like_the_zip(tmp_path, tiny_zip):
    folder = write_folder(tmp_path / "tiny-imagenet-200", tiny_imagenet_files())
    a, b = tin.read_layout(folder), tin.read_layout(tiny_zip)
    assert a.wnids == b.wnids
    assert [f.split("/")[-1] for f in a.splits["validation"].files] == \
        [f.split("/")[-1] for f in b.splits["validation"].files]


def _broken(tmp_path, change):
    files = tiny_imagenet_files()
    change(files)
    return write_zip(tmp_path / "broken.zip", files)


def test_corrupt_jpeg_is_named_or_skipped_when_asked(tmp_path, capsys):
    def corrupt(files):
        files["train/n00000002/images/n00000002_1.JPEG"] = jpeg(7)[:300]
    path = _broken(tmp_path, corrupt)
    with pytest.raises(DataError, match=r"broken.zip:tiny-imagenet-200/train/n00000002/images/n00000002_1.JPEG: cannot decode image"):
        data.tiny_imagenet(path)
    ds = data.tiny_imagenet(path, skip_corrupt=True)
    assert ds.skipped == 1 and ds.num_train == 11
    assert "skipped 1 unreadable images" in capsys.readouterr().out


def test_wrong_image_size_is_named(tmp_path):
    def small(files):
        files["val/images/val_3.JPEG"] = jpeg(3, size=(32, 32))
    with pytest.raises(DataError, match=r"val_3.JPEG: image is 32x32, expected 64x64"):
        data.tiny_imagenet(_broken(tmp_path, small))


@pytest.mark.parametrize("line, message", [
    ("val_1.JPEG\tn12345678\t0\t0\t1\t1", r"val_annotations.txt, line 2: unknown wnid 'n12345678'"),
    ("val_1.JPEG", r"val_annotations.txt, line 2: expected 'file<TAB>wnid<TAB>box'"),
    ("val_99.JPEG\tn00000001\t0\t0\t1\t1", r"val_annotations.txt, line 2: image .*val/images/val_99.JPEG is missing"),
])
def test_bad_annotations_name_the_line(tmp_path, line, message):
    def edit(files):
        lines = files["val/val_annotations.txt"].decode().splitlines()
        lines[1] = line
        files["val/val_annotations.txt"] = "\n".join(lines).encode()
    with pytest.raises(DataError, match=message):
        tin.read_layout(_broken(tmp_path, edit))


def test_unknown_and_empty_class_folders(tmp_path):
    def extra(files):
        files["train/n07777777/images/n07777777_0.JPEG"] = jpeg(1)
    with pytest.raises(DataError, match=r"class folder 'n07777777' is not in wnids.txt"):
        tin.read_layout(_broken(tmp_path, extra))
    files = tiny_imagenet_files()
    folder = write_folder(tmp_path / "t", {k: v for k, v in files.items() if "n00000003/images" not in k})
    os.makedirs(os.path.join(folder, "train", "n00000003", "images"))
    with pytest.raises(DataError, match=r"train/n00000003: class folder is missing or has no images"):
        tin.read_layout(folder)


def test_not_an_archive(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        tin.read_layout(tmp_path / "missing.zip")
    with pytest.raises(DataError, match="no wnids.txt"):
        tin.read_layout(write_folder(tmp_path / "x", {"a.txt": b"1"}))


@pytest.mark.parametrize("member, message", [
    ("../evil.txt", "escapes the archive root"),
    ("tiny/../../evil.txt", "escapes the archive root"),
    ("/etc/evil.txt", "has an absolute path"),
])
def test_archives_with_escaping_members_are_refused(tmp_path, member, message):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("wnids.txt", "n1\n")
        z.writestr(member, "x")
    with pytest.raises(DataError, match=f"member '{member}' {message}"):
        FileTree(path)


def test_symlink_members_are_refused(tmp_path):
    path = tmp_path / "link.zip"
    info = zipfile.ZipInfo("tiny-imagenet-200/link")
    info.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="is a symlink"):
        FileTree(path)


@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_the_md5(tmp_path, http_server):
    served, url = http_server
    archive = write_zip(served / "tiny-imagenet-200.zip", tiny_imagenet_files())
    md5 = hashlib.md5(open(archive, "rb").read()).hexdigest()
    path = tin.download(tmp_path / "cache", url=f"{url}/tiny-imagenet-200.zip", md5=md5)
    assert open(path, "rb").read() == open(archive, "rb").read()
    assert len(tin.read_layout(path).wnids) == 3


def test_download_with_a_wrong_md5_leaves_nothing_behind(tmp_path, http_server):
    served, url = http_server
    write_zip(served / "tiny-imagenet-200.zip", tiny_imagenet_files())
    with pytest.raises(DataError, match=r"does not match md5 0123"):
        tin.download(tmp_path / "cache", url=f"{url}/tiny-imagenet-200.zip", md5="0123" + "0" * 28)
    assert os.listdir(tmp_path / "cache" / "datasets") == []
    with pytest.raises(DataError, match="download failed"):
        tin.download(tmp_path / "cache", url=f"{url}/missing.zip", md5=None)


def test_a_class_subset_without_test_folder_has_no_test_split(tmp_path):
    import tinyresnet.data.tfds_tiny_imagenet  # noqa: F401  (registers the builder)
    import tensorflow_datasets as tfds
    files = {k: v for k, v in tiny_imagenet_files().items() if not k.startswith("test/")}
    os.makedirs(tmp_path / "manual")
    archive = write_zip(tmp_path / "manual" / "tiny-imagenet-200.zip", files)
    ds = data.tiny_imagenet(archive)
    assert not ds.has_split("test") and (ds.num_train, ds.num_validation) == (12, 6)
    config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
    builder = tfds.builder("tiny_imagenet", data_dir=tmp_path / "tfds")
    builder.download_and_prepare(download_config=config)
    assert set(builder.info.splits) == {"train", "validation"}


def test_tfds_builder_uses_a_zip_in_the_manual_dir(tmp_path, tiny_zip):
    import tinyresnet.data.tfds_tiny_imagenet  # noqa: F401  (registers the builder)
    import tensorflow_datasets as tfds
    config = tfds.download.DownloadConfig(manual_dir=os.path.dirname(tiny_zip))
    splits, info = tfds.load("tiny_imagenet", data_dir=tmp_path / "tfds", with_info=True,
                             download_and_prepare_kwargs={"download_config": config})
    assert info.features["label"].names == WNIDS
    assert info.metadata["class_names"] == ["alpha", "beta", "gamma"]
    assert {k: info.splits[k].num_examples for k in ("train", "validation", "test")} == \
        {"train": 12, "validation": 6, "test": 2}
    val = sorted((ex["file_name"].decode(), int(ex["label"])) for ex in tfds.as_numpy(splits["validation"]))
    assert val == [(f"val_{i}.JPEG", i % 3) for i in range(6)]
    example = next(iter(tfds.as_numpy(splits["train"])))
    assert example["image"].shape == (64, 64, 3)
    assert {int(ex["label"]) for ex in tfds.as_numpy(splits["test"])} == {-1}


def test_tfds_builder_downloads_with_checksum(tmp_path, http_server, monkeypatch):
    import tinyresnet.data.tfds_tiny_imagenet  # noqa: F401  (registers the builder)
    import tensorflow_datasets as tfds
    served, url = http_server
    archive = write_zip(served / "tiny-imagenet-200.zip", tiny_imagenet_files())
    monkeypatch.setattr(tin, "URL", f"{url}/tiny-imagenet-200.zip")
    monkeypatch.setattr(tin, "MD5", hashlib.md5(open(archive, "rb").read()).hexdigest())
    ds = tfds.load("tiny_imagenet", split="validation", data_dir=tmp_path / "tfds")
    assert len(list(ds)) == 6
