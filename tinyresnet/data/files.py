"""Read a dataset from a zip archive or a folder through one interface.

Archives are read in place (nothing is extracted); every member name is
checked on open so that an archive with members escaping its root (`../`,
absolute paths, symlinks) is refused, naming the member.
"""

import os
import posixpath
import stat
import zipfile


class DataError(ValueError):
    """Bad or missing input data; the message names the file and line."""


class FileTree:
    """Files of a zip archive or a folder, addressed by posix paths relative to `root`.

    Args:
        path: a `.zip` file or a directory.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            self._zip = None
            names, dirs = [], []
            for folder, subdirs, files in os.walk(self.path):
                rel = os.path.relpath(folder, self.path).replace(os.sep, "/")
                names += [posixpath.normpath(posixpath.join(rel, f)) for f in files]
                dirs += [posixpath.normpath(posixpath.join(rel, d)) for d in subdirs]
        else:
            self._zip = open_zip(self.path)
            names = [info.filename for info in self._zip.infolist() if not info.is_dir()]
            dirs = [info.filename.rstrip("/") for info in self._zip.infolist() if info.is_dir()]
            for info in self._zip.infolist():
                check_member(self.path, info)
        self.names = sorted(names)
        self._name_set = set(names)
        # Folders, also those holding no file (zips often list no folders at all).
        parents = set(dirs)
        for name in names:
            name = posixpath.dirname(name)
            while name not in ("", ".") and name not in parents:
                parents.add(name)
                name = posixpath.dirname(name)
        self.dirs = sorted(parents - {"", "."})

    def find(self, filename):
        """The shallowest path whose last component is `filename`, or None."""
        hits = [n for n in self.names if posixpath.basename(n) == filename]
        return min(hits, key=lambda n: (n.count("/"), n)) if hits else None

    def exists(self, name):
        return name in self._name_set

    def read(self, name):
        """The bytes of one file; a missing one is a `DataError` naming it."""
        try:
            if self._zip is not None:
                return self._zip.read(name)
            with open(os.path.join(self.path, name), "rb") as f:
                return f.read()
        except (KeyError, FileNotFoundError):
            raise DataError(f"{self.describe(name)}: file not found") from None

    def fingerprint(self, name):
        """What changes when the file's content changes: size and CRC in a zip, size and mtime in a folder."""
        if self._zip is not None:
            info = self._zip.getinfo(name)
            return f"{info.file_size}:{info.CRC:08x}"
        st = os.stat(os.path.join(self.path, name))
        return f"{st.st_size}:{st.st_mtime_ns}"

    def read_text(self, name):
        return self.read(name).decode("utf-8")

    def describe(self, name):
        """`archive.zip:member` or the full path, for error messages."""
        if self._zip is not None:
            return f"{self.path}:{name}"
        return os.path.join(self.path, name)


def open_zip(path):
    """The `zipfile.ZipFile` of `path`.

    Raises:
        DataError: naming `path`: missing, unreadable, not a zip archive, or a damaged one (a zip
            cut short by an interrupted download or copy has no central directory at its end).
    """
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        if head.startswith(b"PK"):
            raise DataError(f"{path}: a damaged or truncated zip archive (its central directory, at the end, is "
                            "missing or unreadable); download or copy it again") from None
        raise DataError(f"{path}: neither a folder nor a zip archive") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None


def check_source(path):
    """Checks, cheaply and without TensorFlow, that `path` is a folder or a zip archive that opens.

    Raises:
        DataError: naming `path` and what is wrong with it.
    """
    if not os.path.isdir(path):
        open_zip(path).close()


def check_member(archive, info):
    """Raises `DataError` if a zip member would land outside the extraction root."""
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DataError(f"{archive}: member {name!r} is a symlink; refusing the archive")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"{archive}: member {name!r} has an absolute path; refusing the archive")
    if ".." in name.replace("\\", "/").split("/"):
        raise DataError(f"{archive}: member {name!r} escapes the archive root; refusing the archive")
