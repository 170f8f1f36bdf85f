"""Compare runs: a pandas table (CSV and Markdown) and overlaid training curves."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tinyresnet import runs  # noqa: E402

TABLE_COLUMNS = ("run", "variant", "train_top1", "val_top1", "gap", "best_val_top1", "layers", "params",
                 "epochs", "images_per_sec")


def plot_curves(history, path, title=""):
    """Saves accuracy and loss per epoch, train vs validation, as the paper's figures 6-9."""
    plot_histories({title or "run": history}, path)


def plot_histories(histories, path):
    """Overlays runs' curves: `histories` maps a legend name to history rows."""
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, rows) in enumerate(histories.items()):
        if not rows:
            continue
        color = f"C{i}"
        epochs = [r["epoch"] + 1 for r in rows]
        for key, style, label in (("top1", "--", "train"), ("val_top1", "-", "val")):
            acc.plot(epochs, [r.get(key) for r in rows], style, color=color, marker=".", label=f"{name} {label}")
        for key, style, label in (("loss", "--", "train"), ("val_loss", "-", "val")):
            loss.plot(epochs, [r.get(key) for r in rows], style, color=color, marker=".", label=f"{name} {label}")
    acc.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy")
    loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    save_figure(fig, path)


def save_figure(fig, path):
    """Saves and closes a figure atomically (a temporary file, then a rename)."""
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def load_run(run_dir):
    """`(results, history)` of a run directory; raises FileNotFoundError naming what is missing."""
    run = runs.load(run_dir)
    return run["results"], run["history"]


def compare(run_dirs, out_dir=None, names=None):
    """A table of runs and, with `out_dir`, `comparison.csv`, `comparison.md` and `comparison.png`.

    Args:
        run_dirs: run directories written by `train_and_evaluate`.
        out_dir: where to write the files; None writes nothing.
        names: labels of the runs; default their folder names.

    Returns:
        A `pandas.DataFrame`, one row per run.
    """
    import pandas as pd  # here: a training run plots its curves, and pandas takes 0.5 s to load
    names = names or [os.path.basename(os.path.normpath(d)) for d in run_dirs]
    rows, histories = [], {}
    for name, run_dir in zip(names, run_dirs):
        results, history = load_run(run_dir)
        rows.append({"run": name, **{k: results.get(k) for k in TABLE_COLUMNS if k != "run"}})
        histories[name] = history
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        table.to_csv(os.path.join(out_dir, "comparison.csv"), index=False)
        with open(os.path.join(out_dir, "comparison.md"), "w") as f:
            f.write(to_markdown(table) + "\n")
        plot_histories(histories, os.path.join(out_dir, "comparison.png"))
    return table


def to_markdown(table):
    """Markdown of a comparison table, fractions shown as percent."""
    import pandas as pd
    from tinyresnet import tables
    percent = {"train_top1", "val_top1", "gap", "best_val_top1"}

    def cell(key, value):
        if value is None:
            return "-"
        if key in percent:
            return f"{100 * value:.1f}%"
        if key == "params":
            return f"{int(value):,}"
        if key == "images_per_sec":
            return f"{value:.0f}"
        return str(value)

    shown = pd.DataFrame([[cell(k, row[k]) for k in table.columns] for _, row in table.iterrows()],
                         columns=table.columns)
    return tables.markdown(shown)
