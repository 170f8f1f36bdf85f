"""Export a trained model as a SavedModel that carries its preprocessing and class names.

Layout (what TensorFlow Serving expects), written atomically::

    exported_models/<name>/<version>/saved_model.pb, variables/, metadata.json

Signatures:
    serving_default:    images float32 [N, H, W, 3] in [0, 255]
    serving_uint8:      images uint8 [N, H, W, 3]
    serve_image_bytes:  image_bytes string [N], encoded JPEG/PNG/BMP/GIF/WebP of any size and mode
each returning `probabilities` [N, C], `top_k_indices`, `top_k_scores` and
`top_k_labels` (class names) [N, k], k = min(5, C); an empty batch (N = 0) gets
empty outputs of those shapes.
"""

import datetime
import json
import os
import platform
import re
import shutil

import keras
import tensorflow as tf

import tinyresnet
from tinyresnet import options, runs, saving
from tinyresnet.augment import PaperAugment
from tinyresnet.data.decode import decode_image

DEFAULT_ROOT = runs.EXPORT_ROOT
_NAME = options.NAME
# Folders of an export in progress (or killed): .tmp-<version>-<pid>, .old-<version>-<pid>.
_WORK_FOLDER = re.compile(r"^\.(tmp|old)-(?P<version>\d+)-(?P<pid>\d+)$")


class ExportError(ValueError):
    """The export target exists, or the model or run directory is unusable."""


def _serving_functions(model, class_names, top_k):
    height, width = model.input_shape[1:3]
    labels = tf.constant(class_names)

    def outputs(images):
        # Loaded signatures relax shapes when called; say what is wrong before the graph fails deep inside.
        check = tf.debugging.assert_equal(
            tf.shape(images)[1:], tf.constant([height, width, 3]),
            message=f"expected images of shape [N, {height}, {width}, 3]; resize them, or use the "
                    "serve_image_bytes signature, which takes encoded images of any size")
        with tf.control_dependencies([check]):
            images = tf.identity(images)

        def classify():
            logits = model(tf.cast(images, tf.float32), training=False)
            return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        # The convolutions cannot take a batch of no images: it gets no rows, as a serving client expects.
        probabilities = tf.cond(tf.shape(images)[0] > 0, classify,
                                lambda: tf.zeros([0, len(class_names)], tf.float32))
        scores, indices = tf.math.top_k(probabilities, k=top_k)
        return {"probabilities": probabilities, "top_k_indices": indices, "top_k_scores": scores,
                "top_k_labels": tf.gather(labels, indices)}

    def serve_bytes(image_bytes):
        # The training pipeline's decoder: 3 channels always, resized if needed.
        images = tf.map_fn(lambda blob: decode_image(blob, (height, width), resize=True), image_bytes,
                           fn_output_signature=tf.TensorSpec((height, width, 3), tf.uint8))
        return outputs(images)

    return {
        "serving_default": (outputs, tf.TensorSpec([None, height, width, 3], tf.float32, name="images")),
        "serving_uint8": (outputs, tf.TensorSpec([None, height, width, 3], tf.uint8, name="images")),
        "serve_image_bytes": (serve_bytes, tf.TensorSpec([None], tf.string, name="image_bytes")),
    }


def clean_stale(model_root):
    """Removes the work folders of exports whose process is gone (killed mid-export)."""
    if not os.path.isdir(model_root):
        return []
    removed = []
    for name in os.listdir(model_root):
        match = _WORK_FOLDER.match(name)
        if match and int(match["pid"]) != os.getpid() and not runs.process_alive(int(match["pid"])):
            shutil.rmtree(os.path.join(model_root, name), ignore_errors=True)
            removed.append(name)
    return removed


def check_name(name):
    """A model name is one folder name: letters, digits, '_', '.', '-' (no paths)."""
    if not _NAME.match(name or "") or name in (".", ".."):
        raise ExportError(f"model name {name!r}: use letters, digits, '_', '.' and '-' only "
                          "(one folder under the output root, no path)")
    return name


def next_version(model_root):
    """1 + the largest numeric version under `model_root` (1 if none)."""
    if not os.path.isdir(model_root):
        return 1
    versions = [int(d) for d in os.listdir(model_root) if d.isdigit()]
    return max(versions, default=0) + 1


def export_model(model, out_dir, class_names, metadata=None, top_k=5, overwrite=False):
    """Writes `model` as a SavedModel with three signatures into `out_dir`, atomically.

    The SavedModel is written into a temporary folder beside `out_dir`, then
    renamed: an interrupted export leaves no half-written version.

    Args:
        model: a Keras model from `build_model` (images in [0, 255] -> logits).
        out_dir: the version folder, e.g. `exported_models/net1/1`.
        class_names: one name per output unit.
        metadata: dict written to `metadata.json` beside the SavedModel.
        top_k: labels returned per image (capped at the number of classes).
        overwrite: replace an existing `out_dir`.

    Returns:
        `out_dir`.
    """
    num_classes = model.output_shape[-1]
    if len(class_names) != num_classes:
        raise ExportError(f"{len(class_names)} class names for a model of {num_classes} outputs")
    if os.path.exists(out_dir) and not overwrite:
        raise ExportError(f"{out_dir} exists; pass overwrite=True (--overwrite) or choose another version")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    clean_stale(parent)
    version = os.path.basename(out_dir)
    tmp = os.path.join(parent, f".tmp-{version}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, (fn, spec) in _serving_functions(model, list(class_names), min(top_k, num_classes)).items():
            archive.add_endpoint(name=name, fn=fn, input_signature=[spec])
        archive.write_out(tmp, verbose=False)
        meta = {**(metadata or {}), "class_names": list(class_names), "input_shape": list(model.input_shape[1:]),
                "signatures": {"serving_default": "images float32 [N,H,W,3] in [0,255]",
                               "serving_uint8": "images uint8 [N,H,W,3]",
                               "serve_image_bytes": "image_bytes string [N] (JPEG/PNG/BMP/GIF/WebP, any size)"},
                "outputs": ["probabilities", "top_k_indices", "top_k_scores", "top_k_labels"],
                "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "versions": {"tinyresnet": tinyresnet.__version__, "tensorflow": tf.__version__,
                             "keras": keras.__version__, "python": platform.python_version()}}
        with open(os.path.join(tmp, "metadata.json"), "w") as f:
            json.dump(meta, f, indent=2)
        # The old version is moved aside, not deleted, until the new one is in place.
        old = os.path.join(parent, f".old-{version}-{os.getpid()}")
        if os.path.exists(out_dir):
            os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except BaseException:
            if os.path.exists(old) and not os.path.exists(out_dir):
                os.rename(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def inference_model(model):
    """The inference model inside a training wrapper (`augment_on=model` checkpoints), else `model`."""
    if not any(isinstance(layer, PaperAugment) for layer in model.layers):
        return model
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        raise ExportError(f"model {model.name!r} holds an augmentation layer but no single inner model to export")
    return inner[0]


def export_run(source, out=None, name=None, version=None, overwrite=False):
    """Exports a run directory (its `model.keras`) or a `.keras` file (e.g. `RUN/checkpoints/best.keras`).

    The class names, config and metrics come from the run directory the file
    belongs to; a `.keras` file of no run needs `class_names.json` beside it,
    or its labels are the class indices (said in the metadata).

    Args:
        source: a run directory written by `train_and_evaluate`, or a `.keras` file.
        out: root folder (default `exported_models/`).
        name: model name (default: the Keras model's name); one folder name.
        version: integer version >= 1 (default: the next free one).
        overwrite: replace an existing version (the old one stays until the new one is in place).

    Returns:
        The path of the exported version.
    """
    if version is not None and (not isinstance(version, int) or version < 1):
        raise ExportError(f"version must be an integer >= 1, got {version!r}")
    if name is not None:
        check_name(name)
    keras_file = os.path.join(source, runs.MODEL) if os.path.isdir(source) else source
    if not os.path.exists(keras_file):
        raise ExportError(f"{keras_file}: no such model (has the run finished?)")
    run_dir = runs.find_run_dir(keras_file) or os.path.dirname(os.path.abspath(keras_file))
    model = inference_model(saving.load_model(keras_file, compile=False))
    num_classes = model.output_shape[-1]
    class_names = runs.read_json(os.path.join(run_dir, runs.CLASS_NAMES))
    labels_from = "run" if class_names else "class indices (no class_names.json found)"
    class_names = class_names or [str(i) for i in range(num_classes)]
    config = runs.read_json(os.path.join(run_dir, runs.CONFIG), {})
    results = runs.read_json(os.path.join(run_dir, runs.RESULTS), {})
    metadata = {
        "name": name or model.name, "spec": results.get("spec"), "preset": results.get("preset"),
        "variant": results.get("variant", config.get("variant")), "dataset": config.get("dataset"),
        "training_config": config, "labels_from": labels_from,
        "metrics": {k: results[k] for k in ("val_top1", "val_top5", "best_val_top1", "train_top1", "gap",
                                            "epochs") if k in results},
        "source": os.path.abspath(keras_file),
    }
    model_root = os.path.join(out or DEFAULT_ROOT, check_name(name or model.name))
    version = version or next_version(model_root)
    return export_model(model, os.path.join(model_root, str(version)), class_names, metadata,
                        overwrite=overwrite)
