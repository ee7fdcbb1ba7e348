"""A real Prometheus scrapes a real exporter process: what users run, end to end."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from ov_exporter.checks import CHECK_IDS
from ov_exporter.sources.snapshot import demo_path

from .conftest import Prometheus, free_port, http_get, wait_for

_get = http_get


_wait = wait_for


@pytest.fixture
def exporter(exporter_cmd, env, tmp_path):
    port = free_port()
    log = (tmp_path / "exporter.log").open("w")
    proc = subprocess.Popen(
        [*exporter_cmd, "serve", "--demo", "--listen", f"127.0.0.1:{port}", "--interval", "5"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(f"{url}/readyz")[0] == 200, "exporter /readyz")
        yield url
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0, (tmp_path / "exporter.log").read_text()


@pytest.fixture
def prometheus(exporter, tmp_path):
    prom = Prometheus(tmp_path, [exporter.removeprefix("http://")])
    try:
        _wait(lambda: _get(f"{prom.url}/-/ready")[0] == 200, "prometheus /-/ready")
        yield prom.url
    finally:
        prom.stop()


def query(prom: str, expr: str) -> list[dict]:
    status, body = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body
    return json.loads(body)["data"]["result"]


def test_prometheus_scrapes_the_demo_exporter(prometheus):
    up = _wait(lambda: query(prometheus, 'up{job="ov-exporter"} == 1'), "a successful scrape")
    assert up[0]["metric"]["job"] == "ov-exporter"
    # Every headline gauge arrives in Prometheus with its labels.
    rwo = query(prometheus, 'ov_rwo_vm_disks{eviction_strategy="LiveMigrate"} > 0')
    assert rwo and {"namespace", "vm", "eviction_strategy"} <= set(rwo[0]["metric"])
    assert query(prometheus, "max(ov_cpu_overcommit_ratio) > 1.8")
    assert query(prometheus, "ov_rhel_nodes == 1")
    assert query(prometheus, "ov_mtu_mismatch > 0")
    assert query(prometheus, "ov_migration_dirty_rate_risk >= 1")
    assert query(prometheus, "ov_memory_overcommit_ratio > 0.9")
    assert query(prometheus, 'ov_vm_scheduling_issue{issue="pinned", eviction_strategy="LiveMigrate"} == 1')
    assert query(prometheus, 'ov_vmi_unschedulable{phase="Scheduling"} == 1')
    assert query(prometheus, 'ov_vm_resource_limit_ratio{resource="memory", source="vm"} <= 1')
    # Self-metrics: all checks up, none failed.
    assert len(query(prometheus, "ov_check_up == 1")) == len(CHECK_IDS)
    assert query(prometheus, 'ov_vm_migration_blocked{vm="sap-hana-01"}')
    # The scrape was OpenMetrics (Prometheus asks for it first) and parsed without errors.
    targets = json.loads(_get(f"{prometheus}/api/v1/targets")[1])["data"]["activeTargets"]
    assert targets[0]["health"] == "up" and targets[0]["lastError"] == ""


def test_demo_is_packaged():
    assert Path(demo_path(), "README.md").is_file()
