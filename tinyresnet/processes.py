"""Processes of one machine working together: a launcher, its children, and how they stop.

`tinyresnet-tune --workers`, `tune confirm --workers` and `experiments.run --workers` start N
processes of this machine. Ctrl-C (the whole process group) or SIGTERM (the launcher alone, passed
on as SIGINT) stops them as Ctrl-C stops one: what they train saves, and a rerun resumes. A child
dies with its launcher (`die_with_parent`), so a `kill -9` of the launcher leaves no orphan training on.
Each child trains with its share of the cores (`worker_environment`): N processes that each took
every core would fight over them, and small nets train more images a second as N processes of 1
thread than as one of N (2 on 2 cores: 1.4x here), their steps being too small to keep 2 threads busy.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time


def die_with_parent(parent):
    """Linux: SIGTERM when the process `parent` that started this one dies. False if it is gone already."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (AttributeError, OSError):
            pass
    return os.getppid() == parent  # it may have died before prctl


def without_options(argv, names):
    """`argv` less the options `names` (`--name=value` or `--name value`)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in names:
            skip = True
        elif not arg.startswith(tuple(f"{n}=" for n in names)):
            kept.append(arg)
    return kept


def worker_environment(workers, environ=None, cpus=None):
    """The environment of each of `workers` workers: this one, with its share of the cores for TensorFlow's
    intra-op threads (at least 1) unless `TF_NUM_INTRAOP_THREADS` is set already."""
    environ = dict(os.environ if environ is None else environ)
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    environ.setdefault("TF_NUM_INTRAOP_THREADS", str(max(1, cpus // workers)))
    return environ


def announced_environment(workers):
    """`worker_environment(workers)`, said in one line: how many threads each worker trains with."""
    environ = worker_environment(workers)
    print(f"{workers} workers, each training with {environ['TF_NUM_INTRAOP_THREADS']} intra-op thread(s)", flush=True)
    return environ


def how_it_ended(returncode):
    """A process's nonzero exit, in words: "was killed (signal 9)" or "failed (exit code 3)"."""
    return f"was killed (signal {-returncode})" if returncode < 0 else f"failed (exit code {returncode})"


def run_copies(command, workers, what):
    """`workers` copies of `command` (each given `--parent-pid`) that share their work through locks on its
    run directories: each goes through every run, training those no other one holds and waiting for the others.

    So one that ends with 0 has seen the whole work done, whatever became of the rest. Returns None when it
    is done, else the exit code (130 when interrupted, said here once for all of them).
    """
    environ = announced_environment(workers)
    processes = [subprocess.Popen([*command, f"--parent-pid={os.getpid()}"], env=environ) for _ in range(workers)]
    # A worker that dies leaves its run to the others (its lock goes with it): nothing to stop early.
    if supervise(processes, what=what)[1]:
        return 130
    done = any(p.returncode == 0 for p in processes)
    interrupted = {130, -signal.SIGINT, -signal.SIGTERM}
    if not done and all(p.returncode in interrupted for p in processes):  # a Ctrl-C that reached them, not us
        print(f"\ninterrupted; rerun the same command to resume {what}", file=sys.stderr)
        return 130
    for p in processes:
        if p.returncode:
            how = "was interrupted" if p.returncode == 130 else how_it_ended(p.returncode)
            print(f"worker pid {p.pid} {how}" + ("; the other workers trained its runs" if done else ""),
                  file=sys.stderr, flush=True)
    if done:
        return None
    return max(128 - p.returncode if p.returncode < 0 else p.returncode for p in processes)


def supervise(processes, failed=lambda: None, what="the search"):
    """Waits for `processes`; returns `(the worst exit code, whether this process was interrupted)`: 130
    and True on Ctrl-C or SIGTERM to it.

    Ctrl-C reaches the whole process group; SIGTERM (a job scheduler, `kill`) only this process, and is
    passed on as SIGINT: either way they stop as Ctrl-C stops them, saving what they train.

    Args:
        failed: called while they run; a reason to stop them all now ("" for none to print), or None.
        what: what they do, for the message that tells how to resume it.
    """
    def stop(signum, frame):
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while any(p.poll() is None for p in processes):
            reason = failed()
            if reason is not None:
                if reason:
                    print(reason, file=sys.stderr, flush=True)
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the wait short
        _stop(processes, asked=True)
        print(f"\ninterrupted; rerun the same command to resume {what}", file=sys.stderr)
        return 130, True
    finally:
        signal.signal(signal.SIGTERM, previous)
    _stop(processes)  # one failed: the others would wait for it in vain
    return max(abs(p.returncode) for p in processes), False


def _stop(processes, grace=30, asked=False):
    """Terminates the processes (what they finished is kept), killing any still there after `grace` s.

    `asked`: they have been sent SIGINT already; they get up to 90 s to stop as Ctrl-C stops them (what
    they train saves its state) before they are terminated.
    """
    if asked:
        deadline = time.time() + 90
        while time.time() < deadline and any(p.poll() is None for p in processes):
            time.sleep(0.2)
    for p in processes:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + grace
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def stop_as_ctrl_c(parent_pid=0):
    """A command's (or a launcher's child's) set-up: SIGTERM (a job scheduler, `kill`, the launcher's death)
    and SIGINT stop it as Ctrl-C does, remembered (`commands.raise_interrupt`); a child dies with its
    launcher. False if the launcher `parent_pid` is gone already.

    A launcher stops its children with SIGINT, which a shell ignores for a background job's processes:
    without a handler of ours Python would never turn it into KeyboardInterrupt.
    """
    from tinyresnet.commands import raise_interrupt
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGINT, raise_interrupt)
    return die_with_parent(parent_pid) if parent_pid else True
