"""Tiny ImageNet in the official archive layout: read, download, load.

Layout (inside `tiny-imagenet-200.zip` or its extracted folder)::

    wnids.txt                          the classes, in label order
    words.txt                          wnid <TAB> names
    train/<wnid>/images/<wnid>_<k>.JPEG
    val/val_annotations.txt            file <TAB> wnid <TAB> box
    val/images/val_<i>.JPEG
    test/images/test_<i>.JPEG          unlabelled
"""

import dataclasses
import os
import posixpath
from typing import Dict, List, Optional

import keras
import numpy as np

from tinyresnet.data.files import DataError, FileTree

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
ARCHIVE_NAME = "tiny-imagenet-200.zip"
IMAGE_SIZE = (64, 64)
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Split:
    files: List[str]  # paths inside the tree
    labels: np.ndarray  # int64, -1 where unlabelled (test)


@dataclasses.dataclass
class TinyImageNet:
    tree: FileTree
    wnids: List[str]
    class_names: List[str]  # first name of each wnid in words.txt
    splits: Dict[str, Split]


def _lines(tree, name):
    return [line.rstrip("\r") for line in tree.read_text(name).split("\n")]


def read_layout(source) -> TinyImageNet:
    """Lists the images and labels of every split of a Tiny ImageNet archive or folder.

    Raises:
        DataError: for a missing `wnids.txt`, an unknown or empty class, a
            malformed annotation line, or an annotated image that is missing;
            the message names the file and line.
    """
    tree = source if isinstance(source, FileTree) else FileTree(source)
    wnids_path = tree.find("wnids.txt")
    if wnids_path is None:
        raise DataError(f"{tree.path}: no wnids.txt; not a Tiny ImageNet archive or folder")
    root = posixpath.dirname(wnids_path)
    join = lambda *parts: posixpath.join(root, *parts) if root else posixpath.join(*parts)
    wnids = [w.strip() for w in _lines(tree, wnids_path) if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    if len(index) != len(wnids):
        raise DataError(f"{tree.describe(wnids_path)}: duplicate wnids")

    words = {}
    words_path = join("words.txt")
    if tree.exists(words_path):
        for line in _lines(tree, words_path):
            wnid, _, names = line.partition("\t")
            if wnid in index:
                words[wnid] = names.split(",")[0].strip() or wnid
    class_names = [words.get(w, w) for w in wnids]

    train_files, train_labels = [], []
    train_prefix = join("train") + "/"
    for folder in tree.dirs:
        if folder.startswith(train_prefix) and folder.count("/") == train_prefix.count("/"):
            wnid = posixpath.basename(folder)
            if wnid not in index:
                raise DataError(f"{tree.describe(folder)}: class folder {wnid!r} is not in wnids.txt")
    by_class = {}
    for name in tree.names:
        if name.startswith(train_prefix) and name.lower().endswith((".jpeg", ".jpg", ".png")):
            wnid = name[len(train_prefix):].split("/")[0]
            if wnid not in index:
                raise DataError(f"{tree.describe(name)}: class {wnid!r} is not in wnids.txt")
            by_class.setdefault(wnid, []).append(name)
    for wnid in wnids:
        files = by_class.get(wnid)
        if not files:
            raise DataError(f"{tree.describe(join('train', wnid))}: class folder is missing or has no images")
        train_files += files
        train_labels += [index[wnid]] * len(files)

    val_files, val_labels = [], []
    annotations = join("val", "val_annotations.txt")
    if tree.exists(annotations):
        for number, line in enumerate(_lines(tree, annotations), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            where = f"{tree.describe(annotations)}, line {number}"
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                raise DataError(f"{where}: expected 'file<TAB>wnid<TAB>box', got {line!r}")
            file, wnid = fields[0].strip(), fields[1].strip()
            if wnid not in index:
                raise DataError(f"{where}: unknown wnid {wnid!r} (not in wnids.txt)")
            path = join("val", "images", file)
            if not tree.exists(path):
                raise DataError(f"{where}: image {tree.describe(path)} is missing")
            val_files.append(path)
            val_labels.append(index[wnid])

    test_prefix = join("test", "images") + "/"
    test_files = [n for n in tree.names if n.startswith(test_prefix)]
    return TinyImageNet(tree, wnids, class_names, {
        "train": Split(train_files, np.array(train_labels, np.int64)),
        "validation": Split(val_files, np.array(val_labels, np.int64)),
        "test": Split(test_files, np.full(len(test_files), -1, np.int64)),
    })


def download(cache_dir: Optional[str] = None, url: str = URL, md5: Optional[str] = MD5) -> str:
    """Downloads the archive into `cache_dir` (default `~/.keras/datasets`), verifying its md5.

    An existing file with the right checksum is reused. On a mismatch the
    downloaded file is deleted and a `DataError` raised.

    Returns:
        The path of the verified zip.
    """
    cache_dir = os.path.expanduser(cache_dir or os.path.join("~", ".keras"))
    fname = posixpath.basename(url) or ARCHIVE_NAME
    # get_file falls back to /tmp/.keras when the folder is not there yet.
    os.makedirs(os.path.join(cache_dir, "datasets"), exist_ok=True)
    try:
        return keras.utils.get_file(fname, origin=url, file_hash=md5, hash_algorithm="md5",
                                    cache_dir=cache_dir, cache_subdir="datasets")
    except ValueError as e:
        partial = os.path.join(cache_dir, "datasets", fname)
        if os.path.exists(partial):
            os.remove(partial)
        raise DataError(f"{url}: download does not match md5 {md5}; removed it ({e})") from None
    except Exception as e:  # get_file wraps URL errors in a bare Exception.
        raise DataError(f"{url}: download failed: {e}") from None


def locate(data=None, cache_dir=None) -> str:
    """The archive or folder to read: `data` if given, else a verified download."""
    if data is not None:
        return os.fspath(data)
    return download(cache_dir)
