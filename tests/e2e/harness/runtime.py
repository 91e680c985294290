"""Run a rendered container as an OCI container under the kernel's rules (podman + runc).

What the kernel enforces here, as it would on a node:
- the pod's identity: `runAsUser`/`runAsGroup`, with `fsGroup` and `supplementalGroups` as extra
  groups, every capability dropped and `no_new_privs` (`allowPrivilegeEscalation: false`);
- a read-only root (`readOnlyRootFilesystem`): the container's root is a read-only bind of its
  image directories; only the declared volume mounts are writable (Secret and ConfigMap volumes
  and `readOnly` mounts are not), and nothing else of this machine is visible but the read-only
  system directories the image would bring (`/usr`, `/etc`, the Python installation and venv);
- `resources.limits.memory` as the cgroup's memory limit (no swap), so an allocation beyond it
  ends in the kernel's OOM killer, counted in the cgroup's `oom_kill` and read by the harness;
- process 1 is the image's dumb-init in the container's own PID namespace; stopping the
  container sends SIGTERM to it (podman forwards the signal to process 1), then SIGKILL to every
  process in the container after the grace period, as the kubelet's runtime does.

The container sees host paths at the same place (the harness rewrites container paths into each
container's rootfs directory), so env values and arguments stay as the harness prepared them. The
network is the host's: Service names are already mapped to loopback ports.

Debian's podman 4.3 with runc (crun fails on this machine's hybrid cgroups; `podman kube play`
4.3 crashes on Secret volumes, so each container is driven with `podman run`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import MARKER_ENV, ManagedProcess, kill_marked

PODMAN_BASE = [
    "podman",
    "--cgroup-manager=cgroupfs",
    "--events-backend=file",
]
# The machine's hard limits are low; podman's defaults exceed them and runc then fails.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
MEMORY_ROOT = Path("/sys/fs/cgroup/memory")

_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {
    None: 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def memory_bytes(quantity: str | int) -> int:
    """A Kubernetes memory quantity (`1536Mi`, `2G`, `512000000`) in bytes."""
    match = _QUANTITY.match(str(quantity))
    if match is None:
        raise ValueError(f"unsupported memory quantity {quantity!r}")
    return int(float(match.group(1)) * _FACTORS[match.group(2)])


def podman_problem() -> str | None:
    """Why containers cannot run here (None when podman + runc work)."""
    if os.geteuid() != 0:
        return "containers run with the pod's uid through podman, which needs root here"
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc)"
    if not MEMORY_ROOT.is_dir():
        return f"no cgroup v1 memory controller at {MEMORY_ROOT}"
    return None


@dataclass(frozen=True)
class Bind:
    source: Path
    target: str
    read_only: bool

    def flag(self) -> list[str]:
        return ["--volume", f"{self.source}:{self.target}:{'ro' if self.read_only else 'rw'}"]


@dataclass
class ContainerSpec:
    """Everything `podman run` needs for one rendered container."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    workdir: Path
    hostname: str
    hosts_file: Path
    user: int
    group: int
    extra_groups: Sequence[int]
    memory_limit: int | None
    binds: list[Bind] = field(default_factory=list)
    # "host" (Service names are mapped to loopback ports) or "none": every flow blocked, as a
    # NetworkPolicy that denies all egress would.
    network: str = "host"


class NodeRuntime:
    """The node: one empty root directory every container starts from, and the read-only
    system directories that stand in for the image's own (`/usr`, `/etc`, Python, the venvs)."""

    def __init__(self, base_dir: Path, system_paths: Iterable[Path]) -> None:
        self.skeleton = base_dir / "node-rootfs"
        self.skeleton.mkdir(parents=True, exist_ok=True)
        os.chmod(self.skeleton, 0o755)
        for name in ("proc", "dev", "sys", "run", "tmp", "etc", "usr"):
            (self.skeleton / name).mkdir(exist_ok=True)
        self.system_binds: list[Bind] = [Bind(Path("/usr"), "/usr", True)]
        self.system_binds.append(Bind(Path("/etc"), "/etc", True))
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / name
            inside = self.skeleton / name
            if host.is_symlink():
                if not inside.is_symlink():
                    inside.symlink_to(os.readlink(host))
            elif host.is_dir():
                self.system_binds.append(Bind(host, str(host), True))
        for path in _outermost(p.resolve() for p in system_paths):
            if not str(path).startswith(("/usr/", "/etc/")):
                self.system_binds.append(Bind(path, str(path), True))

    def run_argv(self, spec: ContainerSpec, remove: bool = False) -> list[str]:
        """`podman run` for this container (`remove`: a one-off, deleted when it exits)."""
        groups = [f"--group-add={gid}" for gid in sorted(set(spec.extra_groups))]
        memory = (
            ["--memory", str(spec.memory_limit), "--memory-swap", str(spec.memory_limit)]
            if spec.memory_limit
            else []
        )
        binds = [
            *self.system_binds,
            Bind(spec.hosts_file, "/etc/hosts", True),
            *spec.binds,
        ]
        env_flags = [
            flag for key, value in spec.env.items() for flag in ("--env", f"{key}={value}")
        ]
        return [
            *PODMAN_BASE,
            "run",
            *(["--rm"] if remove else []),
            "--runtime=runc",
            f"--name={spec.name}",
            "--replace",
            f"--network={spec.network}",
            f"--hostname={spec.hostname}",
            "--log-driver=none",
            "--pull=never",
            "--read-only",
            "--read-only-tmpfs=false",
            "--cap-drop=all",
            "--security-opt=no-new-privileges",
            f"--user={spec.user}:{spec.group}",
            *groups,
            *ULIMITS,
            *memory,
            f"--workdir={spec.workdir}",
            *[flag for bind in binds for flag in bind.flag()],
            *env_flags,
            "--rootfs",
            str(self.skeleton),
            *spec.argv,
        ]


def _outermost(paths: Iterable[Path]) -> list[Path]:
    chosen: list[Path] = []
    for path in sorted(set(paths), key=lambda p: len(p.parts)):
        if not any(path == c or c in path.parents for c in chosen):
            chosen.append(path)
    return chosen


def system_paths_for(venv: Path) -> list[Path]:
    """What the image would bring besides its root: the Airflow venv and the Python it was made
    from, the harness (entrypoint script) and dumb-init (in the suite's own venv)."""
    python = (venv / "bin" / "python").resolve()
    return [
        venv,
        python.parents[1],
        Path(__file__).resolve().parent,
        Path(sys.executable).parent,
        Path(sys.executable).resolve().parents[1],
    ]


def apply_fs_group(directory: Path, kind: str, fs_group: int | None) -> None:
    """What the kubelet does to a volume for `fsGroup`: group ownership, group read (and write on
    writable volumes), setgid directories."""
    if fs_group is None:
        return
    read_only = kind in ("secret", "configMap", "projected")
    file_mask = 0o440 if read_only else 0o660
    for root, dirs, files in os.walk(directory):
        for name in [*dirs, *files]:
            path = Path(root) / name
            if path.is_symlink():
                continue
            os.chown(path, -1, fs_group)
            mode = stat.S_IMODE(path.stat().st_mode)
            if path.is_dir():
                os.chmod(path, mode | file_mask | 0o110 | stat.S_ISGID)
            else:
                os.chmod(path, mode | file_mask)
    os.chown(directory, -1, fs_group)
    mode = stat.S_IMODE(directory.stat().st_mode)
    os.chmod(directory, mode | file_mask | 0o110 | stat.S_ISGID)


class ContainerProcess(ManagedProcess):
    """A `podman run` in the foreground: its output is the container's, its exit code the
    container's, a signal to it reaches the container's process 1. Samples the container's
    memory cgroup while it runs: peak usage and OOM kills."""

    def __init__(
        self,
        spec: ContainerSpec,
        runtime: NodeRuntime,
        log_path: Path,
        *,
        grace_seconds: float,
        marker: str,
    ) -> None:
        self.container_name = spec.name
        self.memory_limit = spec.memory_limit
        self.peak_bytes = 0
        self.oom_kills = 0
        self.oom_killed = False
        self._cgroup: Path | None = None
        self._root_pid: int | None = None
        self._sampler_stop = threading.Event()
        env = {**spec.env, MARKER_ENV: marker}
        spec = dataclasses.replace(spec, env=env)
        host_env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        super().__init__(
            spec.name,
            runtime.run_argv(spec),
            host_env,
            spec.workdir if spec.workdir.is_dir() else Path("/"),
            log_path,
            drop_caps=False,
            grace_seconds=grace_seconds,
            marker=marker,
            # The log names the container and its command, not podman's flags (env holds secrets).
            display=f"[{spec.name} as {spec.user}:{spec.group}] {' '.join(spec.argv)}",
        )
        self._sampler = threading.Thread(target=self._sample_loop, daemon=True)
        self._sampler.start()

    # -- the container's cgroup -----------------------------------------------------------------

    def _inspect(self, template: str) -> str | None:
        result = subprocess.run(
            [
                *PODMAN_BASE,
                "inspect",
                "--type=container",
                f"--format={template}",
                self.container_name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else None

    def _discover(self) -> None:
        found = self._inspect("{{.State.CgroupPath}} {{.State.Pid}}")
        if not found:
            return
        parts = found.split()
        if len(parts) == 2 and parts[1] != "0":
            self._cgroup = MEMORY_ROOT / parts[0].lstrip("/")
            self._root_pid = int(parts[1])

    def sample(self) -> None:
        if self._cgroup is None:
            self._discover()
        if self._cgroup is None:
            return
        with contextlib.suppress(OSError, ValueError):
            usage = int((self._cgroup / "memory.max_usage_in_bytes").read_text())
            self.peak_bytes = max(self.peak_bytes, usage)
            for line in (self._cgroup / "memory.oom_control").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    self.oom_kills = max(self.oom_kills, int(value))

    def _sample_loop(self) -> None:
        while not self._sampler_stop.is_set() and self.popen.poll() is None:
            self.sample()
            self._sampler_stop.wait(0.5)

    @property
    def root_pid(self) -> int | None:
        """The container's process 1, as this machine numbers it."""
        if self._root_pid is None:
            self._discover()
        return self._root_pid

    # -- stopping ------------------------------------------------------------------------------

    def stop(self, sig: int = signal.SIGTERM, grace_seconds: float | None = None) -> int | None:
        """SIGTERM to process 1, SIGKILL to the whole container after the grace period."""
        self.sample()
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)  # podman forwards it to process 1
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                subprocess.run(
                    [*PODMAN_BASE, "kill", "--signal=KILL", self.container_name],
                    capture_output=True,
                    check=False,
                )
                try:
                    self.popen.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout=10)
        self._sampler_stop.set()
        if self._inspect("{{.State.OOMKilled}}") == "true":
            self.oom_killed = True
        subprocess.run(
            [*PODMAN_BASE, "rm", "--force", "--time=0", self.container_name],
            capture_output=True,
            check=False,
        )
        kill_marked(self.marker, exact=True)
        if not self._log.closed:
            self._log.close()
        return self.popen.returncode

    def exec_argv(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
        """`kubectl exec`: a command in the running container (its cgroup, identity, mounts)."""
        flags = [f for key, value in (env or {}).items() for f in ("--env", f"{key}={value}")]
        return [*PODMAN_BASE, "exec", *flags, self.container_name, *argv]


@dataclass(frozen=True)
class MemoryReport:
    container: str
    peak_bytes: int
    limit_bytes: int | None
    oom_kills: int
    oom_killed: bool

    def line(self) -> str:
        peak = f"{self.peak_bytes / 2**20:.0f}Mi"
        limit = f"{self.limit_bytes / 2**20:.0f}Mi" if self.limit_bytes else "none"
        share = f" ({self.peak_bytes / self.limit_bytes:.0%})" if self.limit_bytes else ""
        return f"{self.container}: peak {peak} of limit {limit}{share}, OOM kills {self.oom_kills}"


def run_pod_container(
    pod_spec: Mapping[str, Any],
    container: Mapping[str, Any],
    env: Mapping[str, str],
    work: Path,
    *,
    claims: Mapping[str, Path],
    hostname: str,
    tools: Path,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """One rendered container of a pod, run to its end as the kubelet would start it: its
    command with `$(VAR)` expanded against `env`, the pod's uid/gid with fsGroup as an extra
    group, a read-only root, its memory limit. A mount of a volume in `claims` binds that
    directory; every other mount is a new emptyDir. `tools` comes first on PATH (Debian's
    binaries stand in for the image's)."""
    from .kubelet import expand_command

    security = {**pod_spec["securityContext"], **container["securityContext"]}
    assert security["readOnlyRootFilesystem"] is True, "the container must run read-only"
    command, _ = expand_command(container, env)
    binds = []
    for mount in container.get("volumeMounts") or []:
        source = claims.get(mount["name"])
        if source is None:
            source = work / f"empty-{mount['name']}"
            source.mkdir(exist_ok=True)
            os.chmod(source, 0o777)  # an emptyDir: writable by the pod's uid
        binds.append(Bind(source, mount["mountPath"], bool(mount.get("readOnly"))))
    hosts = work / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    spec = ContainerSpec(
        name=f"e2e-{hostname}-{os.getpid()}-{time.monotonic_ns()}",
        argv=command,
        env={**env, "PATH": f"{tools}:/usr/bin:/bin"},
        workdir=Path("/tmp"),
        hostname=hostname,
        hosts_file=hosts,
        user=int(security["runAsUser"]),
        group=int(security["runAsGroup"]),
        extra_groups=[int(pod_spec["securityContext"]["fsGroup"])],
        memory_limit=memory_bytes(container["resources"]["limits"]["memory"]),
        binds=binds,
    )
    return subprocess.run(
        NodeRuntime(work / "node", []).run_argv(spec, remove=True),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
