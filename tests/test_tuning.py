import json
import os
import re
import signal
import subprocess
import sys

import pandas as pd
import pytest

from conftest import Lines, unpadded
from tinyresnet import runs

SEARCH = """
base: {{dataset: folder, data: {data}, epochs: {epochs}, batch_size: 8, validation_fraction: 0.25, warmup_epochs: 0,
        learning_rate: 0.01, verbose: {verbose}}}
search: {{oracle: random, max_trials: {trials}, seed: 0}}
budget: {{max_params: 30000}}
space:
  stages: {{min: 1, max: 2}}
  blocks: {{min: 1, max: 2}}
  stem_convs: 1
  base_width: [8, 16, 24]
  growth: [2.0]
  block_dropout: [0.0, 0.5]
  pool: [avg, max]
"""
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def _search_file(tmp_path, data, trials=3, epochs=1, verbose=0):
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH.format(data=data, trials=trials, epochs=epochs, verbose=verbose))
    return str(path)


def _tune(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "tinyresnet.tuning.command", *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _popen(*args):
    return subprocess.Popen([sys.executable, "-m", "tinyresnet.tuning.command", *args], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _trial_epochs(project):
    """{trial id: epochs in its history.csv} for every trial directory."""
    return {d.replace("trial_", ""): [r["epoch"] for r in runs.read_history(os.path.join(project, d))]
            for d in sorted(os.listdir(project)) if d.startswith("trial_")}


def _hparams_session(logdir):
    """(the `SessionStartInfo` of the hparams plugin, {scalar tag: value}) of the events in `logdir` itself."""
    import glob
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2
    session, metrics = None, {}
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        session = data.session_start_info
                elif value.HasField("tensor"):
                    metrics[value.tag] = float(tf.make_ndarray(value.tensor))
    assert session is not None, f"no hparams session in {logdir}"
    return session, metrics


@pytest.mark.slow
def test_a_three_trial_search_end_to_end_within_budget(tmp_path, data, capfd):
    from tinyresnet.tuning import command, space
    project = str(tmp_path / "project")
    assert command.main([f"--search={_search_file(tmp_path, data)}", f"--project-dir={project}",
                         "--steps_per_epoch=2"]) == 0
    out = unpadded(capfd.readouterr().out)
    assert "| rank | trial | val top-1 |" in out and len(re.findall(r"^\| [123] \| \d+ \| ", out, re.M)) == 3, out
    assert re.findall(r"s, (\d+ trials? left)$", out, re.M) == ["2 trials left", "1 trial left", "0 trials left"], out
    table = pd.read_csv(os.path.join(project, "trials.csv"))
    assert len(table) == 3 and set(table["status"]) == {"COMPLETED"}
    search = space.load_search(_search_file(tmp_path, data))
    for _, row in table.iterrows():
        params, gflops = space.cost(row["spec"], (16, 16, 3), 3)
        assert params <= 30000 and row["params"] == params and row["forward_gflops"] == pytest.approx(gflops)
        trial_dir = os.path.join(project, f"trial_{row['trial']}")
        assert runs.is_finished(trial_dir)  # each trial directory is a run directory
        with open(os.path.join(trial_dir, "spec.txt")) as f:
            assert f.read().strip() == row["spec"]
        stages = row["hp_stages"]
        assert pd.isna(row.get("hp_blocks_1")) == (stages == 1)  # an absent stage has no value
        # TensorBoard's HParams dashboard: the trial's session, its hyperparameters and final metrics.
        session, metrics = _hparams_session(os.path.join(trial_dir, "tensorboard"))
        assert session.group_name == f"trial_{row['trial']}"
        assert session.hparams["stages"].number_value == stages and session.hparams["net"].string_value == row["spec"]
        assert metrics["final/val_top1"] == pytest.approx(row["val_top1"])
    assert os.path.exists(os.path.join(project, "leaderboard.md")) and os.path.exists(os.path.join(project,
                                                                                                 "search.png"))
    assert search.budget.max_params == 30000
    # A finished search rerun trains nothing new.
    mtimes = {d: os.path.getmtime(os.path.join(project, d, "results.json")) for d in os.listdir(project)
              if d.startswith("trial_")}
    assert command.main([f"--search={_search_file(tmp_path, data)}", f"--project-dir={project}",
                         "--steps_per_epoch=2"]) == 0
    assert {d: os.path.getmtime(os.path.join(project, d, "results.json")) for d in mtimes} == mtimes


@pytest.mark.slow
def test_killed_mid_trial_then_resumed_keeps_finished_trials_and_the_total(tmp_path, data, capsys):
    from tinyresnet.tuning import command
    project = str(tmp_path / "project")
    args = [f"--search={_search_file(tmp_path, data, trials=3, epochs=6, verbose=1)}", f"--project-dir={project}"]
    # Trained in the tuner's process, so that kill -9 kills the training itself (a trial process would be told by its
    # dying tuner and stop as on Ctrl-C, saving: the ctrl-c test's), and a start of TensorFlow less.
    process = Lines(_popen(*args, "--trials-in-process"))
    process.wait_for(r"^  trial 1 \(tuner0\) epoch 1/6:")  # the second trial's first epoch trained (a line per epoch)
    process.process.send_signal(signal.SIGKILL)
    process.wait()
    before = _trial_epochs(project)
    finished = [t for t in before if runs.is_finished(os.path.join(project, f"trial_{t}"))]
    assert finished and len(before) > len(finished), before  # killed inside a trial
    stamp = {t: os.path.getmtime(os.path.join(project, f"trial_{t}", "results.json")) for t in finished}
    capsys.readouterr()
    code = command.main(args)  # the rerun's tuner in this process (a start of TensorFlow less), its trials apart
    out = capsys.readouterr()
    assert code == 0, out.out[-2000:] + out.err[-2000:]
    after = _trial_epochs(project)
    assert sorted(after) == ["0", "1", "2"] and all(e == list(range(6)) for e in after.values()), after
    assert {t: os.path.getmtime(os.path.join(project, f"trial_{t}", "results.json")) for t in finished} == stamp
    assert len(pd.read_csv(os.path.join(project, "trials.csv"))) == 3


def test_max_hours_starts_no_more_trials_and_ends_cleanly(tmp_path, data, capsys):
    from tinyresnet.tuning import command
    project = str(tmp_path / "project")
    assert command.main([f"--search={_search_file(tmp_path, data)}", f"--project-dir={project}",
                         "--max-hours=0.0000001", "--steps_per_epoch=1"]) == 0
    assert len(_trial_epochs(project)) == 0
    assert "0 trials" in capsys.readouterr().out


@pytest.mark.slow
def test_a_trial_s_number_is_what_tinyresnet_train_gives_for_its_config(tmp_path, data):
    from tinyresnet import config as config_lib
    from tinyresnet import train
    from tinyresnet.tuning import command
    project = str(tmp_path / "project")
    assert command.main([f"--search={_search_file(tmp_path, data, trials=1)}", f"--project-dir={project}",
                         "--steps_per_epoch=2"]) == 0
    trial = os.path.join(project, "trial_0")
    config = config_lib.from_dict(runs.read_json(os.path.join(trial, "config.json")))
    again = train.train_and_evaluate(config, str(tmp_path / "by-hand"))
    assert again["val_top1"] == runs.read_json(os.path.join(trial, "results.json"))["val_top1"]
    assert again["spec"] == runs.read_json(os.path.join(trial, "results.json"))["spec"]


def test_report_and_search_refuse_folders_that_are_not_search_projects(tmp_path, data, capsys):
    from tinyresnet.tuning import command
    run = tmp_path / "run"
    run.mkdir()
    (run / runs.MARKER).write_text("")
    assert command.main(["report", str(run)]) == 2
    assert "not a search project (no oracle.json)" in capsys.readouterr().err
    assert not (run / "trials.csv").exists()
    assert command.main([f"--search={_search_file(tmp_path, data)}", f"--project-dir={run}"]) == 2
    assert "is a training run directory, not a search project" in capsys.readouterr().err
    assert sorted(os.listdir(run)) == [runs.MARKER]
    project = tmp_path / "project"
    project.mkdir()
    (project / "oracle.json").write_text("{}")
    for bad in ("0", "-2"):
        assert command.main(["report", str(project), "--retrain-best", bad]) == 2
        assert "--retrain-best: epochs must be >= 1" in capsys.readouterr().err


def test_options_the_search_would_ignore_or_find_wrong_hours_later_are_refused_at_once(tmp_path, data, capsys):
    from tinyresnet.tuning import command
    search = _search_file(tmp_path, data)
    assert command.main([f"--search={search}", "--oracle=hyperband", "--max-trials=5",
                         f"--project-dir={tmp_path / 'p'}"]) == 2
    assert "--max-trials does not apply to hyperband" in capsys.readouterr().err
    assert command.main([f"--search={search}", "--reference=net1,net7", f"--project-dir={tmp_path / 'p'}"]) == 2
    assert "--reference: net7 not a study arm or a preset" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_a_project_of_another_search_definition_is_refused_naming_the_change(tmp_path, data, capsys):
    from tinyresnet.tuning import command, space
    from tinyresnet.tuning import project as project_lib
    path = _search_file(tmp_path, data)
    project = tmp_path / "project"
    project_lib.admit_search(space.load_search(path), str(project))
    project_lib.admit_search(space.load_search(path, {"verbose": 2}), str(project))  # how it runs: not what it is
    with open(path) as f:
        edited = f.read().replace("base_width: [8, 16, 24]", "base_width: [40]")
    with open(path, "w") as f:
        f.write(edited)
    assert command.main([f"--search={path}", f"--project-dir={project}"]) == 2
    err = capsys.readouterr().err
    assert "holds a search of another definition (space.base_width: [8, 16, 24] -> [40])" in err
    assert command.main([f"--search={path}", f"--project-dir={project}", "--epochs=3"]) == 2
    assert "base.epochs: 1 -> 3" in capsys.readouterr().err


def test_a_project_saved_when_augment_on_defined_a_run_resumes(tmp_path, data):
    # Projects saved augment_on: data in their base; it became an execution key (default auto) since.
    from tinyresnet.tuning import space
    from tinyresnet.tuning import project as project_lib
    path = _search_file(tmp_path, data)
    project = tmp_path / "project"
    project_lib.admit_search(space.load_search(path), str(project))
    saved = json.loads((project / "search.json").read_text())
    saved["base"]["augment_on"] = "data"
    (project / "search.json").write_text(json.dumps(saved))
    project_lib.admit_search(space.load_search(path), str(project))
    project_lib.admit_search(space.load_search(path, {"augment_on": "model", "jit_compile": "true"}), str(project))


@pytest.mark.slow
def test_auto_precision_is_decided_per_trial_net_and_quiet_leaves_out_the_epoch_lines(tmp_path, data, monkeypatch,
                                                                                        capfd):
    # Issue 30, defect 1: on a CPU with bfloat16 instructions the search took bf16 for every trial from a
    # matmul (2.25x), where each trial's own net trains slower in bf16. Here the CPU is stubbed at the
    # measurement's boundary: the matmul says 2.25x, each net's real step says 1.19x (just under 1.2).
    # (It replaces issue 18's one recorded policy per search, which was that matmul's.)
    # Defect 8 of issue 18: --quiet was accepted and ignored. capfd: trials print their epoch lines.
    from tinyresnet import precision, train
    monkeypatch.setattr(precision, "_CHOICES", {})
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_info", lambda: ("Test CPU", {"avx512_bf16"}))
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *a, **k: 2.25)
    measured = []

    def measure(config, spec, *args, **kwargs):
        measured.append(spec)
        return 1.19
    monkeypatch.setattr(train, "measure_bf16_speedup", measure)
    from tinyresnet.tuning import command
    project = tmp_path / "project"
    args = [f"--search={_search_file(tmp_path, data, trials=2, verbose=1)}", f"--project-dir={project}",
            "--steps_per_epoch=1", "--precision=auto", "--trials-in-process"]
    assert command.main(args) == 0
    out = capfd.readouterr().out
    assert "for every trial" not in out
    assert len(re.findall(r"^  trial \d+ \(tuner0\) epoch 1/1: loss [\d.]+, top-1 [\d.]+, val top-1 [\d.]+, ",
                          out, re.M)) == 2, out
    assert len(re.findall(r"^trial \d+: .*  val top-1 \d\.\d{3}  ", out, re.M)) == 2, out
    assert len(measured) == 2 and measured[0] != measured[1]  # each trial's own net, once

    def policies(name):
        return [json.load(open(project / d / name))["precision"] for d in sorted(os.listdir(project))
                if d.startswith("trial_")]
    assert policies("config.json") == policies("results.json") == ["float32"] * 2
    assert command.main(args + ["--max-trials=3", "--quiet"]) == 0  # resumed: the others keep theirs
    assert policies("results.json") == ["float32"] * 3
    out = capfd.readouterr().out
    assert " epoch 1/1" not in out and re.search(r"^trial \d+: .*  val top-1 \d\.\d{3}  ", out, re.M), out


@pytest.mark.slow
def test_trials_train_in_one_process_apart_unless_told_in_process_with_the_same_results(tmp_path, data, monkeypatch):
    # Issue 18, defect 9: TensorFlow keeps every traced training step of a process (~20 MiB a trial).
    # Issue 29: the process apart is a ProcessPoolExecutor's (it was a hand-made pipe protocol).
    from tinyresnet.tuning import command, trial_pool
    pids, real = {}, trial_pool.TrialPool.run

    def run(self, request):
        outcome = real(self, request)
        pids[request["trial_id"]] = outcome.pid
        return outcome
    monkeypatch.setattr(trial_pool.TrialPool, "run", run)
    search = _search_file(tmp_path, data, trials=3)
    assert command.main([f"--search={search}", f"--project-dir={tmp_path / 'a'}", "--steps_per_epoch=1"]) == 0
    assert sorted(pids) == ["0", "1", "2"] and len(set(pids.values())) == 1  # one start for the three
    assert os.getpid() not in pids.values()
    apart = pd.read_csv(tmp_path / "a" / "trials.csv")
    assert command.main([f"--search={search}", f"--project-dir={tmp_path / 'b'}", "--steps_per_epoch=1",
                         "--trials-in-process"]) == 0
    assert len(pids) == 3  # none more
    same = pd.read_csv(tmp_path / "b" / "trials.csv")
    assert list(same["val_top1"]) == list(apart["val_top1"])  # the same seed gives the same trial either way


@pytest.mark.slow
def test_the_trial_process_is_replaced_after_its_trials_and_when_it_dies(tmp_path, data, capsys):
    # Issue 29: replaced after `trials_per_process` trials (ProcessPoolExecutor's max_tasks_per_child), where
    # it was replaced on memory growth; a trial killed mid-way is retried by KerasTuner (max_retries_per_trial).
    import dataclasses
    import psutil
    from tinyresnet import train
    from tinyresnet.tuning import space, trial_pool
    from tinyresnet.tuning.tuner import SpecTuner
    search = space.load_search(_search_file(tmp_path, data, trials=2))
    search = dataclasses.replace(search, base=dataclasses.replace(search.base, steps_per_epoch=1))
    datasets = train.load_datasets(dataclasses.replace(search.base, file_cache=True))
    tuner = SpecTuner(search, datasets, str(tmp_path / "fresh"), log=lambda line: None, trials_per_process=1)
    tuner.search(verbose=0)
    assert len(set(tuner.trial_pids.values())) == 2  # a new process per trial
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in tuner.trial_pids.values())  # and none left behind

    # A process that dies between trials (out of memory, say) is started again for the next trial.
    tuner = SpecTuner(search, datasets, str(tmp_path / "killed"), log=lambda line: None)
    real, killed = tuner.trial_pool.run, []

    def run(request):
        if request["trial_id"] == "1" and not killed:
            killed.append(tuner.trial_pids["0"])
            os.kill(killed[0], signal.SIGKILL)
            for process in tuner.trial_pool._processes():  # reaped by its Process, which then knows its end
                process.join(30)
        return real(request)
    tuner.trial_pool.run = run
    tuner.search(verbose=0)
    assert len(killed) == 1 and tuner.trial_pids["1"] != killed[0] == tuner.trial_pids["0"]
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED", "COMPLETED"]
    assert "retries left" not in capsys.readouterr().out  # trial 1 started in a new process: not a retry

    # Killed during a trial (the OOM killer, say): trained again once, in a new process; killed twice, the
    # trial fails with one line, not a traceback.
    # The pool's side of a trial that is not killed (train_one) runs in this process: no process of its own to start
    # (how the tuner gets a new one is above).
    lines = []
    tuner = SpecTuner(search, datasets, str(tmp_path / "mid"), log=lines.append)
    calls = []

    def run(request):
        calls.append(request["trial_id"])
        kills = {"0": 1, "1": 2}[request["trial_id"]]
        if calls.count(request["trial_id"]) <= kills:
            return trial_pool.Outcome(-9, "", 1)
        return trial_pool.train_one(request)
    tuner.trial_pool.run = run
    tuner.search(verbose=0)
    assert calls == ["0", "0", "1", "1"]
    assert "retries left" not in capsys.readouterr().out  # KerasTuner's line; ours says why and what next
    assert "trial 0: its process was killed (signal 9); training it again in a new one from its last finished " \
           "epoch" in lines
    trials = tuner.oracle.trials
    assert [trials["0"].status, trials["1"].status] == ["COMPLETED", "FAILED"]
    assert not trials["0"].message  # its retry finished: not "its process was killed" (issue 29 hunt)
    # Our own line, without KerasTuner's class name (issue 30, defect 3: a trial's line says why it failed).
    assert trials["1"].message == "trial 1: its process was killed twice (signal 9)"


def test_a_trial_process_whose_tuner_is_gone_before_it_starts_ends_at_once():
    # Killed (kill -9, the OOM killer) as its pool's process starts, before that process asks to die with it:
    # the process went on, loaded TensorFlow and waited for trials for ever, holding the tuner's terminal (the
    # dead-local-worker test's launcher never saw its output end). TensorFlow's loading is stubbed: the process
    # says where it got to.
    code = ("import os, sys; from tinyresnet import startup; from tinyresnet.tuning import trial_pool\n"
            "startup.load_tensorflow = lambda: print('loaded TensorFlow', flush=True)\n"
            "trial_pool._start(int(sys.argv[1]))\n"
            "print('waits for trials', flush=True)\n")
    alive = subprocess.run([sys.executable, "-c", code, str(os.getpid())], capture_output=True, text=True, timeout=60)
    assert alive.returncode == 0 and alive.stdout.split("\n")[:2] == ["loaded TensorFlow", "waits for trials"], \
        alive.stdout + alive.stderr
    gone = subprocess.run([sys.executable, "-c", code, "1" if os.getpid() != 1 else "2"], capture_output=True,
                          text=True, timeout=60)  # not its parent: the tuner that started it is gone
    assert gone.returncode == 130 and gone.stdout == "", gone.stdout + gone.stderr


@pytest.mark.slow
def test_three_failed_trials_in_a_row_end_the_search_with_one_clear_line_and_the_results(tmp_path, data, capfd):
    from tinyresnet.tuning import command
    project = tmp_path / "project"
    code = command.main([f"--search={_search_file(tmp_path, data, trials=4)}", f"--project-dir={project}",
                         "--steps_per_epoch=2", "--learning_rate=1e30", "--trials-in-process"])
    err = capfd.readouterr().err
    assert code == 3, err[-3000:]
    assert "error: the search stopped: 3 trials in a row failed (their errors are above)" in err
    assert (project / "trials.csv").exists()


def test_a_bug_in_a_trial_fails_it_once_with_its_traceback_where_a_killed_trial_is_retried(tmp_path, data, capfd,
                                                                                            monkeypatch):
    # KerasTuner retries a trial that raised anything but FailedTrialError; only a killed trial process should
    # be retried (`max_retries_per_trial=1`): a bug trained every trial twice before it failed.
    from tinyresnet.tuning import command, tuner
    calls = []

    def bug(*args, **kwargs):
        calls.append(args[2])
        raise RuntimeError("a bug in the trial")
    monkeypatch.setattr(tuner, "train_trial", bug)
    project = tmp_path / "project"
    code = command.main([f"--search={_search_file(tmp_path, data, trials=4)}", f"--project-dir={project}",
                         "--trials-in-process"])
    out, err = capfd.readouterr()
    assert code == 3, err[-3000:]
    assert "error: the search stopped: 3 trials in a row failed (their errors are above)" in err
    assert (project / "trials.csv").exists()
    assert calls == ["0", "1", "2"], calls  # each trial once, and the search stops after 3 in a row
    assert err.count("Traceback") == 3 and "RuntimeError: a bug in the trial" in err
    assert "retries left" not in out + err
    assert re.findall(r"^trial (\d): .*  RuntimeError: a bug in the trial  \d+ s", out, re.M) == ["0", "1", "2"], out
    statuses = {json.loads((project / f"trial_{t}" / "trial.json").read_text())["status"] for t in calls}
    assert statuses == {"FAILED"}
    assert "running" not in (project / "leaderboard.md").read_text()  # the 3rd was saved as it ended


@pytest.mark.slow
def test_diverged_trials_get_a_line_each_no_rank_and_a_search_with_none_finished_exits_3(tmp_path, data, capfd):
    # Issue 30, defect 3: every trial printed KerasTuner's traceback and a remedy for tinyresnet-train (a file
    # that did not exist, float32 to a float32 search, --overwrite that tune refuses); the search exited 0
    # and ranked the failed trials.
    search = tmp_path / "search.yaml"
    search.write_text(SEARCH.format(data=data, trials=2, epochs=1, verbose=0).replace(
        "learning_rate: 0.01", "learning_rate: 1.0e9, precision: float32"))
    project = tmp_path / "project"
    from tinyresnet.tuning import command
    code = command.main([f"--search={search}", f"--project-dir={project}"])  # in this process: a start less
    out = capfd.readouterr()  # the trials' lines too, from their process
    assert code == 3, out.out + out.err
    assert "Traceback" not in out.err and "last.keras" not in out.out + out.err
    lines = re.findall(r"^trial (\d+): .*  diverged \(loss became nan at epoch 0 step \d+\)  \d+ s", out.out, re.M)
    assert lines == ["0", "1"], out.out
    board = unpadded((project / "leaderboard.md").read_text())
    assert not re.search(r"^\| 1 \|", board, re.M) and "Not ranked (no score): trial 0 failed: diverged" in board
    (error,) = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert error == ("error: no trial finished (their errors are above); trials diverged: lower base.learning_rate "
                     "in the search file and run it with another --project-dir (a project keeps its base settings)")


@pytest.mark.slow
def test_a_search_resumes_on_the_same_archive_by_another_path_and_workers_obey_the_same_rule(
        tmp_path, data, monkeypatch, capsys):
    # Issue 30, defect 7: a second checkout (or a relative --data) was refused as another base.data, while
    # --role=worker skipped the check altogether.
    import shutil
    from tinyresnet.tuning import command
    search, project = _search_file(tmp_path, data, trials=1), str(tmp_path / "project")
    assert command.main([f"--search={search}", f"--project-dir={project}", "--steps_per_epoch=1",
                         "--trials-in-process"]) == 0
    elsewhere = tmp_path / "other checkout" / "d.zip"
    elsewhere.parent.mkdir()
    shutil.copy(data, elsewhere)
    monkeypatch.chdir(elsewhere.parent)
    assert command.main([f"--search={search}", f"--project-dir={project}", "--steps_per_epoch=1", "--data=d.zip",
                         "--max-trials=2", "--trials-in-process"]) == 0, capsys.readouterr().err
    assert len([d for d in os.listdir(project) if d.startswith("trial_")]) == 2
    from fixtures import class_folder_files, write_zip
    write_zip(elsewhere, class_folder_files(("a", "b", "c"), per_class=25, size=(16, 16)))  # another archive there
    for role in ([], ["--role=worker", "--oracle=127.0.0.1:1"]):
        limit = [] if role else ["--max-trials=2"]  # the chief decides the trials, not a worker
        assert command.main([f"--search={search}", f"--project-dir={project}", "--steps_per_epoch=1",
                             "--data=d.zip", *limit, *role]) == 2
        assert "another definition (base.data: " in capsys.readouterr().err


def test_a_run_resumes_on_the_same_archive_by_another_path_and_refuses_another_archive(tmp_path, data):
    import shutil
    from tinyresnet import config as config_lib
    from fixtures import tiny_config
    run = tmp_path / "run"
    os.makedirs(run)
    runs.start(str(run), config_lib.to_dict(tiny_config(data)))
    copy = tmp_path / "copy.zip"
    shutil.copy(data, copy)
    assert config_lib.admit(tiny_config(str(copy)), str(run)) is False
    copy.write_bytes(copy.read_bytes() + b"\0")
    with pytest.raises(runs.RunDirError, match="data"):
        config_lib.admit(tiny_config(str(copy)), str(run))


def test_retrain_best_counts_its_epochs_in_words(tmp_path, monkeypatch, capsys):
    # Issue 30 (11): "retraining trial 0002 for 1 epochs".
    import argparse
    from tinyresnet import commands
    from tinyresnet.tuning import command
    from tinyresnet.tuning import leaderboard
    trial = tmp_path / "trial_0002"
    trial.mkdir()
    runs.write_json(str(trial / runs.CONFIG), {"net": "Conv 8, Avg 2, FC 3", "epochs": 3})
    monkeypatch.setattr(leaderboard, "best_trial", lambda table: {"trial": "0002", "spec": "Conv 8, Avg 2, FC 3"})
    monkeypatch.setattr(commands, "run_training", lambda work, errors=(): (({"val_top1": 0.5}, "exported/x/1"), None))
    args = argparse.Namespace(project_dir=str(tmp_path), retrain_best=1, export="exported")
    assert command._retrain_best(args, None) == 0
    assert "retraining trial 0002 for 1 epoch: Conv 8, Avg 2, FC 3" in capsys.readouterr().out
