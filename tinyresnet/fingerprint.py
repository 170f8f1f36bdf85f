"""The same data by content, not by path: a run or a search resumed from another checkout, or with a
relative path, reads the same archive under another name. No TensorFlow here."""

import hashlib
import os

_SEEN = {}  # (path, size, mtime) -> fingerprint, in this process


def data_fingerprint(path):
    """`"<bytes>:<sha256 prefix>"` of an archive, or of a folder's file names and sizes; None if `path` is
    "" (a download) or does not exist."""
    if not path or not os.path.exists(path):
        return None
    path = os.path.abspath(os.path.expanduser(path))
    status = os.stat(path)
    key = (path, status.st_size, status.st_mtime_ns)
    if key not in _SEEN:
        digest, size = hashlib.sha256(), 0
        if os.path.isdir(path):
            for root, folders, files in os.walk(path):
                folders.sort()
                for name in sorted(files):
                    file_size = os.path.getsize(os.path.join(root, name))
                    digest.update(f"{os.path.relpath(os.path.join(root, name), path)}\0{file_size}\n".encode())
                    size += file_size
        else:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            size = status.st_size
        _SEEN[key] = f"{size}:{digest.hexdigest()[:16]}"
    return _SEEN[key]


def same_data(recorded, now, recorded_fingerprint=None):
    """Whether `now` names the data `recorded` named: the same path, or the same content (by
    `recorded_fingerprint` where the record has one, else by reading both)."""
    if recorded == now:
        return True
    if not recorded or not now:
        return False
    theirs = recorded_fingerprint or data_fingerprint(recorded)
    return theirs is not None and theirs == data_fingerprint(now)
