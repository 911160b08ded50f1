"""Start, find and stop the local platform's background processes by recorded PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lumen_cli.platform import paths


class PlatformError(RuntimeError):
    """A start-up problem with a message that says what to fix (shown without a traceback)."""


def read_pid(component: str) -> int | None:
    path = paths.pid_file(component)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (OSError, IndexError):
        return True
    return state != "Z"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def require_port_free(component: str, host: str, port: int) -> None:
    if port_open(host, port):
        raise PlatformError(
            f"{component}: port {host}:{port} is already taken by another program. "
            f"Stop that program, or choose another port (see docs/configuration.md)."
        )


def spawn(
    component: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a detached process whose output goes to var/logs/<component>.log; record its PID."""
    log_path = paths.log_file(component)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # not killed by the terminal's Ctrl-C
        )
    paths.pid_file(component).write_text(str(proc.pid))
    return proc.pid


def stop(component: str, grace_seconds: float = 20.0) -> bool:
    """SIGTERM the recorded PID, wait for it, SIGKILL after the grace period. True if it ran."""
    pid = read_pid(component)
    if pid is None:
        paths.pid_file(component).unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)
    paths.pid_file(component).unlink(missing_ok=True)
    return True


def wait_until(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    component: str | None = None,
    pid: int | None = None,
) -> None:
    """Poll ``check`` until it is true; fail with the log's tail if the process died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not pid_alive(pid):
            raise PlatformError(f"{what} exited during start-up.{_log_tail(component)}")
        time.sleep(0.25)
    raise PlatformError(
        f"{what} did not become ready within {timeout:.0f} s.{_log_tail(component)}"
    )


def _log_tail(component: str | None, lines: int = 15) -> str:
    if component is None:
        return ""
    path = paths.log_file(component)
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return ""
    return f"\nLast lines of {path}:\n  " + "\n  ".join(tail)
