"""Classify image files with an exported model (TensorFlow only; no Keras model needed).

TensorFlow loads on the first prediction, not with this module: the command checks its options first.
"""

import csv
import dataclasses
import glob
import io
import json
import os
from typing import List, Optional

import numpy as np

from tinyresnet import startup
from tinyresnet.data.folders import IMAGE_EXTENSIONS

METADATA = "metadata.json"
DEFAULT_TOP_K = 5  # what an export's own top_k outputs hold
OUTPUT_EXTENSIONS = (".csv", ".json")  # of `write_predictions`' file, in any case


class PredictError(ValueError):
    """The export cannot answer as asked: no class names, or a top-k outside 1..classes."""


@dataclasses.dataclass
class Prediction:
    file: str
    labels: List[str] = dataclasses.field(default_factory=list)  # top-k, best first
    indices: List[int] = dataclasses.field(default_factory=list)
    scores: List[float] = dataclasses.field(default_factory=list)
    error: Optional[str] = None


def expand_inputs(inputs):
    """Files, folders (searched recursively for images) and glob patterns -> file paths, in order.

    Folders and patterns give their image files only (by extension); a file
    named explicitly is taken whatever its name. A pattern or path that
    matches nothing is returned as is, so it is reported rather than dropped.
    """
    def images_in(folder):
        return sorted(os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
                      if name.lower().endswith(IMAGE_EXTENSIONS))

    files = []
    for item in inputs:
        if os.path.isdir(item):
            files += images_in(item)
        elif os.path.exists(item):
            files.append(item)
        else:
            matches = sorted(glob.glob(item, recursive=True))
            found = [m for m in matches if os.path.isfile(m) and m.lower().endswith(IMAGE_EXTENSIONS)]
            files += found or [item]
    return files


def _read(path):
    import tensorflow as tf
    try:
        with open(path, "rb") as f:
            blob = f.read()
        with startup.native_noise_filtered(startup.DECODER_NOISE):  # libjpeg's own line for a truncated JPEG
            tf.io.decode_image(blob, channels=3, expand_animations=False)  # fail here, named, not in a batch
        return blob, None
    except FileNotFoundError:
        return None, "no such file (and no file matches it as a pattern)"
    except OSError as e:
        return None, f"cannot read file ({e.strerror})"
    except tf.errors.OpError:
        return None, "not a decodable image (corrupt, truncated or unsupported format)"


def class_names(model_dir):
    """The class names of an export, in the order of its outputs (from its metadata.json).

    Raises:
        PredictError: naming the file, where it holds no class names.
    """
    path = os.path.join(model_dir, METADATA)
    try:
        with open(path) as f:
            names = json.load(f).get("class_names")
    except (OSError, ValueError, AttributeError) as e:
        raise PredictError(f"{path}: cannot read the model's class names ({e})") from None
    if not isinstance(names, list) or not names:
        raise PredictError(f"{path}: no class_names list")
    return [str(name) for name in names]


def check_top_k(top_k, num_classes, name="top_k"):
    """Raises `PredictError` (naming the option `name`) unless 1 <= `top_k` <= `num_classes`."""
    if not 1 <= top_k <= num_classes:
        raise PredictError(f"{name} must be between 1 and {num_classes} (the model's number of classes), "
                           f"got {top_k}")


def predict_files(model_dir, inputs, batch_size=64, top_k=None):
    """Runs the `serve_image_bytes` signature of an export over image files.

    Args:
        model_dir: an exported version folder (`exported_models/net1/1`).
        inputs: files, folders or glob patterns.
        batch_size: images per call.
        top_k: labels per image, best first, up to the number of classes
            (default 5, or all classes where fewer).

    Returns:
        A `Prediction` per file, in input order; unreadable files carry `error`.

    Raises:
        PredictError: for a `top_k` outside 1..classes, or an export without class names.
    """
    import tensorflow as tf
    names = class_names(model_dir)
    top_k = min(DEFAULT_TOP_K, len(names)) if top_k is None else top_k
    check_top_k(top_k, len(names))
    serve = tf.saved_model.load(model_dir).signatures["serve_image_bytes"]
    results = []
    batch = []

    def run(items):
        # Ranked here from all the probabilities: the export's own top_k outputs stop at 5.
        probabilities = serve(image_bytes=tf.constant([blob for _, blob in items]))["probabilities"].numpy()
        ranks = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]  # ties: lower index first, as tf
        for (prediction, _), row, order in zip(items, probabilities, ranks):
            prediction.labels = [names[i] for i in order]
            prediction.indices = order.tolist()
            prediction.scores = [float(row[i]) for i in order]

    def flush():
        if not batch:
            return
        try:
            run(batch)
        except tf.errors.OpError:
            # One image the model cannot take fails the whole call: find it, keep the rest.
            for item in batch:
                try:
                    run([item])
                except tf.errors.OpError as e:
                    item[0].error = f"the model could not classify it ({e.message.splitlines()[0][:200]})"
        batch.clear()

    for path in expand_inputs(inputs):
        blob, error = _read(path)
        prediction = Prediction(path, error=error)
        results.append(prediction)
        if blob is not None:
            batch.append((prediction, blob))
            if len(batch) == batch_size:
                flush()
    flush()
    return results


def format_table(predictions, top_k=3):
    """A plain-text table: file, then the top labels with their scores."""
    width = max([len(p.file) for p in predictions] + [4])
    lines = [f"{'file':<{width}}  top-{top_k} (score)"]
    for p in predictions:
        shown = p.error and f"ERROR: {p.error}" or "  ".join(
            f"{label} ({score:.3f})" for label, score in zip(p.labels[:top_k], p.scores[:top_k]))
        lines.append(f"{p.file:<{width}}  {shown}")
    return "\n".join(lines)


def write_predictions(predictions, path):
    """Writes `.json` (a list of objects) or `.csv` (one row per file, top-k joined by '|'); the
    extension in any case (`O.CSV`)."""
    if path.lower().endswith(".json"):
        with open(path, "w") as f:
            json.dump([dataclasses.asdict(p) for p in predictions], f, indent=2)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["file", "label", "score", "top_k_labels", "top_k_scores", "error"])
    for p in predictions:
        writer.writerow([p.file, p.labels[0] if p.labels else "", f"{p.scores[0]:.6f}" if p.scores else "",
                         "|".join(p.labels), "|".join(f"{s:.6f}" for s in p.scores), p.error or ""])
    with open(path, "w", newline="") as f:
        f.write(buffer.getvalue())
