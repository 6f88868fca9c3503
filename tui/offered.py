"""What a served app may open: the built-in workloads, the guided tour's session files (``tours/…``), and the
traces and session files in the directories the person serving named (`--data DIR`).

A browser never sends a path. It names an entry of this catalogue by its key (``<dir label>/<path inside
it>``), and whoever acts on it looks the key up in a catalogue built here from the named directories: a key that
is not there (``../../etc/passwd``, an absolute path, a file outside every directory) is simply not found.

Only regular files are offered whose real path lies inside the named directory: a symlink that leaves it, a
FIFO or a device (reading one could hang or have effects) is left out, as are hidden files and folders.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

SESSION_SUFFIX = ".rvi.json"
TOURS = "tours"  # the label of the guided tour's session files, shipped with rvi-tui
TRACE_SUFFIXES = (".lackey", ".trace", ".txt", ".npy")  # each optionally gzip-compressed (.gz)
MAX_FILES = 2000  # the first this many files are offered: a picker is no file browser
MAX_DEPTH = 4  # folders deeper than this are not looked into


@dataclass(frozen=True)
class OfferedFile:
    key: str  # what a URL or the picker names: "<dir label>/<path inside the directory>"
    path: str  # the absolute real path on the server
    kind: str  # "trace" or "session"


def file_kind(name: str) -> str | None:
    """"session" for a session file, "trace" for a trace by its name, None for anything else."""
    lowered = name.lower()
    if lowered.endswith(SESSION_SUFFIX):
        return "session"
    if lowered.endswith(".gz"):
        lowered = lowered[:-3]
    return "trace" if lowered.endswith(TRACE_SUFFIXES) else None


def dir_labels(dirs: list[str]) -> list[str]:
    """A short distinct label per directory: its base name, with -2, -3 … for repeats (and for "tours")."""
    labels: list[str] = []
    for d in dirs:
        base = os.path.basename(os.path.normpath(d)) or "data"
        label, n = base, 1
        while label in labels or label == TOURS:
            n += 1
            label = f"{base}-{n}"
        labels.append(label)
    return labels


def offered_files(dirs: list[str]) -> dict[str, OfferedFile]:
    """Key -> OfferedFile for the guided tour and every trace and session file under `dirs`, in a stable order."""
    from .sessionfile import tour_paths

    found = {f"{TOURS}/{os.path.basename(p)}": OfferedFile(f"{TOURS}/{os.path.basename(p)}", p, "session")
             for p in tour_paths()}
    for label, directory in zip(dir_labels(dirs), dirs):
        root = os.path.realpath(directory)
        for dirpath, dirnames, filenames in os.walk(root):
            depth = 0 if dirpath == root else os.path.relpath(dirpath, root).count(os.sep) + 1
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and depth < MAX_DEPTH)
            for name in sorted(filenames):
                kind = file_kind(name)
                if name.startswith(".") or kind is None:
                    continue
                real = os.path.realpath(os.path.join(dirpath, name))
                if os.path.commonpath([root, real]) != root or not _regular(real):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                found[f"{label}/{rel}"] = OfferedFile(f"{label}/{rel}", real, kind)
                if len(found) >= MAX_FILES:
                    return found
    return found


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
