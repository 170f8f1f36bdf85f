"""Prints README's preset table: notation, layers (ours vs Table 1), parameters, GFLOPs.

Usage: python experiments/preset_table.py
"""

import argparse
import os
import sys

import pandas as pd

from tinyresnet import spec, tables

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paper import PAPER_RESULTS  # noqa: E402


def parse_args(argv=None):
    """The command line: `--help` only; this script takes no options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser.parse_args(argv)


def main():
    from tinyresnet.models import build_model  # here: `--help` answers without loading TensorFlow

    rows = []
    for name, preset in spec.PRESETS.items():
        shape, size = preset.input_shape, preset.input_size
        printed = PAPER_RESULTS.get(name, {}).get("layers", "-")
        params = build_model(name, shape).count_params()
        gflops = spec.forward_flops(name, shape) / 1e9
        rows.append([f"`{name}`", spec.format_spec(preset.notation), spec.count_layers(name), printed, f"{params:,}",
                     f"{gflops:.3f}", f"{size}x{size}x3"])
    print(tables.markdown(pd.DataFrame(rows, columns=["preset", "notation", "layers (computed)", "layers (Table 1)",
                                                      "parameters", "forward GFLOPs", "input"])))


if __name__ == "__main__":
    parse_args()
    main()
