"""Prints README's preset table: notation, layers (ours vs Table 1), parameters, GFLOPs.

Usage: python experiments/preset_table.py
"""

from tinyresnet import spec
from tinyresnet.models import build_model


def main():
    print("| preset | notation | layers (computed) | layers (Table 1) | parameters | forward GFLOPs | input |")
    print("|---|---|---|---|---|---|---|")
    for name, text in spec.PRESETS.items():
        size = 32 if name.startswith("cifar") else 64
        shape = (size, size, 3)
        printed = spec.PAPER_RESULTS.get(name, {}).get("layers", "-")
        params = build_model(name, shape).count_params()
        gflops = spec.forward_flops(name, shape) / 1e9
        print(f"| `{name}` | {spec.format_spec(text)} | {spec.count_layers(name)} | {printed} "
              f"| {params:,} | {gflops:.3f} | {size}x{size}x3 |")


if __name__ == "__main__":
    main()
