"""A search's results: `trials.csv`, `leaderboard.md` and `search.png` (val top-1 against GFLOPs, and the
best so far against trials)."""

import glob
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from tinyresnet import runner, runs  # noqa: E402
from tinyresnet import spec as spec_lib  # noqa: E402
from tinyresnet import tables  # noqa: E402
from tinyresnet.tuning import confirm  # noqa: E402
from tinyresnet.tuning import space as space_lib  # noqa: E402
from tinyresnet.tuning import verdicts  # noqa: E402
from tinyresnet.report import save_figure  # noqa: E402

COLUMNS = ("trial", "status", "spec", "widths", "layers", "params", "forward_gflops", "val_top1", "best_val_top1",
           "train_top1", "gap", "epochs", "seconds", "fixed_seconds", "message")
REFERENCE_DIR = "reference"  # PROJECT/reference/<net>: the paper's nets trained on the search's settings


def _trial_row(trial_dir):
    trial = runs.read_json(os.path.join(trial_dir, "trial.json"), {})
    hps = {k: v for k, v in (trial.get("hyperparameters", {}).get("values") or {}).items()}
    results = runs.read_json(os.path.join(trial_dir, runs.RESULTS), {})
    spec = results.get("spec")
    if spec is None and os.path.exists(os.path.join(trial_dir, runs.SPEC)):
        with open(os.path.join(trial_dir, runs.SPEC)) as f:
            spec = f.read().strip()
    row = {"trial": trial.get("trial_id", os.path.basename(trial_dir).replace("trial_", "")),
           "status": trial.get("status", "UNKNOWN"), "spec": spec,
           "message": trial.get("message") or None,  # why a failed trial failed (one line)
           "widths": space_lib.built_widths(spec) if spec else None,  # as built: hp_base_width is as sampled
           "seconds": sum(results["phase_seconds"].values()) if "phase_seconds" in results else None}
    row.update({k: results.get(k) for k in COLUMNS if k in results and k not in row})
    if "phase_seconds" in results:
        # What the trial cost besides its training steps: data, build, tracing, evaluation, saving, plots.
        history = runs.read_history(trial_dir)
        steps = sum(r.get("train_seconds", 0) - r.get("first_step_seconds", 0) for r in history)
        row["fixed_seconds"] = sum(results["phase_seconds"].values()) - steps
    row.update({f"hp_{k}": v for k, v in hps.items()})
    return row


def trials_table(project_dir):
    """One row per trial of a project (`pandas.DataFrame`), those of the most epochs first, each by val top-1."""
    rows = [_trial_row(d) for d in sorted(glob.glob(os.path.join(project_dir, "trial_*"))) if os.path.isdir(d)]
    table = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in table:
            table[column] = None
    ordered = list(COLUMNS) + sorted(c for c in table.columns if c not in COLUMNS)
    table = table[ordered]
    # Most epochs first (a Hyperband score after 1 epoch is not comparable with one after 3), then val top-1.
    return table.sort_values(["epochs", "val_top1"], ascending=[False, False], na_position="last",
                             kind="stable").reset_index(drop=True)


def references(project_dir):
    """`{name: results}` of the reference runs in `PROJECT/reference/` that finished; their spec is the net
    as built, at the search's reference width."""
    found = {}
    for run_dir in sorted(glob.glob(os.path.join(project_dir, REFERENCE_DIR, "*"))):
        if runs.is_finished(run_dir):
            run = runs.load(run_dir)
            spec = spec_lib.at_width(run["results"]["spec"], run["config"].get("width", 1.0))
            found[os.path.basename(run_dir)] = {**run["results"], "spec": spec_lib.format_spec(spec)}
    return found


def pareto(table):
    """Rows not beaten by another with at most its GFLOPs and more val top-1, cheapest first; among the
    trials with the most epochs only, when they differ (Hyperband)."""
    done = table.dropna(subset=["val_top1", "forward_gflops"])
    done = done[done["epochs"] == done["epochs"].max()]
    done = done.sort_values(["forward_gflops", "val_top1"], ascending=[True, False])
    front, best = [], -1.0
    for _, row in done.iterrows():
        if row["val_top1"] > best:
            front.append(row)
            best = row["val_top1"]
    return pd.DataFrame(front)


def rung_correlations(table):
    """How far a short rung's order foretells a longer one's: for each pair of budgets (epochs) of a
    multi-fidelity search, the nets scored at both and the Spearman rank correlation of their val top-1.
    A net is its layers and config keys, as the oracle counts them. Empty for a single budget."""
    done = table[(table["status"] == "COMPLETED") & table["val_top1"].notna() & table["epochs"].notna()]
    if done.empty:
        return pd.DataFrame(columns=["short_epochs", "long_epochs", "nets", "spearman"])
    keys = ["spec"] + [c for c in done.columns if c.startswith("hp_") and not c.startswith("hp_tuner/")
                       and c[3:] in space_lib.CONFIG_KEYS]
    nets = done.assign(net=done[keys].astype(str).agg("|".join, axis=1))
    # A net trained twice at one budget (another bracket) keeps its best score there.
    scores = nets.pivot_table(index="net", columns="epochs", values="val_top1", aggfunc="max")
    rows = []
    budgets = sorted(scores.columns)
    for i, short in enumerate(budgets):
        for long in budgets[i + 1:]:
            both = scores[[short, long]].dropna()
            rho = both[short].corr(both[long], method="spearman") if len(both) >= 3 else float("nan")
            rows.append({"short_epochs": int(short), "long_epochs": int(long), "nets": len(both), "spearman": rho})
    return pd.DataFrame(rows, columns=["short_epochs", "long_epochs", "nets", "spearman"])


def rungs_markdown(correlations):
    """The rung section of leaderboard.md ("" for a single budget)."""
    if correlations.empty:
        return ""
    lines = ["## How far a short rung foretells a longer one", "",
             "Spearman rank correlation of val top-1 between two budgets, over the nets the search trained at both "
             "(1: the same order; 0: none; n/a under 3 nets).", ""]
    shown = pd.DataFrame([[row.short_epochs, row.long_epochs, row.nets,
                           "n/a" if pd.isna(row.spearman) else f"{row.spearman:.2f}"]
                          for row in correlations.itertuples()],
                         columns=["epochs", "against epochs", "nets", "Spearman"])
    return "\n".join(lines + [tables.markdown(shown)]) + "\n"


def _percent(value):
    return "-" if value is None or pd.isna(value) else f"{100 * value:.1f}%"


def markdown(table, refs):
    """The ranked trials (those with a score: a failed one is listed apart, with why), then the references."""
    ranked = []
    for rank, (_, row) in enumerate(table.dropna(subset=["val_top1"]).iterrows(), start=1):
        params = "-" if pd.isna(row["params"]) else f"{int(row['params']):,}"
        gflops = "-" if pd.isna(row["forward_gflops"]) else f"{row['forward_gflops']:.3f}"
        seconds = "-" if pd.isna(row["seconds"]) else f"{row['seconds']:.0f}"
        layers = "-" if pd.isna(row["layers"]) else int(row["layers"])
        epochs = "-" if pd.isna(row["epochs"]) else int(row["epochs"])
        ranked.append([rank, row["trial"], _percent(row["val_top1"]), _percent(row["train_top1"]),
                       _percent(row["gap"]), gflops, params, layers, epochs, seconds, f"`{row['spec']}`"])
    failed = table[table["val_top1"].isna()]
    if len(failed) == len(table):
        lines = ["No trial has a score yet."]
    else:
        lines = [tables.markdown(pd.DataFrame(ranked, columns=[
            "rank", "trial", "val top-1", "train top-1", "gap", "GFLOPs", "params", "layers", "epochs", "seconds",
            "spec"]))]
    if len(failed):
        lines += ["", "Not ranked (no score): " + "; ".join(
            f"trial {row['trial']} {str(row['status']).lower()}" + (f": {row['message']}" if isinstance(row["message"], str) and row["message"] else "")
            for _, row in failed.iterrows())]
    if refs:
        shown = pd.DataFrame([[name, _percent(r["val_top1"]), _percent(r["train_top1"]), f"{r['forward_gflops']:.3f}",
                               f"{r['params']:,}", f"`{r['spec']}`"] for name, r in refs.items()],
                             columns=["net", "val top-1", "train top-1", "GFLOPs", "params", "spec"])
        lines += ["", "Reference nets on the same settings:", "", tables.markdown(shown)]
    return "\n".join(lines) + "\n"


def strongest(refs, confirmed=None):
    """The reference a searched net must beat: the strongest confirmed one (best mean over seeds) where
    `tinyresnet-tune confirm` has run, else the best one trained on the search's settings; None without one."""
    if confirmed is not None and confirm.strongest_reference(confirmed) is not None:
        return confirm.strongest_reference(confirmed)
    scored = {name: r["val_top1"] for name, r in refs.items() if r.get("val_top1") is not None}
    return max(scored, key=scored.get) if scored else None


def plot(table, refs, path, strongest_reference=None):
    """Two panels. Left, val top-1 against forward GFLOPs: the trials, their Pareto front, the references as
    stars. Right, the best val top-1 so far against trials, per budget (Hyperband's rungs). Both draw the
    strongest reference's score as a line across."""
    fig, (ax, progress) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1.25, 1]})
    done = table.dropna(subset=["val_top1", "forward_gflops", "epochs"])
    budgets = sorted(done["epochs"].unique(), reverse=True)
    for i, epochs in enumerate(budgets):  # the longest trials in colour, shorter ones (Hyperband's) paler
        rows = done[done["epochs"] == epochs]
        label = "trials" if len(budgets) == 1 else f"trials of {_epochs(epochs)}"
        style = {"color": "C0" if i == 0 else "0.6", "alpha": 1.0 if i == 0 else max(0.3, 0.8 - 0.2 * i)}
        ax.scatter(rows["forward_gflops"], rows["val_top1"], label=label, zorder=3 - 0.1 * i, **style)
        best = _best_so_far(done, epochs)
        progress.step(best.index, best.values, where="post", linewidth=2 if i == 0 else 1,
                      label="best so far" if len(budgets) == 1 else f"best so far, {_epochs(epochs)}", **style)
    front = pareto(table)
    if len(front):
        ax.step(front["forward_gflops"], front["val_top1"], where="post", color="C0", alpha=0.6,
                label="Pareto front" if len(budgets) == 1 else f"Pareto front ({_epochs(budgets[0])})")
    for i, (name, r) in enumerate(refs.items()):
        ax.scatter([r["forward_gflops"]], [r["val_top1"]], marker="*", s=160, color=f"C{i + 1}",
                   label=f"{name} (same settings)", zorder=4)
        if name == strongest_reference:
            for axes in (ax, progress):
                axes.axhline(r["val_top1"], color=f"C{i + 1}", linestyle="--", linewidth=1,
                             label=f"{name}: the strongest reference")
    ax.set(xlabel="forward GFLOPs per image", ylabel="val top-1", title="search: accuracy against cost")
    progress.set(xlabel="trial", ylabel="best val top-1 so far",
                 title=f"search: best so far ({len(done)} trials)")
    for axes, where in ((ax, "best"), (progress, "lower right")):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:  # nothing to label before a trial has finished
            axes.legend(fontsize=8, loc=where)
    save_figure(fig, path)


def _best_so_far(done, epochs):
    """The best val top-1 of the trials of `epochs` up to each trial, indexed by trial number + 1 (the
    order trials started in; where trials are not numbered, the order of their ids as text, as their folders
    sort: the table's own order is by val top-1, which would draw a flat line at the best), held to the last
    trial."""
    number = pd.to_numeric(done["trial"], errors="coerce") + 1
    if number.isna().any():
        number = done["trial"].astype(str).rank(method="first")
    mine = done.assign(n=number).sort_values("n", kind="stable")
    best = mine[mine["epochs"] == epochs].set_index("n")["val_top1"].cummax()
    last = mine["n"].iloc[-1]
    return best if best.empty or best.index[-1] == last else pd.concat([best, pd.Series([best.iloc[-1]], [last])])


def _epochs(n):
    return runner.count(int(n), "epoch")


def write(project_dir, out_dir=None):
    """Writes `trials.csv`, `leaderboard.md` and `search.png` into `out_dir` (default the project), and
    `confirmed.csv` with the leaderboard's confirmed section once `tinyresnet-tune confirm` has runs.

    Returns:
        The trials table.
    """
    out_dir = out_dir or project_dir
    os.makedirs(out_dir, exist_ok=True)
    table = trials_table(project_dir)
    refs = references(project_dir)
    tmp = os.path.join(out_dir, f"trials.csv.tmp-{os.getpid()}")
    table.to_csv(tmp, index=False)
    os.replace(tmp, os.path.join(out_dir, "trials.csv"))
    board = markdown(table, refs)
    correlations = rung_correlations(table)
    if not correlations.empty:
        board += "\n" + rungs_markdown(correlations)
        runs.write_csv(os.path.join(out_dir, "rungs.csv"), correlations.to_dict("records"), list(correlations.columns))
    confirmed = confirm.table(project_dir)
    if confirmed is not None:
        runs.write_csv(os.path.join(out_dir, confirm.CONFIRMED), confirmed.to_dict("records"), confirm.COLUMNS)
        board += "\n" + verdicts.markdown(confirmed, confirm.waiting(project_dir, confirmed))
    runs.write_text(os.path.join(out_dir, "leaderboard.md"), board)
    plot(table, refs, os.path.join(out_dir, "search.png"), strongest(refs, confirmed))
    if refs:
        runs.write_json(os.path.join(out_dir, "references.json"), refs)
    return table


def best_trial(table):
    """The best completed row of those with the most epochs, or None."""
    done = table.dropna(subset=["val_top1"])
    return None if done.empty else done.iloc[0]


__all__ = ["best_trial", "markdown", "pareto", "plot", "references", "trials_table", "write"]
