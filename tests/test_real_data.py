"""On the shared real archives (TINYRESNET_SHARED_DATA, set by .ci/run); skipped elsewhere."""

import pytest
import numpy as np

from conftest import shared_file
from tinyresnet import data
from tinyresnet.data import tiny_imagenet_layout as tin


def test_the_20_class_tiny_imagenet_archive():
    path = shared_file("tiny-imagenet-200-sub20.zip")
    arrays, layout = data.load_tiny_imagenet_arrays(path)
    wnids = [w for w in layout.tree.read_text("tiny-imagenet-200/wnids.txt").split() if w]
    assert layout.wnids == wnids and len(wnids) == 20
    assert {s: a.images.shape for s, a in arrays.items()} == {
        "train": (10_000, 64, 64, 3), "validation": (1_000, 64, 64, 3), "test": (500, 64, 64, 3)}
    assert np.bincount(arrays["train"].labels).tolist() == [500] * 20
    # Validation labels agree with val_annotations.txt, line by line.
    lines = layout.tree.read_text("tiny-imagenet-200/val/val_annotations.txt").splitlines()
    expected = {f.split("\t")[0]: wnids.index(f.split("\t")[1]) for f in lines if f}
    got = {f.split("/")[-1]: int(y) for f, y in zip(arrays["validation"].files, arrays["validation"].labels)}
    assert got == expected
    assert layout.class_names[0] == "goldfish"


@pytest.mark.slow  # decodes the real archive; test_pipeline.py reads class-folder archives on fixtures
def test_the_cifar10_folder_archive():
    ds = data.image_folder(shared_file("cifar10-train-jpeg.zip"), validation_fraction=0.1)
    assert ds.class_names == data.datasets.CIFAR10_CLASSES
    assert ds.num_train + ds.num_validation == 50_000 and ds.num_validation == 5_000
    labels = np.concatenate([y for _, y in ds.batches("validation", 500).as_numpy_iterator()])
    assert np.bincount(labels).tolist() == [500] * 10
    images, _ = next(iter(ds.training(batch_size=500, augment=True, seed=0)))
    assert images.shape == (500, 32, 32, 3)


@pytest.mark.slow
def test_tfds_load_of_the_20_class_archive_from_the_manual_dir(tmp_path):
    import os
    import shutil
    import tinyresnet.data.tfds_tiny_imagenet  # noqa: F401  (registers the builder)
    import tensorflow_datasets as tfds
    manual = tmp_path / "manual"
    manual.mkdir()
    os.symlink(shared_file("tiny-imagenet-200-sub20.zip"), manual / tin.ARCHIVE_NAME)
    config = tfds.download.DownloadConfig(manual_dir=str(manual))
    ds, info = tfds.load("tiny_imagenet", split="validation", data_dir=tmp_path / "tfds", with_info=True,
                         download_and_prepare_kwargs={"download_config": config})
    assert info.features["label"].num_classes == 20
    assert {k: info.splits[k].num_examples for k in ("train", "validation", "test")} == \
        {"train": 10_000, "validation": 1_000, "test": 500}
    shutil.rmtree(tmp_path / "tfds")
