"""Small generated datasets in the layouts the package reads."""

import os
import zipfile

import numpy as np
import tensorflow as tf

WNIDS = ["n00000001", "n00000002", "n00000003"]
WORDS = {"n00000001": "alpha, first", "n00000002": "beta", "n00000003": "gamma, third one",
         "n09999999": "unused"}


def jpeg(seed, size=(64, 64), channels=3):
    rng = np.random.default_rng(seed)
    return tf.io.encode_jpeg(rng.integers(0, 256, (*size, channels), dtype=np.uint8)).numpy()


def tiny_imagenet_files(train_per_class=4, val=6, test=2, size=(64, 64)):
    """`{relative path: bytes}` of a 3-class Tiny ImageNet in the official layout.

    One train image per class is a grayscale JPEG, as in the real archive.
    """
    files = {"wnids.txt": "\n".join(WNIDS).encode() + b"\n",
             "words.txt": "".join(f"{k}\t{v}\n" for k, v in WORDS.items()).encode()}
    for c, wnid in enumerate(WNIDS):
        for k in range(train_per_class):
            channels = 1 if k == 0 else 3
            files[f"train/{wnid}/images/{wnid}_{k}.JPEG"] = jpeg(100 * c + k, size, channels)
        files[f"train/{wnid}/{wnid}_boxes.txt"] = b""
    lines = []
    for i in range(val):
        files[f"val/images/val_{i}.JPEG"] = jpeg(1000 + i, size)
        lines.append(f"val_{i}.JPEG\t{WNIDS[i % 3]}\t0\t0\t63\t63")
    files["val/val_annotations.txt"] = ("\n".join(lines) + "\n").encode()
    for i in range(test):
        files[f"test/images/test_{i}.JPEG"] = jpeg(2000 + i, size)
    return files


def write_zip(path, files, prefix="tiny-imagenet-200/"):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(prefix + name, data)
    return str(path)


def write_folder(root, files):
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return str(root)


def class_folder_files(classes=("cat", "dog"), per_class=10, size=(32, 32)):
    return {f"train/{c}/{i:04d}.jpg": jpeg(50 * j + i, size)
            for j, c in enumerate(classes) for i in range(per_class)}


TINY_SPEC = "Conv 8, BB 8, Avg 4, FC 10"


def tiny_config(data, **changes):
    """A `Config` that trains `TINY_SPEC` on a small class-folder archive in seconds."""
    from tinyresnet.config import Config
    values = dict(net=TINY_SPEC, dataset="folder", data=data, batch_size=8, epochs=1, verbose=0,
                  learning_rate=0.01, warmup_epochs=0, validation_fraction=0.25)
    values.update(changes)
    return Config(**values)


def stop_before_epoch(epoch):
    """A Keras callback that presses Ctrl-C as `epoch` begins: the epochs before it are finished and backed up."""
    import keras

    class StopBeforeEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, index, logs=None):
            if index == epoch:
                raise KeyboardInterrupt

    return StopBeforeEpoch()
