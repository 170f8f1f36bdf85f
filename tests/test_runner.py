"""The runner of runs x seeds that `experiments.run` and `tinyresnet-tune confirm` share (`tinyresnet.runner`),
tested once: finished runs skipped, locks, a held run waited for and taken over, a diverged run marked once
and left out, shards, and the --workers launcher's reading of its workers' ends."""

import os
import subprocess
import sys

import pytest

from tinyresnet import config as config_lib
from tinyresnet import locks, runner, runs, train

CONFIG = config_lib.from_dict({"dataset": "folder", "data": "d.zip", "net": "Conv 8, Avg 2, FC 3", "epochs": 1})


def _plan(tmp_path, n=2):
    return [runner.Planned(f"net seed {seed}", str(tmp_path / "net" / f"seed_{seed}"), CONFIG) for seed in range(n)]


def _fake_training(monkeypatch, trained, diverge=()):
    def fake_train(config, run_dir, datasets=None, strategy=None, callbacks=()):
        trained.append(os.path.basename(run_dir))
        os.makedirs(run_dir, exist_ok=True)
        if os.path.basename(run_dir) in diverge:
            raise train.TrainingDiverged("loss became nan at epoch 0 after batch 3")
        results = {"val_top1": 0.5, "train_top1": 0.6}
        runs.write_json(os.path.join(run_dir, runs.RESULTS), results)
        return results
    monkeypatch.setattr(train, "train_and_evaluate", fake_train)
    monkeypatch.setattr(train, "load_datasets", lambda config: None)
    monkeypatch.setattr(runner, "_strategy", lambda config: None)
    monkeypatch.setattr(runner, "_release_memory", lambda: None)


def test_finished_runs_are_skipped_and_a_run_is_trained_once(tmp_path, monkeypatch):
    trained, lines, after = [], [], []
    _fake_training(monkeypatch, trained)
    planned = _plan(tmp_path, 3)
    assert runner.train_runs(planned[:1], log=lines.append) == 1
    assert runner.train_runs(planned, log=lines.append, after_each=lambda: after.append(1)) == 2
    assert trained == ["seed_0", "seed_1", "seed_2"] and len(after) == 2  # results after each run trained
    assert "3 runs, 1 finished already" in lines
    assert runner.train_runs(planned, log=lines.append) == 0 and lines[-1] == "3 runs, 3 finished already"


def test_a_shard_takes_every_nth_run_from_its_index(tmp_path, monkeypatch):
    trained = []
    _fake_training(monkeypatch, trained)
    runner.train_runs(_plan(tmp_path, 5), log=lambda line: None, shard=(1, 2))
    assert trained == ["seed_1", "seed_3"]


def test_a_diverged_run_is_marked_once_left_out_and_the_others_go_on(tmp_path, monkeypatch):
    trained, lines = [], []
    _fake_training(monkeypatch, trained, diverge=("seed_0",))
    planned = _plan(tmp_path)
    runner.train_runs(planned, log=lines.append)
    assert trained == ["seed_0", "seed_1"]  # the second run still trains
    assert any("net seed 0: diverged (loss became nan at epoch 0 after batch 3); it stays unfinished" in line
               for line in lines), lines
    assert runner.diverged_runs([p.folder for p in planned]) == [planned[0].folder]
    lines.clear()
    runner.train_runs(planned, log=lines.append)  # a rerun, or another runner: nothing again
    assert trained == ["seed_0", "seed_1"] and lines == ["2 runs, 1 finished already, 1 diverged"]
    os.remove(os.path.join(planned[0].folder, runner.DIVERGED))  # as the line says: trained again
    runner.train_runs(planned, log=lines.append)
    assert trained == ["seed_0", "seed_1", "seed_0"]


def test_a_run_another_runner_holds_is_left_to_it_then_trained_here_if_it_stopped_unfinished(tmp_path, monkeypatch):
    trained, lines = [], []
    _fake_training(monkeypatch, trained)
    planned = _plan(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from tinyresnet import locks\n"
                               f"with locks.claim({planned[0].folder!r}):\n"
                               "    print('held', flush=True); sys.stdin.readline()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"

    def log(line):
        lines.append(line)
        if "waiting for its holder" in line:  # the holder stops now, without finishing the run
            holder.stdin.write("\n")
            holder.stdin.flush()
    runner.train_runs(planned, log=log)
    assert trained == ["seed_1", "seed_0"]  # seed 1 first (seed 0 held), then seed 0 once its holder let go
    assert holder.wait(30) == 0
    assert any("net seed 0: skipped" in line and f"pid {holder.pid}" in line for line in lines), lines
    assert any("(taken over)" in line for line in lines), lines
    with locks.claim(planned[0].folder):  # and released
        pass


def test_a_run_finished_by_another_runner_while_this_one_waited_is_not_trained_again(tmp_path, monkeypatch):
    trained, lines = [], []
    _fake_training(monkeypatch, trained)
    planned = _plan(tmp_path, 1)
    holder = subprocess.Popen([sys.executable, "-c", "import json, os, sys; from tinyresnet import locks, runs\n"
                               f"with locks.claim({planned[0].folder!r}):\n"
                               "    print('held', flush=True); sys.stdin.readline()\n"
                               f"    os.makedirs({planned[0].folder!r}, exist_ok=True)\n"
                               f"    runs.write_json(os.path.join({planned[0].folder!r}, runs.RESULTS), {{}})"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"

    def log(line):
        lines.append(line)
        if "waiting for its holder" in line:
            holder.stdin.write("\n")
            holder.stdin.flush()
    assert runner.train_runs(planned, log=log) == 0
    assert trained == [] and lines[-1] == "[1/1] net seed 0: finished in another runner"
    assert holder.wait(30) == 0


@pytest.mark.parametrize("codes, expected, said", [
    ([0, -9], None, "was killed (signal 9); the other workers trained its runs"),
    ([130, 0], None, "was interrupted; the other workers trained its runs"),  # a Ctrl-C to that worker alone
    ([130, 130], 130, "interrupted; rerun the same command to resume the confirmation"),  # not to the launcher
    ([3, -9], 137, "was killed (signal 9)\n"),
])
def test_the_launcher_reads_its_workers_ends(monkeypatch, capsys, codes, expected, said):
    # A worker that ends 0 went through every run: the work is done whatever became of the others.
    from tinyresnet import processes
    left, popen = list(codes), subprocess.Popen
    monkeypatch.setattr(processes.subprocess, "Popen", lambda command, env: popen(
        [sys.executable, "-c", f"import os, signal, sys\ncode = {left.pop(0)}\n"
                               "os.kill(os.getpid(), -code) if code < 0 else sys.exit(code)"]))
    assert processes.run_copies(["P", "--epochs=2"], 2, "the confirmation") == expected
    assert said in capsys.readouterr().err


def test_local_workers_share_the_cores_unless_told_how_many_threads():
    from tinyresnet.processes import worker_environment
    assert worker_environment(2, {}, cpus=2)["TF_NUM_INTRAOP_THREADS"] == "1"
    assert worker_environment(2, {}, cpus=16)["TF_NUM_INTRAOP_THREADS"] == "8"
    assert worker_environment(4, {}, cpus=2)["TF_NUM_INTRAOP_THREADS"] == "1"  # never 0 (TensorFlow: all cores)
    told = {"TF_NUM_INTRAOP_THREADS": "2", "HOME": "/h"}
    assert worker_environment(2, told, cpus=2) == told
