"""tinyresnet: residual networks and their plain twins from the paper's notation.

`import tinyresnet` is light: the notation (`parse_spec`, `PRESETS`, ...) is
loaded at once; what needs TensorFlow (`build_model`, `PaperAugment`, `data`)
loads on first use.
"""

import importlib

from tinyresnet import spec
from tinyresnet.spec import PRESETS, SpecError, count_layers, format_spec, parse_spec

__version__ = "0.2.0"

_LAZY = {"build_model": ("tinyresnet.models", "build_model"),
         "PaperAugment": ("tinyresnet.augment", "PaperAugment"),
         "data": ("tinyresnet.data", None)}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'tinyresnet' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value


__all__ = ["PRESETS", "PaperAugment", "SpecError", "build_model", "count_layers", "data", "format_spec",
           "parse_spec", "spec"]
