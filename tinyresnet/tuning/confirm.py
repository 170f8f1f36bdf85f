"""`tinyresnet-tune confirm`: the best nets of a search retrained with seeds at a longer budget.

A short search ranks nets by how fast they start, not by where they end. The
confirmation retrains the K best distinct nets and the reference presets
(Net 1, Net 6 at the search's reference width) with N seeds at E epochs, each
an ordinary run directory under `PROJECT/confirm/<net>/`, and then each
searched net once more at *equal training FLOPs*: as many epochs as the
first reference's FLOPs buy (a net of a third of its FLOPs trains three
times the epochs). The verdicts (`tinyresnet.tuning.verdicts`) use the
experiments' spread rule: a net beats another only when every seed of it is
above every seed of the other; at each budget the verdict is the best
searched net's at that budget.

Which nets are "best": Hyperband trains a net at several budgets, and a
score after 1 epoch is not comparable with one after 9. A net's score is
that of its trial with the most epochs, and nets trained for more epochs
rank first (promoted ones, or a bracket's that started at the most); among
equals, the higher val top-1 ranks first. A net is its layers and its
config keys (block dropout, learning rate, ...), as the oracle counts them.
"""

import dataclasses
import glob
import os
from typing import List, Optional

import pandas as pd

from tinyresnet import config as config_lib
from tinyresnet import runner, runs
from tinyresnet import spec as spec_lib
from tinyresnet.tuning.references import as_references
from tinyresnet.tuning.space import CONFIG_KEYS

CONFIRM_DIR = "confirm"
CONFIRMED = "confirmed.csv"
SETTINGS = "settings.json"  # PROJECT/confirm/settings.json: what every run of the confirmation shares
EQUAL_EPOCHS, EQUAL_FLOPS = "equal epochs", "equal FLOPs"
COLUMNS = ("net", "kind", "budget", "epochs", "seed", "val_top1", "train_top1", "forward_gflops", "params",
           "seconds", "spec", "run", "strongest")  # strongest: a run of the reference of the best mean


class ConfirmError(ValueError):
    """A confirmation that cannot run as asked (no finished trials, other settings than the project's)."""


@dataclasses.dataclass(frozen=True)
class Run:
    net: str  # "trial_08" or a preset name
    kind: str  # "searched" or "reference"
    budget: str  # EQUAL_EPOCHS or EQUAL_FLOPS
    seed: int
    config: config_lib.Config

    @property
    def folder(self):
        return os.path.join(CONFIRM_DIR, self.net, f"e{self.config.epochs}-seed{self.seed}")


def candidates(table: pd.DataFrame, top: int) -> pd.DataFrame:
    """The `top` best distinct nets of a trials table: most epochs first, then val top-1 (one row per net)."""
    done = table[(table["status"] == "COMPLETED") & table["val_top1"].notna()]
    ranked = done.sort_values(["epochs", "val_top1"], ascending=[False, False], kind="stable")
    # A net is its layers and the config keys a trial may change (block dropout, learning rate, ...).
    keys = ["spec"] + [f"hp_{key}" for key in CONFIG_KEYS if f"hp_{key}" in ranked]
    return ranked.drop_duplicates(keys).head(top).reset_index(drop=True)


def check_settings(project_dir, epochs, references, steps_per_epoch=0, record=True):
    """Records the confirmation's epochs (and their steps) and references (unless `record` is False), or
    refuses other ones for a project that has them.

    Top and seeds may change between reruns: every finished run is kept and reported.
    """
    path = os.path.join(project_dir, CONFIRM_DIR, SETTINGS)
    now = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "references": list(references)}
    saved = runs.read_json(path)
    if saved is not None and "steps_per_epoch" not in saved:
        # Recorded before confirm had --steps-per-epoch: its runs took the epochs of the search's base.
        saved = {**saved, "steps_per_epoch": base_config(project_dir)[0].steps_per_epoch}
    if saved is None and not record:
        return
    if saved is None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        runs.write_json(path, now)
    elif any(saved.get(key) != now[key] for key in now):  # seeds may grow (`record_seeds`)
        changes = [f"{key} {saved.get(key)} -> {now[key]}" for key in now if saved.get(key) != now[key]]
        raise ConfirmError(f"{path}: this project was confirmed with other settings ({'; '.join(changes)}); "
                           "rerun with the recorded ones to resume, or confirm a copy of the project")


def record_seeds(project_dir, seeds):
    """Keeps the most seeds any run of the confirmation asked for (a verdict waits for all of them); returns it."""
    path = os.path.join(project_dir, CONFIRM_DIR, SETTINGS)
    saved = runs.read_json(path, {})
    if seeds > saved.get("seeds", 0):
        runs.write_json(path, {**saved, "seeds": seeds})
    return max(seeds, saved.get("seeds", 0))


def waiting(project_dir, table) -> set:
    """The `(net, budget)` groups of `table` with seeds still to train (neither finished nor diverged):
    their verdicts are *pending*. A project confirmed before seeds were recorded waits for none."""
    settings = runs.read_json(os.path.join(project_dir, CONFIRM_DIR, SETTINGS), {})
    seeds, epochs = settings.get("seeds", 0), settings.get("epochs")
    if table is None or not seeds:
        return set()
    settled = {}
    for key in table[["net", "budget"]].itertuples(index=False):
        settled[tuple(key)] = settled.get(tuple(key), 0) + 1
    for folder in diverged_runs(project_dir):
        config = runs.read_json(os.path.join(project_dir, folder, runs.CONFIG), {})
        key = (os.path.basename(os.path.dirname(folder)),
               EQUAL_EPOCHS if config.get("epochs") == epochs else EQUAL_FLOPS)
        settled[key] = settled.get(key, 0) + 1
    references = [r for r in settings.get("references", []) if r in set(table["net"])]
    equal = table[table["budget"] == EQUAL_EPOCHS]
    if references and epochs:  # a searched net whose equal-FLOPs runs have not started waits for them too
        for net in flops_epochs(equal, references[0], epochs):
            settled.setdefault((net, EQUAL_FLOPS), 0)
    return {key for key, count in settled.items() if count < seeds}


def base_config(project_dir):
    """`(the search's base config, its reference width)`, as the project recorded them (`search.json`)."""
    definition = runs.read_json(os.path.join(project_dir, "search.json"))
    if definition is None:
        raise ConfirmError(f"{project_dir}: no search.json (a project of an older version); the references' "
                           "settings are unknown")
    return config_lib.from_dict(definition["base"]), definition.get("reference_width")


def plan(project_dir, table, top, seeds, epochs, references, steps_per_epoch=0) -> List[Run]:
    """The equal-epoch runs: the `top` best nets and the references, each with seeds 0..seeds-1.

    They train `epochs` of `steps_per_epoch` steps (0: whole epochs), whatever the search's trials did:
    a search may screen with shorter epochs (`steps_per_epoch` in its base).
    """
    base, reference_width = base_config(project_dir)
    references = as_references(references)
    chosen = candidates(table, top)
    if chosen.empty:
        raise ConfirmError(f"{project_dir}: no completed trial to confirm")
    planned = []
    for _, row in chosen.iterrows():
        trial_config = config_lib.from_dict(runs.read_json(
            os.path.join(project_dir, f"trial_{row['trial']}", runs.CONFIG)))
        planned += [Run(f"trial_{row['trial']}", "searched", EQUAL_EPOCHS, seed,
                        dataclasses.replace(trial_config, epochs=epochs, seed=seed, steps_per_epoch=steps_per_epoch))
                    for seed in range(seeds)]
    for reference in references:
        # A searched net keeps the policy its trial trained in; a reference's `auto` decides for its own net.
        config = dataclasses.replace(reference.config(base, reference_width or base.width), epochs=epochs,
                                     steps_per_epoch=steps_per_epoch)
        planned += [Run(reference.name, "reference", EQUAL_EPOCHS, seed, dataclasses.replace(config, seed=seed))
                    for seed in range(seeds)]
    return planned


def equal_flops_runs(project_dir, planned: List[Run], seeds) -> Optional[List[Run]]:
    """Every confirmed searched net at the first reference's training FLOPs, once every equal-epoch run has
    finished or diverged; None until then, or without a finished reference. A net whose FLOPs ratio rounds
    to 1 has none: its equal-epoch runs are its equal-FLOPs ones (`flops_epochs`).

    "Every confirmed net" is every searched net with finished equal-epoch runs in the project, planned now
    or by an earlier confirmation with a larger --top: the equal-FLOPs verdict waits for each (`waiting`).
    The reference is the first one named that finished (as `verdicts` and `waiting` take it)."""
    budget = _equal_flops_budget(project_dir, planned)
    return None if budget is None else _equal_flops_runs(project_dir, planned, budget, seeds)


@dataclasses.dataclass(frozen=True)
class _Budget:
    reference: str  # the reference whose training FLOPs set the budget
    table: pd.DataFrame  # the finished equal-epoch runs, one row each
    epochs: dict  # {searched net: `equal_flops_epochs`}, best first by equal-epoch mean


def _equal_flops_budget(project_dir, planned: List[Run]) -> Optional[_Budget]:
    """The equal-FLOPs budget of the confirmation, once every run of `planned` is settled (None until then,
    or without a finished reference)."""
    settled = all(runner.is_settled(os.path.join(project_dir, r.folder)) for r in planned)
    if not any(r.kind == "reference" for r in planned) or not settled:
        return None
    reference = budget_reference(project_dir, planned)
    if reference is None:
        return None
    epochs = planned[0].config.epochs
    table = pd.DataFrame([row for row in finished_runs(project_dir) if row["epochs"] == epochs])
    return _Budget(reference, table, _all_flops_epochs(table, reference, epochs))


def _equal_flops_runs(project_dir, planned: List[Run], budget: _Budget, seeds) -> List[Run]:
    extra = []
    for net, n in _trained_at_equal_flops(budget.epochs, planned[0].config.epochs).items():
        template = next((r.config for r in planned if r.net == net), None)
        if template is None:  # confirmed by an earlier run with a larger --top: its own run's config
            folder = budget.table[budget.table["net"] == net]["run"].iloc[0]
            template = config_lib.from_dict(runs.read_json(os.path.join(project_dir, folder, runs.CONFIG)))
        extra += [Run(net, "searched", EQUAL_FLOPS, seed, dataclasses.replace(template, epochs=n, seed=seed))
                  for seed in range(seeds)]
    return extra


def budget_reference(project_dir, planned: List[Run]) -> Optional[str]:
    """The reference whose training FLOPs set the equal-FLOPs budget: the first named with a finished run."""
    return next((r.net for r in planned if r.kind == "reference"
                 and runs.is_finished(os.path.join(project_dir, r.folder))), None)


def flops_epochs(table, reference, epochs) -> dict:
    """`{searched net: its epochs at the training FLOPs of the reference's `epochs`}` for the searched nets
    of `table` (best first by equal-epoch mean), leaving out those whose ratio rounds to 1."""
    return _trained_at_equal_flops(_all_flops_epochs(table, reference, epochs), epochs)


def _all_flops_epochs(table, reference, epochs) -> dict:
    gflops = table.groupby("net")["forward_gflops"].first()
    searched = table[table["kind"] == "searched"].groupby("net")["val_top1"].mean().sort_values(ascending=False)
    return {net: equal_flops_epochs(epochs, gflops[reference], gflops[net]) for net in searched.index}


def _trained_at_equal_flops(found, epochs) -> dict:
    # 0: one epoch of the net costs twice the budget or more, so it has no equal-FLOPs runs (`verdicts`
    # leaves it out at equal FLOPs); calling its 1-epoch runs "equal FLOPs" would judge it on more FLOPs.
    return {net: n for net, n in found.items() if n not in (epochs, 0)}


def equal_flops_epochs(epochs, reference_gflops, gflops):
    """Epochs of a net of `gflops` that cost what `epochs` of the reference cost (training FLOPs per image
    are 3 x forward for both); 0 where even one epoch costs twice that or more."""
    return round(epochs * reference_gflops / gflops)


def _row(project_dir, folder):
    run_dir = os.path.join(project_dir, folder)
    results = runs.read_json(os.path.join(run_dir, runs.RESULTS), {})
    config = runs.read_json(os.path.join(run_dir, runs.CONFIG), {})
    net = os.path.basename(os.path.dirname(folder))
    return {"net": net, "kind": "searched" if net.startswith("trial_") else "reference",
            "epochs": config.get("epochs"), "seed": config.get("seed"), "run": folder,
            "seconds": sum(results.get("phase_seconds", {}).values()) or None,
            **{k: results.get(k) for k in ("val_top1", "train_top1", "forward_gflops", "params")},
            # the net as built: a reference at the search's width has other filters than its preset
            "spec": results.get("spec") and spec_lib.format_spec(spec_lib.at_width(results["spec"],
                                                                                   config.get("width", 1.0)))}


def finished_runs(project_dir):
    """Every finished run under `PROJECT/confirm/` as rows, whatever --top/--seeds planned them."""
    folder = os.path.join(project_dir, CONFIRM_DIR)
    settings = runs.read_json(os.path.join(folder, SETTINGS), {})
    named = settings.get("references", [])
    rows = []
    # The searched nets, then the references as named: the first one named sets the equal-FLOPs budget.
    nets = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for net in sorted(nets, key=lambda net: (net in named, named.index(net) if net in named else 0)):
        for name in sorted(os.listdir(os.path.join(folder, net))) if os.path.isdir(os.path.join(folder, net)) else []:
            if runs.is_finished(os.path.join(folder, net, name)):
                row = _row(project_dir, os.path.join(CONFIRM_DIR, net, name))
                # Runs at the confirmation's epochs are the equal-epoch ones; a searched net's others, equal FLOPs.
                rows.append({**row, "budget": EQUAL_EPOCHS if row["epochs"] == settings.get("epochs") else EQUAL_FLOPS})
    return rows


def table(project_dir) -> Optional[pd.DataFrame]:
    """The finished confirmation runs, one row per run (what `confirmed.csv` holds); None when there are none.
    `strongest` marks the runs of the strongest reference: the best mean val top-1 at equal epochs."""
    rows = finished_runs(project_dir)
    if not rows:
        return None
    found = pd.DataFrame(rows)
    found["strongest"] = found["net"] == strongest_reference(found)
    return found[list(COLUMNS)]


def strongest_reference(table) -> Optional[str]:
    """The reference with the best mean val top-1 at equal epochs (None without one)."""
    equal = table[(table["kind"] == "reference") & (table["budget"] == EQUAL_EPOCHS)]
    return None if equal.empty else equal.groupby("net")["val_top1"].mean().idxmax()


def run(project_dir, trials, top, seeds, epochs, references, verbose=2, log=print, steps_per_epoch=0,
        epoch_lines=False):
    """Trains what `plan` and then `equal_flops_runs` ask for, skipping finished runs (a killed run resumes).

    A run that diverges stays unfinished and out of the results (`diverged_runs`); the others go on.

    Args:
        trials: the search's trials table (`results.trials_table`).
        verbose: Keras' progress output of each run (2: a line per epoch, 0: none).
        steps_per_epoch: of every run (0: whole epochs).
        epoch_lines: a line per epoch through `log`, naming the run (for workers sharing one terminal).
    """
    references = as_references(references)
    planned = plan(project_dir, trials, top, seeds, epochs, references, steps_per_epoch)
    from tinyresnet import train
    datasets = train.load_datasets(planned[0].config)
    check_fit(planned, datasets.image_shape)
    check_settings(project_dir, epochs, [r.name for r in references], steps_per_epoch)  # a refused start records nothing
    recorded = record_seeds(project_dir, seeds)
    if recorded > seeds:
        log(f"verdicts wait for {recorded} seeds, asked for by an earlier confirmation of this project: rerun with "
            f"--seeds={recorded} to train the rest")
    nets = len({r.net for r in planned if r.kind == "searched"})
    if nets < top:
        log(f"the search has {nets} distinct finished nets, fewer than --top {top}: confirming those")
    _train(project_dir, planned, verbose, log, epoch_lines)
    budget = _equal_flops_budget(project_dir, planned)
    if budget is None:
        return
    extra = _equal_flops_runs(project_dir, planned, budget, seeds)
    for net, n in budget.epochs.items():
        log(f"equal training FLOPs: {net} for {_epochs(n)} (the FLOPs of {budget.reference}'s {_epochs(epochs)})"
            if n not in (epochs, 0) else
            f"equal training FLOPs: one epoch of {net} costs twice {budget.reference}'s {_epochs(epochs)} or more: it "
            "has no equal-FLOPs runs, and no verdict at that budget" if n == 0 else
            f"equal training FLOPs: {net}'s FLOPs ratio to {budget.reference} rounds to 1, so its "
            f"{_epochs(epochs)} runs are the equal-FLOPs ones too")
    _train(project_dir, extra, verbose, log, epoch_lines)


def _train(project_dir, todo: List[Run], verbose, log, epoch_lines):
    """The runs of `todo` through the shared runner (`tinyresnet.runner`): confirmations sharing the project
    (`--workers`, or machines) never train the same run, and a diverged one is marked and left out."""
    if todo:
        runner.train_runs([runner.Planned(f"{r.net} seed {r.seed}", os.path.join(project_dir, r.folder), r.config,
                                          note=f"{_epochs(r.config.epochs)} ({r.budget})") for r in todo],
                          log=log, verbose=verbose, epoch_lines=epoch_lines, root=project_dir)


def check_fit(planned: List[Run], image_shape):
    """Refuses, before any training, a reference that does not fit the images (Net 1 on 16x16 ones)."""
    for r in planned:
        if r.kind != "reference" or r.seed != 0:
            continue
        try:
            list(spec_lib.feature_shapes(spec_lib.parse_spec(r.config.net), tuple(image_shape), r.config.width))
        except spec_lib.SpecError as e:
            raise ConfirmError(f"--reference {r.net} does not fit {image_shape[0]}x{image_shape[1]} images ({e}); "
                               "give presets made for this size with --reference (cifar7, cifar9 for 32x32)") from None


def _epochs(n):
    return _count(n, "epoch")


def diverged_runs(project_dir) -> List[str]:
    """The run directories under `PROJECT/confirm/` whose training diverged (relative to the project)."""
    found = glob.glob(os.path.join(project_dir, CONFIRM_DIR, "*", "*", runner.DIVERGED))
    return sorted(os.path.relpath(os.path.dirname(path), project_dir) for path in found
                  if runner.is_diverged(os.path.dirname(path)))


_count = runner.count


__all__ = ["ConfirmError", "Run", "candidates", "check_settings", "diverged_runs", "equal_flops_epochs",
           "equal_flops_runs", "finished_runs", "flops_epochs", "plan", "record_seeds", "run", "strongest_reference",
           "table", "waiting"]
