"""Processes the suite starts: own process group, log file, marker for leftover cleanup.

Every process gets `E2E_HARNESS_MARKER=<session token>` in its environment, so at the end the
harness can find (by pid, through /proc) any descendant that escaped its process group and stop
exactly those, never anything it did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

MARKER_ENV = "E2E_HARNESS_MARKER"
SESSION_MARKER = f"airflow-e2e-{uuid.uuid4().hex}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
        except OSError as error:
            if family == socket.AF_INET6 and error.errno in (97, 99):  # no IPv6 here
                continue
            return False
    return True


def port_listening(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 60) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "<no log file>"
    return "\n".join(content[-lines:])


def drop_capabilities(argv: Sequence[str]) -> list[str]:
    """`securityContext.capabilities.drop: [ALL]` for a process started by root.

    Without capabilities, root obeys file permission bits like any user: a read-only directory
    (mode 0555) cannot be written, a 0440 Secret file cannot be opened for writing. That is how
    the harness gives processes a read-only root filesystem and read-only Secret mounts.
    """
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--", *argv]


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        *,
        drop_caps: bool = True,
        user: int | str | None = None,
        group: int | str | None = None,
        grace_seconds: float = 15.0,
        marker: str = SESSION_MARKER,
        display: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.grace_seconds = grace_seconds
        self.marker = marker
        self.started_at = time.monotonic()
        full_env = dict(env)
        full_env[MARKER_ENV] = marker
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - closed in stop()
        self._log.write(f"$ {display or ' '.join(self.argv)}\n".encode())
        kwargs: dict = {}
        if user is not None:
            kwargs["user"] = user
            kwargs["group"] = group
            kwargs["extra_groups"] = []
        self.popen = subprocess.Popen(
            drop_capabilities(self.argv) if drop_caps else self.argv,
            env=full_env,
            cwd=str(cwd),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            process_group=0,
            **kwargs,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            self.stop()
            raise TimeoutError(
                f"{self.name} did not finish within {timeout:.0f}s; log tail:\n"
                f"{tail(self.log_path)}"
            ) from error

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, grace_seconds: float | None = None) -> int | None:
        """As a container runtime stops a container: the signal to its PID 1 only (dumb-init in
        the Airflow image, which forwards it as DUMB_INIT_SETSID says), then, after the grace
        period, SIGKILL to every process left in the container."""
        family = process_tree(self.popen.pid) if self.popen.poll() is None else set()
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)
            try:
                self.popen.wait(
                    timeout=self.grace_seconds if grace_seconds is None else grace_seconds
                )
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10)
        # Whatever is left (task runners, uvicorn workers, a setsid'd session) goes too.
        self._signal_group(signal.SIGKILL)
        for pid in family - {self.popen.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.marker != SESSION_MARKER:  # a container's own marker: its processes only
            kill_marked(self.marker, exact=True)
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode

    def tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)


def run_to_completion(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    timeout: float,
    **kwargs,
) -> tuple[int, float]:
    """Run one process to its end; returns (exit code, seconds)."""
    process = ManagedProcess(name, argv, env, cwd, log_path, **kwargs)
    started = time.monotonic()
    code = process.wait(timeout)
    process.stop()
    return code, time.monotonic() - started


def marked_pids(marker: str = SESSION_MARKER, exact: bool = False) -> list[int]:
    """Pids of live processes whose environment carries this marker (or one that extends it,
    unless `exact`)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        items = environ.split(b"\0")
        if any(item == needle if exact else item.startswith(needle) for item in items):
            found.append(int(entry.name))
    return found


def kill_marked(marker: str = SESSION_MARKER, exact: bool = False) -> list[int]:
    """SIGKILL every still-alive process the harness started under this marker (by pid)."""
    pids = marked_pids(marker, exact)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _listening_inodes() -> dict[int, int]:
    """socket inode -> port of every TCP socket in LISTEN state (IPv4 and IPv6)."""
    found: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":
                found[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return found


def process_tree(root: int) -> set[int]:
    """`root` and every process below it: a container's processes, whatever session or process
    group dumb-init put them in, and whatever their process title did to /proc/<pid>/environ."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = set(), [root]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending += children.get(pid, [])
    return found


def listening_ports_of(pids: set[int]) -> set[int]:
    """Ports these processes listen on."""
    inodes = _listening_inodes()
    ports: set[int] = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                ports.add(inodes[int(target[8:-1])])
    return ports
