"""The CLI as users run it: a subprocess, exit codes, output formats."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
from ov_exporter.checks import CHECK_IDS

from .conftest import require_binary

RWO_SNAPSHOT = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: w1, labels: {kubevirt.io/schedulable: "true", node.openshift.io/os_id: rhcos}}
  status: {capacity: {cpu: "64", memory: 256Gi}}
- apiVersion: kubevirt.io/v1
  kind: VirtualMachine
  metadata: {name: db, namespace: prod}
  spec:
    template:
      spec:
        evictionStrategy: %s
        volumes: [{name: d, persistentVolumeClaim: {claimName: db-disk}}]
- apiVersion: v1
  kind: PersistentVolumeClaim
  metadata: {name: db-disk, namespace: prod}
  spec: {accessModes: [ReadWriteOnce]}
"""
# The VM's running instance: its RWO disk then blocks the next drain (a warning).
RUNNING_VMI = """
- apiVersion: kubevirt.io/v1
  kind: VirtualMachineInstance
  metadata: {name: db, namespace: prod}
  spec:
    evictionStrategy: %s
    volumes: [{name: d, persistentVolumeClaim: {claimName: db-disk}}]
  status: {phase: Running, nodeName: w1}
"""


def snapshot(tmp_path, strategy="LiveMigrate", running=True):
    (tmp_path / "snap").mkdir(parents=True)
    text = RWO_SNAPSHOT % strategy + (RUNNING_VMI % strategy if running else "")
    (tmp_path / "snap" / "objects.yaml").write_text(text)
    return tmp_path / "snap"


def run(exporter_cmd, *args, env=None):
    return subprocess.run([*exporter_cmd, *args], capture_output=True, text=True, timeout=60, env=env)


def test_check_json_shape_and_exit_1_on_a_warning_by_default(tmp_path, exporter_cmd):
    proc = run(exporter_cmd, "check", "--snapshot", str(snapshot(tmp_path)), "--output", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    [finding] = [f for f in doc["findings"] if f["check"] == "rwo_vm_disks"]
    assert finding == {
        "check": "rwo_vm_disks",
        "anti_pattern": 1,
        "severity": "warning",
        "object": {"kind": "VirtualMachine", "namespace": "prod", "name": "db"},
        "message": finding["message"],
        "remediation": finding["remediation"],
        "runbook": "runbooks/rwo_vm_disks.md",
    }
    assert "db-disk" in finding["message"] and "ReadWriteMany" in finding["remediation"]
    assert {c["id"] for c in doc["checks"]} == set(CHECK_IDS)
    statuses = {c["id"]: c["status"] for c in doc["checks"]}
    assert statuses["rwo_vm_disks"] == "ok"
    assert statuses["migration_dirty_rate"] == "not_applicable"  # no samples in this snapshot
    assert all(set(c) == {"id", "anti_pattern", "status", "error"} for c in doc["checks"])


def test_fail_on_levels(tmp_path, exporter_cmd):
    running = str(snapshot(tmp_path / "a", "LiveMigrateIfPossible"))  # a warning, no critical
    assert run(exporter_cmd, "check", "--snapshot", running).returncode == 1
    assert run(exporter_cmd, "check", "--snapshot", running, "--fail-on", "critical").returncode == 0
    assert run(exporter_cmd, "check", "--snapshot", running, "--fail-on", "never").returncode == 0
    # The stopped VM's RWO disk is info (node w1's missing remediation, a warning, is left out).
    stopped = [str(snapshot(tmp_path / "b", running=False)), "--disable-check", "node_failure_planning"]
    assert run(exporter_cmd, "check", "--snapshot", *stopped).returncode == 0
    assert run(exporter_cmd, "check", "--snapshot", *stopped, "--fail-on", "info").returncode == 1


def test_table_output(tmp_path, exporter_cmd):
    proc = run(exporter_cmd, "check", "--snapshot", str(snapshot(tmp_path)))
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["SEVERITY", "CHECK", "OBJECT", "MESSAGE"]
    assert any(line.startswith("warning") and "VirtualMachine prod/db" in line for line in lines)
    assert any(line.startswith("check migration_dirty_rate") and "not_applicable" in line for line in lines)


def test_prom_output_passes_promtool(tmp_path, exporter_cmd):
    promtool = require_binary("promtool")
    proc = run(exporter_cmd, "check", "--snapshot", str(snapshot(tmp_path)), "--output", "prom")
    assert 'ov_rwo_vm_disks{eviction_strategy="LiveMigrate",namespace="prod",node="w1",vm="db"} 1.0' in proc.stdout
    lint = subprocess.run([promtool, "check", "metrics"], input=proc.stdout, capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stdout.strip() == "" and lint.stderr.strip() == "", lint.stdout + lint.stderr


def test_disable_check_flag(tmp_path, exporter_cmd):
    proc = run(
        exporter_cmd,
        "check",
        "--snapshot",
        str(snapshot(tmp_path, running=False)),
        "--output",
        "json",
        "--fail-on",
        "info",
        "--disable-check",
        "rwo_vm_disks",
        "--disable-check",
        "migration_readiness",
        "--disable-check",
        "node_failure_planning",
    )
    doc = json.loads(proc.stdout)
    assert "rwo_vm_disks" not in {c["id"] for c in doc["checks"]}
    assert proc.returncode == 0


@pytest.mark.parametrize(
    "args, needle",
    [
        ((), "--demo"),
        (("--snapshot", "/does/not/exist"), "/does/not/exist"),
        (("--demo", "--disable-check", "nope"), "nope"),
        (("--demo", "--migration-link-speed", "fast"), "migration-link-speed"),
    ],
)
def test_usage_errors_exit_2(exporter_cmd, args, needle, tmp_path):
    # No kubeconfig anywhere and not in a cluster: the live default must say so.
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    env["HOME"] = str(tmp_path)
    proc = run(exporter_cmd, "check", *args, env=env)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


def test_config_error_exits_2_naming_the_key(tmp_path, exporter_cmd):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("thresholds:\n  cpu-overcommit-maximum: 3\n")
    proc = run(exporter_cmd, "check", "--demo", "--config", str(cfg))
    assert proc.returncode == 2 and "cpu-overcommit-maximum" in proc.stderr and str(cfg) in proc.stderr


def test_demo_and_snapshot_are_exclusive(exporter_cmd, tmp_path):
    proc = run(exporter_cmd, "check", "--demo", "--snapshot", str(tmp_path))
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


# ---------------------------------------------------------------- the clock of a snapshot

MIGRATION_SNAPSHOT = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: w1, labels: {kubevirt.io/schedulable: "true"}}
  status: {capacity: {cpu: "64", memory: 256Gi}}
- apiVersion: kubevirt.io/v1
  kind: VirtualMachineInstance
  metadata: {name: db, namespace: prod}
  status: {phase: Running, nodeName: w1}
- apiVersion: kubevirt.io/v1
  kind: VirtualMachineInstanceMigration
  metadata: {name: move-db, namespace: prod, uid: u1, creationTimestamp: "%(start)s"}
  spec: {vmiName: db}
  status:
    phase: Succeeded
    migrationState: {startTimestamp: "%(start)s", endTimestamp: "%(end)s", completed: true}
"""


def _gauge(prom: str, name: str) -> float:
    [value] = [line.split()[-1] for line in prom.splitlines() if line.startswith(name + " ")]
    return float(value)


def migration_snapshot(tmp_path, end):
    """A dump (no capture time) whose only, newest, migration ended at `end`."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    snap = tmp_path / "dump"
    snap.mkdir()
    start = end - timedelta(minutes=2)
    (snap / "objects.yaml").write_text(MIGRATION_SNAPSHOT % {"start": start.strftime(fmt), "end": end.strftime(fmt)})
    return snap


def test_a_dump_whose_newest_migration_is_11_days_old_reads_closed(tmp_path, exporter_cmd):
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=11)
    snap = str(migration_snapshot(tmp_path, end))
    proc = run(exporter_cmd, "check", "--snapshot", snap, "--output", "prom", "--fail-on", "never")
    assert proc.returncode == 0, proc.stderr
    assert _gauge(proc.stdout, "ov_rebalance_watch_active") == 0
    assert _gauge(proc.stdout, "ov_rebalance_evaluation_timestamp_seconds") > end.timestamp() + 10 * 86400
    # --at judges it as of an hour after the migration: the watch is open.
    at = (end + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    proc = run(exporter_cmd, "check", "--snapshot", snap, "--output", "prom", "--at", at)
    assert _gauge(proc.stdout, "ov_rebalance_watch_active") == 1
    assert _gauge(proc.stdout, "ov_rebalance_evaluation_timestamp_seconds") == end.timestamp() + 3600
    proc = run(exporter_cmd, "check", "--snapshot", snap, "--at", at, "--fail-on", "never")
    assert f"judged at {at} (--at)" in proc.stdout


def test_bad_at_is_a_usage_error(tmp_path, exporter_cmd):
    snap = str(snapshot(tmp_path))
    proc = run(exporter_cmd, "check", "--snapshot", snap, "--at", "2025-01-20 09:30")
    assert proc.returncode == 2 and "--at" in proc.stderr and "RFC 3339" in proc.stderr
    proc = run(exporter_cmd, "check", "--snapshot", snap, "--at", "yesterday")
    assert proc.returncode == 2 and "'yesterday' is not an RFC 3339 time" in proc.stderr


def test_a_snapshot_is_judged_at_its_capture_time(tmp_path, exporter_cmd):
    end = datetime(2025, 1, 9, 8, 0, tzinfo=timezone.utc)
    snap = migration_snapshot(tmp_path, end)
    (snap / "captured-at").write_text("2025-01-09T10:00:00Z\n")
    proc = run(exporter_cmd, "check", "--snapshot", str(snap), "--output", "prom")
    assert _gauge(proc.stdout, "ov_rebalance_evaluation_timestamp_seconds") == end.timestamp() + 7200
    assert _gauge(proc.stdout, "ov_rebalance_watch_active") == 1
    # `ov-exporter snapshot` keeps the capture time of what it read.
    out = tmp_path / "copy"
    proc = run(exporter_cmd, "snapshot", "--snapshot", str(snap), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "captured-at").read_text() == "2025-01-09T10:00:00Z\n"
    proc = run(exporter_cmd, "check", "--snapshot", str(out), "--output", "prom")
    assert _gauge(proc.stdout, "ov_rebalance_watch_active") == 1


def test_a_must_gather_is_judged_at_its_timestamp_file(tmp_path, exporter_cmd):
    """oc adm must-gather appends Go's time.Time.String() at start and end to <dest-dir>/timestamp;
    the dumps sit in an image-named directory below it."""
    end = datetime(2025, 1, 9, 8, 0, tzinfo=timezone.utc)
    snap = migration_snapshot(tmp_path, end)
    (tmp_path / "timestamp").write_text(
        "2025-01-09 09:58:01.047513541 +0000 UTC m=+0.262727431\n"
        "2025-01-09 10:00:00.530573302 +0000 UTC m=+119.745787192\n"
    )
    proc = run(exporter_cmd, "check", "--snapshot", str(snap), "--output", "prom")
    assert _gauge(proc.stdout, "ov_rebalance_evaluation_timestamp_seconds") == pytest.approx(end.timestamp() + 7200.53)
    assert _gauge(proc.stdout, "ov_rebalance_watch_active") == 1


# ---------------------------------------------------------------- failing closed on input (issue 12)


def test_empty_snapshot_exits_2(tmp_path, exporter_cmd):
    proc = run(exporter_cmd, "check", "--snapshot", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nothing loaded" in proc.stderr and "Traceback" not in proc.stderr and proc.stdout == ""


def test_snapshot_where_every_file_fails_exits_2(tmp_path, exporter_cmd):
    (tmp_path / "a.yaml").write_text("kind: Node\nmetadata: {name: [unclosed\n")
    (tmp_path / "b.json").write_text("{not json")
    proc = run(exporter_cmd, "check", "--snapshot", str(tmp_path))
    assert proc.returncode == 2
    assert "every file failed to load (2 of 2)" in proc.stderr
    assert "skipped a.yaml: invalid YAML" in proc.stderr and "skipped b.json: invalid JSON" in proc.stderr


def test_snapshot_without_any_object_the_checks_read_exits_2(tmp_path, exporter_cmd):
    (tmp_path / "deploy.yaml").write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
    proc = run(exporter_cmd, "check", "--snapshot", str(tmp_path), "--output", "json")
    assert proc.returncode == 2 and "nothing loaded (1 files read" in proc.stderr


def broken_snapshot(tmp_path):
    snap = snapshot(tmp_path, "LiveMigrateIfPossible", running=False)  # stopped: an info finding only
    (snap / "broken.yaml").write_text("kind: Node\nmetadata: {name: [unclosed\n")
    (snap / "bad-field.yaml").write_text(
        "apiVersion: v1\nkind: Node\nmetadata: {name: w2}\nstatus: {capacity: {cpu: -4}}\n"
    )
    (snap / "deep.yaml").write_text(
        "apiVersion: v1\nkind: Node\nmetadata: {name: w3}\nspec: " + "{x: " * 500 + "{}" + "}" * 500 + "\n"
    )
    return snap


def test_skipped_input_is_counted_and_strict_fails_the_run(tmp_path, exporter_cmd):
    snap = str(broken_snapshot(tmp_path))
    proc = run(exporter_cmd, "check", "--snapshot", snap, "--fail-on", "never")
    assert proc.returncode == 0, proc.stderr  # a deep object is a problem on that object, not a traceback
    assert "Traceback" not in proc.stderr
    assert (
        "input: 4 files read (1 failed), 4 objects loaded, 1 skipped, 1 kept without a field, 0 duplicates ignored"
    ) in proc.stdout
    assert "skipped deep.yaml: Node: nested more than" in proc.stdout
    assert "dropped bad-field.yaml: Node w2 kept without 1 field(s)" in proc.stdout
    doc = json.loads(run(exporter_cmd, "check", "--snapshot", snap, "--output", "json").stdout)
    assert {
        k: doc["input"][k] for k in ("files", "failed_files", "skipped_objects", "objects_with_dropped_fields")
    } == {"files": 4, "failed_files": 1, "skipped_objects": 1, "objects_with_dropped_fields": 1}
    strict = run(exporter_cmd, "check", "--snapshot", snap, "--strict", "--output", "sarif")
    assert strict.returncode == 2
    assert (
        "--strict: input not read whole: 1 files failed, 1 objects skipped, 1 objects kept without a field"
        in strict.stderr
    )
    json.loads(strict.stdout)  # the report is still written whole


def test_strict_passes_a_clean_snapshot_through(tmp_path, exporter_cmd):
    snap = str(snapshot(tmp_path))
    assert run(exporter_cmd, "check", "--snapshot", snap, "--strict").returncode == 1  # the warning finding
    assert run(exporter_cmd, "check", "--snapshot", snap, "--strict", "--fail-on", "never").returncode == 0


def test_kinds_absent_from_a_manifests_repository_are_named(tmp_path, exporter_cmd):
    (tmp_path / "vm.yaml").write_text(
        textwrap.dedent("""
        apiVersion: kubevirt.io/v1
        kind: VirtualMachine
        metadata: {name: db, namespace: prod}
        """)
    )
    proc = run(exporter_cmd, "check", "--snapshot", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("kinds with no object in the input: ")]
    assert "Node" in line.split(": ")[1].split(", ") and "VirtualMachine" not in line.split(": ")[1].split(", ")
    statuses = {
        c["id"]: c["status"]
        for c in json.loads(run(exporter_cmd, "check", "--snapshot", str(tmp_path), "--output", "json").stdout)[
            "checks"
        ]
    }
    assert statuses["cpu_overcommit"] == "not_applicable"  # no Nodes: not judged, not passed
    assert re.search(r"check cpu_overcommit +not_applicable .*no Node object in snapshot", proc.stdout)


def test_snapshot_then_check_gives_identical_findings(tmp_path, exporter_cmd):
    out = tmp_path / "snap"
    assert run(exporter_cmd, "snapshot", "--demo", "--out", str(out)).returncode == 0
    demo = run(exporter_cmd, "check", "--demo", "--output", "json")
    again = run(exporter_cmd, "check", "--snapshot", str(out), "--output", "json")
    assert demo.returncode == again.returncode == 1
    a, b = json.loads(demo.stdout), json.loads(again.stdout)
    assert json.dumps(a["findings"]) == json.dumps(b["findings"])
    assert a["checks"] == b["checks"] and a["score"] == b["score"]
    table = [
        run(exporter_cmd, "check", *src).stdout.split("\n\n")[0] for src in (("--demo",), ("--snapshot", str(out)))
    ]
    assert table[0] == table[1]
