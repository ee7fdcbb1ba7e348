"""The CLI as users run it: a subprocess, exit codes, output formats."""
from __future__ import annotations

import json
import os
import subprocess
import textwrap

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
        "check": "rwo_vm_disks", "anti_pattern": 1, "severity": "warning",
        "object": {"kind": "VirtualMachine", "namespace": "prod", "name": "db"},
        "message": finding["message"], "remediation": finding["remediation"], "runbook": "runbooks/rwo_vm_disks.md",
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
    proc = run(exporter_cmd, "check", "--snapshot", str(snapshot(tmp_path, running=False)), "--output", "json",
               "--fail-on", "info", "--disable-check", "rwo_vm_disks", "--disable-check", "migration_readiness",
               "--disable-check", "node_failure_planning")
    doc = json.loads(proc.stdout)
    assert "rwo_vm_disks" not in {c["id"] for c in doc["checks"]}
    assert proc.returncode == 0


@pytest.mark.parametrize("args, needle", [
    ((), "--demo"),
    (("--snapshot", "/does/not/exist"), "/does/not/exist"),
    (("--demo", "--disable-check", "nope"), "nope"),
    (("--demo", "--migration-link-speed", "fast"), "migration-link-speed"),
])
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
