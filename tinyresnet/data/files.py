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
        elif zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            names = [info.filename for info in self._zip.infolist() if not info.is_dir()]
            dirs = [info.filename.rstrip("/") for info in self._zip.infolist() if info.is_dir()]
            for info in self._zip.infolist():
                check_member(self.path, info)
        elif os.path.exists(self.path):
            raise DataError(f"{self.path}: neither a folder nor a zip archive")
        else:
            raise DataError(f"{self.path}: no such file or folder")
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
