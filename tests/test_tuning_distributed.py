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
    common = [f"--search={_search_file(tmp_path, data, trials=4, epochs=5)}", f"--project-dir={project}",
              f"--oracle=127.0.0.1:{port}"]
    chief = _popen(*common, "--role=chief")
    workers = {i: _popen(*common, "--role=worker", f"--tuner-id=worker{i}") for i in (0, 1)}
    oracle_json = os.path.join(project, "oracle.json")
    deadline = time.time() + 300
    victim = None
    while time.time() < deadline and victim is None:
        ongoing = (json.load(open(oracle_json)).get("ongoing_trials", {}) if os.path.exists(oracle_json) else {})
        trial = ongoing.get("worker0")
        if trial and len(runs.read_history(os.path.join(project, f"trial_{trial}"))) >= 1:
            victim = trial
        time.sleep(0.1)
    assert victim is not None, "worker0 never got going"
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait()
    assert not runs.is_finished(os.path.join(project, f"trial_{victim}"))
    workers[0] = _popen(*common, "--role=worker", "--tuner-id=worker0")
    # Then the chief dies (kill -9) while a worker is inside a trial, and comes back on the same port
    # (issue 18, defect 4): the trial stays with its worker, and no finished trial is run again.
    busy = None
    while time.time() < deadline and busy is None:
        ongoing = json.load(open(oracle_json)).get("ongoing_trials", {}) if os.path.exists(oracle_json) else {}
        for trial in ongoing.values():
            trial_dir = os.path.join(project, f"trial_{trial}")
            if trial != victim and runs.read_history(trial_dir) and not runs.is_finished(trial_dir):
                busy = trial
        time.sleep(0.1)
    assert busy is not None, "no worker got inside a second trial"
    chief.send_signal(signal.SIGKILL)
    chief.wait()
    chief = _popen(*common, "--role=chief")
    outputs = {i: w.communicate(timeout=600)[0] for i, w in workers.items()}
    assert all(w.returncode == 0 for w in workers.values()), outputs
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
    out = _tune(f"--search={_search_file(tmp_path, data, trials=2, verbose=1)}", f"--project-dir={project}",
                "--workers=2", "--oracle=bayesian", "--steps_per_epoch=1")
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
    parent = _popen(f"--search={_search_file(tmp_path, data, trials=4, epochs=6)}", f"--project-dir={project}",
                    "--workers=1")
    deadline = time.time() + 240
    children = []
    while time.time() < deadline and len(children) < 2:
        children = psutil.Process(parent.pid).children()
        time.sleep(0.2)
    while time.time() < deadline and not any(d.startswith("trial_") for d in
                                             (os.listdir(project) if project.exists() else [])):
        time.sleep(0.2)
    assert len(children) == 2  # a chief and a worker
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=120) == 130
    gone, alive = psutil.wait_procs(children, timeout=60)
    assert not alive, [p.pid for p in alive]
    out = parent.stdout.read()  # the hint once, from the launcher, not once per process
    assert out.count("interrupted; rerun the same command to resume the search") == 1, out[-3000:]


@pytest.mark.slow
def test_a_killed_tuner_takes_its_trial_process_with_it(tmp_path, data):
    import psutil
    project = str(tmp_path / "project")
    tuner = _popen(f"--search={_search_file(tmp_path, data, trials=1, epochs=50)}", f"--project-dir={project}")
    deadline, children = time.time() + 120, []
    while time.time() < deadline and not (children and runs.read_history(os.path.join(project, "trial_0"))):
        children = psutil.Process(tuner.pid).children()
        time.sleep(0.2)
    assert children, "the trial never started in a process of its own"
    tuner.send_signal(signal.SIGKILL)
    tuner.wait()
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, alive


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_the_trial_in_its_own_process_which_saves_and_the_rerun_resumes_it(
        tmp_path, data, stop):
    # The trial has a session of its own: the terminal's Ctrl-C reaches it once, through its tuner. A
    # SIGTERM (a job scheduler's) to the tuner alone does the same; it used to kill the trial unsaved.
    import subprocess
    import sys
    from test_tuning import ENV
    project = str(tmp_path / "project")
    search = _search_file(tmp_path, data, trials=1, epochs=8)
    args = [sys.executable, "-m", "tinyresnet.tuning.command", f"--search={search}", f"--project-dir={project}"]
    tuner = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True,  # a process group of its own, as a terminal's job
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while time.time() < deadline and len(runs.read_history(os.path.join(project, "trial_0"))) < 2:
        time.sleep(0.2)
    stopped = time.time()
    if stop == "ctrl-c":
        os.killpg(tuner.pid, signal.SIGINT)
    else:
        tuner.send_signal(signal.SIGTERM)
    out = tuner.communicate(timeout=120)[0]
    assert tuner.returncode == 130, out[-2000:]
    # The trial saves within seconds; the tuner waited out the pool's whole 60 s grace for its idle process.
    assert time.time() - stopped < 30, out[-2000:]
    assert "rerun the same command to resume the search" in out and "Traceback" not in out
    saved = [r["epoch"] for r in runs.read_history(os.path.join(project, "trial_0"))]
    assert 2 <= len(saved) < 8 and saved == list(range(len(saved)))
    if stop == "sigterm":
        return  # saved as a Ctrl-C saves: the resume is the same, tested once
    again = _tune(f"--search={search}", f"--project-dir={project}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert _trial_epochs(project) == {"0": list(range(8))}  # resumed: no epoch lost or repeated


def _descendants(pid):
    import psutil
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.slow
def test_a_dead_local_worker_stops_the_search_and_a_killed_launcher_takes_every_process_with_it(tmp_path, data):
    import psutil
    project = str(tmp_path / "project")
    args = (f"--search={_search_file(tmp_path, data, trials=2, epochs=50)}", f"--project-dir={project}",
            "--workers=2")

    def started():  # the launcher, once both workers train a trial in its process
        launcher, deadline = _popen(*args), time.time() + 240
        while time.time() < deadline and sum("--multiprocessing-fork" in p.cmdline()
                                             for p in _descendants(launcher.pid) if p.is_running()) < 2:
            time.sleep(0.5)
        return launcher, _descendants(launcher.pid)

    # A worker killed from outside: its trial would stay its own, and the chief wait for it for ever.
    launcher, processes = started()
    worker = next(p for p in processes if "--tuner-id=worker0" in p.cmdline())
    worker.kill()
    out = launcher.communicate(timeout=180)[0]
    # The launcher exits as the killed worker did (128 + 9), not with the 130 of those it stopped after it.
    assert launcher.returncode == 137 and "worker0 was killed (signal 9)" in out, (launcher.returncode, out[-3000:])
    assert "rerun the same command to resume it" in out
    gone, alive = psutil.wait_procs(processes, timeout=60)
    assert not alive, [p.cmdline() for p in alive]

    # The launcher killed: the chief, the workers and their trial processes die with it.
    launcher, processes = started()
    launcher.kill()
    launcher.wait()
    gone, alive = psutil.wait_procs(processes, timeout=90)
    assert not alive, [p.cmdline() for p in alive]
