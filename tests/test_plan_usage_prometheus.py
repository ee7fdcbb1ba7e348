"""`ov-exporter plan --prometheus-url` end to end: a real Prometheus holding a quarter of an
hour of node_exporter and KubeVirt series (backfilled with promtool, ending now) and the fake
API server holding a cluster whose allocation is even but whose measured usage is not. The
plan on usage moves the busy VMs off the busy node; the same cluster on allocation needs none."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from . import backfill as bf
from .conftest import Prometheus, http_get, require_binary, wait_for
from .fakeapi.server import FakeAPIServer
from .test_plan_usage import BUSY, GI, NODE_USE, NODES, _balanced

STEP = 15
SPAN = 900  # 15 minutes of samples: the 5-minute rate and average windows are full
CPUS = 2  # node_exporter series per node (the utilisation is their average)


def _writer(end: int) -> bf.Writer:
    """node_exporter and virt-handler as they would have been scraped, at NODE_USE and BUSY."""
    times = list(range(end - SPAN, end + 1, STEP))
    w = bf.Writer(times)
    start = times[0]
    w.family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.")
    for node in NODES:
        idle = 1 - NODE_USE[node][0]
        for cpu in range(CPUS):
            labels = bf._labels(cpu=str(cpu), instance=f"{node}:9100", job="node-exporter", mode="idle")
            w.series("node_cpu_seconds_total", labels, lambda t, idle=idle: 1000 + (t - start) * idle)
    w.family("node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes.")
    for node in NODES:
        w.series(
            "node_memory_MemTotal_bytes", bf._labels(instance=f"{node}:9100", job="node-exporter"), lambda t: 64 * GI
        )
    w.family("node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable_bytes.")
    for node in NODES:
        free = (1 - NODE_USE[node][1]) * 64 * GI
        labels = bf._labels(instance=f"{node}:9100", job="node-exporter")
        w.series("node_memory_MemAvailable_bytes", labels, lambda t, free=free: free)
    where = {f"vm-{i}{j}": node for i, node in enumerate(NODES) for j in range(2)}
    w.family("kubevirt_vmi_cpu_usage_seconds_total", "counter", "Total CPU time spent in all modes.")
    for name, (cores, _resident) in BUSY.items():
        labels = bf._labels(name=name, namespace="vms", node=where[name])
        w.series("kubevirt_vmi_cpu_usage_seconds_total", labels, lambda t, cores=cores: 50 + (t - start) * cores)
    w.family("kubevirt_vmi_memory_resident_bytes", "gauge", "Resident set size of the process running the domain.")
    for name, (_cores, resident) in BUSY.items():
        labels = bf._labels(name=name, namespace="vms", node=where[name])
        w.series("kubevirt_vmi_memory_resident_bytes", labels, lambda t, resident=resident: resident)
    return w


@pytest.fixture
def prometheus(tmp_path):
    promtool = require_binary("promtool")
    end = int(time.time()) - 5
    data = tmp_path / "data"
    for path in bf.write_files(tmp_path / "om", end, _writer(end)):
        proc = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(data)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"{path.name}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    prom = Prometheus(tmp_path, [], job="none", data_dir=data)
    try:
        wait_for(lambda: http_get(f"{prom.url}/-/ready")[0] == 200, "prometheus /-/ready", logs=[prom.log])
        yield prom, end
    finally:
        prom.stop()


async def _plan(kubeconfig: str, url: str, *extra: str) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ov_exporter",
        "plan",
        "--kubeconfig",
        kubeconfig,
        "--prometheus-url",
        url,
        "--output",
        "json",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


async def test_plan_on_usage_from_a_real_prometheus_moves_the_busy_vms(prometheus, tmp_path):
    prom, end = prometheus
    api = FakeAPIServer(token="t")
    for obj in _balanced():
        api.add(obj)
    await api.start()
    try:
        kubeconfig = str(api.write_kubeconfig(tmp_path / "kc", token="t"))
        usage = await _plan(kubeconfig, prom.url)
        allocation = await _plan(kubeconfig, prom.url, "--basis", "allocation")
    finally:
        await api.stop()
    basis = usage["basis"]
    assert basis["kind"] == "usage" and basis["window"] == "5m"
    assert basis["fallback_nodes"] == [] and basis["fallback_vms"] == []
    assert end - 300 <= basis["at"] <= time.time()  # the instant the queries were answered
    nodes = {n["node"]: n for n in usage["nodes"]}
    for node in NODES:  # Prometheus's answers are the utilisation the series were written at
        assert nodes[node]["cpu_before"] == pytest.approx(NODE_USE[node][0], abs=0.01)
        assert nodes[node]["memory_before"] == pytest.approx(NODE_USE[node][1], abs=0.01)
    moves = [m for w in usage["waves"] for m in w["moves"]]
    assert moves and usage["spread"]["after"] < usage["spread"]["before"] - 0.1
    assert {m["vm"] for m in moves if m["source"] == "worker-0"} <= {"vm-00", "vm-01"}
    assert any(m["source"] == "worker-0" for m in moves)
    # The same cluster on allocation: even, no plan.
    assert allocation["basis"]["kind"] == "allocation" and allocation["waves"] == []
    assert allocation["spread"]["before"] == pytest.approx(0.0)
