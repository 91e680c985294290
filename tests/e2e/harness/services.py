"""The backing services the suite plays: a real PostgreSQL server and a real Redis.

PostgreSQL comes from the distribution's binaries (`/usr/lib/postgresql/<major>/bin`), runs as the
`postgres` OS user when the suite runs as root (postgres refuses root), listens on a free loopback
port with TLS on (the prod stack connects with `sslmode=require`), and gets roles and databases
with exactly the credentials a stack's rendering says.
"""

from __future__ import annotations

import datetime
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .procs import ManagedProcess, free_port, tail


def find_postgres_bin() -> Path | None:
    override = os.environ.get("AIRFLOW_E2E_PG_BIN")
    if override:
        return Path(override) if (Path(override) / "initdb").exists() else None
    root = Path("/usr/lib/postgresql")
    if not root.is_dir():
        return None
    majors = sorted(
        (p for p in root.iterdir() if p.name.isdigit() and (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.name),
    )
    return majors[-1] / "bin" if majors else None


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


def _env_args(env: dict[str, str]) -> list[str]:
    return [f"{name}={value}" for name, value in env.items()]


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "server.crt", directory / "server.key"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
        return cert, key
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(private_key, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@dataclass
class Database:
    host: str
    port: int
    name: str
    user: str
    password: str


class PostgresServer:
    """One server for the whole session; each stack gets its rendered role and database."""

    def __init__(self, base_dir: Path, bin_dir: Path) -> None:
        self.base_dir = base_dir
        self.bin_dir = bin_dir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "socket"
        self.log_path = base_dir / "postgres.log"
        self.process: ManagedProcess | None = None
        self._as_root = os.geteuid() == 0
        self._os_user = "postgres" if self._as_root else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, check=False, cwd=str(self.base_dir)
        )

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        os.chmod(self.base_dir, 0o755)
        if self._as_root:
            entry = pwd.getpwnam("postgres")
            for path in (self.base_dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        result = self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        cert, key = _self_signed_certificate(self.data_dir)
        os.chmod(key, 0o600)
        if self._as_root:
            entry = pwd.getpwnam("postgres")
            for path in (cert, key):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# airflow e2e\n"
                f"listen_addresses = '{self.host}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                "max_connections = 400\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\n"
            )
        (self.data_dir / "pg_hba.conf").write_text(
            # Local connections trusted, as the official image's pg_hba.conf has them (its
            # password sync connects so); TCP clients must know the password.
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        self._launch()

    def restart(
        self, down_seconds: float = 0.0, while_down: Callable[[], None] | None = None
    ) -> None:
        """Stop the server (fast shutdown: clients are disconnected), stay down, start it again
        on the same data directory and port: the data is kept, as a restarted pod keeps its
        volume. `while_down` runs in between, as a pod's init containers do."""
        self.stop()
        time.sleep(down_seconds)
        if while_down is not None:
            while_down()
        self._launch()

    def run_as_server_user(
        self, argv: list[str], env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        """A command as the OS user that owns the data directory, with exactly `env`."""
        if self._as_root:
            # runuser is found on root's PATH; `env -i` then gives the command exactly `env`.
            argv = ["runuser", "-u", "postgres", "--", "env", "-i", *_env_args(env), *argv]
        return subprocess.run(
            argv,
            env=None if self._as_root else env,
            capture_output=True,
            text=True,
            check=False,
            cwd=str(self.base_dir),
        )

    def _launch(self) -> None:
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        self.process = ManagedProcess(
            "postgres",
            argv,
            {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
            self.base_dir,
            self.log_path,
            drop_caps=False,
            user="postgres" if self._as_root else None,
            group="postgres" if self._as_root else None,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited:\n{tail(self.log_path)}")
            ready = self._run(
                [str(self.bin_dir / "pg_isready"), "-h", str(self.socket_dir), "-p", str(self.port)]
            )
            if ready.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"postgres did not become ready:\n{tail(self.log_path)}")

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = self._run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
            ],
            stdin=sql,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}\nSQL: {sql}")
        return result.stdout

    def provision(self, database: str, user: str, password: str, superuser: bool) -> Database:
        """A fresh role and database with exactly these credentials (dropped first if present)."""
        self.psql(
            f"DROP DATABASE IF EXISTS {_sql_ident(database)} WITH (FORCE);\n"
            f"DROP ROLE IF EXISTS {_sql_ident(user)};\n"
            f"CREATE ROLE {_sql_ident(user)} LOGIN {'SUPERUSER' if superuser else ''} "
            f"PASSWORD {_sql_literal(password)};\n"
            f"CREATE DATABASE {_sql_ident(database)} OWNER {_sql_ident(user)};\n"
        )
        return Database(self.host, self.port, database, user, password)

    def drop(self, database: str, user: str) -> None:
        self.psql(
            f"DROP DATABASE IF EXISTS {_sql_ident(database)} WITH (FORCE);\n"
            f"DROP ROLE IF EXISTS {_sql_ident(user)};\n"
        )

    def stop(self) -> None:
        if self.process is not None:
            import signal

            self.process.stop(signal.SIGINT)  # fast shutdown
            self.process = None


class RedisServer:
    """A throwaway redis-server on a free loopback port (for the Celery executor)."""

    def __init__(self, base_dir: Path, password: str | None = None) -> None:
        self.base_dir = base_dir
        self.port = free_port()
        self.password = password
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        binary = find_redis_server()
        if binary is None:
            raise RuntimeError("redis-server not found")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.base_dir),
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = ManagedProcess(
            "redis",
            argv,
            {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            self.base_dir,
            self.base_dir / "redis.log",
            drop_caps=False,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"redis-server did not start:\n{tail(self.base_dir / 'redis.log')}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


class UdpSink:
    """Plays a statsd exporter: receives the UDP metrics the Airflow processes send."""

    def __init__(self, port: int) -> None:
        import threading

        self.port = port
        self.packets: list[bytes] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", port))
        self._socket.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self._socket.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            if len(self.packets) < 100_000:
                self.packets.append(data)

    def metric_names(self) -> set[str]:
        names = set()
        for packet in self.packets:
            for line in packet.decode(errors="replace").splitlines():
                names.add(line.split(":", 1)[0])
        return names

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._socket.close()


class TcpListener:
    """Plays a server outside the cluster that a check only connects to (a git host): accepts
    connections on a loopback port and closes them."""

    def __init__(self) -> None:
        import threading

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.5)
        self.port = int(self._socket.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            connection.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._socket.close()
