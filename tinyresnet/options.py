"""Checks of command-line values where they enter, before anything is written or TensorFlow loads.

The console scripts parse with `Parser` (argparse whose errors are one line) and check their
values with the functions here, which raise `UsageError` naming the option; a command prints it
as `error: <message>` and exits 2. Nothing here imports TensorFlow or the rest of the package.
"""

import argparse
import math
import os
import re
import tempfile


class UsageError(ValueError):
    """A command-line value that cannot be used; the message names the option."""


class Parser(argparse.ArgumentParser):
    """argparse, never abbreviating an option, with one-line errors: `error: --top: invalid int value: 'x'`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        message = re.sub(r"^argument ([^:]+): ", r"\1: ", message)
        if message.startswith(("the following arguments are required", "unrecognized arguments", "one of the")):
            message += f" (see {self.prog} --help)"  # the usage argparse would print: not one line
        self.exit(2, f"error: {message}\n")


def at_least(name, value, minimum):
    """`value` (an integer), unless below `minimum`; None passes (an option not given)."""
    if value is not None and value < minimum:
        raise UsageError(f"{name} must be >= {minimum}, got {value}")
    return value


def positive(name, value):
    """`value` (a float), unless it is not a finite number > 0 (argparse's float takes 'nan' and 'inf')."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be a positive number, got {value}")
    return value


def host_port(name, value):
    """`"HOST:PORT"` -> `(host, port)`, the port in 1..65535."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise UsageError(f"{name}: expected HOST:PORT with a port in 1..65535, got {value!r}")
    if host.startswith("[") and host.endswith("]"):  # an IPv6 address, as URLs write it: [::1]:8470
        host = host[1:-1]
    return host, int(port)


# A model name (`tinyresnet-export --name`): one folder name.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def folder_name(name, value):
    """`value`, unless it is not one folder name of letters, digits, '_', '.' and '-'."""
    if value is not None and (not NAME.match(value) or value in (".", "..")):
        raise UsageError(f"{name} {value!r}: use letters, digits, '_', '.' and '-' only (one folder name, no path)")
    return value


def _cannot_write(folder):
    """Why no file can be made in `folder` (None if one can): one is made and removed, since
    `os.access` says yes to root everywhere, /proc included."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".tinyresnet-probe-", dir=folder))
    except OSError as e:
        return e.strerror or str(e)
    return None


def output_folder(name, path):
    """Checks that `path` is a folder that can be written, or can be made: writes nothing.

    The nearest existing folder above a missing one must be writable.
    """
    if path is None:
        return path
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{name} {path}: exists and is not a folder")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{name} {path}: {existing} is not a folder")
    why = _cannot_write(existing)
    if why:
        raise UsageError(f"{name} {path}: cannot write in {existing} ({why})")
    return path


def output_file(name, path, extensions=()):
    """Checks that the file `path` can be written (its folder exists and is writable, it is no folder),
    and that it ends in one of `extensions`, in any case: writes nothing."""
    if path is None:
        return path
    if extensions and not path.lower().endswith(tuple(extensions)):
        raise UsageError(f"{name} {path}: expected a {' or '.join(extensions)} file")
    if os.path.isdir(path):
        raise UsageError(f"{name} {path}: is a folder; give the name of a file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{name} {path}: no such folder {folder}")
    why = _cannot_write(folder)
    if why:
        raise UsageError(f"{name} {path}: cannot write in {folder} ({why})")
    if os.path.exists(path):
        try:
            open(path, "a").close()  # appends nothing: the file stays as it is until the work is done
        except OSError as e:
            raise UsageError(f"{name} {path}: cannot write it ({e.strerror})") from None
    return path


def input_path(name, path, kind="file or folder"):
    """Checks that `path` exists and is a `kind` ("file", "folder" or "file or folder")."""
    if path is None:
        return path
    if not os.path.exists(path):
        raise UsageError(f"{name} {path}: no such {kind}")
    if kind == "file" and os.path.isdir(path):
        raise UsageError(f"{name} {path}: is a folder, not a file")
    if kind == "folder" and not os.path.isdir(path):
        raise UsageError(f"{name} {path}: is not a folder")
    return path
