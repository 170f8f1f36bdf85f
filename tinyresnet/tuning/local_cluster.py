"""`tinyresnet-tune --workers N`: a KerasTuner chief and N workers as processes of this machine.

They talk over 127.0.0.1 as a cluster's would; Ctrl-C (the whole process group) or SIGTERM (this
process alone, passed on as SIGINT) stops them as Ctrl-C stops a search: running trials save, and
a rerun resumes. The workers share this machine's cores: each trains with its share of them
(`TF_NUM_INTRAOP_THREADS`, unless set), as N processes that each took every core would fight
over them. Small nets train more images a second that way than one process on every core
(2 workers on 2 cores: 1.4x here), as their steps are too small to keep two threads busy.
"""

import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def run(args, argv, search):
    """Starts a chief and `args.workers` workers on 127.0.0.1; waits; returns the worst exit code."""
    port = free_port()
    kept = without_options(argv, ("--workers", "--oracle"))
    base = [sys.executable, "-m", "tinyresnet.tuning.command", *kept, f"--oracle-kind={search.oracle}",
            f"--parent-pid={os.getpid()}"]  # a killed launcher takes them with it
    chief = subprocess.Popen(base + ["--role=chief", f"--oracle=127.0.0.1:{port}"])
    environ = worker_environment(args.workers)
    print(f"{args.workers} workers, each training with {environ['TF_NUM_INTRAOP_THREADS']} intra-op thread(s)",
          flush=True)
    workers = [subprocess.Popen(base + ["--role=worker", f"--oracle=127.0.0.1:{port}", f"--tuner-id=worker{i}"],
                                env=environ) for i in range(args.workers)]
    processes = [chief] + workers

    def chief_or_worker_failed():
        if chief.poll() not in (None, 0):  # the chief failed: the workers would wait for it in vain
            return ""
        died = [i for i, p in enumerate(workers) if p.poll() not in (None, 0)]
        if died:  # its trial stays its own: the chief would wait for it for ever
            how = how_it_ended(workers[died[0]].returncode)
            return f"error: worker{died[0]} {how}; stopping the search: rerun the same command to resume it"
        return None
    return supervise(processes, chief_or_worker_failed, "the search")[0]


def how_it_ended(returncode):
    """A process's nonzero exit, in words: "was killed (signal 9)" or "failed (exit code 3)"."""
    return f"was killed (signal {-returncode})" if returncode < 0 else f"failed (exit code {returncode})"


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
    """Terminates the chief and workers (finished trials are kept), killing any still there after `grace` s.

    `asked`: they have been sent SIGINT already; they get up to 90 s to stop as Ctrl-C stops them (the
    running trials save their state) before they are terminated.
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
