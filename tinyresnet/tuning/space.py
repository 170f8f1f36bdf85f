"""The search space over the paper's notation, and search files (no TensorFlow here).

A searched net follows the pattern of Table 1's nets: a stem of `Conv w0`
layers and a pool, then stages of basic blocks whose width grows stage by
stage, each stage ending in a pool, an optional dropout, and the FC::

    (Conv 16) x 2, Avg 2, (BB 16) x 2, Avg 2, (BB 32) x 1, Avg 2, Dropout 0.3, FC 20

A search file (YAML) holds a base config (the fields of an experiment file),
the search settings and the space::

    base: {dataset: tiny_imagenet, epochs: 3, width: 1.0}
    search: {oracle: random, max_trials: 12, seed: 0}
    budget: {max_params: 1500000, max_gflops: 0.15}
    space:
      stages: {min: 2, max: 4}          # number of stages
      blocks: {min: 1, max: 3}          # BBs per stage (the depth)
      stem_convs: {min: 1, max: 2}
      base_width: [16, 24, 32]
      growth: [1.5, 2.0]                # width multiplier from one stage to the next
      block_dropout: [0.0, 0.25, 0.5]
      fc_dropout: [0.0, 0.3]
      pool: [avg, max]

Each key is either fixed (a single value), a list of choices, or a range
`{min, max[, step][, sampling: linear|log]}`.
"""

import dataclasses
import hashlib
import itertools
import json
import math
import os
from typing import Any, Dict, Optional

import yaml

from tinyresnet import config as config_lib
from tinyresnet import spec as spec_lib


class SearchError(ValueError):
    """A search file or space that cannot be searched; the message names the file and key."""


@dataclasses.dataclass(frozen=True)
class Range:
    min: float
    max: float
    step: Optional[float] = None
    sampling: str = "linear"


# Each key of `space:`: its kind ("int", "float", "choice") and its default.
KEYS = {
    "stages": ("int", Range(2, 4)),
    "blocks": ("int", Range(1, 2)),
    "stem_convs": ("int", Range(1, 2)),
    "base_width": ("int", [16, 32]),
    "growth": ("float", [2.0]),
    "block_dropout": ("float", [0.0, 0.5]),
    "fc_dropout": ("float", [0.0]),
    "pool": ("choice", ["avg"]),
    "variant": ("choice", ["residual"]),
    "shortcut": ("choice", ["pad"]),
    "learning_rate": ("float", None),
    "weight_decay": ("float", None),
    "crop_prob": ("float", None),
}
# Keys that go into the run config rather than the notation.
CONFIG_KEYS = ("block_dropout", "variant", "shortcut", "learning_rate", "weight_decay", "crop_prob")
SEARCH_KEYS = {"oracle": "random", "max_trials": 12, "seed": 0, "executions_per_trial": 1,
               "reference_width": None, "hyperband_iterations": 1}
ORACLES = ("random", "bayesian", "hyperband")
TOP_KEYS = ("base", "search", "budget", "space")
MAX_STAGES = 8
STARTED = "started.json"  # PROJECT/started.json: when the search began (--max-hours counts from it)


@dataclasses.dataclass(frozen=True)
class Space:
    """The searched dimensions: each a fixed value, a list of choices or a `Range`."""

    dims: Dict[str, Any]

    def choices(self, key):
        """The values `key` can take, for checks (ranges give their ends)."""
        value = self.dims.get(key)
        if isinstance(value, Range):
            return [value.min, value.max]
        return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclasses.dataclass(frozen=True)
class Budget:
    max_params: Optional[int] = None
    max_gflops: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class Search:
    """A parsed search file."""

    base: config_lib.Config
    space: Space
    budget: Budget
    oracle: str = "random"
    max_trials: int = 12
    seed: int = 0
    executions_per_trial: int = 1
    path: str = ""
    reference_width: Optional[float] = None  # width of the reference presets (default: the base's)
    hyperband_iterations: int = 1  # Hyperband runs its brackets this many times (new nets each time)


def _round_width(value):
    # Widths on multiples of 8: what the matmul kernels like, and what a person would write.
    return max(8, int(round(value / 8.0)) * 8)


def stage_widths(base_width, growth, stages):
    return [_round_width(base_width * growth ** i) for i in range(stages)]


def notation(values: Dict[str, Any], num_classes: int) -> str:
    """The net of one trial's values in the paper's notation."""
    stages = int(values["stages"])
    pool = "Avg" if values.get("pool", "avg") == "avg" else "Max"
    widths = stage_widths(values["base_width"], float(values.get("growth", 2.0)), stages)
    parts = [f"(Conv {_round_width(values['base_width'])}) x {int(values['stem_convs'])}", f"{pool} 2"]
    for i, width in enumerate(widths):
        blocks = int(values.get(f"blocks_{i}", values.get("blocks", 1)))
        parts += [f"(BB {width}) x {blocks}", f"{pool} 2"]
    if float(values.get("fc_dropout", 0.0)) > 0:
        parts.append(f"Dropout {float(values['fc_dropout'])!r}")
    parts.append(f"FC {num_classes}")
    return spec_lib.format_spec(", ".join(parts))


def net_key(values: Dict[str, Any], num_classes: int) -> str:
    """A digest of what a trial's values build: its net and its config keys (equal for equal trials)."""
    built = {"net": notation(values, num_classes), **{k: values[k] for k in CONFIG_KEYS if k in values}}
    return hashlib.sha256(json.dumps(built, sort_keys=True, default=str).encode()).hexdigest()[:32]


def built_widths(spec) -> str:
    """The conv widths a spec builds, each stage once, in order: `"16, 32, 64"`."""
    widths = [layer.filters for layer in spec_lib.parse_spec(spec) if isinstance(layer, (spec_lib.Conv,
                                                                                         spec_lib.BasicBlock))]
    return ", ".join(str(w) for i, w in enumerate(widths) if i == 0 or w != widths[i - 1])


def config_for(search: Search, values: Dict[str, Any], num_classes: int) -> config_lib.Config:
    """The run config of one trial: the base config, the trial's net and its config keys."""
    changes = {"net": notation(values, num_classes)}
    changes.update({k: values[k] for k in CONFIG_KEYS if k in values})
    return config_lib.override(search.base, changes)


def cost(net: str, input_shape, num_classes: int, width: float = 1.0, shortcut="pad"):
    """`(parameters, forward GFLOPs)` of a net from its spec alone, without building it."""
    spec = spec_lib.parse_spec(net)
    params, channels = 0, input_shape[-1]
    for layer, (h, w, c) in spec_lib.feature_shapes(spec, input_shape, width):
        if isinstance(layer, spec_lib.Conv):
            params += 9 * channels * c + 4 * c  # kernel (no bias), BN (gamma, beta, moving mean/var)
        elif isinstance(layer, spec_lib.BasicBlock):
            params += 9 * channels * c + 9 * c * c + 2 * 4 * c
            if shortcut == "projection" and channels != c:
                params += channels * c + 4 * c
        channels, features = c, h * w * c
    params += features * num_classes + num_classes
    return params, spec_lib.forward_flops(spec, input_shape, num_classes, width, shortcut) / 1e9


def over_budget(search: Search, values, input_shape, num_classes) -> Optional[str]:
    """Why a trial's net is over the budget (or does not fit the images); None if it is fine."""
    try:
        net = notation(values, num_classes)
        params, gflops = cost(net, input_shape, num_classes, search.base.width,
                              values.get("shortcut", search.base.shortcut))
    except spec_lib.SpecError as e:
        return str(e)
    if search.budget.max_params and params > search.budget.max_params:
        return f"{params:,} parameters > max_params {search.budget.max_params:,}"
    if search.budget.max_gflops and gflops > search.budget.max_gflops:
        return f"{gflops:.3f} GFLOPs > max_gflops {search.budget.max_gflops}"
    return None


def _step(key, step, kind, sampling, where):
    """A range's step: None, or a positive number (an integer for an int range); with log sampling,
    KerasTuner reads it as a multiplier, so it must be above 1."""
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise SearchError(f"{where}: space.{key}: step must be a number, got {step!r}")
    if kind == "int" and not float(step).is_integer():
        raise SearchError(f"{where}: space.{key}: step must be an integer for this range, got {step!r}")
    if sampling == "log" and step <= 1:
        raise SearchError(f"{where}: space.{key}: with sampling: log, step is a multiplier and must be > 1, "
                          f"got {step!r}")
    if step <= 0:
        raise SearchError(f"{where}: space.{key}: step must be > 0, got {step!r}")
    return int(step) if kind == "int" else float(step)


def _parse_dim(key, value, where):
    kind, _ = KEYS[key]
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"min", "max", "step", "sampling"})
        if unknown or "min" not in value or "max" not in value:
            raise SearchError(f"{where}: space.{key}: a range is {{min, max[, step][, sampling]}}, got {value!r}")
        if kind == "choice":
            raise SearchError(f"{where}: space.{key}: takes a list of choices, not a range")
        try:
            low, high = float(value["min"]), float(value["max"])
        except (TypeError, ValueError):
            raise SearchError(f"{where}: space.{key}: min and max must be numbers, got {value!r}") from None
        if low > high:
            raise SearchError(f"{where}: space.{key}: min {value['min']} > max {value['max']}")
        sampling = value.get("sampling", "linear")
        if sampling not in ("linear", "log"):
            raise SearchError(f"{where}: space.{key}: sampling must be linear or log, got {sampling!r}")
        if sampling == "log" and low <= 0:
            raise SearchError(f"{where}: space.{key}: log sampling needs min > 0")
        if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
            raise SearchError(f"{where}: space.{key}: min and max must be integers")
        return Range(int(low) if kind == "int" else low, int(high) if kind == "int" else high,
                     _step(key, value.get("step"), kind, sampling, where), sampling)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SearchError(f"{where}: space.{key}: the list of choices is empty")
    if kind in ("int", "float"):
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SearchError(f"{where}: space.{key}: choices must be numbers, got {v!r}")
        if kind == "int" and any(not float(v).is_integer() for v in values):
            raise SearchError(f"{where}: space.{key}: choices must be integers, got {values!r}")
        values = [int(v) if kind == "int" else float(v) for v in values]
    if len(set(map(str, values))) != len(values):
        raise SearchError(f"{where}: space.{key}: choices repeat: {values!r}")
    return values


_ALLOWED = {"pool": spec_lib.POOL_KINDS, "variant": spec_lib.VARIANTS, "shortcut": spec_lib.SHORTCUTS}
_BOUNDS = {"stages": (1, MAX_STAGES), "blocks": (1, 16), "stem_convs": (1, 4), "base_width": (8, 1024),
           "growth": (1.0, 4.0), "learning_rate": (1e-6, 10.0), "weight_decay": (0.0, 1.0), "crop_prob": (0.0, 1.0)}
_DROPOUTS = ("block_dropout", "fc_dropout")


def parse_space(values: Dict[str, Any], where="space") -> Space:
    if not isinstance(values, dict) or not values:
        raise SearchError(f"{where}: space: expected a mapping of keys to choices or ranges")
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise SearchError(f"{where}: space: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(KEYS)}")
    dims = {}
    for key, (kind, default) in KEYS.items():
        if key in values:
            dims[key] = _parse_dim(key, values[key], where)
        elif default is not None:
            dims[key] = default
    space = Space(dims)
    for key, allowed in _ALLOWED.items():
        bad = [v for v in space.choices(key) if v not in allowed]
        if bad:
            raise SearchError(f"{where}: space.{key}: {bad[0]!r} is not one of {', '.join(allowed)}")
    for key, (low, high) in _BOUNDS.items():
        if key in dims and any(not low <= v <= high for v in space.choices(key)):
            raise SearchError(f"{where}: space.{key}: values must be in [{low}, {high}], got {values.get(key)!r}")
    for key in _DROPOUTS:
        if key in dims and not all(spec_lib.is_dropout_rate(v) for v in space.choices(key)):
            raise SearchError(f"{where}: space.{key}: dropout rates must be in {spec_lib.DROPOUT_RANGE}, "
                              f"got {values.get(key)!r}")
    return space


def corners(space: Space):
    """Every combination of the extreme values of the net's dimensions (for feasibility checks)."""
    keys = ["stages", "blocks", "stem_convs", "base_width", "growth", "fc_dropout", "pool", "shortcut"]
    options = [sorted(set(space.choices(k)), key=str) for k in keys]
    for combo in itertools.product(*options):
        yield dict(zip(keys, combo))


def check_feasible(search: Search, input_shape, num_classes):
    """Raises `SearchError` if no net of the space fits the images and the budget."""
    reasons = []
    for values in corners(search.space):
        reason = over_budget(search, values, input_shape, num_classes)
        if reason is None:
            return
        reasons.append(reason)
    raise SearchError(f"{search.path or 'search'}: no net of this space is valid for "
                      f"{input_shape[0]}x{input_shape[1]} images within the budget, e.g. {reasons[0]}")


def load_search(path, overrides: Optional[Dict[str, Any]] = None) -> Search:
    """Reads a search file; `overrides` (`--key=value`) apply to its base config.

    Raises:
        SearchError: naming the file and key of what is wrong.
    """
    if not os.path.exists(path):
        raise SearchError(f"{path}: no such search file")
    if os.path.isdir(path):
        raise SearchError(f"{path}: is a folder; give a search file (YAML)")
    try:
        raw = config_lib.read_mapping(path)  # names the file and line of a syntax error, or a file of no text
    except config_lib.ConfigError as e:
        raise SearchError(str(e)) from None
    if not isinstance(raw, dict):
        raise SearchError(f"{path}: expected a mapping with {', '.join(TOP_KEYS)}")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise SearchError(f"{path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(TOP_KEYS)}")
    for part in ("base", "search", "budget"):
        if not isinstance(raw.get(part) or {}, dict):
            raise SearchError(f"{path}: {part}: expected a mapping of keys to values, got {raw[part]!r}")
    base = raw.get("base") or {}
    if isinstance(base.get("data"), str) and base["data"] and not os.path.isabs(os.path.expanduser(base["data"])):
        # Relative to the search file, wherever the command runs from (a --data override stays as typed).
        base = {**base, "data": os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), base["data"]))}
    try:
        config = config_lib.override(config_lib.Config(), {**base, **(overrides or {})})
    except config_lib.ConfigError as e:
        raise SearchError(f"{path}: base: {e}") from None
    settings = {**SEARCH_KEYS, **(raw.get("search") or {})}
    unknown = sorted(set(settings) - set(SEARCH_KEYS))
    if unknown:
        raise SearchError(f"{path}: search: unknown key(s) {', '.join(unknown)}; valid keys: "
                          f"{', '.join(SEARCH_KEYS)}")
    if settings["oracle"] not in ORACLES:
        raise SearchError(f"{path}: search.oracle: expected one of {', '.join(ORACLES)}, got {settings['oracle']!r}")
    for key in ("max_trials", "executions_per_trial", "hyperband_iterations"):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or settings[key] < 1:
            raise SearchError(f"{path}: search.{key}: expected an integer >= 1, got {settings[key]!r}")
    if settings["executions_per_trial"] != 1:  # refused rather than accepted and ignored
        raise SearchError(f"{path}: search.executions_per_trial: only 1 is supported (each trial trains once); "
                          "retrain the best nets with seeds instead")
    if settings["hyperband_iterations"] != 1 and settings["oracle"] != "hyperband":
        raise SearchError(f"{path}: search.hyperband_iterations: only for `oracle: hyperband`, not "
                          f"{settings['oracle']!r}")
    budget = raw.get("budget") or {}
    unknown = sorted(set(budget) - {"max_params", "max_gflops"})
    if unknown:
        raise SearchError(f"{path}: budget: unknown key(s) {', '.join(unknown)}; valid keys: max_params, max_gflops")
    for key, value in budget.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise SearchError(f"{path}: budget.{key}: expected a number > 0, got {value!r}")
    space = parse_space(raw.get("space"), path)
    seed = settings["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SearchError(f"{path}: search.seed: expected an integer, got {seed!r}")
    if seed is not None and not 0 <= seed <= config_lib.MAX_SEED:  # KerasTuner's numpy generator takes 32 bits
        raise SearchError(f"{path}: search.seed: must be in [0, {config_lib.MAX_SEED}], got {seed!r}")
    width = settings["reference_width"]
    if width is not None and (isinstance(width, bool) or not isinstance(width, (int, float))
                              or not math.isfinite(width) or width <= 0):
        raise SearchError(f"{path}: search.reference_width: expected a number > 0, got {width!r}")
    return Search(config, space, Budget(**budget), settings["oracle"], settings["max_trials"],
                  settings["seed"], settings["executions_per_trial"], path, width, settings["hyperband_iterations"])


def definition(search: Search) -> Dict[str, Any]:
    """What a search's trials depend on, as JSON: the space, the budget, the oracle and seed, and the
    base config's run-defining keys. A project resumed with another definition would mix two searches."""
    def plain(value):
        return dataclasses.asdict(value) if isinstance(value, Range) else value
    return {"space": {key: plain(value) for key, value in sorted(search.space.dims.items())},
            "budget": dataclasses.asdict(search.budget), "oracle": search.oracle, "seed": search.seed,
            "base": config_lib.run_defining(config_lib.to_dict(search.base)),
            "reference_width": search.reference_width, "hyperband_iterations": search.hyperband_iterations}


def definition_changes(saved: Dict[str, Any], now: Dict[str, Any]):
    """`["space.base_width: [8, 16] -> [40]", ...]`: how `now` differs from a project's saved definition."""
    changes = []
    for part in sorted(set(saved) | set(now)):
        before, after = saved.get(part), now.get(part)
        if isinstance(before, dict) and isinstance(after, dict):
            changes += [f"{part}.{key}: {before.get(key)!r} -> {after.get(key)!r}"
                        for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
        elif before != after:
            changes.append(f"{part}: {before!r} -> {after!r}")
    return changes


__all__ = ["Budget", "Range", "Search", "SearchError", "Space", "check_feasible", "config_for", "cost",
           "load_search", "notation", "over_budget", "parse_space"]
