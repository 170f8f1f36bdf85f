"""What the paper prints: Table 1's layer counts and accuracies (Tiny ImageNet, 200 classes)."""

PAPER_RESULTS = {
    "net1": {"layers": 15, "train_top1": 0.72, "val_top1": 0.49},
    "net2": {"layers": 12, "train_top1": 0.69, "val_top1": 0.46},
    "net3": {"layers": 17, "train_top1": 0.62, "val_top1": 0.46},
    "net4": {"layers": 21, "train_top1": 0.44, "val_top1": 0.36},
    "net5": {"layers": 15, "train_top1": 0.55, "val_top1": 0.42},
    "net6": {"layers": 15, "train_top1": 0.43, "val_top1": 0.36},
}
