"""The exporter over real HTTP: payloads, content negotiation, endpoints, promtool lint."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess

import aiohttp
import pytest
from aiohttp import web
from ov_exporter.checks import CHECKS
from ov_exporter.config import Config
from ov_exporter.events import Synced
from ov_exporter.server import Exporter
from ov_exporter.sources import SnapshotSource
from ov_exporter.sources.base import Source

from .conftest import require_binary

SNAPSHOT = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata: {name: w1, labels: {kubevirt.io/schedulable: "true", node.openshift.io/os_id: rhel}}
  status: {capacity: {cpu: "8", memory: 32Gi}}
- apiVersion: kubevirt.io/v1
  kind: VirtualMachine
  metadata: {name: "db<script>", namespace: prod}
  spec:
    template:
      spec:
        evictionStrategy: LiveMigrate
        volumes: [{name: d, persistentVolumeClaim: {claimName: db-disk}}]
- apiVersion: kubevirt.io/v1
  kind: VirtualMachineInstance
  metadata: {name: "db<script>", namespace: prod}
  spec: {domain: {cpu: {cores: 4}, memory: {guest: 8Gi}}}
  status: {nodeName: w1, phase: Running}
- apiVersion: v1
  kind: PersistentVolumeClaim
  metadata: {name: db-disk, namespace: prod}
  spec: {accessModes: [ReadWriteOnce]}
"""


async def start(exporter: Exporter):
    runner = web.AppRunner(exporter.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def served(tmp_path):
    (tmp_path / "objects.yaml").write_text(SNAPSHOT)
    (tmp_path / "dirty.prom").write_text(
        'kubevirt_vmi_dirty_rate_bytes_per_second{namespace="prod",name="db<script>",node="w1"} 1e9\n'
    )
    exporter = Exporter(SnapshotSource(tmp_path), Config(), interval=3600)
    runner, url = await start(exporter)
    await exporter.wait_evaluated(timeout=30)
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield exporter, session, url
    await runner.cleanup()


async def test_metrics_text_format_and_promtool(served):
    exporter, session, url = served
    async with session.get(f"{url}/metrics", headers={"Accept-Encoding": "identity"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = await resp.text()
    assert 'ov_rwo_vm_disks{eviction_strategy="LiveMigrate",namespace="prod",node="w1",vm="db<script>"} 1.0' in body
    assert 'ov_cpu_overcommit_ratio{node="w1"} 1.0' in body  # 4 vCPUs on 8 threads / 2 per core
    assert "ov_rhel_nodes 1.0" in body
    assert 'ov_check_up{check="rwo_vm_disks"} 1.0' in body
    assert 'ov_findings{check="rwo_vm_disks",severity="warning"} 1.0' in body
    assert "ov_build_info{python_version=" in body
    for spec in CHECKS:  # every declared family is present with its HELP, even when empty
        for fam in spec.families:
            name = fam.name.removesuffix("_total") if fam.type == "counter" else fam.name
            assert f"# HELP {name}" in body
    promtool = require_binary("promtool")
    lint = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr


async def test_openmetrics_and_gzip_negotiation(served):
    exporter, session, url = served
    headers = {
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        "Accept-Encoding": "gzip",
    }
    async with session.get(f"{url}/metrics", headers=headers) as resp:
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert resp.headers["Content-Encoding"] == "gzip"
        text = gzip.decompress(await resp.read()).decode()
    assert text.rstrip().endswith("# EOF")
    assert "# TYPE ov_build info" in text and "ov_series_dropped_total" in text
    async with session.get(f"{url}/metrics", headers={"Accept-Encoding": "identity"}) as resp:
        assert "Content-Encoding" not in resp.headers


async def test_findings_json_health_ready_and_index(served):
    exporter, session, url = served
    async with session.get(f"{url}/findings.json", headers={"Accept-Encoding": "identity"}) as resp:
        doc = json.loads(await resp.read())
    assert {c["id"]: c["status"] for c in doc["checks"]}["migration_dirty_rate"] == "ok"
    kinds = {(f["check"], f["object"]["kind"]) for f in doc["findings"]}
    assert ("rwo_vm_disks", "VirtualMachine") in kinds and ("migration_dirty_rate", "VirtualMachineInstance") in kinds
    async with session.get(f"{url}/healthz") as resp:
        assert resp.status == 200
    async with session.get(f"{url}/readyz") as resp:
        ready = json.loads(await resp.read())
        assert resp.status == 200 and ready["ready"] and ready["synced"]
    async with session.get(f"{url}/", headers={"Accept-Encoding": "identity"}) as resp:
        page = (await resp.read()).decode()
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "db&lt;script&gt;" in page and "<script>" not in page  # names are escaped
    assert "href='/runbooks/rwo_vm_disks.md'" in page
    async with session.get(f"{url}/runbooks/rwo_vm_disks.md", headers={"Accept-Encoding": "identity"}) as resp:
        assert resp.status == 200 and "## Mitigation" in (await resp.read()).decode()
    async with session.get(f"{url}/runbooks/..%2Fcli.py") as resp:
        assert resp.status == 404
    # The alert rules' default runbook_url points at the exporter: every alert runbook is served.
    for name in ("OVVMIOnNotReadyNode", "OVEtcdWALFsyncSlow"):
        async with session.get(f"{url}/runbooks/{name}.md", headers={"Accept-Encoding": "identity"}) as resp:
            assert resp.status == 200 and (await resp.read()).decode().startswith(f"# {name}\n")
    async with session.get(f"{url}/runbooks/OVNoSuchAlert.md") as resp:
        assert resp.status == 404


class _SlowSource(Source):
    """Never finishes its first load: the exporter must still answer health checks."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def run(self, emit) -> None:
        await self.release.wait()
        emit(Synced())


async def test_not_ready_before_the_first_evaluation():
    source = _SlowSource()
    exporter = Exporter(source, Config(), interval=3600)
    runner, url = await start(exporter)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/readyz") as resp:
                assert resp.status == 503 and (await resp.json())["ready"] is False
            async with session.get(f"{url}/metrics") as resp:
                assert resp.status == 503
            async with session.get(f"{url}/healthz") as resp:
                assert resp.status == 200
            source.release.set()
            await exporter.wait_evaluated(timeout=30)
            async with session.get(f"{url}/readyz") as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


async def test_a_failing_source_is_reported_not_fatal(tmp_path):
    class Broken(Source):
        async def run(self, emit):
            raise RuntimeError("disk on fire")

    exporter = Exporter(Broken(), Config(), interval=3600)
    runner, url = await start(exporter)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                async with session.get(f"{url}/readyz") as resp:
                    detail = await resp.json()
                if detail["source_error"]:
                    break
                await asyncio.sleep(0.05)
            assert detail["source_error"] == "RuntimeError: disk on fire"
    finally:
        await runner.cleanup()


async def test_findings_json_and_page_are_built_on_first_request_and_cached_per_evaluation(served, monkeypatch):
    exporter, session, url = served
    builds: list[str] = []
    for name in ("findings_json_blocking", "html_blocking"):
        original = getattr(exporter.prepared, name)
        monkeypatch.setattr(exporter.prepared, name, lambda o=original, n=name: builds.append(n) or o())
    assert builds == []  # nothing built by the evaluation itself

    async def fetch(path: str) -> bytes:
        async with session.get(f"{url}{path}", headers={"Accept-Encoding": "identity"}) as resp:
            assert resp.status == 200
            return await resp.read()

    first = await asyncio.gather(*(fetch("/findings.json") for _ in range(5)), fetch("/"), fetch("/"))
    assert sorted(builds) == ["findings_json_blocking", "html_blocking"]  # one build each, however many asked
    assert len({*first[:5]}) == 1
    assert await fetch("/findings.json") == first[0] and await fetch("/") == first[5]
    assert len(builds) == 2
    before = exporter.prepared
    await exporter.evaluate_once()  # a new evaluation: built again on the next request
    assert exporter.prepared is not before
    assert json.loads(await fetch("/findings.json")) == json.loads(first[0])


async def test_gc_is_on_after_sync_and_evaluation_with_their_objects_frozen_and_the_gil_handed_over_fast(served):
    import gc
    import sys

    from ov_exporter.server import SWITCH_INTERVAL

    exporter, session, url = served
    assert gc.isenabled()  # off only during the first sync and each evaluation
    frozen = gc.get_freeze_count()
    assert frozen > 0
    await exporter.evaluate_once()
    assert gc.isenabled()
    results = exporter.prepared.evaluation.results  # what the evaluation left: in no generation a collection walks
    assert gc.is_tracked(results) and not any(o is results for g in range(3) for o in gc.get_objects(g))
    assert sys.getswitchinterval() == SWITCH_INTERVAL < 0.005
    # Frozen by the worker before it turns the GC on again, not later on the loop: left
    # young, the first allocation after gc.enable() collects all of them while holding the GIL.
    prepared = await asyncio.to_thread(exporter._evaluate_and_render)
    results = prepared.evaluation.results
    assert gc.isenabled() and not any(o is results for g in range(3) for o in gc.get_objects(g))
