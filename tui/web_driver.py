"""A served app's output kept whole.

Textual's web driver (``textual.drivers.web_driver``) writes its packets to one pipe from two threads — screen
updates from the app's thread, the chunks of a download from its input thread — with ``os.write`` and no lock.
A write larger than the pipe's atomic size (4 KiB on Linux) can interleave with the other thread's, which breaks
textual-serve's packet stream for the rest of the session: seen under load as downloads that never came and
then a ``DecodeError`` in the server. One lock around each whole packet keeps them apart.
"""

from __future__ import annotations

import os
import threading


def write_whole_packets(driver) -> None:
    """Make `driver` (a textual WebDriver) write each packet whole, one at a time."""
    fileno, lock = driver.fileno, threading.Lock()

    def write(data: bytes) -> None:
        with lock:
            view = memoryview(data)
            while view:
                view = view[os.write(fileno, view):]

    driver._write = write
