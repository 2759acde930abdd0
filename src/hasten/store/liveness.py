"""Whether the process that owns a ``running`` run is still alive.

A run killed by SIGKILL (or by a signal nothing caught) cannot mark itself ended, so the
run records which process and host it runs in, and readers on that host ask the kernel.
The process's start time guards against a recycled process id.
"""

from __future__ import annotations

import os
import platform
from typing import Any


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (Linux), or None where there is none."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and ')'


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def _zombie(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] == "Z"


def process_identity() -> dict[str, Any]:
    """What a run records about the process training it: host, pid and when the process started."""
    pid = os.getpid()
    return {"host": platform.node(), "pid": pid, "pid_started": _start_ticks(pid)}


def is_dead(env: dict[str, Any]) -> bool:
    """True only when the owner is known to be gone: same host, and no such process (or another
    process now holds its id). A run from another host, or one without a pid, is not judged."""
    pid = env.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or env.get("host") != platform.node():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    if _zombie(pid):
        return True
    started = env.get("pid_started")
    now = _start_ticks(pid)
    return started is not None and now is not None and now != started


def is_alive(env: dict[str, Any]) -> bool:
    """True only when the owner is known to be running: same host and the same process still there."""
    pid = env.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or env.get("host") != platform.node():
        return False
    return not is_dead(env)
