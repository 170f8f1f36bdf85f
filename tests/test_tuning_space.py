import keras_tuner
import pytest

from tinyresnet import spec as spec_lib
from tinyresnet.tuning import space as space_lib
from tinyresnet.tuning.hypermodel import SpecHyperModel
from tinyresnet.tuning.space import SearchError

SEARCH = """
base: {dataset: folder, data: x.zip, epochs: 2, batch_size: 8}
search: {oracle: random, max_trials: 3, seed: 1}
budget: {max_params: 400000}
space:
  stages: {min: 1, max: 3}
  blocks: {min: 1, max: 2}
  stem_convs: 1
  base_width: [8, 16]
  growth: [2.0]
  block_dropout: [0.0, 0.5]
  fc_dropout: [0.0, 0.25]
  pool: [avg, max]
"""


def _ready_oracle(search, tmp_path, folder="project"):
    """The search's oracle for 64x64 images and 20 classes, with its hyperparameters, in tmp_path/folder."""
    from tinyresnet.tuning.tuner import make_oracle
    oracle = make_oracle(search, (64, 64, 3), 20)
    hp = keras_tuner.HyperParameters()
    SpecHyperModel(search, 20).values(hp)
    oracle.hyperparameters = hp
    oracle._set_project_dir(str(tmp_path), folder)
    return oracle


def _write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_search_file_reads_into_base_settings_budget_and_space(tmp_path):
    search = space_lib.load_search(_write(tmp_path, SEARCH), {"epochs": "3"})
    assert (search.base.dataset, search.base.epochs, search.base.batch_size) == ("folder", 3, 8)
    assert (search.oracle, search.max_trials, search.seed) == ("random", 3, 1)
    assert search.budget.max_params == 400000
    assert search.space.dims["stages"] == space_lib.Range(1, 3) and search.space.dims["stem_convs"] == [1]


def test_every_trial_is_a_valid_spec_and_inactive_stages_have_no_values(tmp_path):
    search = space_lib.load_search(_write(tmp_path, SEARCH))
    model = SpecHyperModel(search, num_classes=5)
    hp = keras_tuner.HyperParameters()
    model.build(hp)
    for stages in (1, 2, 3):
        hp.values["stages"] = stages
        hp.ensure_active_values()
        values = model.values(hp)
        text = model.build(hp)
        parsed = spec_lib.parse_spec(text)
        assert parsed[-1] == spec_lib.FC(5)
        assert sum(isinstance(l, spec_lib.Pool) for l in parsed) == stages + 1
        assert sorted(k for k in values if k.startswith("blocks_")) == [f"blocks_{i}" for i in range(stages)]
        active = {h.name for h in hp.space if hp.is_active(h)}
        assert {f"blocks_{i}" for i in range(3)} & active == {f"blocks_{i}" for i in range(stages)}


def test_notation_of_chosen_values():
    values = {"stages": 2, "blocks_0": 2, "blocks_1": 1, "stem_convs": 2, "base_width": 16, "growth": 2.0,
              "fc_dropout": 0.25, "pool": "max"}
    assert space_lib.notation(values, 20) == \
        "(Conv 16) x 2, Max 2, (BB 16) x 2, Max 2, BB 32, Max 2, Dropout 0.25, FC 20"


def test_costs_from_the_spec_equal_the_built_model():
    from tinyresnet.models import build_model
    for net in ("net1", "net3", "(Conv 16) x 2, Max 2, (BB 16) x 2, Max 2, BB 32, Max 2, Dropout 0.25, FC 20"):
        params, gflops = space_lib.cost(net, (64, 64, 3), 20)
        assert params == build_model(net, (64, 64, 3), 20).count_params()
        assert gflops == pytest.approx(spec_lib.forward_flops(net, (64, 64, 3), 20) / 1e9)


@pytest.mark.parametrize("text, message", [
    (SEARCH.replace("pool: [avg, max]", "pool: [avg, max]\n  depth: 3"), r"space: unknown key\(s\) depth"),
    (SEARCH.replace("stages: {min: 1, max: 3}", "stages: {min: 3, max: 1}"), r"space.stages: min 3 > max 1"),
    (SEARCH.replace("base_width: [8, 16]", "base_width: []"), r"space.base_width: the list of choices is empty"),
    (SEARCH.replace("pool: [avg, max]", "pool: [avg, min]"), r"space.pool: 'min' is not one of avg, max"),
    (SEARCH.replace("oracle: random", "oracle: grid"), r"search.oracle: expected one of random"),
    (SEARCH.replace("epochs: 2", "epoch: 2"), r"base: unknown config key\(s\) epoch"),
    (SEARCH + "extra: 1\n", r"unknown key\(s\) extra"),
    (SEARCH.replace("max_params: 400000", "max_flops: 1"), r"budget: unknown key\(s\) max_flops"),
    (SEARCH.replace("block_dropout: [0.0, 0.5]", "block_dropout: {min: 0, max: 2}"),
     r"space.block_dropout: dropout rates must be in \[0, 1\)"),
    # Values that used to be accepted and then crashed inside KerasTuner or Python:
    (SEARCH.replace("blocks: {min: 1, max: 2}", "blocks: {min: 1, max: 2, step: 0.5}"),
     r"space.blocks: step must be an integer for this range, got 0.5"),
    (SEARCH.replace("blocks: {min: 1, max: 2}", "blocks: {min: 1, max: 2, step: x}"),
     r"space.blocks: step must be a number, got 'x'"),
    (SEARCH.replace("block_dropout: [0.0, 0.5]", "block_dropout: {min: 0.0, max: 0.5, step: -1}"),
     r"space.block_dropout: step must be > 0, got -1"),
    (SEARCH.replace("blocks: {min: 1, max: 2}", "blocks: {min: 1, max: 2, sampling: log, step: 1}"),
     r"space.blocks: with sampling: log, step is a multiplier and must be > 1"),
    (SEARCH.replace("seed: 1", 'seed: "abc"'), r"search.seed: expected an integer, got 'abc'"),
    (SEARCH.replace("seed: 1", "seed: 1, executions_per_trial: 2"),
     r"search.executions_per_trial: only 1 is supported"),
])
def test_bad_search_files_are_clear_errors(tmp_path, text, message):
    with pytest.raises(SearchError, match=message):
        space_lib.load_search(_write(tmp_path, text))


def test_a_space_with_no_valid_net_is_refused(tmp_path):
    tight = space_lib.load_search(_write(tmp_path, SEARCH.replace("max_params: 400000", "max_params: 100")))
    with pytest.raises(SearchError, match="no net of this space is valid .* parameters > max_params 100"):
        space_lib.check_feasible(tight, (16, 16, 3), 5)
    deep = space_lib.load_search(_write(tmp_path, SEARCH.replace("stages: {min: 1, max: 3}", "stages: 6")))
    with pytest.raises(SearchError, match="no net of this space is valid for 16x16 images"):
        space_lib.check_feasible(deep, (16, 16, 3), 5)


def test_the_space_module_loads_no_tensorflow():
    import subprocess
    import sys
    code = "import sys, tinyresnet.tuning.space; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_a_log_int_range_without_step_builds_in_keras_tuner(tmp_path):
    import keras_tuner
    from tinyresnet.tuning.hypermodel import _declare
    search = space_lib.load_search(_write(tmp_path, SEARCH.replace("stages: {min: 1, max: 3}",
                                                                   "stages: {min: 1, max: 3, sampling: log}")))
    assert 1 <= _declare(keras_tuner.HyperParameters(), "stages", search.space.dims["stages"], "int") <= 3


def test_a_relative_data_path_is_read_from_the_search_file_s_folder(tmp_path, monkeypatch):
    folder = tmp_path / "searches"
    folder.mkdir()
    search = space_lib.load_search(_write(folder, SEARCH))
    assert search.base.data == str(folder / "x.zip")
    monkeypatch.chdir(tmp_path)
    assert space_lib.load_search(_write(folder, SEARCH), {"data": "y.zip"}).base.data == "y.zip"  # --data as typed


def test_the_oracle_never_hands_out_the_same_net_twice_however_its_widths_were_sampled(tmp_path):
    import keras_tuner
    from tinyresnet.tuning.hypermodel import SpecHyperModel
    from tinyresnet.tuning.tuner import make_oracle
    # Base width 8 or 12 with growth 1.5 or 2.0: four sets of values, three nets (8-16 twice, 16-16, 16-24).
    text = SEARCH.replace("stages: {min: 1, max: 3}", "stages: 2").replace("blocks: {min: 1, max: 2}", "blocks: 1") \
        .replace("base_width: [8, 16]", "base_width: [8, 12]").replace("growth: [2.0]", "growth: [1.5, 2.0]") \
        .replace("block_dropout: [0.0, 0.5]", "block_dropout: 0.0").replace("fc_dropout: [0.0, 0.25]", "fc_dropout: 0.0") \
        .replace("pool: [avg, max]", "pool: avg")
    search = space_lib.load_search(_write(tmp_path, text))
    oracle = make_oracle(search, (64, 64, 3), 20, max_trials=10)
    hp = keras_tuner.HyperParameters()
    SpecHyperModel(search, 20).values(hp)
    oracle.hyperparameters = hp
    nets = []
    while (values := oracle._random_values()) is not None:
        oracle._tried_so_far.add(oracle._compute_values_hash(values))
        nets.append(space_lib.notation(values, 20))
    assert sorted(nets) == sorted(set(nets))  # each net once
    assert len(nets) == len({space_lib.notation(dict(stages=2, blocks=1, stem_convs=1, base_width=b, growth=g,
                                                                 pool="avg"), 20)
                             for b in (8, 12) for g in (1.5, 2.0)})


def test_the_trials_table_shows_the_widths_built():
    assert space_lib.built_widths("(Conv 16) x 2, Avg 2, BB 16, Avg 2, (BB 24) x 2, Avg 2, FC 20") == "16, 24"


def test_max_hours_count_from_the_project_s_start_not_the_process_s(tmp_path):
    import time
    from tinyresnet.tuning.tuner import make_oracle
    search = space_lib.load_search(_write(tmp_path, SEARCH))
    import keras_tuner
    from tinyresnet.tuning.hypermodel import SpecHyperModel
    hp = keras_tuner.HyperParameters()
    SpecHyperModel(search, 20).values(hp)
    fresh = make_oracle(search, (64, 64, 3), 20, max_hours=1.0)
    resumed = make_oracle(search, (64, 64, 3), 20, max_hours=1.0, started=time.time() - 2 * 3600)
    fresh.hyperparameters = resumed.hyperparameters = hp
    assert fresh.populate_space("00")["status"] == "RUNNING"
    assert resumed.populate_space("00") == {"status": "STOPPED", "values": None}  # 2 h of its 1 h are gone


def test_hyperband_under_a_budget_files_every_trial_in_a_bracket_and_runs_its_brackets_through(tmp_path):
    # Issue 18, defect 1: trials outside any bracket, then KeyError: '0003' (keras_tuner hyperband.py).
    import random
    text = SEARCH.replace("oracle: random, max_trials: 3", "oracle: hyperband").replace(
        "max_params: 400000", "max_params: 30000").replace("epochs: 2", "epochs: 9")  # 8 in 10 nets over
    search = space_lib.load_search(_write(tmp_path, text))
    oracle = _ready_oracle(search, tmp_path, "project")
    scores, trials = random.Random(0), []
    while len(trials) < 100:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        values = trial.hyperparameters.values
        assert {"tuner/epochs", "tuner/bracket", "tuner/round"} <= set(values), values
        assert space_lib.over_budget(search, values, (64, 64, 3), 20) is None
        trials.append(trial)
        oracle.update_trial(trial.trial_id, {"val_top1": scores.random()})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert getattr(oracle, "resampled", 0) > 0  # the budget did turn nets away
    filed = [info["id"] for bracket in oracle._brackets for rnd in bracket["rounds"] for info in rnd]
    assert len(filed) == len(set(filed)) and set(filed) <= {t.trial_id for t in trials}
    promoted = [t for t in trials if t.hyperparameters.values["tuner/round"] > 0]
    assert promoted and max(t.hyperparameters.values["tuner/epochs"] for t in trials) == 9
    assert len(trials) < 100  # it stopped by itself once its brackets were done


def test_the_oracle_and_its_trials_are_saved_through_a_rename_never_written_in_place(tmp_path, monkeypatch):
    # A chief killed while KerasTuner wrote oracle.json in place left a file no restart could read
    # (CI caught a reader seeing it empty mid-write).
    import os
    search = space_lib.load_search(_write(tmp_path, SEARCH))
    oracle = _ready_oracle(search, tmp_path, "project")
    renamed, replace = [], os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(os.path.basename(dst)), replace(src, dst)))
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_top1": 0.5})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    assert "oracle.json" in renamed and "trial.json" in renamed
    project = tmp_path / "project"
    assert sorted(p.name for p in project.iterdir() if ".tmp" in p.name) == []
    reloaded = _ready_oracle(search, tmp_path)
    reloaded.reload()
    assert reloaded.trials[trial.trial_id].status == "COMPLETED"


def test_hyperband_iterations_runs_the_brackets_again_with_new_nets_and_is_refused_elsewhere(tmp_path):
    from tinyresnet.tuning.tuner import make_oracle
    text = SEARCH.replace("oracle: random, max_trials: 3", "oracle: hyperband, hyperband_iterations: 2").replace(
        "epochs: 2", "epochs: 3")
    search = space_lib.load_search(_write(tmp_path, text))
    assert search.hyperband_iterations == 2
    oracle = make_oracle(search, (64, 64, 3), 20)
    assert oracle.hyperband_iterations == 2
    with pytest.raises(SearchError, match=r"s.yaml: search.hyperband_iterations: only for `oracle: hyperband`"):
        space_lib.load_search(_write(tmp_path, SEARCH.replace("max_trials: 3",
                                                              "max_trials: 3, hyperband_iterations: 2")))
    with pytest.raises(SearchError, match=r"search.hyperband_iterations: expected an integer >= 1, got 0"):
        space_lib.load_search(_write(tmp_path, text.replace("hyperband_iterations: 2", "hyperband_iterations: 0")))


def _drive(search, oracle):
    """Runs an oracle to its end with made-up scores, checking each net is under the budget: (trials, nets)."""
    import random
    scores, trials = random.Random(0), []
    while len(trials) < 200:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        assert space_lib.over_budget(search, trial.hyperparameters.values, (64, 64, 3), 20) is None
        trials.append(trial)
        oracle.update_trial(trial.trial_id, {"val_top1": scores.random()})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    nets = {space_lib.net_key({k: v for k, v in t.hyperparameters.values.items() if not k.startswith("tuner/")}, 20)
            for t in trials}
    return trials, nets


def test_the_committed_hyperband_search_runs_every_bracket_under_its_budget_with_distinct_nets(tmp_path):
    # Drives the oracle of tuning/tiny20_hyperband.yaml through all its passes with made-up scores:
    # what it promises on the screen is what it hands out, each net under the FLOPs budget, once.
    import os
    from tinyresnet.tuning.tuner import hyperband_size, plan_text
    search = space_lib.load_search(os.path.join(os.path.dirname(__file__), "..", "tuning", "tiny20_hyperband.yaml"))
    oracle = _ready_oracle(search, tmp_path, "project")
    assert plan_text(search, oracle, None) == "8 pass(es) of 2 bracket(s): 40 nets in 48 trials of 1 to 3 epochs"
    assert hyperband_size(search, oracle) == (40, 48)  # what each trial's line counts down from
    trials, nets = _drive(search, oracle)
    epochs = [t.hyperparameters.values["tuner/epochs"] for t in trials]
    assert (len(trials), len(nets), sum(epochs), max(epochs)) == (48, 40, 96, 3)


def test_search_v3_ranks_at_the_confirmation_s_budget_with_40_nets_under_the_references_cost(tmp_path):
    # Issue 32: rungs of 1, 3 and 9 epochs (the confirmation trains 9), at least 40 distinct nets, each at
    # most Net 1 x0.25's 0.114 forward GFLOPs.
    import os
    from tinyresnet.tuning.tuner import hyperband_size
    search = space_lib.load_search(os.path.join(os.path.dirname(__file__), "..", "tuning", "tiny20_v3.yaml"))
    oracle = _ready_oracle(search, tmp_path, "project")
    assert hyperband_size(search, oracle) == (51, 69)
    trials, nets = _drive(search, oracle)
    assert sorted({t.hyperparameters.values["tuner/epochs"] for t in trials}) == [1, 3, 9]
    assert len(nets) >= 40 and search.budget.max_gflops == 0.114


@pytest.mark.parametrize("oracle_kind", ["random", "bayesian", "hyperband"])
def test_the_same_search_seed_draws_the_same_nets_seed_0_included(tmp_path, oracle_kind):
    # KerasTuner reads seed 0 as "no seed": `seed: 0` in a search file drew other nets on every run.
    search = space_lib.load_search(_write(tmp_path, SEARCH.replace("oracle: random", f"oracle: {oracle_kind}")
                                          .replace("epochs: 2", "epochs: 3").replace("seed: 1", "seed: 0")))
    assert search.seed == 0

    def first_nets(folder):
        oracle = _ready_oracle(search, tmp_path, folder)
        return [oracle.create_trial("tuner0").hyperparameters.values for _ in range(3)]
    assert first_nets("a") == first_nets("b")


def test_a_hyperband_table_ranks_the_longest_trials_first_and_draws_their_front(tmp_path, monkeypatch):
    # A 1-epoch score is not comparable with a 3-epoch one: the leaderboard, the best trial and the Pareto
    # front go by the most epochs first, as `confirm` chooses its nets.
    import pandas as pd
    from tinyresnet.tuning import leaderboard
    rows = [("0", 1, 0.30, 0.01), ("1", 3, 0.28, 0.02), ("2", 3, 0.45, 0.05), ("3", 1, 0.10, 0.03)]
    for trial, *_ in rows:
        (tmp_path / f"trial_{trial}").mkdir()
    monkeypatch.setattr(leaderboard, "_trial_row", lambda d: next(
        {"trial": t, "status": "COMPLETED", "spec": f"net {t}", "epochs": e, "val_top1": v, "forward_gflops": g}
        for t, e, v, g in rows if d.endswith(f"trial_{t}")))
    table = leaderboard.trials_table(str(tmp_path))
    assert list(table["trial"]) == ["2", "1", "0", "3"]
    assert leaderboard.best_trial(table)["trial"] == "2"
    assert list(leaderboard.pareto(table)["trial"]) == ["1", "2"]  # the 1-epoch trial 0 is cheaper, not comparable
    leaderboard.plot(table, {}, str(tmp_path / "search.png"))
    assert (tmp_path / "search.png").stat().st_size > 0
