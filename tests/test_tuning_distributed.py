"""Distributed searches (KerasTuner's chief and workers on 127.0.0.1) and the processes of a search:
kills, restarts, signals, trial processes."""

import json
import os
import re
import signal
import socket
import time

import pandas as pd
import pytest

from conftest import Lines
from test_tuning import _popen, _search_file, _trial_epochs, _tune
from tinyresnet import runs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_chief_and_two_workers_with_a_worker_then_the_chief_killed_and_restarted(tmp_path, data):
    project = str(tmp_path / "project")
    port = _free_port()
    # The workers train their trials in their own processes (--trials-in-process: a start of TensorFlow less for
    # each worker's start; a trial process that dies with its tuner is test_a_killed_tuner_takes_its_trial_process_
    # with_it's), and say each finished epoch (verbose 1), which tells where each one is.
    common = [f"--search={_search_file(tmp_path, data, trials=4, epochs=5, verbose=1)}", f"--project-dir={project}",
              f"--oracle=127.0.0.1:{port}", "--trials-in-process"]
    chief = _popen(*common, "--role=chief")
    workers = {i: Lines(_popen(*common, "--role=worker", f"--tuner-id=worker{i}")) for i in (0, 1)}
    # worker0 inside a trial, with its first epoch finished (and backed up).
    victim = workers[0].wait_for(r"^  trial (\d+) \(worker0\) epoch 1/5:").group(1)
    workers[0].process.send_signal(signal.SIGKILL)
    workers[0].wait()
    assert not runs.is_finished(os.path.join(project, f"trial_{victim}"))
    workers[1].from_now()
    workers[0] = Lines(_popen(*common, "--role=worker", "--tuner-id=worker0"))
    # Then the chief dies (kill -9) while a worker is inside a trial, and comes back on the same port
    # (issue 18, defect 4): the trial stays with its worker, and no finished trial is run again.
    busy = workers[1].wait_for(r"^  trial (\d+) \(worker1\) epoch [1-4]/5:").group(1)  # another trial, not finished
    assert busy != victim
    chief.send_signal(signal.SIGKILL)
    chief.wait()
    chief = _popen(*common, "--role=chief")
    codes = {i: w.wait(timeout=600) for i, w in workers.items()}
    outputs = {i: w.text for i, w in workers.items()}
    assert all(code == 0 for code in codes.values()), outputs
    chief_out = chief.communicate(timeout=120)[0]  # the chief exits once the search is done
    assert chief.returncode == 0, chief_out[-3000:]
    after = _trial_epochs(project)
    assert sorted(after) == ["0", "1", "2", "3"], after
    assert all(e == list(range(5)) for e in after.values()), after  # every trial ran exactly once
    assert f"trial {victim}:" in outputs[0]  # the restarted worker finished the trial it had been killed in
    for trial in after:  # each trial ended once, by one worker
        assert sum(len(re.findall(rf"^trial {trial}: ", out, re.M)) for out in outputs.values()) == 1, outputs
    table = pd.read_csv(os.path.join(project, "trials.csv"))
    assert len(table) == 4 and set(table["status"]) == {"COMPLETED"}


@pytest.mark.slow
def test_a_worker_whose_chief_is_gone_exits_with_a_clear_message(tmp_path, data):
    start = time.time()
    out = _tune(f"--search={_search_file(tmp_path, data)}", f"--project-dir={tmp_path / 'p'}", "--role=worker",
                f"--oracle=127.0.0.1:{_free_port()}", "--oracle-timeout=3", timeout=120)
    assert out.returncode == 4, out.stderr[-2000:]
    assert "did not answer within 3 s" in out.stderr and "is it running?" in out.stderr
    assert time.time() - start < 90


def test_a_port_in_use_is_a_clear_error(tmp_path, data):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        from tinyresnet.tuning import command
        code = command.main([f"--search={_search_file(tmp_path, data)}", "--role=chief",
                             f"--oracle=127.0.0.1:{port}"])
    assert code == 2


@pytest.mark.slow
def test_workers_flag_runs_a_local_chief_and_workers(tmp_path, data):
    project = str(tmp_path / "project")
    # Trials in the workers' processes (a start of TensorFlow less for each); --workers with trial processes, the
    # default, is test_a_dead_local_worker_stops_the_search_and_a_killed_launcher_takes_every_process_with_it's.
    out = _tune(f"--search={_search_file(tmp_path, data, trials=2, verbose=1)}", f"--project-dir={project}",
                "--workers=2", "--oracle=bayesian", "--steps_per_epoch=1", "--trials-in-process")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    table = pd.read_csv(os.path.join(project, "trials.csv"))
    assert len(table) == 2 and set(table["status"]) == {"COMPLETED"}
    assert json.load(open(os.path.join(project, "oracle.json")))["ongoing_trials"] == {}
    # Each worker says which trial it runs, epoch by epoch, and ends it with its score, not "completed".
    finished = re.findall(r"^trial (\d+): .*  val top-1 (\d\.\d{3})  ", out.stdout, re.M)
    assert len(finished) == 2, out.stdout
    assert re.search(r"^  trial \d+ \(worker[01]\) epoch 1/1: loss [\d.]+, top-1 [\d.]+, val top-1 [\d.]+", out.stdout,
                     re.M), out.stdout
    assert "completed" not in out.stdout
    assert not re.search(r"^\d+$", out.stdout, re.M)  # KerasTuner's stray print of a condition value
    assert out.stdout.count("results: ") == 1
    assert re.search(r"^2 workers, each training with \d+ intra-op thread\(s\)$", out.stdout, re.M), out.stdout


def test_an_oracle_address_without_a_role_is_refused(tmp_path, data, capsys):
    from tinyresnet.tuning import command
    code = command.main([f"--search={_search_file(tmp_path, data)}", "--oracle=127.0.0.1:8470",
                         f"--project-dir={tmp_path / 'p'}"])
    assert code == 2 and "add --role=chief to serve the search there, or --role=worker" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_to_the_workers_parent_stops_its_chief_and_workers(tmp_path, data):
    import psutil
    project = tmp_path / "project"
    # The chief and the worker write to the launcher's stdout; the worker's epoch lines (verbose 1) say it is inside
    # a trial, which it trains in its own process (--trials-in-process: a start of TensorFlow less; how a trial
    # process stops is the test below's).
    parent = Lines(_popen(f"--search={_search_file(tmp_path, data, trials=4, epochs=6, verbose=1)}",
                          f"--project-dir={project}", "--workers=1", "--trials-in-process"))
    parent.wait_for(r"^  trial \d+ \(worker0\) epoch 1/6:")
    children = psutil.Process(parent.process.pid).children()
    assert len(children) == 2  # a chief and a worker
    parent.process.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=120) == 130
    gone, alive = psutil.wait_procs(children, timeout=60)
    assert not alive, [p.pid for p in alive]
    out = parent.text  # the hint once, from the launcher, not once per process
    assert out.count("interrupted; rerun the same command to resume the search") == 1, out[-3000:]


@pytest.mark.slow
def test_a_killed_tuner_takes_its_trial_process_with_it(tmp_path, data):
    import psutil
    project = str(tmp_path / "project")
    tuner = Lines(_popen(f"--search={_search_file(tmp_path, data, trials=1, epochs=50, verbose=1)}",
                         f"--project-dir={project}"))
    tuner.wait_for(r"^  trial 0 \(tuner0\) epoch 1/50:")  # its first epoch trained, in the trial process
    children = psutil.Process(tuner.process.pid).children()
    assert children, "the trial never started in a process of its own"
    tuner.process.send_signal(signal.SIGKILL)
    tuner.wait()
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, alive


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_the_trial_in_its_own_process_which_saves_and_the_rerun_resumes_it(
        tmp_path, data, stop, capsys):
    # The trial has a session of its own: the terminal's Ctrl-C reaches it once, through its tuner. A
    # SIGTERM (a job scheduler's) to the tuner alone does the same; it used to kill the trial unsaved.
    import subprocess
    import sys
    from test_tuning import ENV
    project = str(tmp_path / "project")
    search = _search_file(tmp_path, data, trials=1, epochs=8, verbose=1)  # a line per epoch
    args = [sys.executable, "-m", "tinyresnet.tuning.command", f"--search={search}", f"--project-dir={project}"]
    tuner = Lines(subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True,  # a process group of its own, as a terminal's job
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)))
    tuner.wait_for(r"^  trial 0 \(tuner0\) epoch 2/8:")  # two epochs written down and backed up
    stopped = time.time()
    if stop == "ctrl-c":
        os.killpg(tuner.process.pid, signal.SIGINT)
    else:
        tuner.process.send_signal(signal.SIGTERM)
    code = tuner.wait(timeout=120)
    out = tuner.text
    assert code == 130, out[-2000:]
    # The trial saves within seconds; the tuner waited out the pool's whole 60 s grace for its idle process.
    assert time.time() - stopped < 30, out[-2000:]
    assert "rerun the same command to resume the search" in out and "Traceback" not in out
    saved = [r["epoch"] for r in runs.read_history(os.path.join(project, "trial_0"))]
    assert 2 <= len(saved) < 8 and saved == list(range(len(saved)))
    if stop == "sigterm":
        return  # saved as a Ctrl-C saves: the resume is the same, tested once
    # The rerun's tuner in this process (a start of TensorFlow less); its trial in a process apart, as above.
    from tinyresnet.tuning import command
    assert command.main([f"--search={search}", f"--project-dir={project}"]) == 0, capsys.readouterr().err[-2000:]
    assert _trial_epochs(project) == {"0": list(range(8))}  # resumed: no epoch lost or repeated


def _descendants(pid):
    import psutil
    return psutil.Process(pid).children(recursive=True)


def _cmdline(process):
    """`process`'s command line, [] once it has ended (a zombie until reaped: psutil then raises)."""
    import psutil
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.mark.slow
def test_a_dead_local_worker_stops_the_search_and_a_killed_launcher_takes_every_process_with_it(tmp_path, data):
    import psutil
    project = str(tmp_path / "project")
    args = (f"--search={_search_file(tmp_path, data, trials=2, epochs=50)}", f"--project-dir={project}",
            "--workers=2")

    def started():  # the launcher, once both workers train a trial in its process
        # No line says a trial process has started (an epoch line would come after its start of TensorFlow and a
        # traced step, which the stop then waits for): the processes themselves are looked for, every 0.1 s, for
        # as long as the launcher runs.
        launcher, deadline = _popen(*args), time.time() + 240
        while launcher.poll() is None and time.time() < deadline and sum(
                "--multiprocessing-fork" in _cmdline(p) for p in _descendants(launcher.pid)) < 2:
            time.sleep(0.1)
        assert launcher.poll() is None, launcher.communicate()[0][-3000:]
        return launcher, _descendants(launcher.pid)

    # A worker killed from outside: its trial would stay its own, and the chief wait for it for ever.
    launcher, processes = started()
    worker = next(p for p in processes if "--tuner-id=worker0" in _cmdline(p))
    worker.kill()
    out = launcher.communicate(timeout=180)[0]
    # The launcher exits as the killed worker did (128 + 9), not with the 130 of those it stopped after it.
    assert launcher.returncode == 137 and "worker0 was killed (signal 9)" in out, (launcher.returncode, out[-3000:])
    assert "rerun the same command to resume it" in out
    gone, alive = psutil.wait_procs(processes, timeout=60)
    assert not alive, [_cmdline(p) for p in alive]

    # The launcher killed: the chief, the workers and their trial processes die with it.
    launcher, processes = started()
    launcher.kill()
    launcher.wait()
    gone, alive = psutil.wait_procs(processes, timeout=90)
    assert not alive, [_cmdline(p) for p in alive]
