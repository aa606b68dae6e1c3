"""Child processes that never outlive the server.

A server killed with SIGKILL runs no clean-up, so its children would live on as orphans (a recorder
going on writing into a camera's folder that another process now records). Linux's parent-death
signal (prctl PR_SET_PDEATHSIG) has the kernel signal each child as its parent dies. It is tied to the
thread that started the child: children here are started from the event loop's thread, which lives
as long as the process.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not in the forked child


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A preexec_fn for subprocess/asyncio: the child gets `sig` when this process dies. SIGTERM lets
    ffmpeg close the file it is writing; SIGKILL suits children with nothing to finish."""
    parent = os.getpid()

    def arrange() -> None:  # runs in the child between fork and exec: only async-signal-safe calls
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arrange


def follow_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """For a child Python process (a worker) to call first thing: die when the parent does."""
    _libc.prctl(_PR_SET_PDEATHSIG, int(sig))
    if os.getppid() == 1:
        os._exit(1)
