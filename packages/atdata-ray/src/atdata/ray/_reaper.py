"""Stop a local Ray cluster's every process once its driver lets go: closes a pipe or dies.

Run by :func:`atdata.ray.cluster.start_local_cluster` as a script of its own (by path,
so it imports nothing but the standard library, never ``ray``), in a session of its
own, so neither Ctrl-C in the terminal nor a kill of the driver's process group
reaches it::

    python _reaper.py ROOT PGID  < pipe from the driver

It waits for end-of-file on stdin: the driver closed the pipe (``cluster.stop()``) or
died, however (SIGKILL and a pytest killed mid-run included; the kernel closes a dead
process's pipes). Then it stops the cluster:

1. SIGTERM to the process group of ``ray start`` (``PGID``): gcs_server, raylet,
   dashboard and runtime-env agents, monitor. ``ray start --block`` alone can take
   longer than any sane timeout to pass SIGTERM on, and SIGKILLing it would orphan them.
2. After a grace period, SIGKILL to whatever of that group is left.
3. SIGKILL to every process whose environment carries ``ATDATA_RAY_CLUSTER=ROOT``
   (set for ``ray start``, inherited by every process below it): the Ray workers,
   which the raylet puts in process groups of their own (Linux ``/proc``; elsewhere
   step 3 is skipped and workers exit on their own once the raylet is gone).
4. Remove ``ROOT``, the cluster's files, and exit (``stop()`` waits for that).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

#: The environment variable that marks every process of one cluster (value: its root).
MARKER = "ATDATA_RAY_CLUSTER"
_GRACE_SECONDS = 3.0


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def marked(root: str) -> list[int]:
    """Every live process whose environment has ``MARKER=root`` (empty without ``/proc``)."""
    needle = f"{MARKER}={root}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def reap(root: str, pgid: int, grace: float = _GRACE_SECONDS) -> None:
    """Steps 1-4 of the module docstring."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
    for _ in range(3):  # a worker forked while we looked is caught by the next pass
        pids = marked(root)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str]) -> None:
    root, pgid = argv[1], int(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only end-of-file on stdin ends the wait
    sys.stdin.buffer.read()
    reap(root, pgid)


if __name__ == "__main__":
    main(sys.argv)
