"""tinyresnet: residual networks and their plain twins from the paper's notation.

`import tinyresnet` is light: the notation (`parse_spec`, `PRESETS`, ...) is
loaded at once; what needs TensorFlow (`build_model`, `load_model`,
`PaperAugment`, `data`) loads on first use.
"""

import importlib

from tinyresnet import spec
from tinyresnet.spec import PRESETS, SpecError, count_layers, format_spec, parse_spec

__version__ = "0.2.0"

_LAZY = {"build_model": ("tinyresnet.models", "build_model"),
         "PaperAugment": ("tinyresnet.augment", "PaperAugment"),
         "custom_objects": ("tinyresnet.saving", "custom_objects"),
         "data": ("tinyresnet.data", None),
         "load_model": ("tinyresnet.saving", "load_model")}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'tinyresnet' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value


__all__ = ["PRESETS", "PaperAugment", "SpecError", "build_model", "count_layers", "custom_objects", "data",
           "format_spec", "load_model", "parse_spec", "spec"]
