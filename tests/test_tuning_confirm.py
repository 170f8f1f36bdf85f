"""`tinyresnet-tune confirm`: the best nets of a search and the references retrained with seeds."""

import os
import re
import signal

import pandas as pd
import pytest

from conftest import Lines, searches_archive, unpadded
from test_tuning import _popen, _search_file
from tinyresnet import runs
from tinyresnet.tuning import confirm, verdicts


def test_the_candidates_are_distinct_nets_ranked_by_epochs_reached_then_score():
    # Hyperband trains a net at several budgets: a 1-epoch score is not comparable with a 9-epoch one.
    table = pd.DataFrame([
        {"trial": "00", "status": "COMPLETED", "spec": "A", "epochs": 1, "val_top1": 0.40},
        {"trial": "01", "status": "COMPLETED", "spec": "B", "epochs": 1, "val_top1": 0.50},
        {"trial": "02", "status": "COMPLETED", "spec": "A", "epochs": 3, "val_top1": 0.45},
        {"trial": "03", "status": "COMPLETED", "spec": "C", "epochs": 3, "val_top1": 0.48},
        {"trial": "04", "status": "FAILED", "spec": "D", "epochs": 9, "val_top1": None},
        {"trial": "05", "status": "COMPLETED", "spec": "C", "epochs": 9, "val_top1": 0.44},
    ])
    chosen = confirm.candidates(table, top=3)
    assert list(chosen["trial"]) == ["05", "02", "01"]  # C (9 epochs), A (3), B (1); each net once


def test_confirm_refuses_what_it_cannot_do_before_any_work(tmp_path, capsys):
    from tinyresnet.tuning import command
    assert command.main(["confirm", str(tmp_path), "--epochs=2"]) == 2
    assert "not a search project" in capsys.readouterr().err
    (tmp_path / "oracle.json").write_text("{}")
    assert command.main(["confirm", str(tmp_path), "--epochs=0"]) == 2
    assert "--epochs must be >= 1, got 0" in capsys.readouterr().err
    assert command.main(["confirm", str(tmp_path), "--epochs=2", "--seeds=0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    assert command.main(["confirm", str(tmp_path), "--epochs=2", "--reference=net1,nett6"]) == 2
    assert "--reference: nett6 not a study arm or a preset" in capsys.readouterr().err  # arms too (issue 32)
    with pytest.raises(SystemExit):
        command.main(["confirm", str(tmp_path)])  # --epochs is required
    assert "--epochs" in capsys.readouterr().err


def _quarter_width_references(search):
    """The search file `search` with reference_width 0.25: cifar7 at a quarter width costs about what the
    searched nets cost (at full width its equal-FLOPs runs would take tens of epochs)."""
    with open(search) as f:
        text = f.read().replace("seed: 0}", "seed: 0, reference_width: 0.25}")
    with open(search, "w") as f:
        f.write(text)
    return search


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished 3-trial search of the searches' archive with reference_width 0.25, trained once for the
    confirmations of this module; a test confirms a copy of it (`_copy_of`)."""
    from tinyresnet.tuning import command
    root = tmp_path_factory.mktemp("searched")
    search = _quarter_width_references(_search_file(root, searches_archive(root / "d.zip"), trials=3))
    project = root / "project"
    assert command.main([f"--search={search}", f"--project-dir={project}", "--trials-in-process"]) == 0
    return project


def _copy_of(searched, tmp_path):
    import shutil
    return str(shutil.copytree(searched, tmp_path / "project"))


def _confirm(capsys, *args):
    """`tinyresnet-tune confirm ARGS` in this process: `(exit code, stdout, stderr)`."""
    from tinyresnet.tuning import command
    capsys.readouterr()
    code = command.main(["confirm", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_confirm_retrains_the_best_nets_and_a_reference_with_seeds_then_the_best_at_equal_flops(
        tmp_path, searched, capsys):
    project = _copy_of(searched, tmp_path)  # 3 trials; the reference at a quarter width
    trials = pd.read_csv(os.path.join(project, "trials.csv"), dtype={"trial": str})
    chosen = set("trial_" + trials.sort_values("val_top1", ascending=False).drop_duplicates("spec")["trial"].head(2))

    # Two workers share the runs; one is killed (-9) in the 4th run to start, which the other takes over.
    worker = _popen("confirm", project, "--top=2", "--seeds=2", "--epochs=2", "--reference=cifar7", "--quiet",
                    "--workers=2")
    lines, starts, killed = [], 0, None
    for line in worker.stdout:
        lines.append(line)
        started = re.match(r"\[pid (\d+)\] \[\d+/\d+\] .*, \d+ epochs? \(", line)
        starts += bool(started)
        if started and starts == 4:
            killed = int(started.group(1))
            os.kill(killed, signal.SIGKILL)
    out = "".join(lines)
    assert worker.wait(timeout=60) == 0, out[-3000:]
    assert f"worker pid {killed} was killed (signal 9); the other workers trained its runs" in out
    assert "## Confirmed" in out
    # The shared runner's start line: "..., 2 epochs (equal epochs): training in confirm/trial_0/e2-seed0" (issue 29).
    started = re.findall(r"^\[pid (\d+)\] \[\d+/\d+\] \S+ seed \d, \d+ epochs? \(.*\): (?:training|resuming after "
                         r"epoch \d+) in (\S+)$", out, re.M)
    assert len({pid for pid, _ in started[:4]}) == 2, out  # both trained
    finished_by = {}
    for pid, folder in started:  # each run finished by one worker: the killed one's 4th was not
        if int(pid) != killed or folder != started[3][1]:
            assert folder not in finished_by, out
            finished_by[folder] = pid
    assert sorted(finished_by) == sorted(table_runs(project)), out
    table = pd.read_csv(os.path.join(project, "confirmed.csv"))
    equal = table[table["budget"] == "equal epochs"]
    assert set(equal["net"]) == chosen | {"cifar7"}
    assert all(sorted(group["seed"]) == [0, 1] for _, group in equal.groupby("net"))
    assert set(equal["epochs"]) == {2}
    for row in table.itertuples():  # each an ordinary, finished run directory with its seed and epochs
        run_dir = os.path.join(project, row.run)
        assert runs.is_finished(run_dir)
        config = runs.read_json(os.path.join(run_dir, runs.CONFIG))
        assert (config["seed"], config["epochs"]) == (row.seed, row.epochs)
        assert len(runs.read_history(run_dir)) == row.epochs
    means = equal.groupby("net")["val_top1"].mean()
    best = max(sorted(chosen), key=lambda net: means[net])
    flops = table[table["budget"] == "equal FLOPs"]
    gflops = equal.groupby("net")["forward_gflops"].first()
    # Each searched net at cifar7's FLOPs (issue 32: the top nets at both budgets), unless its ratio rounds to 1.
    at_flops = {net: max(1, round(2 * gflops["cifar7"] / gflops[net])) for net in chosen}
    longer = {net for net, epochs in at_flops.items() if epochs != 2}
    assert longer and set(flops["net"]) == longer
    for net, group in flops.groupby("net"):
        assert sorted(group["seed"]) == [0, 1] and set(group["epochs"]) == {at_flops[net]}
    board = open(os.path.join(project, "leaderboard.md")).read()
    assert "## Confirmed" in board
    assert f"{best} beats cifar7 at equal epochs" in board and " beats cifar7 at equal FLOPs" in board
    assert out.count("6 runs, 0 finished already") == 2 and "equal training FLOPs" in out

    # The reruns in this process (a start of TensorFlow less each): the same commands, the same code.
    code, again, _ = _confirm(capsys, project, "--top=2", "--seeds=2", "--epochs=2", "--reference=cifar7", "--quiet")
    assert code == 0 and "[1/" not in again, again  # all finished: nothing trained
    assert "6 runs, 6 finished already" in again and f"{len(flops)} runs, {len(flops)} finished already" in again
    assert pd.read_csv(os.path.join(project, "confirmed.csv")).equals(table)

    code, _, err = _confirm(capsys, project, "--epochs=3", "--reference=cifar7")
    assert code == 2 and "epochs 2 -> 3" in err and "settings.json" in err
    out = tmp_path / "results"
    from tinyresnet.tuning import command
    assert command.main(["report", project, f"--out={out}"]) == 0
    assert pd.read_csv(out / "confirmed.csv").equals(table) and "## Confirmed" in (out / "leaderboard.md").read_text()


def table_runs(project):
    return list(pd.read_csv(os.path.join(project, "confirmed.csv"))["run"])


def test_a_reference_that_does_not_fit_the_images_is_refused_before_training_and_nothing_is_recorded(
        tmp_path, monkeypatch):
    import types
    from tinyresnet import config as config_lib
    from tinyresnet import train
    project = tmp_path / "project"
    (project / "trial_0").mkdir(parents=True)
    config = config_lib.from_dict({"dataset": "folder", "data": "d.zip", "net": "Conv 8, Avg 2, FC 3",
                                   "precision": "float32"})
    runs.write_json(str(project / "search.json"), {"base": config_lib.run_defining(config_lib.to_dict(config)),
                                                   "reference_width": None})
    runs.write_json(str(project / "trial_0" / "config.json"), config_lib.to_dict(config))
    trials = pd.DataFrame([{"trial": "0", "status": "COMPLETED", "spec": "Conv 8, Avg 2, FC 3", "epochs": 1,
                            "val_top1": 0.5}])
    monkeypatch.setattr(train, "load_datasets", lambda config: types.SimpleNamespace(
        image_shape=(16, 16, 3), class_names=["a", "b", "c"]))
    with pytest.raises(confirm.ConfirmError, match=r"--reference net1 does not fit 16x16 images .*cifar7"):
        confirm.run(str(project), trials, top=1, seeds=1, epochs=1, references=["cifar7", "net1"])
    assert not (project / "confirm").exists()  # a later run with other --reference is not refused


def test_confirm_trains_whole_epochs_whatever_the_search_screened_with_unless_told(tmp_path, capsys):
    # tuning/tiny20_hyperband.yaml screens with epochs of 26 steps: its confirmation at --epochs=10 must
    # not train 10 such epochs (a sixth of the budget it names).
    from tinyresnet import config as config_lib
    from tinyresnet.tuning import command
    project = tmp_path / "project"
    (project / "trial_0").mkdir(parents=True)
    config = config_lib.from_dict({"dataset": "folder", "data": "d.zip", "net": "Conv 8, Avg 2, FC 3",
                                   "precision": "float32", "steps_per_epoch": 26})
    runs.write_json(str(project / "search.json"), {"base": config_lib.run_defining(config_lib.to_dict(config)),
                                                   "reference_width": None})
    runs.write_json(str(project / "trial_0" / "config.json"), config_lib.to_dict(config))
    trials = pd.DataFrame([{"trial": "0", "status": "COMPLETED", "spec": "Conv 8, Avg 2, FC 3", "epochs": 9,
                            "val_top1": 0.5}])
    planned = confirm.plan(str(project), trials, top=1, seeds=2, epochs=10, references=["cifar7"])
    assert [(r.net, r.config.epochs, r.config.steps_per_epoch) for r in planned] == \
        [("trial_0", 10, 0)] * 2 + [("cifar7", 10, 0)] * 2
    planned = confirm.plan(str(project), trials, top=1, seeds=1, epochs=10, references=["cifar7"], steps_per_epoch=5)
    assert {r.config.steps_per_epoch for r in planned} == {5}
    confirm.check_settings(str(project), 10, ["cifar7"])
    with pytest.raises(confirm.ConfirmError, match=r"steps_per_epoch 0 -> 5"):
        confirm.check_settings(str(project), 10, ["cifar7"], steps_per_epoch=5)
    (project / "oracle.json").write_text("{}")
    assert command.main(["confirm", str(project), "--epochs=2", "--steps-per-epoch=-1"]) == 2
    assert "--steps-per-epoch must be >= 0, got -1" in capsys.readouterr().err
    # Refused before the data are loaded (there are none here), with nothing written.
    assert command.main(["confirm", str(project), "--epochs=10", "--reference=cifar7", "--steps-per-epoch=5"]) == 2
    out = capsys.readouterr()
    assert "steps_per_epoch 0 -> 5" in out.err and "written" not in out.out

    # A confirmation recorded before --steps-per-epoch trained the epochs of the search's base (26 steps):
    # it resumes with those, and says so when given others.
    runs.write_json(str(project / "confirm" / "settings.json"), {"epochs": 10, "references": ["cifar7"]})
    confirm.check_settings(str(project), 10, ["cifar7"], steps_per_epoch=26)
    with pytest.raises(confirm.ConfirmError, match=r"steps_per_epoch 26 -> 0"):
        confirm.check_settings(str(project), 10, ["cifar7"])


def test_a_reference_at_the_search_width_shows_the_filters_it_was_built_with(tmp_path):
    # Its GFLOPs are those of width 0.25: beside them, Net 1's full-width filters would misinform.
    from tinyresnet import spec as spec_lib
    from tinyresnet.tuning import leaderboard
    assert spec_lib.format_spec(spec_lib.at_width("net1", 0.25)).startswith("(Conv 16) x 2, Avg 2, BB 16, BB 32,")
    assert spec_lib.at_width("Conv 12, Avg 2, FC 3", 0.25) == spec_lib.parse_spec("Conv 8, Avg 2, FC 3")  # 8 at least
    for folder in ("reference/net1", "confirm/net1/e2-seed0"):
        run_dir = tmp_path / folder
        run_dir.mkdir(parents=True)
        runs.write_json(str(run_dir / runs.CONFIG), {"net": "net1", "width": 0.25, "epochs": 2, "seed": 0})
        runs.write_json(str(run_dir / runs.RESULTS), {"spec": spec_lib.format_spec(spec_lib.parse_spec("net1")),
                                                     "val_top1": 0.3, "train_top1": 0.4, "forward_gflops": 0.114,
                                                     "params": 402884})
    built = spec_lib.format_spec(spec_lib.at_width("net1", 0.25))
    assert leaderboard.references(str(tmp_path))["net1"]["spec"] == built
    assert confirm.table(str(tmp_path))["spec"].tolist() == [built]


def test_a_confirmation_with_a_diverged_run_ends_with_3_naming_it(tmp_path, capsys):
    # How the runner marks a diverged run is tested once, in test_runner.py; confirm's exit code and line here.
    from tinyresnet import runner
    from tinyresnet.tuning import command
    folder = tmp_path / confirm.CONFIRM_DIR / "trial_0" / "e1-seed0"
    folder.mkdir(parents=True)
    (folder / runner.DIVERGED).write_text("loss became nan at epoch 0 after batch 3.\n")
    assert command._confirm_report(str(tmp_path), None) == 3
    err = capsys.readouterr().err
    assert "1 run diverged and stays out of the results: confirm/trial_0/e1-seed0" in err and "Traceback" not in err


def test_ctrl_c_while_a_confirmation_waits_or_loads_ends_it_with_one_line(tmp_path, monkeypatch, capsys):
    # Outside training (waiting on a run another confirmation holds, loading data) it used to be a traceback.
    from tinyresnet import config as config_lib
    from tinyresnet.tuning import command
    from tinyresnet.tuning import leaderboard
    project = tmp_path / "project"
    (project / "trial_0").mkdir(parents=True)
    config = config_lib.from_dict({"dataset": "folder", "data": "d.zip", "net": "Conv 8, Avg 2, FC 3"})
    runs.write_json(str(project / "search.json"), {"base": config_lib.run_defining(config_lib.to_dict(config)),
                                                   "reference_width": None})
    (project / "oracle.json").write_text("{}")
    monkeypatch.setattr(leaderboard, "trials_table", lambda project_dir: None)

    def waits(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(confirm, "run", waits)
    assert command.main(["confirm", str(project), "--epochs=2", "--reference=cifar7"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted; rerun the same command to resume the confirmation"


def test_the_equal_flops_verdict_covers_every_reference_of_the_first_one_s_cost():
    # Net 6 (the plain twin of Net 1) costs what Net 1 costs: the searched net's equal-FLOPs runs are
    # at Net 6's FLOPs too.
    rows = [("trial_1", "searched", confirm.EQUAL_EPOCHS, 10, [0.58, 0.57, 0.59], 0.065),
            ("trial_1", "searched", confirm.EQUAL_FLOPS, 18, [0.62, 0.63, 0.64], 0.065),
            ("net1", "reference", confirm.EQUAL_EPOCHS, 10, [0.52, 0.49, 0.51], 0.114),
            ("net6", "reference", confirm.EQUAL_EPOCHS, 10, [0.57, 0.59, 0.60], 0.114),
            ("cifar7", "reference", confirm.EQUAL_EPOCHS, 10, [0.40, 0.41, 0.42], 0.050)]
    table = pd.DataFrame([{"net": net, "kind": kind, "budget": budget, "epochs": epochs, "seed": seed,
                           "val_top1": value, "forward_gflops": gflops}
                          for net, kind, budget, epochs, values, gflops in rows for seed, value in enumerate(values)])
    lines = verdicts.verdicts(table)
    assert [line.split(" (")[0] for line in lines] == [
        "trial_1 beats net1 at equal epochs", "trial_1 beats net6 at equal epochs", "trial_1 beats cifar7 at equal "
        "epochs", "trial_1 beats net1 at equal FLOPs", "trial_1 beats net6 at equal FLOPs"]
    assert lines[-1].endswith("**supported**") and "**inconclusive" in lines[1]
    assert [line for line in lines if "is the strongest reference" in line] == [lines[1], lines[4]]  # net6's


def _table(rows):
    return pd.DataFrame([{"net": net, "kind": kind, "budget": budget, "epochs": epochs, "seed": seed,
                          "val_top1": value, "forward_gflops": gflops}
                         for net, kind, budget, epochs, values, gflops in rows for seed, value in enumerate(values)])


def test_at_equal_flops_the_verdict_is_the_best_searched_net_at_that_budget_and_waits_for_all_of_them(tmp_path):
    # Issue 32: only the best net at equal epochs was trained at equal FLOPs, so a small net (a third of the
    # FLOPs: three times the epochs) was never judged at the budget that favours it.
    rows = [("trial_1", "searched", confirm.EQUAL_EPOCHS, 9, [0.58, 0.57, 0.59], 0.070),
            ("trial_2", "searched", confirm.EQUAL_EPOCHS, 9, [0.55, 0.56, 0.56], 0.038),
            ("trial_3", "searched", confirm.EQUAL_EPOCHS, 9, [0.54, 0.55, 0.55], 0.110),  # ratio rounds to 1
            ("trial_1", "searched", confirm.EQUAL_FLOPS, 15, [0.60, 0.61, 0.61], 0.070),
            ("trial_2", "searched", confirm.EQUAL_FLOPS, 27, [0.64, 0.65, 0.66], 0.038),
            ("net1", "reference", confirm.EQUAL_EPOCHS, 9, [0.60, 0.61, 0.62], 0.114)]
    lines = verdicts.verdicts(_table(rows))
    assert [line.split(": ")[0] for line in lines] == [
        "trial_1 beats net1 at equal epochs (trial_1 9 epochs", "trial_2 beats net1 at equal FLOPs (trial_2 27 epochs"]
    assert lines[0].endswith("**not supported**") and lines[1].endswith("**supported**")
    assert confirm.flops_epochs(_table(rows[:3] + rows[5:]), "net1", 9) == {"trial_1": 15, "trial_2": 27}

    # Interrupted before trial_2's equal-FLOPs runs started: no best is named at equal FLOPs from trial_1's.
    project = tmp_path / "project"
    (project / confirm.CONFIRM_DIR).mkdir(parents=True)
    runs.write_json(str(project / confirm.CONFIRM_DIR / confirm.SETTINGS),
                    {"epochs": 9, "steps_per_epoch": 0, "references": ["net1"], "seeds": 3})
    early = _table(rows[:4] + rows[5:])
    waiting = confirm.waiting(str(project), early)
    assert waiting == {("trial_2", confirm.EQUAL_FLOPS)}
    lines = verdicts.verdicts(early, waiting)
    assert lines[1].startswith("trial_1 beats net1 at equal FLOPs") and lines[1].endswith("**pending (seeds still to train)**")
    assert confirm.waiting(str(project), _table(rows)) == set()


def test_the_first_reference_named_sets_the_equal_flops_budget_of_the_table_and_its_verdicts(tmp_path):
    # The confirmation trains at the FLOPs of the first --reference; its table listed the references by folder
    # name, so with --reference=net1,cifar7 the equal-FLOPs verdict was against cifar7, at another cost.
    project = tmp_path / "project"
    (project / confirm.CONFIRM_DIR).mkdir(parents=True)
    runs.write_json(str(project / confirm.CONFIRM_DIR / confirm.SETTINGS),
                    {"epochs": 2, "steps_per_epoch": 0, "references": ["net1", "cifar7"], "seeds": 2})
    for net, epochs, values, gflops in [("trial_1", 2, [0.50, 0.51], 0.057), ("trial_1", 4, [0.60, 0.61], 0.057),
                                        ("net1", 2, [0.55, 0.56], 0.114), ("cifar7", 2, [0.40, 0.41], 0.040)]:
        for seed, value in enumerate(values):
            run_dir = project / confirm.CONFIRM_DIR / net / f"e{epochs}-seed{seed}"
            run_dir.mkdir(parents=True)
            runs.write_json(str(run_dir / runs.CONFIG), {"epochs": epochs, "seed": seed})
            runs.write_json(str(run_dir / runs.RESULTS), {"val_top1": value, "train_top1": value,
                                                          "forward_gflops": gflops, "params": 1})
    table = confirm.table(str(project))
    assert list(dict.fromkeys(table["net"])) == ["trial_1", "net1", "cifar7"]
    lines = verdicts.verdicts(table, confirm.waiting(str(project), table))
    assert [line.split(" (")[0] for line in lines] == [
        "trial_1 beats net1 at equal epochs", "trial_1 beats cifar7 at equal epochs", "trial_1 beats net1 at equal FLOPs"]
    assert lines[-1].endswith("**supported**")


@pytest.mark.slow
def test_an_interrupted_confirmation_publishes_no_verdict_from_incomplete_seeds(tmp_path, searched, capsys):
    # Issue 30, defect 2: interrupted with 3 seeds of the searched net and 2 of the reference, it wrote
    # "**refuted**" (or another verdict) from them; after the resume the same line could read otherwise.
    project = _copy_of(searched, tmp_path)
    args = (project, "--top=1", "--seeds=3", "--epochs=2", "--reference=cifar7", "--quiet")
    # Keras' epoch lines (no --quiet) say when the reference's third seed trains: the runs before it are finished.
    worker = Lines(_popen("confirm", *args[:-1]))
    worker.wait_for(r"^\[6/6\] cifar7 seed 2, .*: training in ")
    worker.wait_for(r"^Epoch 1/2")
    worker.process.send_signal(signal.SIGINT)  # while the reference's third seed trains
    code = worker.wait(timeout=120)
    out = worker.text
    assert code == 130, out
    assert sorted(pd.read_csv(os.path.join(project, "confirmed.csv"))["net"].value_counts().tolist()) == [2, 3], out
    board = open(os.path.join(project, "leaderboard.md")).read()
    said = re.findall(r"^- \S+ beats cifar7 at equal epochs .*\*\*(.*)\*\*$", board, re.M)
    assert said == ["pending (seeds still to train)"], board
    assert "refuted" not in board

    code, out, err = _confirm(capsys, *args)  # the resume, in this process: a start of TensorFlow less
    assert code == 0, out + err
    board = open(os.path.join(project, "leaderboard.md")).read()
    said = re.findall(r"^- \S+ beats cifar7 at equal (?:epochs|FLOPs).*\*\*(.*)\*\*$", board, re.M)
    assert said and all(word.split(" (")[0] in ("supported", "not supported", "inconclusive") for word in said), board


def test_references_are_study_arms_presets_or_notation_with_settings():
    # Issue 32: the strongest hand-designed net is Net 1 without block dropout, an arm of the study.
    from tinyresnet.tuning import references as references_lib
    found = references_lib.parse(["net1,net6,net1_no_dropout", "(Conv 16) x 2, Avg 2, FC 20; block_dropout=0"])
    assert [(r.name, r.net, r.values) for r in found[:3]] == [
        ("net1", "net1", ()), ("net6", "net6", ()), ("net1_no_dropout", "net1", (("block_dropout", 0.0),))]
    assert found[3].name.startswith("net_") and found[3].net == "(Conv 16) x 2, Avg 2, FC 20"
    from tinyresnet.config import Config
    config = found[2].config(Config(epochs=3), width=0.25)
    assert (config.net, config.width, config.block_dropout, config.epochs) == ("net1", 0.25, 0.0, 3)
    for bad, said in (("nett6", "not a study arm or a preset"), ("Conv 8, Foo 2", "neither names"), ("Conv 8, FC 3; bogus=1", "unknown config key"),
                      ("Conv 8, FC 3; block_dropout", "is not key=value"), ("net1,net1", "given twice")):
        with pytest.raises(ValueError, match=said):
            references_lib.parse([bad])


def test_rung_correlations_say_how_far_a_short_rung_foretells_a_longer_one():
    from tinyresnet.tuning import leaderboard
    rows = []
    # Five nets at 1 epoch in one order, at 3 epochs in the same order, at 9 in the reverse (3 of them).
    for i, net in enumerate("ABCDE"):
        rows.append({"spec": net, "status": "COMPLETED", "epochs": 1, "val_top1": 0.1 + 0.01 * i})
        rows.append({"spec": net, "status": "COMPLETED", "epochs": 3, "val_top1": 0.2 + 0.01 * i})
    for i, net in enumerate("CDE"):
        rows.append({"spec": net, "status": "COMPLETED", "epochs": 9, "val_top1": 0.5 - 0.01 * i})
    rows.append({"spec": "F", "status": "FAILED", "epochs": 9, "val_top1": None})
    found = leaderboard.rung_correlations(pd.DataFrame(rows))
    assert found.to_dict("records") == [
        {"short_epochs": 1, "long_epochs": 3, "nets": 5, "spearman": pytest.approx(1.0)},
        {"short_epochs": 1, "long_epochs": 9, "nets": 3, "spearman": pytest.approx(-1.0)},
        {"short_epochs": 3, "long_epochs": 9, "nets": 3, "spearman": pytest.approx(-1.0)}]
    assert "| 1 | 3 | 5 | 1.00 |" in unpadded(leaderboard.rungs_markdown(found))
    single = pd.DataFrame([{"spec": "A", "status": "COMPLETED", "epochs": 3, "val_top1": 0.3}])
    assert leaderboard.rung_correlations(single).empty and leaderboard.rungs_markdown(
        leaderboard.rung_correlations(single)) == ""


@pytest.mark.slow
def test_a_study_arm_and_a_notation_reference_are_trained_confirmed_and_the_strongest_marked(
        tmp_path, data, capsys):
    # Issue 32: --reference takes a study arm (cifar7_plain_no_dropout: the plain twin without block dropout)
    # and a net in the notation with its settings, for the search and for confirm.
    from tinyresnet.tuning import command
    project = str(tmp_path / "project")
    search = _quarter_width_references(_search_file(tmp_path, data, trials=2))
    notation = "Conv 8, Avg 2, BB 8, Avg 2, FC 3; block_dropout=0"
    # Both commands in this process (a start of TensorFlow less each).
    code = command.main([f"--search={search}", f"--project-dir={project}", "--trials-in-process",
                         "--reference=cifar7_plain_no_dropout", f"--reference={notation}"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    folders = sorted(os.listdir(os.path.join(project, "reference")))
    assert folders[0] == "cifar7_plain_no_dropout" and folders[1].startswith("net_")
    arm = runs.read_json(os.path.join(project, "reference", folders[0], runs.CONFIG))
    mine = runs.read_json(os.path.join(project, "reference", folders[1], runs.CONFIG))
    assert (arm["net"], arm["variant"], arm["block_dropout"]) == ("cifar7", "plain", 0.0)
    assert (mine["net"], mine["block_dropout"]) == ("Conv 8, Avg 2, BB 8, Avg 2, FC 3", 0.0)
    assert f"| {folders[0]} |" in unpadded(open(os.path.join(project, "leaderboard.md")).read())
    code, out, err = _confirm(capsys, project, "--top=1", "--seeds=2", "--epochs=1", "--quiet",
                              "--reference=cifar7_plain_no_dropout", f"--reference={notation}")
    assert code == 0, out + err
    table = pd.read_csv(os.path.join(project, "confirmed.csv"))
    references = table[table["kind"] == "reference"]
    assert sorted(set(references["net"])) == folders
    means = references.groupby("net")["val_top1"].mean()
    assert set(table[table["strongest"]]["net"]) == {means.idxmax()}
    board = open(os.path.join(project, "leaderboard.md")).read()
    assert re.search(rf"beats {means.idxmax()} at equal epochs \(.*; {means.idxmax()} is the strongest reference\)",
                     board), board


def test_search_png_draws_the_strongest_reference_as_a_line_confirmed_first(tmp_path, monkeypatch):
    # Issue 32: the searched nets are read against the strongest reference, not the first one named.
    from tinyresnet.tuning import leaderboard
    refs = {"net1": {"val_top1": 0.30, "forward_gflops": 0.114}, "net6": {"val_top1": 0.34, "forward_gflops": 0.114}}
    assert leaderboard.strongest(refs) == "net6"
    confirmed = pd.DataFrame([{"net": "net1", "kind": "reference", "budget": confirm.EQUAL_EPOCHS, "val_top1": 0.5},
                              {"net": "net6", "kind": "reference", "budget": confirm.EQUAL_EPOCHS, "val_top1": 0.4}])
    assert leaderboard.strongest(refs, confirmed) == "net1"  # at the confirmation's budget, over seeds
    assert leaderboard.strongest({}) is None
    drawn = {}
    monkeypatch.setattr(leaderboard, "save_figure", lambda fig, path: drawn.update(
        lines=[(line.get_label(), line.get_ydata()[0]) for line in fig.axes[0].get_lines()]))
    table = pd.DataFrame({"trial": ["0"], "status": ["COMPLETED"], "val_top1": [0.4], "forward_gflops": [0.05],
                          "epochs": [1]})
    leaderboard.plot(table, refs, str(tmp_path / "search.png"), "net6")
    assert ("net6: the strongest reference", 0.34) in drawn["lines"]
    assert not any(label.startswith("net1:") for label, _ in drawn["lines"])


def test_search_png_draws_the_best_so_far_against_trials_per_budget_with_the_strongest_reference(tmp_path,
                                                                                                 monkeypatch):
    # Issue 32: a negative result is shown by the best-so-far curve of the search against the strongest reference.
    from tinyresnet.tuning import leaderboard
    drawn = {}
    monkeypatch.setattr(leaderboard, "save_figure", lambda fig, path: drawn.update(
        panels=[{line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axes.get_lines()}
                for axes in fig.axes]))
    rows = [("0000", 1, 0.20), ("0001", 1, 0.30), ("0002", 3, 0.40), ("0003", 1, 0.25), ("0004", 3, 0.35),
            ("0005", 9, 0.50), ("0006", 3, 0.45), ("0007", 9, 0.48), ("0008", 9, 0.55)]
    table = pd.DataFrame([{"trial": t, "status": "COMPLETED", "epochs": e, "val_top1": v, "forward_gflops": 0.05}
                          for t, e, v in rows]).sample(frac=1, random_state=0)  # the leaderboard's order is not time's
    refs = {"net1_no_dropout": {"val_top1": 0.6, "forward_gflops": 0.114}}
    leaderboard.plot(table, refs, str(tmp_path / "search.png"), "net1_no_dropout")
    progress = drawn["panels"][1]
    assert progress["best so far, 9 epochs"] == ([6, 8, 9], [0.50, 0.50, 0.55])
    assert progress["best so far, 3 epochs"] == ([3, 5, 7, 9], [0.40, 0.40, 0.45, 0.45])  # held to the last trial
    assert progress["best so far, 1 epoch"] == ([1, 2, 4, 9], [0.20, 0.30, 0.30, 0.30])
    assert progress["net1_no_dropout: the strongest reference"][1][0] == 0.6


def _finished_run(project, net, epochs, seed, val=None, gflops=None):
    """A run directory of `tinyresnet-tune confirm` without training: finished (its results) or, with no
    `val`, diverged."""
    from tinyresnet import config as config_lib
    from tinyresnet import runner
    folder = project / confirm.CONFIRM_DIR / net / f"e{epochs}-seed{seed}"
    folder.mkdir(parents=True)
    config = config_lib.Config(epochs=epochs, seed=seed)
    runs.write_json(str(folder / runs.CONFIG), config_lib.to_dict(config))
    if val is None:
        (folder / runner.DIVERGED).write_text("loss nan\n")
    else:
        runs.write_json(str(folder / runs.RESULTS), {"val_top1": val, "train_top1": val, "forward_gflops": gflops})
    return confirm.Run(net, "searched" if net.startswith("trial_") else "reference", confirm.EQUAL_EPOCHS, seed, config)


def _settings(project, references):
    runs.write_json(str(project / confirm.CONFIRM_DIR / confirm.SETTINGS),
                    {"epochs": 4, "steps_per_epoch": 0, "references": references, "seeds": 2})


def test_a_rerun_with_a_smaller_top_trains_at_equal_flops_every_net_the_verdict_waits_for(tmp_path):
    # Confirmed with --top=2, interrupted in the equal-FLOPs runs, rerun with --top=1 (top may change between
    # reruns): trial_2's equal-epoch runs are in the table, so the equal-FLOPs verdict waits for its equal-FLOPs
    # runs, which no rerun trained: *pending* for ever.
    planned = []
    for net, gflops, values in (("trial_1", 0.070, [0.58, 0.59]), ("trial_2", 0.038, [0.55, 0.56]),
                                ("net1", 0.114, [0.50, 0.51])):
        planned += [_finished_run(tmp_path, net, 4, seed, value, gflops) for seed, value in enumerate(values)]
    _settings(tmp_path, ["net1"])
    top1 = [r for r in planned if r.net != "trial_2"]
    extra = confirm.equal_flops_runs(str(tmp_path), top1, seeds=2)
    waiting = confirm.waiting(str(tmp_path), confirm.table(str(tmp_path)))
    assert {(r.net, r.budget) for r in extra} == waiting == {("trial_1", confirm.EQUAL_FLOPS),
                                                             ("trial_2", confirm.EQUAL_FLOPS)}
    assert {(r.net, r.config.epochs, r.seed) for r in extra if r.net == "trial_2"} == {("trial_2", 12, 0),
                                                                                      ("trial_2", 12, 1)}


def test_when_every_seed_of_the_first_reference_diverged_the_next_one_sets_the_equal_flops_runs(tmp_path):
    # The verdicts and `waiting` take the first reference with finished runs (small); the equal-FLOPs runs
    # waited for the first one named (big), so none ever trained and the verdict stayed *pending*.
    planned = [_finished_run(tmp_path, "trial_1", 4, seed, value, 0.004) for seed, value in enumerate([0.5, 0.52])]
    planned += [_finished_run(tmp_path, "big", 4, seed) for seed in range(2)]  # diverged
    planned += [_finished_run(tmp_path, "small", 4, seed, value, 0.010) for seed, value in enumerate([0.3, 0.31])]
    _settings(tmp_path, ["big", "small"])
    waiting = confirm.waiting(str(tmp_path), confirm.table(str(tmp_path)))
    assert waiting == {("trial_1", confirm.EQUAL_FLOPS)}
    extra = confirm.equal_flops_runs(str(tmp_path), planned, seeds=2)
    assert extra is not None and {(r.net, r.config.epochs) for r in extra} == {("trial_1", 10)}


def test_the_best_so_far_of_trials_without_numbers_follows_their_ids_not_the_leaderboard_s_order():
    # The trials table is ranked by val top-1: in its order the best so far is the best from the first trial on.
    from tinyresnet.tuning import leaderboard
    table = pd.DataFrame({"trial": ["w0_a", "w0_b", "w0_c"], "epochs": [1, 1, 1], "val_top1": [0.2, 0.5, 0.3],
                          "forward_gflops": [0.1, 0.1, 0.1]}).sort_values("val_top1", ascending=False)
    best = leaderboard._best_so_far(table, 1)
    assert list(best.index) == [1, 2, 3] and list(best.values) == [0.2, 0.5, 0.5]


def test_a_net_of_which_one_epoch_costs_more_than_the_budget_has_no_verdict_at_equal_flops():
    # --epochs=1 and a net of 2.3 times cifar7's FLOPs: its 1-epoch runs were "the equal-FLOPs ones (the FLOPs
    # ratio rounds to 1)" and won the equal-FLOPs verdict on 2.3 times the reference's training FLOPs.
    rows = [("trial_1", "searched", confirm.EQUAL_EPOCHS, 1, [0.33, 0.34], 0.00299),
            ("trial_3", "searched", confirm.EQUAL_EPOCHS, 1, [0.50, 0.33], 0.00026),
            ("trial_3", "searched", confirm.EQUAL_FLOPS, 5, [0.28, 0.22], 0.00026),
            ("cifar7", "reference", confirm.EQUAL_EPOCHS, 1, [0.30, 0.31], 0.00129)]
    assert confirm.flops_epochs(_table(rows[:2] + rows[3:]), "cifar7", 1) == {"trial_3": 5}
    lines = verdicts.verdicts(_table(rows))
    assert lines[1].startswith("trial_3 beats cifar7 at equal FLOPs (trial_3 5 epochs"), lines
