"""Writing a file so that readers see the old one or the whole new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path):
    """A binary file to write; on success it replaces ``path``, on an exception it is removed.

    The temporary file lives beside ``path`` (a rename within one file system
    is atomic) and gets the permissions a plain ``open(path, "wb")`` would.
    """
    path = os.fspath(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=os.path.dirname(os.path.abspath(path)))
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
