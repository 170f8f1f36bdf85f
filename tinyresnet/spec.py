"""The study's layer notation: parse, format, count and cost a network spec.

A spec is written as Table 1 of the paper writes it, items separated by
commas or new lines::

    (Conv 64) x 2, Avg 2, BB 64, BB 128, Avg 2, BB 512, Avg 2, FC 200

and parses to a tuple of frozen dataclasses, one per layer (repeats are
expanded). This module imports no TensorFlow: the tuner, the CLI and the
README table use it without building a model.
"""

import dataclasses
import re
from typing import Optional, Sequence, Tuple, Union


class SpecError(ValueError):
    """A spec string or tuple that does not describe a valid network."""


@dataclasses.dataclass(frozen=True)
class Conv:
    """3x3 conv, stride 1, same padding, then BN and ReLU."""

    filters: int


@dataclasses.dataclass(frozen=True)
class BasicBlock:
    """The paper's BB: conv3x3-BN-ReLU, dropout, conv3x3-BN, + shortcut, ReLU."""

    filters: int


@dataclasses.dataclass(frozen=True)
class Pool:
    """k x k pooling with stride k; `kind` is "avg" or "max"."""

    kind: str
    size: int


@dataclasses.dataclass(frozen=True)
class Dropout:
    rate: float = 0.5


@dataclasses.dataclass(frozen=True)
class FC:
    """The classifier: flatten the feature map, then a dense layer of logits."""

    units: int


Layer = Union[Conv, BasicBlock, Pool, Dropout, FC]
Spec = Tuple[Layer, ...]


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named net: its notation and the square image size it was designed for."""

    notation: str
    input_size: int  # pixels per side

    @property
    def input_shape(self):
        return (self.input_size, self.input_size, 3)


# One line per net, exactly as Table 1 prints its columns (Net 6 is the plain
# ConvNet twin of Net 1), for 64x64 Tiny ImageNet. The CIFAR pair (32x32) is
# ours: the paper compares a 7- and a 9-layer net on CIFAR-10 without printing
# them; see README.md.
PRESETS = {
    "net1": Preset("(Conv 64) x 2, Avg 2, BB 64, BB 128, Avg 2, BB 128, BB 256, Avg 2, BB 256, Avg 2, BB 512, Avg 2, FC 200", 64),
    "net2": Preset("Conv 64, Avg 2, BB 128, Avg 2, BB 128, BB 256, Avg 2, BB 256, Avg 2, BB 512, Avg 4, FC 200", 64),
    "net3": Preset("Conv 32, Conv 64, Max 2, (BB 64) x 2, Avg 2, (BB 128) x 3, Avg 2, BB 128, Avg 2, BB 256, Avg 2, FC 200", 64),
    "net4": Preset("(Conv 64) x 2, Avg 2, (BB 64) x 3, Max 2, (BB 128) x 3, Max 2, BB 256, BB512, Avg 2, Dropout, FC 200", 64),
    "net5": Preset("(Conv 64) x 2, Avg 2, BB 128, Max 2, (BB 256) x 2, Max 2, (BB 512) x 2, Avg 2, Dropout, FC 200", 64),
    "net6": Preset("(Conv 64) x 2, Avg 2, (Conv 64) x 2, (Conv 128) x 2, Avg 2, (Conv 128) x 2, (Conv 256) x 2, Avg 2, (Conv 256) x 2, Avg 2, (Conv 512) x 2, Avg2, FC 200", 64),
    "cifar7": Preset("(Conv 32) x 2, Avg 2, BB 64, Avg 2, BB 128, Avg 2, FC 10", 32),
    "cifar9": Preset("(Conv 32) x 2, Avg 2, BB 64, Avg 2, BB 128, Avg 2, BB 256, Avg 2, FC 10", 32),
}

# A repeat such as "(BB 64) x N" beyond this is a typo, not a network.
MAX_REPEAT = 1000

# The one source of the builders' choices and bounds: the config, `build_model`, the blocks and the
# search space all read these.
VARIANTS = ("residual", "plain")  # the residual net, or its plain twin (the same layers, no shortcuts)
SHORTCUTS = ("pad", "projection")  # parameter-free zero-padded identity, or a 1x1 conv + BN
POOL_KINDS = ("avg", "max")
DROPOUT_RANGE = "[0, 1)"  # a rate of 1 would drop everything


def is_dropout_rate(rate) -> bool:
    """Whether `rate` is a dropout rate: a number in [0, 1) (a bool is not one)."""
    return not isinstance(rate, bool) and isinstance(rate, (int, float)) and 0.0 <= rate < 1.0


def check_choice(what, value, allowed):
    """Raises `ValueError` naming `what` unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value

_KINDS = {"conv": "Conv", "bb": "BB", "avg": "Avg", "max": "Max", "dropout": "Dropout", "fc": "FC"}
_REPEAT = re.compile(r"^\((?P<body>[^()]*)\)\s*[x×*]\s*(?P<count>\S+)$", re.IGNORECASE)
_ITEM = re.compile(r"^(?P<kind>[A-Za-z]+)\s*(?P<arg>\S*)$")


def _normalise(text: str) -> str:
    # The paper's extracted text writes repeats as LaTeX: "$(BB 64) \\times 3$".
    return text.replace("\\times", "×").replace("\\ ", " ").replace("$", "").strip()


def _positive_int(arg: str, where: str, what: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", arg or ""):
        raise SpecError(f"{where}: {what} must be a positive integer, got {repr(arg) if arg else 'nothing'}")
    value = int(arg)
    if value <= 0:
        raise SpecError(f"{where}: {what} must be a positive integer, got {value}")
    return value


def _parse_item(text: str, where: str) -> Layer:
    match = _ITEM.match(text)
    kind = _KINDS.get(match.group("kind").lower()) if match else None
    if kind is None:
        raise SpecError(
            f"{where}: unknown layer {text!r}; expected one of "
            "Conv N, BB N, Avg K, Max K, Dropout [P], FC N, or (ITEM) x N"
        )
    arg = match.group("arg")
    if kind == "Conv":
        return Conv(_positive_int(arg, where, "Conv width"))
    if kind == "BB":
        return BasicBlock(_positive_int(arg, where, "BB width"))
    if kind in ("Avg", "Max"):
        return Pool(kind.lower(), _positive_int(arg, where, f"{kind} pool size"))
    if kind == "FC":
        return FC(_positive_int(arg, where, "FC units"))
    if not arg:
        return Dropout()
    try:
        rate = float(arg)
    except ValueError:
        raise SpecError(f"{where}: dropout rate must be a number, got {arg!r}") from None
    return Dropout(rate)


def _items(text: str):
    """The items of a notation text: comments (`# ...` to the end of a line) dropped, then split."""
    lines = [line.split("#", 1)[0] for line in _normalise(text).split("\n")]
    items = [item.strip() for line in lines for item in re.split(r"[,;]", line)]
    return [item for item in items if item]


def parse_spec(text: Union[str, Sequence[Layer]]) -> Spec:
    """Parses the paper's notation (or a preset name) into a validated spec.

    Args:
        text: items separated by commas or new lines, e.g.
            `"(Conv 64) x 2, Avg 2, BB 64, FC 200"`, with optional `# comments`;
            a key of `PRESETS`; or an already parsed sequence of layers
            (validated and returned as a tuple).

    Returns:
        A tuple of `Conv`, `BasicBlock`, `Pool`, `Dropout` and `FC` items,
        with repeats expanded.

    Raises:
        SpecError: naming the item number and text that is wrong.
    """
    if not isinstance(text, str):
        spec = tuple(text)
        validate_spec(spec)
        return spec
    if text.strip() in PRESETS:
        text = PRESETS[text.strip()].notation
    items = _items(text)
    if not items:
        raise SpecError("empty spec: expected items such as 'Conv 64, Avg 2, BB 64, FC 200'")
    layers = []
    for number, item in enumerate(items, start=1):
        where = f"item {number} ({item!r})"
        repeat = _REPEAT.match(item)
        if repeat:
            count = _positive_int(repeat.group("count"), where, "repeat count")
            if count > MAX_REPEAT:
                raise SpecError(f"{where}: repeat count {count} is over the limit of {MAX_REPEAT}")
            layer = _parse_item(repeat.group("body").strip(), where)
            _check_layer(layer, where)
            layers.extend([layer] * count)
        elif "(" in item or ")" in item:
            raise SpecError(f"{where}: bad repeat; write it as '(Conv 64) x 2'")
        else:
            layer = _parse_item(item, where)
            _check_layer(layer, where)
            layers.append(layer)
    spec = tuple(layers)
    validate_spec(spec)
    return spec


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_layer(layer, where: str) -> None:
    """Checks the fields of one layer, so that tuples built in code meet the parser's rules."""
    if isinstance(layer, (Conv, BasicBlock)):
        if not _is_positive_int(layer.filters):
            raise SpecError(f"{where}: width must be a positive integer, got {layer.filters!r}")
    elif isinstance(layer, Pool):
        if layer.kind not in POOL_KINDS:
            raise SpecError(f"{where}: pooling kind must be one of {', '.join(POOL_KINDS)}, got {layer.kind!r}")
        if not _is_positive_int(layer.size):
            raise SpecError(f"{where}: pool size must be a positive integer, got {layer.size!r}")
    elif isinstance(layer, Dropout):
        if not is_dropout_rate(layer.rate):
            raise SpecError(f"{where}: dropout rate must be in {DROPOUT_RANGE}, got {layer.rate!r}")
    elif isinstance(layer, FC):
        if not _is_positive_int(layer.units):
            raise SpecError(f"{where}: FC units must be a positive integer, got {layer.units!r}")
    else:
        raise SpecError(f"{where}: not a spec layer: {layer!r}")


def validate_spec(spec: Spec) -> None:
    """Checks every layer's fields and the structure: ends in one FC, has a weight layer."""
    if not spec:
        raise SpecError("empty spec")
    for number, layer in enumerate(spec, start=1):
        _check_layer(layer, f"layer {number} ({layer!r})")
    for number, layer in enumerate(spec, start=1):
        if isinstance(layer, FC) and number != len(spec):
            raise SpecError(f"layer {number} ({format_layer(layer)!r}): FC must be the last layer")
    if not isinstance(spec[-1], FC):
        raise SpecError(f"the spec must end with the classifier 'FC N', it ends with {format_layer(spec[-1])!r}")
    if not any(isinstance(layer, (Conv, BasicBlock)) for layer in spec):
        raise SpecError("the spec has nothing but pooling/dropout before its FC: add a Conv or BB")


def format_layer(layer: Layer) -> str:
    if isinstance(layer, Conv):
        return f"Conv {layer.filters}"
    if isinstance(layer, BasicBlock):
        return f"BB {layer.filters}"
    if isinstance(layer, Pool):
        return f"{layer.kind.capitalize()} {layer.size}"
    if isinstance(layer, Dropout):
        # repr() is the shortest text that reads back as the same float.
        return "Dropout" if layer.rate == 0.5 else f"Dropout {float(layer.rate)!r}"
    if isinstance(layer, FC):
        return f"FC {layer.units}"
    raise SpecError(f"not a spec layer: {layer!r}")


def format_spec(spec: Union[str, Sequence[Layer]]) -> str:
    """Formats a spec in canonical notation; runs of equal items become `(X) x N`.

    `parse_spec(format_spec(s)) == parse_spec(s)` for every valid spec.
    """
    spec = parse_spec(spec)
    parts, i = [], 0
    while i < len(spec):
        run = 1
        while i + run < len(spec) and spec[i + run] == spec[i]:
            run += 1
        text = format_layer(spec[i])
        parts.append(f"({text}) x {run}" if run > 1 else text)
        i += run
    return ", ".join(parts)


def with_classes(spec, num_classes: Optional[int]) -> Spec:
    """The spec as built for `num_classes` outputs: its FC gets that many units."""
    spec = parse_spec(spec)
    if not num_classes or spec[-1].units == num_classes:
        return spec
    return spec[:-1] + (FC(int(num_classes)),)


def preset_name(net) -> Optional[str]:
    """The preset `net` names, or None for notation text and parsed specs."""
    if isinstance(net, str) and net.strip() in PRESETS:
        return net.strip()
    return None


def count_layers(spec: Union[str, Sequence[Layer]]) -> int:
    """Layers by the paper's convention: convs and FC count 1, a BB counts 2."""
    weights = {Conv: 1, BasicBlock: 2, FC: 1}
    return sum(weights.get(type(layer), 0) for layer in parse_spec(spec))


def scale_width(filters: int, width: float) -> int:
    """Scales a conv width for cheap runs: rounded, never under 8 filters."""
    return filters if width == 1.0 else max(8, int(round(filters * width)))


def at_width(spec, width: float) -> Spec:
    """The spec as `width` builds it: each Conv and BB with its scaled filters (`scale_width`)."""
    return tuple(dataclasses.replace(layer, filters=scale_width(layer.filters, width))
                 if isinstance(layer, (Conv, BasicBlock)) else layer for layer in parse_spec(spec))


def feature_shapes(spec, input_shape, width: float = 1.0):
    """Yields `(layer, (height, width, channels))` after each layer but the FC.

    Raises:
        SpecError: if a pooling layer shrinks the feature map below 1x1.
    """
    spec = parse_spec(spec)
    height, width_px, channels = input_shape
    for number, layer in enumerate(spec[:-1], start=1):
        if isinstance(layer, (Conv, BasicBlock)):
            channels = scale_width(layer.filters, width)
        elif isinstance(layer, Pool):
            if height < layer.size or width_px < layer.size:
                raise SpecError(
                    f"layer {number} ({format_layer(layer)!r}): pooling a {height}x{width_px} "
                    f"feature map by {layer.size} leaves less than 1x1 for input {tuple(input_shape)}"
                )
            height, width_px = height // layer.size, width_px // layer.size
        yield layer, (height, width_px, channels)


def forward_flops(spec, input_shape, num_classes: Optional[int] = None, width: float = 1.0,
                  shortcut: str = "pad") -> int:
    """Forward FLOPs per image: 2 x multiply-adds of convs, shortcut projections and FC.

    BatchNorm, ReLU, pooling, dropout and the zero-padding shortcut are not
    counted (each is O(activations), under 1% of the conv work). A training
    step costs about 3 x this (forward, and backward for inputs and weights).
    """
    spec = parse_spec(spec)
    flops, channels = 0, input_shape[-1]
    for layer, (h, w, c) in feature_shapes(spec, input_shape, width):
        if isinstance(layer, Conv):
            flops += 2 * h * w * 9 * channels * c
        elif isinstance(layer, BasicBlock):
            flops += 2 * h * w * 9 * (channels * c + c * c)
            if shortcut == "projection" and channels != c:
                flops += 2 * h * w * channels * c
        channels, features = c, h * w * c
    units = num_classes or spec[-1].units
    return flops + 2 * features * units
