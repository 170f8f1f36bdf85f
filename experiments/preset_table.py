"""Prints README's preset table: notation, layers (ours vs Table 1), parameters, GFLOPs.

Usage: python experiments/preset_table.py
"""

import os
import sys

from tinyresnet import spec
from tinyresnet.models import build_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paper import PAPER_RESULTS  # noqa: E402


def main():
    print("| preset | notation | layers (computed) | layers (Table 1) | parameters | forward GFLOPs | input |")
    print("|---|---|---|---|---|---|---|")
    for name, preset in spec.PRESETS.items():
        shape, size = preset.input_shape, preset.input_size
        printed = PAPER_RESULTS.get(name, {}).get("layers", "-")
        params = build_model(name, shape).count_params()
        gflops = spec.forward_flops(name, shape) / 1e9
        print(f"| `{name}` | {spec.format_spec(preset.notation)} | {spec.count_layers(name)} | {printed} "
              f"| {params:,} | {gflops:.3f} | {size}x{size}x3 |")


if __name__ == "__main__":
    main()
