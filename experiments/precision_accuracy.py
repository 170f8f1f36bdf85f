"""Does mixed_bfloat16 keep accuracy? The same short CIFAR-10 run in float32 and in mixed_bfloat16.

Usage:
    python experiments/precision_accuracy.py --data ../shared/data/cifar10-train-jpeg.zip

Trains the `cifar7` preset (same seed, same data order) once per precision on
the CIFAR-10 folder archive (10% stratified hold-out as validation), then
prints the comparison table and writes it with the overlaid curves into --out.
"""

import argparse
import os

from tinyresnet import report, train
from tinyresnet.config import Config


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/cifar10-train-jpeg.zip")
    parser.add_argument("--preset", default="cifar7")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--out", default="runs/precision")
    args = parser.parse_args()
    runs = []
    for precision in ("float32", "mixed_bfloat16"):
        config = Config(net=args.preset, dataset="folder", data=args.data, epochs=args.epochs,
                        width=args.width, precision=precision, batch_size=128, learning_rate=0.1,
                        warmup_epochs=0.5, seed=0, verbose=2)
        run_dir = os.path.join(args.out, precision)
        train.train_and_evaluate(config, run_dir)
        runs.append(run_dir)
    table = report.compare(runs, args.out)
    print(report.to_markdown(table))
    print(f"val top-1 difference: {100 * abs(table['val_top1'][0] - table['val_top1'][1]):.2f} points")


if __name__ == "__main__":
    main()
