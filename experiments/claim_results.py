"""A claim's committed results: `results.csv`, `summary.md` and `curves.png` from its arms' run directories."""

import csv
import os

import pandas as pd

from tinyresnet import runs, tables

from experiments import paper
from experiments.claims import ARMS, CLAIMS, Verdict
from tinyresnet.stats import MIN_SEEDS, arm_summary

CSV_FIRST = ("claim", "arm", "seed", "net", "variant", "val_top1", "train_top1", "gap", "val_top5",
             "best_val_top1", "early_val_top1", "epochs", "layers", "params", "forward_gflops", "fit_seconds",
             "wall_seconds")


def run_dir(runs_root, scale_name, arm, seed):
    return os.path.join(runs_root, scale_name, arm, f"seed_{seed}")


def claim_dir(results_root, claim_name, scale):
    """Where a claim's results at `scale` go: `<root>/<claim>/`, or `<root>/<claim>/<scale>/` for the others."""
    return os.path.join(results_root, claim_name, scale.results_folder)


def early_val_top1(history):
    """Mean val top-1 over the first quarter of the epochs (at least one): how fast a net gets going."""
    first = history[:max(1, len(history) // 4)]
    values = [r["val_top1"] for r in first if r.get("val_top1") is not None]
    return sum(values) / len(values) if values else None


def collect(claim_name, scale_name, seeds, runs_root):
    """`{arm: [row, ...]}` of the claim's finished runs: results.json's fields, flattened, per seed."""
    found = {}
    for arm in CLAIMS[claim_name].arms:
        for seed in seeds:
            folder = run_dir(runs_root, scale_name, arm, seed)
            if not runs.is_finished(folder):
                continue
            run = runs.load(folder)
            # results.json's wall_seconds is the last sitting's fit only; the epochs' own times add up all.
            row = {"claim": claim_name, "arm": arm, "seed": seed, "net": run["config"]["net"],
                   "early_val_top1": early_val_top1(run["history"]),
                   "fit_seconds": sum(r.get("seconds") or 0 for r in run["history"])}
            for key, value in run["results"].items():
                if isinstance(value, dict):
                    row.update({f"{key}.{k}": v for k, v in value.items()})
                elif isinstance(value, list):
                    row[key] = "x".join(str(v) for v in value)
                else:
                    row[key] = value
            row["_history"] = run["history"]
            found.setdefault(arm, []).append(row)
    return found


def _typed(text):
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def committed_rows(out_dir, claim_name):
    """The rows of a claim's committed results.csv, typed back (`[]` if there is none)."""
    path = os.path.join(out_dir, "results.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [{k: _typed(v) for k, v in row.items()} for row in csv.DictReader(f) if row.get("claim") == claim_name]


def write(claim_name, scale, seeds, runs_root, out_dir, command=""):
    """Writes the claim's results.csv, summary.md and curves.png; returns its `Verdict`.

    A run recorded in the committed results.csv whose run directory is not
    here (a fresh checkout, another --runs-dir) keeps its row: results are
    never replaced by fewer runs. Its curve cannot be drawn again, so
    curves.png is then left as it is.
    """
    claim = CLAIMS[claim_name]
    found = collect(claim_name, scale.name, seeds, runs_root)
    here = {(row["arm"], row["seed"]) for rows in found.values() for row in rows}
    kept = [row for row in committed_rows(out_dir, claim_name)
            if row["arm"] in claim.arms and (row["arm"], row["seed"]) not in here]
    for row in kept:
        found.setdefault(row["arm"], []).append(row)
    for rows in found.values():
        rows.sort(key=lambda row: row["seed"])
    seeds = sorted(set(seeds) | {row["seed"] for row in kept})
    os.makedirs(out_dir, exist_ok=True)
    rows = [{k: v for k, v in row.items() if k != "_history"} for arm in claim.arms for row in found.get(arm, [])]
    columns = list(CSV_FIRST) + sorted({k for row in rows for k in row} - set(CSV_FIRST))
    runs.write_csv(os.path.join(out_dir, "results.csv"), rows, columns)

    verdict = claim.verdict(found)
    planned = len(claim.arms) * len(seeds)
    if len(rows) < planned or len(seeds) < MIN_SEEDS:
        verdict = verdict._replace(verdict="pending", why=f"{len(rows)} of {planned} runs finished")
    runs.write_text(os.path.join(out_dir, "summary.md"), _summary_md(claim, scale, seeds, found, verdict, command))
    if not kept:
        _plot(claim, found, os.path.join(out_dir, "curves.png"))
    return verdict


TABLE_START = "<!-- claims table: written by python -m experiments.run; edit the text around it -->"
TABLE_END = "<!-- end of claims table -->"


def write_claims_table(readme, scale, seeds, verdicts, command_for):
    """Replaces the claims table between the markers of `readme` with `verdicts` ({claim: Verdict})."""
    rows = []
    for name, (verdict, why, ours) in verdicts.items():
        claim = CLAIMS[name]
        setting = "; ".join(scale.label(d) for d in claim.datasets)
        rows.append([f"[{name}](results/{name}/summary.md): {claim.statement}", claim.paper_figure, ours,
                     f"{setting}; {len(seeds)} seeds", f"**{verdict}**: {why}", f"`{command_for(name, scale)}`"])
    table = pd.DataFrame(rows, columns=["claim", "paper", "ours (mean ± half-range over seeds, %)", "setting",
                                        "verdict", "command"])
    settings = "; ".join(map(scale.describe, scale.datasets))
    lines = [TABLE_START, "", tables.markdown(table), "", f"Settings ({scale.name} scale): {settings}.", "",
             TABLE_END]
    with open(readme) as f:
        text = f.read()
    if TABLE_START not in text or TABLE_END not in text:
        raise ValueError(f"{readme}: no claims table markers ({TABLE_START!r} ... {TABLE_END!r})")
    before, rest = text.split(TABLE_START, 1)
    after = rest.split(TABLE_END, 1)[1]
    runs.write_text(readme, before + "\n".join(lines) + after)


def _summary_md(claim, scale, seeds, found, verdict: Verdict, command):
    setting = "; ".join(map(scale.describe, claim.datasets))
    lines = [f"# {claim.name}", "",
             f"**Paper:** {claim.statement} ({claim.paper_figure}).", "",
             f"**Verdict: {verdict.verdict}.** {verdict.why}.", "",
             f"**Ours:** {verdict.ours}. Mean ± half the range over seeds, in %.", "",
             f"**Setting ({scale.name} scale):** {setting}; seeds {', '.join(map(str, seeds))}.", ""]
    if command:
        lines += [f"**Command:** `{command}`", ""]
    per_arm = []
    for arm in claim.arms:
        rows = found.get(arm, [])
        spec = ARMS[arm]
        settings = ", ".join(f"{k}={v}" for k, v in spec.values) or "default"
        printed = paper.PAPER_RESULTS.get(arm)
        printed = f"{100 * printed['val_top1']:.0f} / {100 * printed['train_top1']:.0f}" if printed else ""

        def stat(key):
            return str(arm_summary(found, arm, key))
        minutes = [r["fit_seconds"] / 60 for r in rows]
        per_arm.append([arm, spec.net, settings, len(rows), stat("val_top1"), stat("train_top1"), stat("gap"),
                        stat("early_val_top1"), printed, f"{sum(minutes) / len(minutes):.1f}" if minutes else "n/a"])
    lines.append(tables.markdown(pd.DataFrame(per_arm, columns=[
        "arm", "net", "config", "seeds", "val top-1", "train top-1", "gap", "early val top-1", "paper val / train",
        "fit min/run"])))
    lines += ["", "Train top-1 is measured in inference mode (no dropout, no augmentation) on a fixed 5,000-image "
              "train sample; gap = train top-1 - val top-1; early val top-1 = mean over the first quarter of the "
              "epochs; fit min/run = the epochs' own times, summed over every sitting of a resumed run. Two arms "
              "differ only when their seed ranges do not overlap. In `curves.png` train accuracy is what fit "
              "measures (dropout and augmentation on), the mean of the seeds.", ""]
    return "\n".join(lines)


def _mean_history(rows):
    """Epoch-wise mean of the seeds' histories (the epochs every seed has)."""
    histories = [r["_history"] for r in rows]
    epochs = min(len(h) for h in histories)
    mean = []
    for e in range(epochs):
        entry = {"epoch": e}
        for key in ("top1", "val_top1", "loss", "val_loss"):
            values = [h[e].get(key) for h in histories if h[e].get(key) is not None]
            entry[key] = sum(values) / len(values) if values else None
        mean.append(entry)
    return mean


def _plot(claim, found, path):
    if not found:
        return
    from tinyresnet import report
    histories = {f"{arm} ({len(found[arm])} seeds)": _mean_history(found[arm]) for arm in claim.arms if arm in found}
    report.plot_histories(histories, path)
