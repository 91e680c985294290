"""Every `AIRFLOW__S__K` a rendered container sets, checked by the installed Airflow itself."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .kubelet import KubeletError, ObjectStore, PodInfo, resolve_env

PROBE = Path(__file__).with_name("airflow_config_probe.py")


def airflow_env_entries(
    manifests: Sequence[Mapping[str, Any]], store: ObjectStore
) -> list[dict[str, str | None]]:
    """(where, name, final value) of every AIRFLOW__* variable of every rendered container."""
    entries: list[dict[str, str | None]] = []
    for manifest in manifests:
        kind = manifest.get("kind")
        spec = manifest.get("spec") or {}
        if kind == "CronJob":
            pod_spec = spec["jobTemplate"]["spec"]["template"]["spec"]
        elif "template" in spec:
            pod_spec = spec["template"]["spec"]
        else:
            continue
        meta = manifest.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        info = PodInfo(
            name=meta.get("name", ""),
            namespace=namespace,
            labels={},
            annotations={},
            service_account=pod_spec.get("serviceAccountName") or "default",
        )
        for container in [
            *(pod_spec.get("initContainers") or []),
            *(pod_spec.get("containers") or []),
        ]:
            where = f"{kind}/{meta.get('name')}/{container['name']}"
            try:
                env = resolve_env(container, store, info, {})
            except KubeletError:
                env = {}
            declared = [e["name"] for e in container.get("env") or []]
            for source in container.get("envFrom") or []:
                ref = source.get("configMapRef") or source.get("secretRef") or {}
                table = store.config_maps if "configMapRef" in source else store.secrets
                values = table.get((namespace, str(ref.get("name"))), {})
                declared += [(source.get("prefix") or "") + key for key in values]
            for name in dict.fromkeys(declared):
                if not name.startswith("AIRFLOW__"):
                    continue
                value = env.get(name)
                if name.endswith(("_CMD", "_SECRET")):
                    value = None  # never executed / looked up here
                entries.append({"where": where, "name": name, "value": value})
    return entries


def check_with_airflow(venv: Path, entries: list[dict[str, str | None]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="airflow-e2e-config-") as home:
        env = {
            "PATH": f"{venv}/bin:/usr/bin:/bin",
            "HOME": home,
            "AIRFLOW_HOME": home,
            "LANG": "C.UTF-8",
        }
        result = subprocess.run(
            [str(venv / "bin" / "python"), str(PROBE)],
            input=json.dumps(entries),
            capture_output=True,
            text=True,
            env=env,
            cwd=home,
            timeout=180,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"config probe failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def installed_airflow_version(venv: Path) -> str:
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('apache-airflow'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")},
    )
    return result.stdout.strip()
