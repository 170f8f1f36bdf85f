"""tinyresnet: residual networks and their plain twins from the paper's notation."""

from tinyresnet import spec
from tinyresnet.spec import PRESETS, SpecError, count_layers, format_spec, parse_spec
from tinyresnet.models import build_model

__version__ = "0.1.0"
from tinyresnet.augment import PaperAugment
from tinyresnet import data
