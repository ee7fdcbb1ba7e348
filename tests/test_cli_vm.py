"""`ov-exporter check --vm NS/NAME`: one VM's live-migration readiness, as users run it
(a subprocess against the demo, a snapshot directory and the fake API server)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
import yaml
from ov_exporter.sources.live import LiveSource, load_credentials
from ov_exporter.store import Store

from .fakeapi.server import FakeAPIServer

HANDLER = "kubevirt.io=virt-handler"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ov_exporter", "check", *args], capture_output=True, text=True, timeout=120
    )


def node(name: str, **labels: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubevirt.io/schedulable": "true", "node-role.kubernetes.io/worker": "", **labels},
        },
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi"},
            "capacity": {"cpu": "16", "memory": "64Gi"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod(name: str, node_name: str, ready: bool, component: str = "virt-handler") -> dict:
    status = "True" if ready else "False"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "openshift-cnv", "labels": {"kubevirt.io": component}},
        "spec": {"nodeName": node_name},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": status}]},
    }


def vm(ns: str, name: str, strategy: str = "LiveMigrate", claim: str | None = None) -> dict:
    volumes = [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}] if claim else []
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "runStrategy": "Always",
            "template": {
                "spec": {
                    "evictionStrategy": strategy,
                    "domain": {"cpu": {"cores": 4}, "memory": {"guest": "8Gi"}},
                    "volumes": volumes,
                }
            },
        },
    }


def vmi(ns: str, name: str, node_name: str) -> dict:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "domain": {"cpu": {"cores": 4}, "memory": {"guest": "8Gi"}, "resources": {"requests": {"memory": "8Gi"}}}
        },
        "status": {
            "phase": "Running",
            "nodeName": node_name,
            "conditions": [{"type": "LiveMigratable", "status": "True"}],
        },
    }


def pvc(ns: str, name: str, mode: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"accessModes": [mode]},
        "status": {"phase": "Bound", "accessModes": [mode]},
    }


def small_cluster() -> list[dict]:
    """w1 runs `app/stuck` (RWO disk, its virt-handler not Ready) and `app/fine` is on w2."""
    return [
        node("w1"),
        node("w2"),
        node("w3"),
        pod("virt-handler-w1", "w1", ready=False),
        pod("virt-handler-w2", "w2", ready=True),
        pod("virt-handler-w3", "w3", ready=True),
        # a Ready virt-launcher pod on w1 must not count as its virt-handler
        pod("virt-launcher-x", "w1", ready=True, component="virt-launcher"),
        vm("app", "stuck", claim="stuck-disk"),
        vmi("app", "stuck", "w1"),
        pvc("app", "stuck-disk", "ReadWriteOnce"),
        vm("app", "fine", claim="fine-disk"),
        vmi("app", "fine", "w2"),
        pvc("app", "fine-disk", "ReadWriteMany"),
    ]


# ---------------------------------------------------------------- the demo


def test_demo_vm_with_two_reasons_is_blocked_with_both_and_their_fixes():
    proc = run("--demo", "--vm", "erp/sap-hana-01")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert out.startswith("VirtualMachine erp/sap-hana-01 on node worker-3: BLOCKED (warning)")
    assert "2 blocking reason(s)" in out and "rwo_disk:" in out and "no_target_node:" in out
    assert out.count("fix: ") == 2 and "RWX storage class" in out


def test_demo_verdict_as_json():
    proc = run("--demo", "--vm", "erp/sap-hana-01", "--output", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["namespace"], doc["vm"], doc["migratable"], doc["severity"]) == ("erp", "sap-hana-01", False, "warning")
    assert [r["reason"] for r in doc["reasons"]] == ["rwo_disk", "no_target_node"]
    assert all(r["remediation"] and r["detail"] for r in doc["reasons"])
    assert doc["eviction_strategy"] == "LiveMigrate" and doc["problems"] == []


def test_demo_migratable_vm_exits_0():
    proc = run("--demo", "--vm", "prod-web/web-frontend-01")
    assert proc.returncode == 0, proc.stderr
    assert "prod-web/web-frontend-01 on node worker-1: MIGRATABLE" in proc.stdout
    doc = json.loads(run("--demo", "--vm", "prod-web/web-frontend-01", "--output", "json").stdout)
    assert doc["migratable"] is True and doc["reasons"] == [] and doc["severity"] == "none"


def test_demo_stopped_vm_is_blocked_only_by_not_running():
    proc = run("--demo", "--vm", "batch-jobs/quarter-close-01", "--output", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["reason"] for r in doc["reasons"]] == ["not_running"] and doc["severity"] == "info"
    assert doc["running"] is False and doc["node"] == ""


def test_demo_vm_on_a_node_whose_virt_handler_crash_loops():
    doc = json.loads(run("--demo", "--vm", "dev-sandbox/dev-centos-stream9-01", "--output", "json").stdout)
    assert [r["reason"] for r in doc["reasons"]] == ["virt_handler_not_ready"]
    assert "rhel-worker-0" in doc["reasons"][0]["detail"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--vm", "erp/no-such-vm"), "VirtualMachine erp/no-such-vm not found in embedded demo cluster"),
        (("--vm", "sap-hana-01"), "--vm: expected NAMESPACE/NAME, got 'sap-hana-01'"),
        (("--vm", "erp/a/b"), "--vm: expected NAMESPACE/NAME"),
        (("--vm", "erp/sap-hana-01", "--output", "prom"), "--vm prints a verdict"),
    ],
)
def test_errors_exit_2_with_a_clear_message(args, message):
    proc = run("--demo", *args)
    assert proc.returncode == 2 and message in proc.stderr, (proc.returncode, proc.stderr)
    assert proc.stdout == ""


# ---------------------------------------------------------------- a snapshot directory


def test_snapshot_dir_verdicts(tmp_path):
    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "objects.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": small_cluster()}))
    proc = run("--snapshot", str(snap), "--vm", "app/stuck", "--output", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["reason"] for r in doc["reasons"]] == ["rwo_disk", "virt_handler_not_ready"]
    assert doc["severity"] == "warning" and doc["node"] == "w1"
    proc = run("--snapshot", str(snap), "--vm", "app/fine")
    assert proc.returncode == 0 and "MIGRATABLE" in proc.stdout, proc.stdout + proc.stderr


# ---------------------------------------------------------------- the fake API server


@pytest.fixture
async def api():
    server = FakeAPIServer(token="s3cret", bookmark_interval=0.2)
    for obj in small_cluster():
        server.add(obj)
    await server.start()
    yield server
    await server.stop()


async def test_live_cluster_verdict_through_the_cli(api, tmp_path):
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kc", token="s3cret"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ov_exporter",
        "check",
        "--kubeconfig",
        kubeconfig,
        "--vm",
        "app/stuck",
        "--output",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 1, err.decode()
    doc = json.loads(out)
    assert [r["reason"] for r in doc["reasons"]] == ["rwo_disk", "virt_handler_not_ready"]
    pod_requests = [r for r in api.requests if r.path == "/api/v1/pods"]
    assert pod_requests and all(r.query.get("labelSelector") == HANDLER for r in pod_requests)


async def test_live_source_lists_and_watches_only_virt_handler_pods(api, tmp_path):
    kubeconfig = api.write_kubeconfig(tmp_path / "kc", token="s3cret")
    source = LiveSource(credentials=load_credentials(str(kubeconfig), None))
    store = Store()
    task = asyncio.create_task(source.run(store.apply))
    try:
        deadline = time.monotonic() + 15
        while not store.synced:
            assert time.monotonic() < deadline, "first sync"
            await asyncio.sleep(0.02)
        names = lambda: sorted(p.metadata.name for p in store.state().of("pods"))  # noqa: E731
        assert names() == ["virt-handler-w1", "virt-handler-w2", "virt-handler-w3"]
        # watch events honour the selector too: a new launcher pod never arrives, a new handler does
        api.add(pod("virt-launcher-y", "w2", ready=True, component="virt-launcher"))
        api.add(pod("virt-handler-w4", "w4", ready=True))
        while "virt-handler-w4" not in names():
            assert time.monotonic() < deadline, "watch event for the new virt-handler"
            await asyncio.sleep(0.02)
        assert "virt-launcher-y" not in names()
        watches = [r for r in api.requests if r.path == "/api/v1/pods" and r.query.get("watch") == "true"]
        assert watches and all(r.query.get("labelSelector") == HANDLER for r in watches)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
