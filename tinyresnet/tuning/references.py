"""The nets a search is measured against (`--reference`): a study arm (`net1_no_dropout`), a preset, or
a net in the notation with its own settings. No TensorFlow here."""

import dataclasses
import hashlib
import re
from typing import List, Tuple

from tinyresnet import config as config_lib
from tinyresnet import spec as spec_lib
from tinyresnet.arms import ARMS


@dataclasses.dataclass(frozen=True)
class Reference:
    name: str  # its folder under PROJECT/reference/ and PROJECT/confirm/, and its label
    net: str  # a preset or notation
    values: Tuple[Tuple[str, object], ...] = ()  # config values besides the net (block_dropout 0, ...)

    def config(self, base, width):
        """Its run config: the search's base at `width`, with its net and values."""
        return config_lib.override(dataclasses.replace(base, net=self.net, width=width), dict(self.values))


def names():
    """Every name `--reference` takes: the study's arms, then the presets that are not arms."""
    return list(ARMS) + [p for p in spec_lib.PRESETS if p not in ARMS]


def parse(texts) -> List[Reference]:
    """The references of `--reference` values, each "NAME[,NAME...]" (arms, presets) or one net in the
    notation followed by its settings: "(Conv 16) x 2, Avg 2, FC 20; block_dropout=0".

    Raises:
        ValueError: naming --reference and what is wrong.
    """
    found = []
    for text in texts:
        text = text.strip()
        if not text:
            continue
        items = [item.strip() for item in text.split(",") if item.strip()]
        if all(item in ARMS or item in spec_lib.PRESETS for item in items):
            found += [_named(item) for item in items]
        elif all(re.fullmatch(r"\w+", item) for item in items):  # names, one of them misspelt
            unknown = [item for item in items if item not in ARMS and item not in spec_lib.PRESETS]
            raise ValueError(f"--reference: {', '.join(unknown)} not a study arm or a preset; choose from "
                             f"{', '.join(names())}, or give a net in the notation")
        else:
            found.append(_notation(text))
    seen = set()
    for reference in found:
        if reference.name in seen:
            raise ValueError(f"--reference: {reference.name} given twice")
        seen.add(reference.name)
    return found


def as_references(items) -> List[Reference]:
    """`Reference`s of a list that may also hold names or notation (what `parse` takes, item by item)."""
    return [item if isinstance(item, Reference) else parse([item])[0] for item in items]


def _named(name):
    arm = ARMS.get(name)
    return Reference(name, name) if arm is None else Reference(name, arm.net, arm.values)


def _notation(text):
    net, *settings = [part.strip() for part in text.split(";")]
    try:
        spec_lib.parse_spec(net)
    except spec_lib.SpecError as e:
        words = ", ".join(names())
        raise ValueError(f"--reference {text!r}: neither names ({words}) nor a net in the notation ({e})") from None
    values = {}
    for setting in filter(None, settings):
        key, sep, value = setting.partition("=")
        if not sep:
            raise ValueError(f"--reference {text!r}: {setting!r} is not key=value")
        values[key.strip().replace("-", "_")] = value.strip()
    try:
        checked = config_lib.override(config_lib.Config(), values)
    except config_lib.ConfigError as e:
        raise ValueError(f"--reference {text!r}: {e}") from None
    if "net" in values:
        raise ValueError(f"--reference {text!r}: the net is the notation before ';'")
    typed = tuple(sorted((key, getattr(checked, key)) for key in values))
    canonical = spec_lib.format_spec(spec_lib.parse_spec(net))
    digest = hashlib.sha256(repr((canonical, typed)).encode()).hexdigest()[:8]
    return Reference(f"net_{digest}", canonical, typed)
