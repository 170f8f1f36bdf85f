"""Claims on run directories: one runner trains a run at a time, across processes and machines.

A claim is an exclusive `flock` on `<run dir>.lock`, a file beside the run
directory that names the claimant (host and pid). The kernel drops the lock
when its process dies, even by `kill -9`, so a killed runner's claim is
taken over by the next runner that asks: there is no stale-lock check to
race, and no lock file is ever removed (a runner could be waiting on it).
On a folder shared between machines the filesystem must support `flock`
(a local disk, NFSv4, Lustre mounted with flock).
"""

import contextlib
import fcntl
import os
import socket
import time


class Claimed(RuntimeError):
    """Another live runner holds the claim."""


def _holder(fd):
    # The holder writes its name just after taking the lock: a claim a moment old may not show it yet.
    for _ in range(25):
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        if holder:
            return holder
        time.sleep(0.02)
    return "another runner"


def lock_path(folder):
    return os.path.normpath(folder) + ".lock"


@contextlib.contextmanager
def claim(folder, wait=False):
    """Holds the claim on `folder` (a run directory, or any folder to serialise work on) within the block.

    Args:
        folder: what is claimed; the lock file sits beside it.
        wait: block until the claim is free, instead of raising `Claimed`.

    Raises:
        Claimed: naming the holder, when another process holds it and not `wait`.
    """
    path = lock_path(folder)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Claimed(f"{folder} is claimed by {_holder(fd)}") from None
        me = f"{socket.gethostname()} pid {os.getpid()}\n".encode()
        os.pwrite(fd, me, 0)  # then cut to length: the file is never empty while claimed
        os.ftruncate(fd, len(me))
        yield
    finally:
        os.close(fd)  # releases the claim
