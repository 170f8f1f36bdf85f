"""What `tinyresnet-bench` times: its settings and the nets of `--nets`/`--spec` (no TensorFlow)."""

import dataclasses
import glob
import math
import os

from tinyresnet import spec as spec_lib

PRECISIONS = ("float32", "mixed_bfloat16")
SEARCH_RESULTS = os.path.join("tuning", "results")
SEARCH_TRIALS = os.path.join(SEARCH_RESULTS, "*", "trials.csv")


@dataclasses.dataclass
class Settings:
    nets: tuple = ("net1",)  # `net1`, `net1@0.25`, `search`, `search=NAME` or `=trials.csv`, or notation text
    width: float = 1.0  # of presets given without `@WIDTH`
    precisions: tuple = PRECISIONS
    batch_size: int = 64
    steps: int = 6  # at most this many timed training steps per repeat
    seconds: float = 1.0  # fewer steps per repeat where a repeat would take longer than this
    repeats: int = 3  # timed repeats per measurement (after one warm-up)
    matmul_sizes: tuple = (2048, 4096, 6144)
    data: str = ""  # Tiny ImageNet archive/folder for the pipeline figures; "" skips them
    latency_calls: int = 100


SMOKE = dict(nets=("cifar7",), width=0.25, batch_size=16, steps=2, repeats=2, matmul_sizes=(256,), latency_calls=5)


@dataclasses.dataclass(frozen=True)
class Net:
    label: str  # as the tables show it: `net1 x0.25`, `trial 06`
    spec: str  # notation text
    width: float
    input_shape: tuple
    # The config keys a committed search's trial set besides its net (the defaults otherwise).
    block_dropout: float = 0.5
    variant: str = "residual"
    shortcut: str = "pad"


def expand_nets(items, width=1.0, flag="--nets"):
    """`Net`s of `--nets` items: a preset (`net1`, `net1@0.25`; `width` where no @), `search=NAME` (every
    completed net of the committed search `tuning/results/NAME/`, or of a trials.csv path, with its dropout,
    variant and shortcut; `search` alone: of every committed search, each distinct net once, labelled by
    its search), or notation text (at width 1). Raises `ValueError` naming `flag` and the bad item."""
    nets = []
    for item in items:
        item = item.strip()
        name, _, value = item.partition("@")
        if item == "search=":
            raise ValueError(f"{flag} search=: give the NAME of a committed search or a PATH/trials.csv after =")
        if item == "search" or item.startswith("search="):
            nets.extend(_search_nets(item.partition("=")[2], flag))
        elif name in spec_lib.PRESETS:
            w = _width(item, value, flag) if value else width
            nets.append(Net(f"{name} x{w:g}", spec_lib.format_spec(spec_lib.parse_spec(name)), w,
                            tuple(spec_lib.PRESETS[name].input_shape)))
        else:
            try:
                parsed = spec_lib.parse_spec(item)
            except spec_lib.SpecError as error:
                raise ValueError(f"{flag} {item!r}: not a preset ({', '.join(spec_lib.PRESETS)}), "
                                 f"'search' or notation: {error}") from None
            try:
                list(spec_lib.feature_shapes(parsed, (64, 64, 3)))
            except spec_lib.SpecError as error:
                raise ValueError(f"{flag} {item!r}: {error}") from None
            text = spec_lib.format_spec(parsed)
            nets.append(Net(text, text, 1.0, (64, 64, 3)))
    return nets


def _width(item, value, flag):
    try:
        width = float(value)
    except ValueError:
        width = -1.0
    if not (math.isfinite(width) and 0 < width <= 64):
        raise ValueError(f"{flag} {item!r}: the width after @ must be a number in (0, 64]")
    return width


def _search_nets(path, flag):
    import pandas as pd
    if path and not path.endswith(".csv") and os.sep not in path:  # the name of a committed search
        path = os.path.join(SEARCH_RESULTS, path, "trials.csv")
        if not os.path.isfile(path):  # from outside the project root: the checkout the package runs from
            path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), path)
    paths = [path] if path else sorted(glob.glob(SEARCH_TRIALS))
    if not paths or not all(os.path.isfile(p) for p in paths):
        names = ", ".join(os.path.basename(os.path.dirname(p)) for p in sorted(glob.glob(SEARCH_TRIALS)))
        raise ValueError(f"{flag} search: no trials.csv at {path or SEARCH_TRIALS} (run from the project root, "
                         f"or give search=NAME{f' ({names})' if names else ''} or search=PATH/trials.csv)")
    nets, seen = [], set()
    for p in paths:
        # Several searches: each labelled by its folder, and a net two of them tried is timed once.
        prefix = f"{os.path.basename(os.path.dirname(os.path.abspath(p)))} " if len(paths) > 1 else ""
        try:
            trials = pd.read_csv(p, dtype={"trial": str})
        except (ValueError, OSError) as error:
            raise ValueError(f"{p}: not a trials table ({error})") from None
        missing = {"trial", "status", "spec"} - set(trials.columns)
        if missing:
            raise ValueError(f"{p}: not a trials table of tinyresnet-tune (no {', '.join(sorted(missing))} column)")
        done = trials[trials["status"] == "COMPLETED"].sort_values("trial")
        if done.empty:
            raise ValueError(f"{p}: no COMPLETED trial to time")
        for row in done.to_dict("records"):
            try:
                text = spec_lib.format_spec(spec_lib.parse_spec(row["spec"]))
                list(spec_lib.feature_shapes(spec_lib.parse_spec(text), (64, 64, 3)))
            except spec_lib.SpecError as error:
                raise ValueError(f"{p}, trial {row['trial']}: {error}") from None
            settings = {key: row[f"hp_{key}"] for key in ("block_dropout", "variant", "shortcut")
                        if f"hp_{key}" in row and not pd.isna(row[f"hp_{key}"])}
            if "block_dropout" in settings:
                settings["block_dropout"] = float(settings["block_dropout"])
            net = Net(f"{prefix}trial {row['trial']}", text, 1.0, (64, 64, 3), **settings)
            same = (net.spec, net.block_dropout, net.variant, net.shortcut)
            if same not in seen:
                seen.add(same)
                nets.append(net)
    return nets
