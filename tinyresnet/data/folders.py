"""Class-per-folder image datasets (`<root>/<split>/<class>/*.jpg` or `<root>/<class>/*.jpg`)."""

import posixpath

import numpy as np

from tinyresnet.data.files import DataError, FileTree

# What tf.io.decode_image reads: the pipeline, the exports' serve_image_bytes and tinyresnet-predict alike.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
SPLIT_NAMES = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}


def _children(tree, parent):
    depth = parent.count("/") + 1 if parent else 0
    prefix = parent + "/" if parent else ""
    return sorted(posixpath.basename(d) for d in tree.dirs
                  if d.startswith(prefix) and d.count("/") == depth)


def first_image_size(source, listing=None):
    """`(height, width)` of the first train image of a class-per-folder dataset (folder or zip).

    Pass the `listing` of `read_image_folder` when you have it, so the tree is not listed again.
    """
    import tensorflow as tf
    tree = source if isinstance(source, FileTree) else FileTree(source)
    if listing is None:
        tree, listing, _ = read_image_folder(tree)
    first = listing["train"][0][0]
    probe = tf.io.decode_image(tree.read(first), channels=3, expand_animations=False)
    return tuple(int(d) for d in probe.shape[:2])


def read_image_folder(source):
    """Lists the images of a class-per-folder dataset, in a folder or a zip.

    Single wrapping folders (`cifar10/` in `cifar10.zip`) are skipped. If the
    top level holds `train`/`val`/`validation`/`test` folders, each is a split
    of class folders; otherwise the class folders are all `train`.

    Returns:
        `(splits, class_names)` with `splits[name] = (files, labels)`; the
        class names are train's folder names, sorted, as label order.

    Raises:
        DataError: for an empty class folder or a class that train lacks.
    """
    tree = source if isinstance(source, FileTree) else FileTree(source)
    root = ""
    while True:
        children = _children(tree, root)
        direct_files = [n for n in tree.names if posixpath.dirname(n) == root and not n.startswith(".")]
        if len(children) == 1 and not direct_files and children[0].lower() not in SPLIT_NAMES:
            root = posixpath.join(root, children[0]) if root else children[0]
        else:
            break
    join = lambda *p: posixpath.join(root, *p) if root else posixpath.join(*p)
    children = _children(tree, root)
    if not children:
        raise DataError(f"{tree.path}: no class folders found")
    if any(c.lower() in SPLIT_NAMES for c in children):
        layout = {SPLIT_NAMES[c.lower()]: join(c) for c in children if c.lower() in SPLIT_NAMES}
    else:
        layout = {"train": root}
    if "train" not in layout:
        raise DataError(f"{tree.describe(root or '.')}: split folders but no 'train'")

    images = {}
    for name in tree.names:
        if name.lower().endswith(IMAGE_EXTENSIONS):
            images.setdefault(posixpath.dirname(name), []).append(name)
    class_names = _children(tree, layout["train"])
    index = {c: i for i, c in enumerate(class_names)}
    splits = {}
    for split, folder in layout.items():
        files, labels = [], []
        for cls in _children(tree, folder):
            path = posixpath.join(folder, cls) if folder else cls
            if cls not in index:
                raise DataError(f"{tree.describe(path)}: class {cls!r} is not among train's classes")
            found = images.get(path, [])
            if not found:
                raise DataError(f"{tree.describe(path)}: class folder has no images")
            files += found
            labels += [index[cls]] * len(found)
        splits[split] = (files, np.array(labels, np.int64))
    return tree, splits, class_names
