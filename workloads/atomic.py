"""Writing a file so that readers see the old one or the whole new one, never half of it.

Only a regular file (or a name not taken yet) is written: a device, a FIFO or
a directory at the target is refused, not replaced by a new file, and a
symbolic link is written through (its target gets the new content; the link
stays).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_target(path) -> str:
    """The file writing ``path`` replaces: ``path``, or the file a symbolic link there points to.

    OSError (with the path as its filename) if that is not a regular file or a free name, or if its
    directory does not exist or cannot be written: checked before any work, so a long recording or a
    screenshot is not made only to be lost.
    """
    path = os.fspath(path)
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a free name (its directory is checked below)
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device, a FIFO or a socket)"
        raise OSError(errno.EEXIST, f"{what}: refusing to replace it; name a file", path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise OSError(errno.ENOENT, "no such directory", directory)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(errno.EACCES, "cannot write in this directory", directory)
    return real


@contextmanager
def atomic_output(path):
    """A binary file to write; on success it replaces ``path`` (see ``output_target``), on an exception it is
    removed.

    The temporary file lives beside the target (a rename within one file
    system is atomic) and gets the permissions a plain ``open(path, "wb")``
    would: 0666 less the umask, or the mode of the file it replaces.
    """
    target = output_target(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp",
                                   dir=os.path.dirname(target))
    except OSError as e:
        raise OSError(e.errno, e.strerror, os.path.dirname(target)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
