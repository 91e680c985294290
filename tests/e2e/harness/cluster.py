"""Run a rendering's workloads as local processes, the way a node would run its pods.

Everything a process gets comes from the rendered manifests: command/args (through the image's
entrypoint), env (kubelet resolution and `$(VAR)` expansion), mounted Secret/ConfigMap/emptyDir
volumes, ports, probes, the read-only root filesystem. The harness only adds what a node adds:
the image's own environment and files, a hostname, and the mapping of cluster names, ports and
container paths onto this machine:

- each container gets a "rootfs" directory; container paths under the image's directories
  (`/opt/airflow`, `/home/airflow`, `/tmp`) and under every mount path are rewritten into it;
- each volume mount is a symlink inside the rootfs to the pod's volume directory, so paths that
  Airflow derives itself (from AIRFLOW_HOME) land in the mount exactly as in the container;
- with `readOnlyRootFilesystem: true` the rootfs is made read-only (0555) and the processes run
  with every capability dropped (`capabilities.drop: [ALL]`), so root obeys those bits;
- cluster Service names and external hosts in env values and args become 127.0.0.1:<port>.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .kubelet import (
    KubeletError,
    ObjectStore,
    PodInfo,
    as_int,
    expand_command,
    materialize_volume,
    resolve_env,
    service_link_env,
)
from .network import LOOPBACK, Network, NetworkError, Workload
from .procs import (
    SESSION_MARKER,
    ManagedProcess,
    drop_capabilities,
    kill_marked,
    port_is_free,
    tail,
)
from .runtime import (
    Bind,
    ContainerProcess,
    ContainerSpec,
    MemoryReport,
    NodeRuntime,
    apply_fs_group,
    memory_bytes,
    podman_problem,
    system_paths_for,
)
from .services import PostgresServer

PORT_FLAGS = ("--port", "-p")


class HarnessError(RuntimeError):
    """The rendering cannot run as rendered (the message says what and where)."""


# ---------------------------------------------------------------------------------------------
# Images the harness knows how to run or play


def image_repository(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name


def image_tag(image: str) -> str | None:
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def image_role(image: str) -> str:
    """How the harness treats an image: run it (airflow, redis) or play it (postgres, git-sync)."""
    base = image_repository(image).rsplit("/", 1)[-1]
    if "airflow" in base:
        return "airflow"
    if base in ("postgres", "redis", "git-sync"):
        return base
    if base == "statsd-exporter":
        return "statsd"
    if base == "pgbouncer":
        return "pgbouncer"
    raise HarnessError(f"image {image!r}: the harness does not know how to run or play it")


PLAYED_ROLES = ("git-sync", "statsd")


@dataclass(frozen=True)
class RedisImage:
    """The official `redis` image: its binaries are the host's redis-server/redis-cli."""

    home: str = "/data"
    workdir: str = "/data"

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
        }

    @property
    def directories(self) -> tuple[str, ...]:
        return ("/data", "/tmp")

    @staticmethod
    def entrypoint(args: Sequence[str]) -> list[str]:
        """`docker-entrypoint.sh`: a first arg that is an option means `redis-server <args>`."""
        args = list(args)
        if not args or args[0].startswith("-") or args[0].endswith(".conf"):
            return ["redis-server", *args]
        return args


@dataclass(frozen=True)
class AirflowImage:
    """What `apache/airflow:<tag>` brings besides the manifest: its ENV, directories, entrypoint."""

    venv: Path
    home: str = "/opt/airflow"
    user_home: str = "/home/airflow"
    workdir: str = "/opt/airflow"

    tag: str = ""

    def env(self) -> dict[str, str]:
        """The image's ENV lines (Dockerfile `main` stage), with the venv as its Python."""
        return {
            "PATH": f"{self.venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "VIRTUAL_ENV": str(self.venv),
            "AIRFLOW_HOME": self.home,
            "AIRFLOW_USER_HOME_DIR": self.user_home,
            "AIRFLOW_UID": "50000",
            "AIRFLOW_IMAGE_TYPE": "prod",
            "AIRFLOW_VERSION": self.tag.split("-")[0],
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            "DUMB_INIT_SETSID": "1",
            "GUNICORN_CMD_ARGS": "--worker-tmp-dir /dev/shm",
            "PIP_CACHE_DIR": "/tmp/.cache/pip",
            "UV_CACHE_DIR": "/tmp/.cache/uv",
            "HOME": self.user_home,
            # The image has a passwd entry for its user; getpass.getuser() reads these first.
            "USER": "airflow",
            "LOGNAME": "airflow",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "LC_CTYPE": "C.UTF-8",
            "LC_MESSAGES": "C.UTF-8",
            "LANGUAGE": "C.UTF-8",
            # Python's tempfile honours TMPDIR; /tmp itself is mapped like any container path.
            "TMPDIR": "/tmp",
            # The entrypoint's `airflow db check` loop: the image default is 20 tries 3 s apart.
            # The harness starts the database before any pod, so a failing check is a real
            # failure: 3 tries keep the same check without two minutes of retries.
            "CONNECTION_CHECK_MAX_COUNT": "3",
        }

    @property
    def directories(self) -> tuple[str, ...]:
        return (self.home, self.user_home, "/tmp")

    @staticmethod
    def entrypoint(args: Sequence[str]) -> list[str]:
        """`ENTRYPOINT ["dumb-init", "--", "/entrypoint"]`: the real dumb-init as the container's
        first process (signal forwarding as DUMB_INIT_SETSID says), then the image's entrypoint
        script (waits for the DB with `airflow db check`, runs `bash`/`python`/`airflow <args>`)."""
        return [dumb_init(), "--", "bash", str(ENTRYPOINT), *args]


ENTRYPOINT = Path(__file__).with_name("entrypoint.sh")


def dumb_init() -> str:
    """The dumb-init binary (PyPI's `dumb-init` wheel installs it next to the venv's Python)."""
    beside = Path(sys.executable).with_name("dumb-init")
    found = str(beside) if beside.exists() else shutil.which("dumb-init")
    if found is None:
        raise HarnessError("dumb-init is missing: pip install dumb-init (requirements-dev.txt)")
    return found


# Image entrypoint shortcuts the harness does not emulate (and the component must not use).
UNSUPPORTED_ENTRYPOINT_ENV = (
    "_AIRFLOW_DB_MIGRATE",
    "_AIRFLOW_DB_UPGRADE",
    "_AIRFLOW_WWW_USER_CREATE",
    "_PIP_ADDITIONAL_REQUIREMENTS",
)


@dataclass(frozen=True)
class PgBouncerImage:
    """A `pgbouncer` image: its binary is the host's /usr/sbin/pgbouncer. PgBouncer refuses to
    run as root, so it runs as the pod's `runAsUser` (see `LocalPod._wrap`)."""

    workdir: str = "/"

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

    @property
    def directories(self) -> tuple[str, ...]:
        return ("/tmp",)

    @staticmethod
    def entrypoint(args: Sequence[str]) -> list[str]:
        return ["pgbouncer", *args]


# ---------------------------------------------------------------------------------------------
# One container, ready to start


@dataclass
class PreparedContainer:
    pod: LocalPod
    manifest: Mapping[str, Any]
    name: str
    init: bool
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    rootfs: Path
    log_path: Path
    read_only_root: bool
    ports: dict[int, int]  # containerPort -> host port
    named_ports: dict[str, int]  # port name -> containerPort
    translate: Callable[[str], str]
    role: str = "airflow"
    resolved_env: dict[str, str] = field(default_factory=dict)
    baseline: set[str] = field(default_factory=set)
    # (host directory or file behind a volumeMount, mounted read-only)
    mounts: list[tuple[Path, bool]] = field(default_factory=list)
    process: ManagedProcess | None = None
    exit_code: int | None = None
    runs: int = 0

    @property
    def memory_limit(self) -> int | None:
        limit = ((self.manifest.get("resources") or {}).get("limits") or {}).get("memory")
        return memory_bytes(limit) if limit is not None else None

    @property
    def in_container(self) -> bool:
        """Run by the container runtime (kernel rules), not as a plain process."""
        return self.role == "airflow" and self.pod.cluster.runtime is not None

    def memory_report(self) -> MemoryReport | None:
        if not isinstance(self.process, ContainerProcess):
            return None
        return MemoryReport(
            self.label,
            self.process.peak_bytes,
            self.memory_limit,
            self.process.oom_kills,
            self.process.oom_killed,
        )

    def command(
        self,
        argv: Sequence[str],
        overrides: Mapping[str, str] | None = None,
        *,
        network: str = "host",
    ) -> tuple[list[str], dict[str, str]]:
        """(argv, env) for a command "in" this container: `kubectl exec` into it while it runs,
        else a one-off container with its identity, mounts and limits (`kubectl debug --copy`)."""
        marker = {"E2E_HARNESS_MARKER": self.pod.cluster.marker}
        if self.in_container:
            running = isinstance(self.process, ContainerProcess) and self.process.poll() is None
            if running and network == "host":
                assert isinstance(self.process, ContainerProcess)
                return self.process.exec_argv(argv, {**(overrides or {}), **marker}), {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin")
                }
            spec = self.pod.container_spec(self, argv, {**self.env, **(overrides or {}), **marker})
            spec.network = network
            runtime = self.pod.cluster.runtime
            assert runtime is not None
            return runtime.run_argv(spec, remove=True), {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin")
            }
        return self.pod._wrap(argv, self.role), {**self.env, **(overrides or {}), **marker}

    @property
    def label(self) -> str:
        return f"{self.pod.name}/{self.name}"

    @property
    def played(self) -> bool:
        return self.role in PLAYED_ROLES

    def explain(self, log: str) -> str:
        """Name the container path behind a permission error inside the (read-only) rootfs."""
        hits = sorted(
            set(re.findall(rf"Permission denied: '{re.escape(str(self.rootfs))}(/[^']*)'", log))
        )
        if not hits:
            return ""
        mounts = [m["mountPath"] for m in self.manifest.get("volumeMounts") or []]
        return (
            f"\n==> it wrote to {', '.join(hits)} in the container, not on a writable mount "
            f"(readOnlyRootFilesystem={self.read_only_root}; mounts: {', '.join(mounts) or 'none'})"
        )

    def manifest_port_name(self, number: int) -> str:
        for port in self.manifest.get("ports") or []:
            if as_int(port["containerPort"]) == number:
                return str(port.get("name") or number)
        return str(number)

    def new_files_in_root(self) -> list[str]:
        """Files that appeared in the (read-only) image root since the container was created."""
        return sorted(_tree(self.rootfs) - self.baseline)


def _tree(root: Path) -> set[str]:
    entries: set[str] = set()
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            entries.add(os.path.relpath(os.path.join(current, name), root))
    return entries


def _make_read_only(root: Path) -> None:
    for current, dirs, files in os.walk(root, followlinks=False):
        for name in files:
            path = os.path.join(current, name)
            if not os.path.islink(path):
                os.chmod(path, 0o444)
        for name in dirs:
            path = os.path.join(current, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555)
    os.chmod(root, 0o555)


def _namespaces_available() -> bool:
    """Can the harness give each pod its own hostname and /etc/hosts (root + unshare)?"""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--uts", "--mount", "--", "sh", "-c", "hostname e2e-probe"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


# ---------------------------------------------------------------------------------------------
# Pods


class LocalPod:
    def __init__(self, cluster: LocalCluster, workload: Workload, template_meta: Mapping[str, Any]):
        self.cluster = cluster
        self.workload = workload
        self.spec = workload.pod_spec
        self.name = f"{workload.name}-e2e"
        self.dir = cluster.base_dir / "pods" / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.info = PodInfo(
            name=self.name,
            namespace=workload.namespace,
            labels=dict(template_meta.get("labels") or {}),
            annotations=dict(template_meta.get("annotations") or {}),
            service_account=self.spec.get("serviceAccountName") or "default",
        )
        # What the kubelet writes as the pod's /etc/hosts: its own name resolves to its IP.
        self.hosts_file = self.dir / "etc-hosts"
        self.hosts_file.write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.0.1\t{self.name}\n"
        )
        self.volumes: dict[str, Path] = {}
        self.volume_kinds: dict[str, str] = {}
        for volume in self.spec.get("volumes") or []:
            if "persistentVolumeClaim" in volume or "hostPath" in volume:
                self.volumes[volume["name"]] = cluster.node_volume(volume)
                self.volume_kinds[volume["name"]] = "node"
                continue
            path = self.dir / "volumes" / volume["name"]
            self.volume_kinds[volume["name"]] = materialize_volume(
                volume, cluster.store, workload.namespace, path
            )
            self.volumes[volume["name"]] = path
        if cluster.runtime is not None:
            fs_group = (self.spec.get("securityContext") or {}).get("fsGroup")
            for volume_name, path in self.volumes.items():
                if self.volume_kinds[volume_name] != "node":
                    apply_fs_group(
                        path,
                        self.volume_kinds[volume_name],
                        None if fs_group is None else as_int(fs_group),
                    )
        self.init_containers = [
            self._prepare(c, init=True) for c in self.spec.get("initContainers") or []
        ]
        self.containers = [self._prepare(c, init=False) for c in self.spec.get("containers") or []]

    # -- building one container -----------------------------------------------------------------

    def _security(self, container: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **(self.spec.get("securityContext") or {}),
            **(container.get("securityContext") or {}),
        }

    def _prepare(self, container: Mapping[str, Any], init: bool) -> PreparedContainer:
        cluster = self.cluster
        name = container["name"]
        role = image_role(container["image"])
        if role == "postgres":
            raise HarnessError(f"{self.name}/{name}: Postgres runs beside other containers")
        image: AirflowImage | RedisImage | PgBouncerImage
        if role == "airflow":
            image = cluster.image
        elif role == "pgbouncer":
            image = PgBouncerImage()
        else:
            image = RedisImage()
        rootfs = self.dir / "containers" / name / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        directories = image.directories if role != "git-sync" else ("/tmp",)
        for directory in directories:
            (rootfs / directory.lstrip("/")).mkdir(parents=True, exist_ok=True)

        mounts = sorted(
            container.get("volumeMounts") or [], key=lambda m: m["mountPath"].count("/")
        )
        mount_paths: dict[str, Path] = {}
        mount_list: list[tuple[Path, bool]] = []
        for mount in mounts:
            if mount["name"] not in self.volumes:
                raise KubeletError(f"{self.name}/{name}: volumeMount {mount['name']} has no volume")
            if mount.get("subPathExpr"):
                raise HarnessError(
                    f"{self.name}/{name}: subPathExpr is not supported by the harness"
                )
            target = self.volumes[mount["name"]]
            if mount.get("subPath"):
                target = target / mount["subPath"]
                if self.volume_kinds[mount["name"]] == "emptyDir" and not target.exists():
                    target.mkdir(parents=True, exist_ok=True)
                    os.chmod(target, 0o777)
            mount_path = mount["mountPath"].rstrip("/") or "/"
            link = rootfs / mount_path.lstrip("/")
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.is_dir():
                shutil.rmtree(link)  # the mount shadows what the image had there
            link.symlink_to(target)
            mount_paths[mount_path] = target
            read_only = bool(mount.get("readOnly")) or self.volume_kinds[mount["name"]] in (
                "secret",
                "configMap",
                "projected",
            )
            mount_list.append((target, read_only))

        prefixes = sorted({*directories, *mount_paths}, key=len, reverse=True)

        def translate_path(value: str) -> str:
            def one(path: str) -> str:
                for prefix in prefixes:
                    if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                        return f"{rootfs}{path}"
                return path

            if value.startswith("/"):
                if ":" in value and "://" not in value:
                    return ":".join(one(part) for part in value.split(":"))
                return one(value)
            match = re.match(r"^(--?[\w.-]+=)(/.*)$", value)
            if match:
                return match.group(1) + one(match.group(2))
            return value

        def translate(value: str) -> str:
            return translate_path(cluster.network.translate(value))

        # Environment: image ENV, overridden by what the kubelet resolves from the manifest.
        service_env = cluster.service_env(self.workload.namespace)
        try:
            resolved = resolve_env(container, cluster.store, self.info, service_env)
        except KubeletError as error:
            raise HarnessError(f"{self.name}/{name}: {error}") from error
        for key in UNSUPPORTED_ENTRYPOINT_ENV:
            if key in resolved:
                raise HarnessError(f"{self.name}/{name}: sets {key}, an image entrypoint shortcut")
        image_env = image.env() if role != "git-sync" else {}
        env = {**image_env, "HOSTNAME": self.name, **resolved}
        command, args = expand_command(container, resolved)

        translated_env: dict[str, str] = {}
        for key, value in env.items():
            if key == "PATH" and key not in resolved:
                # The image's PATH names its Python installation: here the Airflow venv (host path).
                translated_env[key] = value
                continue
            try:
                translated_env[key] = translate(value)
            except NetworkError as error:
                raise HarnessError(f"{self.name}/{name}: env {key}: {error}") from error
        try:
            command = [translate(part) for part in command]
            args = [translate(part) for part in args]
        except NetworkError as error:
            raise HarnessError(f"{self.name}/{name}: args: {error}") from error
        if role == "git-sync":
            argv: list[str] = []
        else:
            argv = [*command, *args] if command else image.entrypoint(args)

        declared = {as_int(p["containerPort"]): p for p in container.get("ports") or []}
        ports = {
            number: cluster.network.container_ports[(self.workload.name, number)]
            for number in declared
            if (self.workload.name, number) in cluster.network.container_ports
        }
        named = {p["name"]: number for number, p in declared.items() if p.get("name")}
        for index, part in enumerate(argv[:-1]):
            if part in PORT_FLAGS and argv[index + 1].isdigit() and int(argv[index + 1]) in ports:
                argv[index + 1] = str(ports[int(argv[index + 1])])
        for index, part in enumerate(argv):
            match = re.fullmatch(r"(--port=)(\d+)", part)
            if match and int(match.group(2)) in ports:
                argv[index] = f"{match.group(1)}{ports[int(match.group(2))]}"

        if role == "airflow":
            self._place_dags(name, resolved, rootfs, mount_paths)
        if role == "pgbouncer":
            argv = self._pgbouncer_config(name, argv, translate, ports)

        workdir = str(container.get("workingDir") or getattr(image, "workdir", "/"))
        cwd = Path(translate_path(workdir))
        if not cwd.exists():
            cwd = rootfs
        security = self._security(container)
        read_only = bool(security.get("readOnlyRootFilesystem"))
        if read_only:
            _make_read_only(rootfs)
        prepared = PreparedContainer(
            pod=self,
            manifest=container,
            name=name,
            init=init,
            argv=argv,
            env=translated_env,
            cwd=cwd,
            rootfs=rootfs,
            log_path=cluster.base_dir / "logs" / f"{self.name}__{name}.log",
            read_only_root=read_only,
            ports=ports,
            named_ports=named,
            translate=translate,
            role=role,
            resolved_env=resolved,
            mounts=mount_list,
        )
        prepared.baseline = _tree(rootfs)
        cluster.all_containers.append(prepared)
        return prepared

    def _place_dags(
        self, name: str, env: Mapping[str, str], rootfs: Path, mount_paths: Mapping[str, Path]
    ) -> None:
        """Where the suite's DAG goes depends on how the rendering delivers DAGs:
        baked into the image (no mount), on a node/persistent volume (the files an operator put
        there), or on an emptyDir that a (played) git-sync container fills."""
        image = self.cluster.image
        dags_folder = env.get("AIRFLOW__CORE__DAGS_FOLDER", f"{image.home}/dags")
        holder = max(
            (m for m in mount_paths if dags_folder == m or dags_folder.startswith(m + "/")),
            key=len,
            default=None,
        )
        if holder is None:
            target = rootfs / dags_folder.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            for dag in self.cluster.dag_files:
                shutil.copy(dag, target / dag.name)
            return
        volume = mount_paths[holder]
        if self.cluster.is_node_volume(volume):
            self.cluster.put_dags_on_node_volume(volume)
        # emptyDir: filled by git-sync (played in this pod) or nobody (then no DAG is found).

    def _run_as(self) -> tuple[int, int]:
        security = self.spec.get("securityContext") or {}
        uid = as_int(security.get("runAsUser", 0))
        if uid == 0:
            raise HarnessError(f"{self.name}: pgbouncer refuses root; the pod sets no runAsUser")
        return uid, as_int(security.get("runAsGroup", uid))

    def _pgbouncer_config(
        self, name: str, argv: list[str], translate: Callable[[str], str], ports: Mapping[int, int]
    ) -> list[str]:
        """The node's view of the rendered pgbouncer.ini: the [databases] host/port and
        listen_port mapped like env values (Service names -> loopback ports), paths into the
        rootfs. The Secret volume gets the pod's fsGroup, as the kubelet does."""
        config_arg = next((a for a in argv[1:] if a.endswith(".ini")), None)
        if config_arg is None:
            raise HarnessError(f"{self.name}/{name}: pgbouncer without a config file argument")
        uid, gid = self._run_as()
        fs_group = (self.spec.get("securityContext") or {}).get("fsGroup")
        if fs_group is not None:
            for volume, kind in self.volume_kinds.items():
                if kind in ("secret", "configMap"):
                    for path in self.volumes[volume].rglob("*"):
                        os.chown(path, -1, as_int(fs_group), follow_symlinks=False)
        lines = []
        section = ""
        for line in Path(config_arg).read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("["):
                section = stripped
            elif section == "[databases]" and "=" in stripped:
                match = re.search(r"host=(\S+)\s+port=(\d+)", line)
                if match:
                    host, port = translate(f"{match.group(1)}:{match.group(2)}").rsplit(":", 1)
                    line = line[: match.start()] + f"host={host} port={port}" + line[match.end() :]
            elif section == "[pgbouncer]" and "=" in stripped:
                key, value = (part.strip() for part in stripped.split("=", 1))
                if key == "listen_addr":
                    line = f"listen_addr = {LOOPBACK}"
                elif key == "listen_port" and as_int(value) in ports:
                    line = f"listen_port = {ports[as_int(value)]}"
                elif value.startswith("/"):
                    line = f"{key} = {translate(value)}"
            lines.append(line)
        rewritten = self.dir / f"{name}-node-pgbouncer.ini"
        rewritten.write_text("\n".join(lines) + "\n")
        os.chown(rewritten, uid, gid)
        return [str(rewritten) if a == config_arg else a for a in argv]

    # -- running ------------------------------------------------------------------------------

    def _wrap(self, argv: Sequence[str], role: str = "airflow") -> list[str]:
        """Run as the pod would: its hostname and /etc/hosts (UTS + mount namespace), then every
        capability dropped (PgBouncer, which refuses root, also as the pod's runAsUser)."""
        inner = drop_capabilities(argv)
        if role == "pgbouncer" and os.geteuid() == 0:
            uid, gid = self._run_as()
            inner = [inner[0], f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *inner[1:]]
        if not self.cluster.namespaces:
            return inner
        script = 'hostname "$1" && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"'
        return [
            "unshare",
            "--uts",
            "--mount",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            self.name,
            str(self.hosts_file),
            *inner,
        ]

    def identity(self, container: Mapping[str, Any]) -> tuple[int, int, list[int]]:
        """(uid, gid, extra groups) the runtime gives the container: the security context, else
        the Airflow image's USER (50000, group 0)."""
        security = self._security(container)
        uid = as_int(security.get("runAsUser", 50000))
        gid = as_int(security.get("runAsGroup", 0))
        pod_security = self.spec.get("securityContext") or {}
        extra = [as_int(g) for g in pod_security.get("supplementalGroups") or []]
        if pod_security.get("fsGroup") is not None:
            extra.append(as_int(pod_security["fsGroup"]))
        return uid, gid, extra

    def container_spec(
        self,
        container: PreparedContainer,
        argv: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ContainerSpec:
        container.runs += 1
        uid, gid, extra = self.identity(container.manifest)
        safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", f"{self.name}-{container.name}")
        binds = [Bind(container.rootfs, str(container.rootfs), container.read_only_root)]
        binds += [Bind(path, str(path), read_only) for path, read_only in container.mounts]
        return ContainerSpec(
            name=f"e2e-{SESSION_MARKER[-8:]}-{self.cluster.name}-{safe}-{container.runs}",
            argv=list(container.argv if argv is None else argv),
            env=dict(container.env if env is None else env),
            workdir=container.cwd,
            hostname=self.name,
            hosts_file=self.hosts_file,
            user=uid,
            group=gid,
            extra_groups=extra,
            memory_limit=container.memory_limit,
            binds=binds,
        )

    def _start(self, container: PreparedContainer) -> ManagedProcess | None:
        if container.played:
            self.cluster.play(container)
            return None
        grace = as_int(self.spec.get("terminationGracePeriodSeconds", 30))
        if container.in_container:
            runtime = self.cluster.runtime
            assert runtime is not None
            process: ManagedProcess = ContainerProcess(
                self.container_spec(container),
                runtime,
                container.log_path,
                grace_seconds=min(grace, 20),
                marker=f"{self.cluster.marker}|{container.label}",
            )
            container.process = process
            self.cluster.events.append((time.monotonic(), f"start {container.label} (container)"))
            return process
        process = ManagedProcess(
            container.label,
            self._wrap(container.argv, container.role),
            container.env,
            container.cwd,
            container.log_path,
            grace_seconds=min(grace, 20),
            marker=f"{self.cluster.marker}|{container.label}",
            drop_caps=False,
        )
        container.process = process
        self.cluster.events.append((time.monotonic(), f"start {container.label}"))
        return process

    def _run_to_completion(self, container: PreparedContainer, timeout: float) -> None:
        started = time.monotonic()
        process = self._start(container)
        if process is None:
            container.exit_code = 0
            return
        code = process.wait(timeout)
        process.stop()
        container.exit_code = code
        self.cluster.events.append(
            (
                time.monotonic(),
                f"exit {container.label} code={code} after {time.monotonic() - started:.1f}s",
            )
        )
        if code != 0:
            raise HarnessError(
                f"{container.label} exited with {code}: {' '.join(container.argv)}"
                f"{container.explain(process.tail(80))}\n--- log tail ---\n{process.tail(80)}"
            )

    def run_init_containers(self, timeout: float) -> None:
        for container in self.init_containers:
            self._run_to_completion(container, timeout)

    def run_job(self, timeout: float) -> None:
        self.run_init_containers(timeout)
        for container in self.containers:
            self._run_to_completion(container, timeout)

    def start(self, timeout: float) -> None:
        self.run_init_containers(timeout)
        for container in self.containers:
            self._start(container)


# ---------------------------------------------------------------------------------------------
# The cluster


@dataclass
class ProbeResult:
    container: str
    kind: str  # startupProbe / readinessProbe / livenessProbe
    ok: bool
    detail: str


class LocalCluster:
    def __init__(
        self,
        *,
        name: str,
        manifests: Sequence[Mapping[str, Any]],
        base_dir: Path,
        venv: Path,
        dag_files: Sequence[Path],
        postgres: PostgresServer,
        operator_secrets: Sequence[tuple[str, str, Mapping[str, str]]] = (),
        external_databases: Mapping[tuple[str, int], int] | None = None,
        git_sub_path: str = "",
        jobs_after_workloads: Sequence[str] = (),
    ) -> None:
        self.name = name
        # Jobs that `pulumi up` runs once the Deployments are ready (they depend on them).
        self.jobs_after_workloads = set(jobs_after_workloads)
        self.manifests = list(manifests)
        self.base_dir = base_dir
        self.base_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        tags = {
            image_tag(c["image"]) or "latest"
            for m in self.manifests
            if m.get("kind") in ("Deployment", "StatefulSet", "Job")
            for c in [
                *(m["spec"]["template"]["spec"].get("initContainers") or []),
                *m["spec"]["template"]["spec"]["containers"],
            ]
            if image_role(c["image"]) == "airflow"
        }
        if len(tags) != 1:
            raise HarnessError(f"Airflow containers use several image tags: {sorted(tags)}")
        self.image = AirflowImage(venv=venv, tag=tags.pop())
        self.dag_files = list(dag_files)
        self.postgres = postgres
        self.marker = f"{SESSION_MARKER}:{name}"
        self.events: list[tuple[float, str]] = []
        self.all_containers: list[PreparedContainer] = []
        self.pods: list[LocalPod] = []
        self.job_pods: list[LocalPod] = []
        self.infra_pods: list[LocalPod] = []
        self.started_at: float | None = None
        self._lock = threading.Lock()
        self._node_volumes: set[Path] = set()

        self.git_sub_path = git_sub_path.strip("/")
        self.namespaces = _namespaces_available()
        # Airflow containers run under the kernel's rules (podman + runc) unless the machine
        # cannot (the suite's fixtures fail in CI then); E2E_RUNTIME=process forces processes.
        self.runtime: NodeRuntime | None = None
        if os.environ.get("E2E_RUNTIME") != "process" and podman_problem() is None:
            self.runtime = NodeRuntime(self.base_dir, system_paths_for(venv))
        self.store = ObjectStore.from_manifests(self.manifests)
        for namespace, secret_name, data in operator_secrets:
            self.store.add_secret(namespace, secret_name, data)
        # Secrets the rendering references but does not create are the operator's (deploy keys,
        # git tokens, TLS): they get placeholder values, listed here for the report.
        self.placeholder_secrets = self._supply_missing_secrets()

        namespaces = {
            (m.get("metadata") or {}).get("namespace")
            for m in self.manifests
            if m.get("kind") in ("Deployment", "StatefulSet", "Job")
        }
        if len(namespaces) != 1:
            raise HarnessError(f"expected all workloads in one namespace, got {namespaces}")
        self.namespace = namespaces.pop() or "default"

        workloads, self.jobs, self.runnable, self.played_postgres = [], [], [], []
        self.infrastructure: list[tuple[Workload, Mapping[str, Any]]] = []
        self.played_statsd: list[Workload] = []
        self.statsd_sinks: list[Any] = []
        for manifest in self.manifests:
            kind = manifest.get("kind")
            if kind not in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
                continue
            meta = manifest.get("metadata") or {}
            template = manifest["spec"]["template"]
            workload = Workload(
                kind=kind,
                name=meta["name"],
                namespace=meta.get("namespace") or "default",
                labels=dict((template.get("metadata") or {}).get("labels") or {}),
                pod_spec=template["spec"],
            )
            workloads.append(workload)
            roles = {image_role(c["image"]) for c in template["spec"].get("containers") or []}
            if kind == "Job":
                self.jobs.append((workload, template.get("metadata") or {}))
            elif roles == {"postgres"}:
                self.played_postgres.append(workload)
            elif roles in ({"redis"}, {"pgbouncer"}):
                self.infrastructure.append((workload, template.get("metadata") or {}))
            elif roles == {"statsd"}:
                self.played_statsd.append(workload)
            elif "airflow" in roles and roles <= {"airflow", *PLAYED_ROLES}:
                self.runnable.append((workload, template.get("metadata") or {}))
            else:
                raise HarnessError(f"{kind} {meta['name']}: containers {roles}: not playable")
        self.network = Network(
            namespace=self.namespace,
            services=[m for m in self.manifests if m.get("kind") == "Service"],
            workloads=workloads,
            ingresses=[m for m in self.manifests if m.get("kind") == "Ingress"],
        )
        for workload in self.played_postgres:
            self.network.played[workload.name] = postgres.port
        for (host, port), local in (external_databases or {}).items():
            self.network.external[(host, port)] = local
        # A statsd exporter is played by a UDP sink on its own port numbers (Airflow is given the
        # host and the port separately, so the numbers must stay).
        for workload in self.played_statsd:
            for container in workload.pod_spec.get("containers") or []:
                for declared in container.get("ports") or []:
                    number = as_int(declared["containerPort"])
                    self.network.container_ports[(workload.name, number)] = number
        self._allocate_ports()

    # -- plan ---------------------------------------------------------------------------------

    def _allocate_ports(self) -> None:
        """Each declared container port gets a host port: a free one when the port is passed on
        the command line (the harness rewrites it there), else the same number (the process takes
        it from its own defaults), which must then be free and unique on this machine."""
        from .procs import free_port

        identity: dict[int, str] = {}
        for workload, _ in [*self.infrastructure, *self.runnable]:
            for container in workload.pod_spec.get("containers") or []:
                if image_role(container["image"]) in PLAYED_ROLES:
                    continue
                args = [
                    str(a)
                    for a in [*(container.get("command") or []), *(container.get("args") or [])]
                ]
                for declared in container.get("ports") or []:
                    number = as_int(declared["containerPort"])
                    on_command_line = any(
                        (a in PORT_FLAGS and i + 1 < len(args) and args[i + 1] == str(number))
                        or a == f"--port={number}"
                        for i, a in enumerate(args)
                    )
                    if on_command_line:
                        self.network.container_ports[(workload.name, number)] = free_port()
                        continue
                    if number in identity:
                        # Declared twice (e.g. task-logs on scheduler and worker): both get the
                        # number; a real bind conflict shows as a crash, a port nobody serves is
                        # caught by `closed_ports` (per process, through /proc).
                        self.network.container_ports[(workload.name, number)] = number
                        continue
                    if not port_is_free(number):
                        raise HarnessError(
                            f"port {number} (declared by {workload.name}, taken by the process "
                            "from its config defaults) is busy on this machine"
                        )
                    identity[number] = workload.name
                    self.network.container_ports[(workload.name, number)] = number

    def service_env(self, namespace: str) -> dict[str, str]:
        def address(service: Mapping[str, Any], port: Mapping[str, Any]) -> tuple[str, int]:
            try:
                return LOOPBACK, self.network.target_host_port(service, port)
            except NetworkError:
                return LOOPBACK, as_int(port["port"])

        return service_link_env(self.network.services, namespace, address)

    def postgres_credentials(self) -> list[tuple[str, str, str]]:
        """(database, user, password) of each in-cluster Postgres, from its rendered env."""
        found = []
        for workload in self.played_postgres:
            container = workload.pod_spec["containers"][0]
            info = PodInfo(
                name=f"{workload.name}-0",
                namespace=workload.namespace,
                labels=workload.labels,
                annotations={},
                service_account=workload.pod_spec.get("serviceAccountName") or "default",
            )
            env = resolve_env(container, self.store, info, {})
            user = env.get("POSTGRES_USER", "postgres")
            database = env.get("POSTGRES_DB", user)
            if "POSTGRES_PASSWORD" not in env:
                raise HarnessError(f"{workload.name}: POSTGRES_PASSWORD not set")
            found.append((database, user, env["POSTGRES_PASSWORD"]))
        return found

    def provision_in_cluster_databases(self) -> None:
        for database, user, password in self.postgres_credentials():
            # The official image's entrypoint makes POSTGRES_USER the bootstrap superuser.
            self.postgres.provision(database, user, password, superuser=True)

    # -- run ----------------------------------------------------------------------------------

    def start_infrastructure(self, timeout: float = 120) -> None:
        """In-cluster services the harness runs from their own images (Redis) before anything
        else, ready by their own readiness probes; statsd exporters played by UDP sinks."""
        from .services import UdpSink

        self.started_at = self.started_at or time.monotonic()
        for workload in self.played_statsd:
            for container in workload.pod_spec.get("containers") or []:
                for declared in container.get("ports") or []:
                    if (declared.get("protocol") or "TCP") == "UDP":
                        self.statsd_sinks.append(UdpSink(as_int(declared["containerPort"])))
        pods = [LocalPod(self, workload, meta) for workload, meta in self.infrastructure]
        self.infra_pods.extend(pods)
        for pod in pods:
            pod.start(timeout)
        self.wait_started(cap_seconds=timeout, pods=pods)

    def run_jobs(self, timeout: float = 420, after_workloads: bool = False) -> None:
        """Every Job to completion, in the order Pulumi would finish them: first those the
        workloads wait for, then (`after_workloads`) those that wait for the workloads."""
        self.started_at = self.started_at or time.monotonic()
        for workload, meta in self.jobs:
            if (workload.name in self.jobs_after_workloads) != after_workloads:
                continue
            pod = LocalPod(self, workload, meta)
            self.job_pods.append(pod)
            pod.run_job(timeout)

    def cron_job_pod(self, name: str) -> LocalPod:
        """The pod of the Job a CronJob would create now (from its jobTemplate), ready to run."""
        found = [
            m
            for m in self.manifests
            if m.get("kind") == "CronJob" and (m.get("metadata") or {}).get("name") == name
        ]
        if len(found) != 1:
            raise HarnessError(f"CronJob {name}: rendered {len(found)} times")
        template = found[0]["spec"]["jobTemplate"]["spec"]["template"]
        workload = Workload(
            kind="Job",
            name=f"{name}-run",
            namespace=(found[0].get("metadata") or {}).get("namespace") or "default",
            labels=dict((template.get("metadata") or {}).get("labels") or {}),
            pod_spec=template["spec"],
        )
        pod = LocalPod(self, workload, template.get("metadata") or {})
        self.job_pods.append(pod)
        return pod

    def start_workloads(self, timeout: float = 300) -> None:
        """All long-running pods at once: init containers to completion, then the main ones."""
        self.started_at = self.started_at or time.monotonic()
        pods = [LocalPod(self, workload, meta) for workload, meta in self.runnable]
        self.pods.extend(pods)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(pods) or 1) as pool:
            futures = {pool.submit(pod.start, timeout): pod for pod in pods}
            errors = []
            for future in concurrent.futures.as_completed(futures):
                try:
                    future.result()
                except Exception as error:
                    errors.append(f"{futures[future].name}: {error}")
        if errors:
            raise HarnessError("\n\n".join(errors))

    def main_containers(self, pods: Sequence[LocalPod] | None = None) -> list[PreparedContainer]:
        """Running (not played) main containers of the long-running pods."""
        chosen = [*self.infra_pods, *self.pods] if pods is None else pods
        return [c for pod in chosen for c in pod.containers if not c.played]

    def played_containers(self) -> list[PreparedContainer]:
        return [c for c in self.all_containers if c.played]

    # -- volumes and played containers --------------------------------------------------------

    def node_volume(self, volume: Mapping[str, Any]) -> Path:
        """A PersistentVolumeClaim (through its bound PV) or hostPath volume: one directory for
        every pod that mounts it, as storage on the node would be."""
        if "hostPath" in volume:
            path = self.base_dir / "node" / volume["hostPath"]["path"].lstrip("/")
        else:
            claim = volume["persistentVolumeClaim"]["claimName"]
            pvc = next(
                (
                    m
                    for m in self.manifests
                    if m.get("kind") == "PersistentVolumeClaim" and m["metadata"]["name"] == claim
                ),
                None,
            )
            if pvc is None:
                raise HarnessError(f"volume {volume['name']}: PVC {claim} is not rendered")
            pv_name = (pvc.get("spec") or {}).get("volumeName")
            pv = next(
                (
                    m
                    for m in self.manifests
                    if m.get("kind") == "PersistentVolume" and m["metadata"]["name"] == pv_name
                ),
                None,
            )
            if pv is not None and "hostPath" in pv["spec"]:
                path = self.base_dir / "node" / pv["spec"]["hostPath"]["path"].lstrip("/")
            else:
                path = self.base_dir / "claims" / claim
        path.mkdir(parents=True, exist_ok=True)
        if "persistentVolumeClaim" in volume:
            os.chmod(path, 0o777)  # what dynamic provisioners (local-path, NFS) create
        self._node_volumes.add(path)
        return path

    def is_node_volume(self, path: Path) -> bool:
        return path in self._node_volumes

    def put_dags_on_node_volume(self, path: Path) -> None:
        """The files an operator keeps on that storage (for `local`: ./dags via kind)."""
        for dag in self.dag_files:
            if not (path / dag.name).exists():
                shutil.copy(dag, path / dag.name)

    def play(self, container: PreparedContainer) -> None:
        """Containers the harness plays instead of running: git-sync lays out what it would
        have cloned (the suite's DAG at the repository's subPath) under --root/--link."""
        if container.role != "git-sync":
            raise HarnessError(f"{container.label}: cannot play {container.role}")
        env = container.resolved_env
        root = env.get("GITSYNC_ROOT") or env.get("GIT_SYNC_ROOT")
        repo = env.get("GITSYNC_REPO") or env.get("GIT_SYNC_REPO")
        if not root or not repo:
            raise HarnessError(f"{container.label}: git-sync without GITSYNC_ROOT/GITSYNC_REPO")
        link = (
            env.get("GITSYNC_LINK")
            or env.get("GIT_SYNC_LINK")
            or (repo.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git"))
        )
        root_dir = Path(container.translate(root))
        if not root_dir.resolve().is_dir():
            raise HarnessError(f"{container.label}: --root {root} is not a mounted directory")
        link_path = root_dir / link
        if link_path.is_symlink():
            return  # already synced (the init container ran before the sidecar)
        worktree = root_dir / ".worktrees" / "e2e0000000000000000000000000000000000000"
        content = worktree / self.git_sub_path if self.git_sub_path else worktree
        content.mkdir(parents=True, exist_ok=True)
        for dag in self.dag_files:
            shutil.copy(dag, content / dag.name)
        link_path.symlink_to(os.path.relpath(worktree, root_dir))
        self.events.append((time.monotonic(), f"played {container.label}: {repo} -> {link_path}"))

    def _supply_missing_secrets(self) -> list[str]:
        wanted: dict[tuple[str, str], set[str]] = {}
        for manifest in self.manifests:
            spec = manifest.get("spec") or {}
            if "template" not in spec or manifest.get("kind") not in (
                "Deployment",
                "StatefulSet",
                "Job",
                "DaemonSet",
            ):
                continue
            namespace = (manifest.get("metadata") or {}).get("namespace") or "default"
            pod_spec = spec["template"]["spec"]
            for container in [*(pod_spec.get("initContainers") or []), *pod_spec["containers"]]:
                for var in container.get("env") or []:
                    ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                    if ref and not ref.get("optional"):
                        wanted.setdefault((namespace, ref["name"]), set()).add(ref["key"])
                for source in container.get("envFrom") or []:
                    ref = source.get("secretRef")
                    if ref and not ref.get("optional"):
                        wanted.setdefault((namespace, ref["name"]), set())
            for volume in pod_spec.get("volumes") or []:
                ref = volume.get("secret")
                if ref and not ref.get("optional"):
                    keys = {item["key"] for item in ref.get("items") or []}
                    wanted.setdefault((namespace, ref["secretName"]), set()).update(keys)
        supplied = []
        for (namespace, name), keys in sorted(wanted.items()):
            if (namespace, name) in self.store.secrets:
                continue
            self.store.add_secret(namespace, name, {k: f"operator-supplied-{k}" for k in keys})
            supplied.append(f"{namespace}/{name} ({', '.join(sorted(keys))})")
        return supplied

    def check_alive(self) -> None:
        for container in self.main_containers():
            if container.process is not None and container.process.poll() is not None:
                raise HarnessError(
                    f"{container.label} exited with {container.process.poll()} while running"
                    f"{container.explain(container.process.tail(80))}\n"
                    f"--- log tail ---\n{container.process.tail(80)}"
                )

    # -- probes -------------------------------------------------------------------------------

    def _probe_port(self, container: PreparedContainer, port: Any) -> int:
        if isinstance(port, str) and not port.isdigit():
            if port not in container.named_ports:
                raise HarnessError(
                    f"{container.label}: probe port {port!r} is not a named container port"
                )
            number = container.named_ports[port]
        else:
            number = as_int(port)
        if number not in container.ports:
            raise HarnessError(
                f"{container.label}: probe port {number} is not a declared container port"
            )
        return container.ports[number]

    def run_probe(self, container: PreparedContainer, probe: Mapping[str, Any]) -> tuple[bool, str]:
        timeout = as_int(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            action = probe["httpGet"]
            port = self._probe_port(container, action["port"])
            scheme = (action.get("scheme") or "HTTP").lower()
            url = f"{scheme}://{LOOPBACK}:{port}{action.get('path') or '/'}"
            headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.30")
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, headers=headers), timeout=timeout
                ) as r:
                    code = r.status
            except urllib.error.HTTPError as error:
                code = error.code
            except OSError as error:
                return False, f"GET {url}: {error}"
            # The kubelet counts 200 <= code < 400 as success.
            return 200 <= code < 400, f"GET {url} -> {code}"
        if "exec" in probe:
            argv = [container.translate(str(part)) for part in probe["exec"]["command"]]
            command, env = container.command(argv)
            try:
                result = subprocess.run(
                    command,
                    env=env,
                    cwd=str(container.cwd),
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                return False, f"exec {argv}: timed out after {timeout}s"
            output = (result.stdout + result.stderr).strip().splitlines()
            return (
                result.returncode == 0,
                f"exec {' '.join(argv)} -> {result.returncode}: {' | '.join(output[-3:])}",
            )
        if "tcpSocket" in probe:
            import socket

            port = self._probe_port(container, probe["tcpSocket"]["port"])
            try:
                with socket.create_connection((LOOPBACK, port), timeout=timeout):
                    return True, f"tcp {port} open"
            except OSError as error:
                return False, f"tcp {port}: {error}"
        raise HarnessError(f"{container.label}: unsupported probe {sorted(probe)}")

    def wait_started(
        self,
        cap_seconds: float = 300,
        pods: Sequence[LocalPod] | None = None,
        network_probes_only: bool = False,
    ) -> dict[str, float]:
        """Poll each main container's startupProbe (else readinessProbe) until it passes, within
        initialDelaySeconds + periodSeconds * failureThreshold (and the harness cap).

        `network_probes_only`: wait for httpGet/tcpSocket probes only (what clients need); exec
        probes (often a whole `airflow` CLI run) are then left to `probe_all`."""
        pending = {}
        now = time.monotonic()
        for container in self.main_containers(pods):
            probe = container.manifest.get("startupProbe") or container.manifest.get(
                "readinessProbe"
            )
            if probe is None or (network_probes_only and "exec" in probe):
                continue
            budget = as_int(probe.get("initialDelaySeconds", 0)) + as_int(
                probe.get("periodSeconds", 10)
            ) * as_int(probe.get("failureThreshold", 3))
            pending[container.label] = (container, probe, now + min(budget, cap_seconds))
        started: dict[str, float] = {}
        due: dict[str, float] = {}
        while pending:
            self.check_alive()
            for label, (container, probe, deadline) in list(pending.items()):
                if time.monotonic() < due.get(label, 0):
                    continue
                ok, detail = self.run_probe(container, probe)
                if "exec" in probe:
                    # An exec probe may be a whole `airflow` CLI run: poll it at its own period
                    # (as the kubelet does), not every second, or the probes starve the pods.
                    due[label] = time.monotonic() + max(as_int(probe.get("periodSeconds", 10)), 5)
                if ok:
                    started[label] = time.monotonic() - (self.started_at or now)
                    del pending[label]
                elif time.monotonic() > deadline:
                    raise HarnessError(
                        f"{label}: startup/readiness probe never passed ({detail})\n"
                        f"--- log tail ---\n{tail(container.log_path, 80)}"
                    )
            time.sleep(1)
        return started

    def probe_all(self) -> list[ProbeResult]:
        """Every rendered probe of every running container, once. Identical actions of one
        container (readiness == liveness) run once; containers are probed two at a time."""
        import json

        def probe_container(container: PreparedContainer) -> list[ProbeResult]:
            done: dict[str, tuple[bool, str]] = {}
            results = []
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.manifest.get(kind)
                if probe is None:
                    continue
                action = {
                    k: v for k, v in probe.items() if k in ("exec", "httpGet", "tcpSocket", "grpc")
                }
                key = json.dumps(action, sort_keys=True) + str(probe.get("timeoutSeconds"))
                if key not in done:
                    done[key] = self.run_probe(container, probe)
                ok, detail = done[key]
                results.append(ProbeResult(container.label, kind, ok, detail))
            return results

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            batches = list(pool.map(probe_container, self.main_containers()))
        return [result for batch in batches for result in batch]

    def closed_ports(self) -> list[str]:
        """Declared container ports the container's own processes do not listen on."""
        from .procs import listening_ports_of, process_tree

        # The container's processes: the tree under its first process (dumb-init may move them
        # to a session of their own, so not its process group).
        closed = []
        for c in self.main_containers():
            if c.process is None:
                continue
            root = c.process.root_pid if isinstance(c.process, ContainerProcess) else None
            listening = listening_ports_of(process_tree(root or c.process.pid))
            closed += [
                f"{c.label}: containerPort {number} ({c.manifest_port_name(number)}) is declared "
                f"but nothing in the container listens on it (local port {local})"
                for number, local in c.ports.items()
                if local not in listening
            ]
        return closed

    # -- end ----------------------------------------------------------------------------------

    def root_writes(self) -> dict[str, list[str]]:
        return {
            c.label: new
            for c in self.all_containers
            if c.read_only_root and (new := c.new_files_in_root())
        }

    def stop(self) -> None:
        for container in reversed(self.main_containers()):
            if container.process is not None:
                container.process.stop()
        kill_marked(self.marker)
        for sink in self.statsd_sinks:
            sink.stop()
        self.statsd_sinks_stopped = True

    def memory_reports(self) -> list[MemoryReport]:
        """Peak memory and OOM kills of every container run under the runtime."""
        return [r for c in self.all_containers if (r := c.memory_report()) is not None]

    def log_tails(self, lines: int = 40) -> str:
        parts = []
        for container in self.all_containers:
            if container.log_path.exists():
                parts.append(
                    f"===== {container.label} ({container.log_path}) =====\n"
                    f"{tail(container.log_path, lines)}"
                )
        return "\n".join(parts)
