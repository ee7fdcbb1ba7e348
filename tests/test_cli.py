"""The CLI as users run it: a subprocess, exit codes, output formats."""
from __future__ import annotations

import json
import os
import re
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


def snapshot(tmp_path, strategy="LiveMigrate"):
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "objects.yaml").write_text(RWO_SNAPSHOT % strategy)
    return tmp_path / "snap"


def run(exporter_cmd, *args, env=None):
    return subprocess.run([*exporter_cmd, *args], capture_output=True, text=True, timeout=60, env=env)


def test_check_json_shape_and_exit_1_on_critical(tmp_path, exporter_cmd):
    proc = run(exporter_cmd, "check", "--snapshot", str(snapshot(tmp_path)), "--output", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    [finding] = [f for f in doc["findings"] if f["check"] == "rwo_vm_disks"]
    assert finding == {
        "check": "rwo_vm_disks", "anti_pattern": 1, "severity": "critical",
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
    snap = str(snapshot(tmp_path, "LiveMigrateIfPossible"))  # a warning, no critical
    assert run(exporter_cmd, "check", "--snapshot", snap).returncode == 0
    assert run(exporter_cmd, "check", "--snapshot", snap, "--fail-on", "warning").returncode == 1
    assert run(exporter_cmd, "check", "--snapshot", snap, "--fail-on", "never").returncode == 0


def test_table_output(tmp_path, exporter_cmd):
    proc = run(exporter_cmd, "check", "--snapshot", str(snapshot(tmp_path)))
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["SEVERITY", "CHECK", "OBJECT", "MESSAGE"]
    assert any(line.startswith("critical") and "VirtualMachine prod/db" in line for line in lines)
    assert any(line.startswith("check migration_dirty_rate") and "not_applicable" in line for line in lines)


def test_prom_output_passes_promtool(tmp_path, exporter_cmd):
    promtool = require_binary("promtool")
    proc = run(exporter_cmd, "check", "--snapshot", str(snapshot(tmp_path)), "--output", "prom")
    assert 'ov_rwo_vm_disks{eviction_strategy="LiveMigrate",namespace="prod",vm="db"} 1.0' in proc.stdout
    lint = subprocess.run([promtool, "check", "metrics"], input=proc.stdout, capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stdout.strip() == "" and lint.stderr.strip() == "", lint.stdout + lint.stderr


def test_disable_check_flag(tmp_path, exporter_cmd):
    proc = run(exporter_cmd, "check", "--snapshot", str(snapshot(tmp_path)), "--output", "json",
               "--disable-check", "rwo_vm_disks")
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
    snap = snapshot(tmp_path, "LiveMigrateIfPossible")  # a warning, no critical: exit 0 by default
    (snap / "broken.yaml").write_text("kind: Node\nmetadata: {name: [unclosed\n")
    (snap / "bad-field.yaml").write_text("apiVersion: v1\nkind: Node\nmetadata: {name: w2}\n"
                                         "status: {capacity: {cpu: -4}}\n")
    (snap / "deep.yaml").write_text("apiVersion: v1\nkind: Node\nmetadata: {name: w3}\nspec: "
                                    + "{x: " * 500 + "{}" + "}" * 500 + "\n")
    return snap


def test_skipped_input_is_counted_and_strict_fails_the_run(tmp_path, exporter_cmd):
    snap = str(broken_snapshot(tmp_path))
    proc = run(exporter_cmd, "check", "--snapshot", snap)
    assert proc.returncode == 0, proc.stderr  # a deep object is a problem on that object, not a traceback
    assert "Traceback" not in proc.stderr
    assert ("input: 4 files read (1 failed), 4 objects loaded, 1 skipped, 1 kept without a field, "
            "0 duplicates ignored") in proc.stdout
    assert "skipped deep.yaml: Node: nested more than" in proc.stdout
    assert "dropped bad-field.yaml: Node w2 kept without 1 field(s)" in proc.stdout
    doc = json.loads(run(exporter_cmd, "check", "--snapshot", snap, "--output", "json").stdout)
    assert {k: doc["input"][k] for k in ("files", "failed_files", "skipped_objects", "objects_with_dropped_fields")} \
        == {"files": 4, "failed_files": 1, "skipped_objects": 1, "objects_with_dropped_fields": 1}
    strict = run(exporter_cmd, "check", "--snapshot", snap, "--strict", "--output", "sarif")
    assert strict.returncode == 2
    assert ("--strict: input not read whole: 1 files failed, 1 objects skipped, 1 objects kept without a field"
            in strict.stderr)
    json.loads(strict.stdout)  # the report is still written whole


def test_strict_passes_a_clean_snapshot_through(tmp_path, exporter_cmd):
    snap = str(snapshot(tmp_path))
    assert run(exporter_cmd, "check", "--snapshot", snap, "--strict").returncode == 1  # the critical finding
    assert run(exporter_cmd, "check", "--snapshot", snap, "--strict", "--fail-on", "never").returncode == 0


def test_kinds_absent_from_a_manifests_repository_are_named(tmp_path, exporter_cmd):
    (tmp_path / "vm.yaml").write_text(textwrap.dedent("""
        apiVersion: kubevirt.io/v1
        kind: VirtualMachine
        metadata: {name: db, namespace: prod}
        """))
    proc = run(exporter_cmd, "check", "--snapshot", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    [line] = [l for l in proc.stdout.splitlines() if l.startswith("kinds with no object in the input: ")]
    assert "Node" in line.split(": ")[1].split(", ") and "VirtualMachine" not in line.split(": ")[1].split(", ")
    statuses = {c["id"]: c["status"] for c in json.loads(
        run(exporter_cmd, "check", "--snapshot", str(tmp_path), "--output", "json").stdout)["checks"]}
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
    table = [run(exporter_cmd, "check", *src).stdout.split("\n\n")[0] for src in (("--demo",), ("--snapshot", str(out)))]
    assert table[0] == table[1]
