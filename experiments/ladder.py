"""The width ladder and the data axis: each claim's comparisons at width 0.125 (the cpu scale), 0.25 and
0.5, and at width 0.25 on 20 and on 100 classes, side by side.

Does a verdict hold, flip, or move toward the paper's as the nets widen, or as the data grow? For
each claim of the ladder, `results/<claim>/ladder.md` tables every comparison
(arm a - arm b, in points, with both arms' mean ± half-range over seeds and
the spread rule's direction) per width, and `ladder.png` plots the
differences against width with the summed half-ranges as error bars. Both are
read from the committed `results.csv` files only, so they need no run
directories.
"""

import os

import pandas as pd

from experiments import claim_results
from experiments.claims import DATA_RUNGS, LADDER, LADDER_CLAIMS, scale as make_scale
from tinyresnet import tables
from tinyresnet.stats import compare

# (label, arm a, arm b, key): the differences each claim turns on.
COMPARISONS = {
    "resnet_vs_convnet": (
        ("Net 1 - plain twin, val top-1", "net1", "net1_plain", "val_top1"),
        ("Net 1 - Net 6, val top-1", "net1", "net6", "val_top1"),
        ("Net 1 without block dropout - Net 6, val top-1", "net1_no_dropout", "net6", "val_top1")),
    "overfitting_gap": (
        ("gap: Net 1 - plain twin", "net1", "net1_plain", "gap"),
        ("gap: Net 1 - Net 6", "net1", "net6", "gap"),
        ("gap: Net 1 without block dropout - Net 6", "net1_no_dropout", "net6", "gap")),
    "dropout_augmentation": (
        ("gap: neither - both", "net1_neither", "net1", "gap"),
        ("gap: dropout only - both", "net1_no_augment", "net1", "gap"),
        ("gap: augmentation only - both", "net1_no_dropout", "net1", "gap")),
}
SCALES = ("cpu", *LADDER, *DATA_RUNGS)
WIDTHS = ("cpu", *LADDER)  # 20 classes, at each width
# The data axis: the width-0.25 rung on 20 classes and each data rung, by number of classes.
DATA_AXIS = {"cpu_w025": 20, "cpu_c100": 100}


def rows_at(results_root, scale_name):
    """`{arm: [row, ...]}` of every committed run at a scale, from the ladder claims' results.csv files."""
    chosen = make_scale(scale_name, "/")
    found = {}
    for claim in LADDER_CLAIMS:
        for row in claim_results.committed_rows(claim_results.claim_dir(results_root, claim, chosen), claim):
            seeds = found.setdefault(row["arm"], {})
            seeds[row["seed"]] = row  # an arm shared by claims is one run
    return {arm: [seeds[s] for s in sorted(seeds)] for arm, seeds in found.items()}


def table(results_root):
    """`{claim: [(label, width, Compare)]}` for every width (20 classes)."""
    widths = {name: make_scale(name, "/").datasets["tiny_imagenet"]["width"] for name in WIDTHS}
    found = {name: rows_at(results_root, name) for name in WIDTHS}
    return {claim: [(label, widths[name], compare(found[name], a, b, key))
                    for label, a, b, key in comparisons for name in WIDTHS]
            for claim, comparisons in COMPARISONS.items()}


def data_table(results_root):
    """`{claim: [(label, classes, Compare)]}` at width 0.25, for 20 and 100 classes."""
    found = {name: rows_at(results_root, name) for name in DATA_AXIS}
    return {claim: [(label, DATA_AXIS[name], compare(found[name], a, b, key))
                    for label, a, b, key in comparisons for name in DATA_AXIS]
            for claim, comparisons in COMPARISONS.items()}


def _table(axis, entries):
    """The comparisons as a Markdown table; `axis` names the column of where each was made (width, classes)."""
    rows = [[label, where, c.a, c.b, c.diff if c.a.seeds and c.b.seeds else "n/a", c.direction]
            for label, where, c in entries]
    return tables.markdown(pd.DataFrame(rows, columns=["comparison", axis, "a", "b", "a - b", "direction"]))


def _markdown(claim, entries, by_data):
    lines = [f"# {claim}: the width ladder and the data axis", "",
             "Arm a - arm b in points at each width (20-class Tiny ImageNet, 10 epochs, float32; the same "
             "settings at every width), with each arm's mean ± half-range over seeds. *higher* / *lower*: every "
             "seed of a above / below every seed of b; otherwise *within spread*. Written by "
             "`python -m experiments.run` from the committed results.csv files.", "",
             _table("width", [(label, f"{width:g}", c) for label, width, c in entries]),
             "", "## The data axis", "",
             "The same comparisons at width 0.25 on 20 classes (10,000 train images) and on 100 classes "
             "(50,000; `--scale=cpu_c100`), with the same settings otherwise.", "",
             _table("classes", by_data)]
    return "\n".join(lines) + "\n"


def _plot(claim, entries, by_data, path):
    from tinyresnet import report
    import matplotlib.pyplot as plt
    fig, (ax, data_ax) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]}, sharey=True)
    for i, label in enumerate(dict.fromkeys(e[0] for e in by_data)):
        points = [(n, c) for lab, n, c in by_data if lab == label and c.a.seeds and c.b.seeds]
        if points:
            data_ax.errorbar([n for n, _ in points], [100 * (c.a.mean - c.b.mean) for _, c in points],
                             yerr=[100 * (c.a.spread + c.b.spread) for _, c in points], marker="s", capsize=3,
                             color=f"C{i}")
    data_ax.axhline(0, color="grey", linewidth=0.8)
    data_ax.set_xscale("log")
    data_ax.set_xticks([20, 100], ["20", "100"])
    data_ax.minorticks_off()
    data_ax.set_xlim(14, 140)
    data_ax.set_xlabel("classes (width 0.25)")
    data_ax.set_title("against the data")
    for label in dict.fromkeys(e[0] for e in entries):
        points = [(w, c) for lab, w, c in entries if lab == label and c.a.seeds and c.b.seeds]
        if points:
            ax.errorbar([w for w, _ in points], [100 * (c.a.mean - c.b.mean) for _, c in points],
                        yerr=[100 * (c.a.spread + c.b.spread) for _, c in points], marker="o", capsize=3,
                        label=label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks([0.125, 0.25, 0.5], ["0.125", "0.25", "0.5"])
    ax.set_xlim(0.1, 0.62)
    ax.set_xlabel("width multiplier")
    ax.set_ylabel("a - b (points)")
    ax.set_title(f"{claim}: against width (bars: summed half-ranges)", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    report.save_figure(fig, path)


def write(results_root, claims=None):
    """Writes `ladder.md` and `ladder.png` of each ladder claim (or of `claims`); returns the width table."""
    found, by_data = table(results_root), data_table(results_root)
    for claim, entries in found.items():
        if claims is not None and claim not in claims:
            continue
        folder = os.path.join(results_root, claim)
        os.makedirs(folder, exist_ok=True)
        text = _markdown(claim, entries, by_data[claim])
        path = os.path.join(folder, "ladder.md")
        if not os.path.exists(path) or open(path).read() != text:  # an unchanged ladder leaves both files alone
            from tinyresnet import runs
            runs.write_text(path, text)
            _plot(claim, entries, by_data[claim], os.path.join(folder, "ladder.png"))
    return found
