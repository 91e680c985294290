"""The backup CronJob's script under a real shell: a failed dump must fail the Job.

The rendered command runs with `sh` exactly as the container would, its `/backups` mount mapped
to a temporary directory (as the kubelet maps the claim) and `pg_dump` replaced by a stand-in
that succeeds or fails like the real one (the real one runs in tests/e2e/test_backups.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.harness.kubelet import expand_command
from tests.support.rendering import render_stack

FAKE_PG_DUMP = """#!/bin/sh
# Writes part of a dump, then exits like pg_dump does on an auth or connection error.
for arg in "$@"; do case "$arg" in --file=*) out="${arg#--file=}";; esac; done
printf 'PGDMP partial' > "$out"
if [ "$FAKE_PG_DUMP_FAIL" = 1 ]; then echo 'pg_dump: auth failed' >&2; exit 1; fi
printf ' complete' >> "$out"
"""


def run_backup(tmp_path: Path, fail: bool) -> subprocess.CompletedProcess[str]:
    cron = render_stack("staging").one("CronJob", "airflow-backup")
    container = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    (mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "backups"]
    # As the kubelet runs it: `$(VAR)` references expanded, `$$` turned back into `$`.
    command, _ = expand_command(container, {})
    command = [part.replace(mount, str(tmp_path / "backups")) for part in command]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pg_dump"
    fake.write_text(FAKE_PG_DUMP)
    fake.chmod(0o755)
    (tmp_path / "backups").mkdir(exist_ok=True)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_PG_DUMP_FAIL": "1" if fail else "0"}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


def test_a_failing_dump_fails_the_job_and_leaves_no_partial_file(tmp_path: Path) -> None:
    good = run_backup(tmp_path, fail=False)
    assert good.returncode == 0, good.stderr
    dumps = sorted((tmp_path / "backups").iterdir())
    assert [p.suffix for p in dumps] == [".dump"]
    assert dumps[0].read_text() == "PGDMP partial complete"
    os.utime(dumps[0], (1, 1))  # an older backup
    bad = run_backup(tmp_path, fail=True)
    assert bad.returncode != 0, "the Job reported success although pg_dump failed"
    assert sorted((tmp_path / "backups").iterdir()) == dumps, "partial file left or dump lost"


def test_old_dumps_beyond_keep_are_removed_newest_kept(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    for day in range(1, 10):
        old = backups / f"airflow-202601{day:02d}T000000Z.dump"
        old.write_text("old")
        os.utime(old, (day * 1000, day * 1000))
    (backups / "airflow-20251231T000000Z.dump.partial").write_text("cut short")
    assert run_backup(tmp_path, fail=False).returncode == 0
    kept = sorted(p.name for p in backups.iterdir())
    # staging keeps 7: the new dump and the 6 newest old ones; no stale partial file.
    assert len(kept) == 7 and not any(name.endswith(".partial") for name in kept)
    assert "airflow-20260109T000000Z.dump" in kept and "airflow-20260103T000000Z.dump" not in kept
