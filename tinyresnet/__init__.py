"""tinyresnet: residual networks and their plain twins from the paper's notation."""

import os

# Before TensorFlow loads: its C++ INFO/WARNING start-up lines drown the tools' output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tinyresnet import spec
from tinyresnet.spec import PRESETS, SpecError, count_layers, format_spec, parse_spec
from tinyresnet.models import build_model

__version__ = "0.1.0"
from tinyresnet.augment import PaperAugment
from tinyresnet import data

__all__ = ["PRESETS", "PaperAugment", "SpecError", "build_model", "count_layers", "data", "format_spec",
           "parse_spec", "spec"]
