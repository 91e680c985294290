"""In-cluster Postgres: a StatefulSet on the official `postgres` image with a headless Service."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict
from pulumi_kubernetes.core.v1 import ContainerArgsDict, EnvVarArgsDict, ServiceSpecArgsDict

from .datastore import DataStore, headless_service_spec, statefulset_spec
from .kube import exec_probe, literal, plain_env, secret_env
from .naming import POSTGRES_PORT, Naming
from .resolve import InClusterPostgres
from .secrets import SecretRefs

COMPONENT = "postgres"
# The official image's postgres group: data files belong to it.
POSTGRES_GID = 999
DATA_MOUNT = "/var/lib/postgresql/data"


def postgres_store(postgres: InClusterPostgres) -> DataStore:
    return DataStore(
        component=COMPONENT,
        port_name="postgres",
        port=POSTGRES_PORT,
        image_gid=POSTGRES_GID,
        ephemeral=postgres.storage.ephemeral,
        size=postgres.storage.size,
        storage_class_name=postgres.storage.storage_class_name,
        resources=postgres.resources,
        scratch=(("run", "/var/run/postgresql", "16Mi"), ("tmp", "/tmp", "256Mi")),
        # Postgres keeps its password in the data: an unprotected database that outlived
        # `pulumi destroy` would reject the new password the next `pulumi up` generates.
        keep_on_delete=postgres.protect,
    )


def postgres_service_spec(naming: Naming, postgres: InClusterPostgres) -> ServiceSpecArgsDict:
    return headless_service_spec(naming, postgres_store(postgres))


# The image's entrypoint sets POSTGRES_PASSWORD only when it creates the data directory; after
# that the role keeps whatever password it has. This runs before Postgres on every start and
# sets the role's password to the Secret's, so the Secret is the truth: a rotated (or replaced)
# password takes effect when the pod restarts. It runs a server reachable only on a private
# socket (the local `trust` rule of the image's pg_hba.conf), as the entrypoint does for its
# init scripts. The values reach SQL as psql variables (`:"role"`, `:'password'`), which psql
# quotes itself: no user text is pasted into the SQL or the command line.
PASSWORD_SYNC_SCRIPT = """\
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "new data directory: the entrypoint creates the role with the Secret's password"
  exit 0
fi
socket=$(mktemp -d)
pg_ctl --pgdata="$PGDATA" --wait --silent \\
  -o "-c listen_addresses='' -c unix_socket_directories=$socket" start
status=0
psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 --host="$socket" --username="$POSTGRES_USER" \\
  --dbname=postgres -v role="$POSTGRES_USER" -v password="$POSTGRES_PASSWORD" <<'SQL' || status=$?
ALTER ROLE :"role" WITH PASSWORD :'password';
SQL
pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
if [ "$status" -ne 0 ]; then
  echo "could not set the password of role $POSTGRES_USER from its Secret" >&2
  exit "$status"
fi
echo "role $POSTGRES_USER: password set from its Secret"
"""


def postgres_statefulset_spec(
    naming: Naming,
    postgres: InClusterPostgres,
    secrets: SecretRefs,
    annotations: Mapping[str, pulumi.Input[str]] | None = None,
) -> StatefulSetSpecArgsDict:
    """`annotations` go on the pod template: a changed password must restart Postgres so that
    its password sync runs."""
    assert secrets.postgres_password is not None
    ready_check = ["pg_isready", "-h", "127.0.0.1", "-U", postgres.user, "-d", postgres.database]
    env: list[EnvVarArgsDict] = [
        plain_env("POSTGRES_USER", postgres.user),
        plain_env("POSTGRES_DB", postgres.database),
        secret_env("POSTGRES_PASSWORD", secrets.postgres_password),
        # A subdirectory: the volume root may hold lost+found.
        {"name": "PGDATA", "value": f"{DATA_MOUNT}/pgdata"},
    ]
    container: ContainerArgsDict = {
        "name": "postgres",
        "image": postgres.image,
        "env": env,
        "readiness_probe": exec_probe(ready_check, period=10),
        "liveness_probe": exec_probe(ready_check, period=20, initial_delay=30),
    }
    store = postgres_store(postgres)
    spec = statefulset_spec(naming, store, container, DATA_MOUNT)
    pod = spec["template"]
    main = pod["spec"]["containers"][0]
    pod["spec"]["init_containers"] = [
        {
            "name": "sync-password",
            "image": postgres.image,
            "command": ["sh", "-c", literal(PASSWORD_SYNC_SCRIPT)],
            "env": env,
            "volume_mounts": main["volume_mounts"],
            "resources": main["resources"],
            "security_context": main["security_context"],
        }
    ]
    if annotations:
        pod["metadata"]["annotations"] = dict(annotations)
    return spec
