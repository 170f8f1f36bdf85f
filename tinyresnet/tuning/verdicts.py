"""The confirmation's verdicts and its section of `leaderboard.md`, from `confirm.table`.

"The best searched net beats <reference>" at equal epochs and at equal training FLOPs, by the
experiments' spread rule (`tinyresnet.stats`): every seed of one above every seed of the other.
"""

import math
from typing import List

import pandas as pd

from tinyresnet import runner, stats
from tinyresnet.tuning.confirm import EQUAL_EPOCHS, EQUAL_FLOPS, equal_flops_epochs, strongest_reference


def _summary(table, net, budget):
    values = table[(table["net"] == net) & (table["budget"] == budget)]["val_top1"].tolist()
    return stats.summarize(values)


# The study's words for a verdict (experiments/claims.py), by the spread rule's direction.
WORDS = {"higher": "supported", "lower": "not supported", "within spread": "inconclusive (within the seeds' spread)",
         "pending": "pending (fewer than 2 seeds)"}


def verdicts(table: pd.DataFrame, waiting=frozenset()) -> List[str]:
    """"The best searched net beats <reference>" at equal epochs and at equal FLOPs, by the spread rule;
    the best at equal FLOPs may be another net than at equal epochs (a smaller one trained longer).

    A comparison with a side in `waiting` (`(net, budget)` with seeds still to train) is *pending*: an
    interrupted confirmation must not publish a verdict from the seeds that happened to finish, nor name
    a best at equal FLOPs before every searched net's equal-FLOPs runs are in.
    """
    equal = table[table["budget"] == EQUAL_EPOCHS]
    searched = sorted(set(equal[equal["kind"] == "searched"]["net"]))
    references = [n for n in dict.fromkeys(equal[equal["kind"] == "reference"]["net"])]
    if not searched or not references:
        return []
    strongest = strongest_reference(table) if len(references) > 1 else None
    at_flops = _equal_flops_budgets(table, searched, references[0])
    lines = []
    for budget in (EQUAL_EPOCHS, EQUAL_FLOPS):
        # The best searched net at each budget: at equal FLOPs a small net trains more epochs than a large one.
        budgets = {net: EQUAL_EPOCHS for net in searched} if budget == EQUAL_EPOCHS else at_flops
        if not budgets:
            continue
        best = max(budgets, key=lambda net: _summary(table, net, budgets[net]).mean)
        used = budgets[best]
        ours = _summary(table, best, used)
        note = " (the equal-epoch runs: the FLOPs ratio rounds to 1)" if used != budget else ""
        unsettled = {(best, used)} | ({(net, EQUAL_FLOPS) for net in searched} if budget == EQUAL_FLOPS else set())
        # At equal FLOPs: the first reference, whose FLOPs set the budget, and any that cost the same.
        gflops = equal.groupby("net")["forward_gflops"].first()
        same_cost = [r for r in references if math.isclose(gflops[r], gflops[references[0]], rel_tol=1e-6)]
        for reference in same_cost if budget == EQUAL_FLOPS else references:
            theirs = _summary(table, reference, EQUAL_EPOCHS)
            comparison = stats.Compare(ours, theirs)
            word = WORDS[comparison.direction]
            if (unsettled | {(reference, EQUAL_EPOCHS)}) & set(waiting):
                word = "pending (seeds still to train)"
            runs_of = table[(table["net"] == best) & (table["budget"] == used)]
            epochs = runner.count(int(runs_of["epochs"].iloc[0]), "epoch")
            tag = f"; {reference} is the strongest reference" if reference == strongest else ""
            lines.append(f"{best} beats {reference} at {budget}{note} ({best} {epochs}: {_pct(ours)} vs {_pct(theirs)}, "
                         f"{comparison.diff}{tag}): **{word}**")
    return lines


def _equal_flops_budgets(table, searched, reference) -> dict:
    """`{searched net: the budget of its equal-FLOPs runs}`: EQUAL_FLOPS, or EQUAL_EPOCHS where its FLOPs
    ratio to `reference` rounds to 1; nets without either (not trained yet) are left out."""
    equal = table[table["budget"] == EQUAL_EPOCHS]
    found = {}
    for net in searched:
        if _summary(table, net, EQUAL_FLOPS).seeds:
            found[net] = EQUAL_FLOPS
        elif _same_flops_as_epochs(equal, net, reference):
            found[net] = EQUAL_EPOCHS
    return found


def _same_flops_as_epochs(equal, best, reference):
    gflops = equal.groupby("net")["forward_gflops"].first()
    epochs = int(equal["epochs"].iloc[0])
    return equal_flops_epochs(epochs, gflops[reference], gflops[best]) == epochs


def _pct(summary):
    text = str(summary)  # "58.4 ± 1.2", "56.7 (1 seed)", "n/a"
    if not summary.seeds:
        return text
    return text.replace(" (1 seed)", " % (1 seed)") if summary.seeds == 1 else f"{text} %"


def markdown(table: pd.DataFrame, waiting=frozenset()) -> str:
    """The confirmed section of leaderboard.md: mean ± spread per net and budget, then the verdicts
    (*pending* for the groups in `waiting`)."""
    from tinyresnet import tables  # only this table needs it
    groups = table.groupby(["net", "budget"], sort=False)
    order = sorted(groups.groups, key=lambda key: -_summary(table, *key).mean)
    rows = []
    for net, budget in order:
        group = groups.get_group((net, budget))
        val, train = stats.summarize(group["val_top1"].tolist()), stats.summarize(group["train_top1"].tolist())
        shown = f"{net} (strongest reference)" if group["strongest"].any() else net
        rows.append([shown, budget, int(group["epochs"].iloc[0]), len(group), _pct(val), _pct(train),
                     f"{group['forward_gflops'].iloc[0]:.3f}", f"`{group['spec'].iloc[0]}`"])
    lines = ["## Confirmed", "", "Each net retrained from scratch with seeds (`tinyresnet-tune confirm`); mean ± "
             "spread (half the range) over seeds.", "",
             tables.markdown(pd.DataFrame(rows, columns=["net", "budget", "epochs", "seeds", "val top-1", "train top-1",
                                                         "GFLOPs", "spec"]))]
    found = verdicts(table, waiting)
    if found:
        lines += ["", "Verdicts (*supported*: every seed of one above every seed of the other; *not supported*: "
                      "below; *inconclusive*: within the seeds' spread; *pending*: seeds still to train):", ""]
        lines += [f"- {line}" for line in found]
    return "\n".join(lines) + "\n"


__all__ = ["WORDS", "markdown", "verdicts"]
