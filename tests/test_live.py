"""The live source against a fake API server that speaks the real list/watch protocol
over HTTP. The exporter reaches it through a generated kubeconfig and the `kubernetes`
package's real config loader; nothing in the exporter knows it is a fake."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from pathlib import Path

import pytest
import yaml
from ov_exporter.config import Config
from ov_exporter.report import to_json
from ov_exporter.runner import evaluate
from ov_exporter.sources import SnapshotSource
from ov_exporter.sources import apiclient as apiclient_mod
from ov_exporter.sources import reflector as reflector_mod
from ov_exporter.sources.live import LiveSource, load_credentials
from ov_exporter.store import Store

from .fakeapi.server import FakeAPIServer

VMS = "virtualmachines.kubevirt.io"
VMIS = "virtualmachineinstances.kubevirt.io"


def node(name, os_id="rhcos", cpu="16"):
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubevirt.io/schedulable": "true", "node.openshift.io/os_id": os_id}},
        "status": {"capacity": {"cpu": cpu, "memory": "64Gi"}},
    }


def vm(ns, name, claim, strategy="LiveMigrate"):
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
                    "volumes": [{"name": "root", "persistentVolumeClaim": {"claimName": claim}}],
                }
            },
        },
    }


def vmi(ns, name, node_name, cores=4):
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"domain": {"cpu": {"cores": cores}, "memory": {"guest": "8Gi"}}},
        "status": {"nodeName": node_name, "phase": "Running"},
    }


def pvc(ns, name, mode):
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"accessModes": [mode]},
        "status": {"phase": "Bound", "accessModes": [mode]},
    }


def cluster() -> list[dict]:
    objs = [node("w1"), node("w2"), node("rhel-1", os_id="rhel", cpu="4")]
    for i in range(12):
        ns, name = f"team-{i % 3}", f"vm-{i:02d}"
        mode = "ReadWriteOnce" if i % 4 == 0 else "ReadWriteMany"
        objs += [
            vm(ns, name, f"{name}-disk"),
            vmi(ns, name, "w1" if i % 2 else "rhel-1"),
            pvc(ns, f"{name}-disk", mode),
        ]
    return objs


async def eventually(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def keys(store: Store, key: str) -> list[str]:
    return sorted(f"{r.metadata.namespace}/{r.metadata.name}" for r in store.state().of(key))


def server_keys(api: FakeAPIServer, resource: str) -> list[str]:
    return sorted(f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in api.objects(resource))


@pytest.fixture
async def api(tmp_path):
    server = FakeAPIServer(token="s3cret", bookmark_interval=0.2)
    for obj in cluster():
        server.add(copy.deepcopy(obj))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def live(api, tmp_path):
    async with running(api, tmp_path) as running_source:
        yield running_source


@contextlib.asynccontextmanager
async def running(api: FakeAPIServer, tmp_path: Path, wait_sync: bool = True, **kwargs):
    """A LiveSource on its own store, through a generated kubeconfig and the real loader."""
    kubeconfig = api.write_kubeconfig(tmp_path / "kc", token=kwargs.pop("token", "s3cret"))
    source = LiveSource(credentials=load_credentials(str(kubeconfig), None), **kwargs)
    store = Store()
    task = asyncio.create_task(source.run(store.apply))
    try:
        if wait_sync:
            await eventually(lambda: store.synced, "first sync")
        yield source, store
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def findings(store: Store) -> dict:
    return to_json(evaluate(store.state(), Config()))


async def test_first_sync_lists_every_kind_once_and_matches_a_snapshot(api, live, tmp_path):
    source, store = live
    assert keys(store, VMS) == server_keys(api, "virtualmachines")
    assert keys(store, "nodes") == ["/rhel-1", "/w1", "/w2"]
    # Optional APIs with no objects are served (empty), so every kind is synced.
    assert all(st.synced for st in store.kinds.values())
    assert api.count(verb="list") == len(store.kinds)
    # The same objects loaded as a snapshot give the same findings.
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "all.yaml").write_text(yaml.safe_dump_all(cluster()))
    snap = Store()
    SnapshotSource(tmp_path / "snap").load(snap.apply)
    assert findings(store) == findings(snap)
    rwo = [f for f in findings(store)["findings"] if f["check"] == "rwo_vm_disks"]
    assert sorted(f["object"]["name"] for f in rwo) == ["vm-00", "vm-04", "vm-08"]
    assert ("list", "200") in source.requests()


async def test_watch_events_converge_and_deleted_objects_leave(api, live):
    source, store = live
    api.add(vm("team-9", "new-vm", "new-disk"))
    api.add(pvc("team-9", "new-disk", "ReadWriteOnce"))
    await eventually(lambda: "team-9/new-vm" in keys(store, VMS), "ADDED vm")
    changed = vm("team-0", "vm-00", "vm-00-disk", strategy="None")
    api.modify(changed)
    await eventually(
        lambda: store.state().get(VMS, "team-0", "vm-00").spec.template.spec.eviction_strategy == "None", "MODIFIED vm"
    )
    api.delete("kubevirt.io/v1", "VirtualMachine", "team-1", "vm-04")
    await eventually(lambda: "team-1/vm-04" not in keys(store, VMS), "DELETED vm")
    severity = {f["object"]["name"]: f["severity"] for f in findings(store)["findings"] if f["check"] == "rwo_vm_disks"}
    assert set(severity) == {"vm-08", "new-vm", "vm-00"}
    assert severity["vm-00"] == "info"  # evictionStrategy None: a drain shuts it down, by the user's choice
    assert keys(store, VMS) == server_keys(api, "virtualmachines")
    assert api.count(verb="list") == len(store.kinds)  # no LIST after the initial sync


async def test_dropped_watches_resume_without_relisting(api, live):
    source, store = live
    lists = api.count(verb="list")
    for round_ in range(3):
        await eventually(lambda: api.watch_count("virtualmachines") == 1, "watch open")
        assert api.drop_watches("virtualmachines") == 1
        api.add(vm("team-5", f"after-drop-{round_}", "x"))  # happens while the stream is down
        api.delete("kubevirt.io/v1", "VirtualMachine", "team-0", f"vm-{round_ * 3:02d}")
    await eventually(lambda: keys(store, VMS) == server_keys(api, "virtualmachines"), "convergence after drops")
    assert api.count(verb="list") == lists
    assert store.kinds[VMS].watch_restarts >= 3 and store.kinds[VMS].relists == 0
    # Every resumed watch asked for a resourceVersion, never "" or "0" (which would replay everything).
    rvs = [
        r.query.get("resourceVersion")
        for r in api.requests
        if r.path.endswith("/virtualmachines") and r.query.get("watch") == "true"
    ]
    assert len(rvs) >= 4 and all(rv not in ("", "0", None) for rv in rvs)


async def test_410_gone_relists_once_and_leaves_no_ghosts(api, live):
    source, store = live
    await eventually(lambda: api.watch_count("virtualmachines") == 1, "watch open")
    lists = api.count("virtualmachines", verb="list")
    api.drop_watches("virtualmachines")
    # While nobody watches: changes, then the history is compacted away.
    api.delete("kubevirt.io/v1", "VirtualMachine", "team-2", "vm-02")
    api.add(vm("team-7", "born-in-the-gap", "x"))
    api.compact("virtualmachines")
    await eventually(lambda: api.count("virtualmachines", verb="list") == lists + 1, "relist after 410")
    await eventually(lambda: keys(store, VMS) == server_keys(api, "virtualmachines"), "convergence after 410")
    assert "team-2/vm-02" not in keys(store, VMS) and "team-7/born-in-the-gap" in keys(store, VMS)
    assert store.kinds[VMS].relists == 1
    assert len(store.state().vms) == len(set(keys(store, VMS)))  # no duplicates


async def test_server_errors_back_off_and_recover(api, live, monkeypatch):
    source, store = live
    monkeypatch.setattr(apiclient_mod, "BACKOFF_INITIAL", 0.01)
    await eventually(lambda: api.watch_count("virtualmachines") == 1, "watch open")
    lists = api.count("virtualmachines", verb="list")
    api.fail("virtualmachines", 500, times=3, verbs=("watch",))
    api.drop_watches("virtualmachines")
    api.add(vm("team-3", "during-outage", "x"))
    await eventually(lambda: "team-3/during-outage" in keys(store, VMS), "recovery after 500s")
    assert api.count("virtualmachines", verb="watch", status=500) == 3
    assert api.count("virtualmachines", verb="list") == lists


async def test_malformed_object_is_reported_and_hides_nothing(api, live):
    source, store = live
    api.inject_malformed(
        "virtualmachines",
        json.dumps(
            {
                "apiVersion": "kubevirt.io/v1",
                "kind": "VirtualMachine",
                "metadata": {"name": "broken", "namespace": "team-0", "uid": "b-1", "resourceVersion": str(api.rv)},
                "spec": {"template": {"spec": {"domain": {"cpu": {"cores": "many"}}}}},
            }
        ),
    )
    await eventually(lambda: any("broken" in p.where for p in store.problems), "problem reported")
    [problem] = [p for p in store.problems if "broken" in p.where]
    assert (
        problem.where == "VirtualMachine team-0/broken" and "$.spec.template.spec.domain.cpu.cores" in problem.message
    )
    names = {f["object"]["name"] for f in findings(store)["findings"] if f["check"] == "rwo_vm_disks"}
    assert names == {"vm-00", "vm-04", "vm-08"}


async def test_forbidden_and_absent_apis_degrade_per_check(api, tmp_path):
    api.fail("nodes", 403)
    api.absent("k8s.cni.cncf.io")
    async with running(api, tmp_path) as (source, store):
        assert 'cannot list resource "nodes"' in store.kinds["nodes"].forbidden
        assert store.kinds["network-attachment-definitions.k8s.cni.cncf.io"].absent
        result = {c["id"]: c for c in findings(store)["checks"]}
        for check_id in ("cpu_overcommit", "memory_overcommit", "rhel_nodes", "rwo_vm_disks", "mtu_mismatch"):
            assert result[check_id]["status"] == "failed", check_id  # all read nodes
            assert "nodes" in result[check_id]["error"]
        assert result["migration_dirty_rate"]["status"] == "not_applicable"  # no metric source
        # RBAC fixed: the kind recovers without a restart and the checks run again.
        api.clear_faults()
        await eventually(
            lambda: store.kinds["nodes"].synced and not store.kinds["nodes"].forbidden, "RBAC fixed", timeout=30
        )
        result = {c["id"]: c for c in findings(store)["checks"]}
        assert result["rhel_nodes"]["status"] == "ok"
        assert result["mtu_mismatch"]["status"] == "not_applicable"  # NAD API not installed


async def test_slow_api_still_converges(api, tmp_path):
    api.delay("virtualmachines", 0.5)
    async with running(api, tmp_path) as (source, store):
        assert keys(store, VMS) == server_keys(api, "virtualmachines")


async def test_pagination(api, tmp_path, monkeypatch):
    monkeypatch.setattr(reflector_mod, "PAGE_SIZE", 5)
    async with running(api, tmp_path) as (source, store):
        assert keys(store, VMS) == server_keys(api, "virtualmachines")
        assert api.count("virtualmachines", verb="list") == 3  # 12 VMs in pages of 5


async def test_wrong_token_is_forbidden_everywhere(api, tmp_path):
    async with running(api, tmp_path, wait_sync=False, token="wrong") as (source, store):
        assert source.describe().startswith("live cluster (kubeconfig")
        await asyncio.sleep(1.0)
        assert not store.synced and store.counts()["nodes"] == 0
        assert api.count(status=401) > 0


async def test_exporter_drops_series_of_deleted_objects(api, tmp_path):
    import aiohttp
    from aiohttp import web
    from ov_exporter.server import Exporter

    kubeconfig = api.write_kubeconfig(tmp_path / "kc", token="s3cret")
    exporter = Exporter(LiveSource(credentials=load_credentials(str(kubeconfig), None)), Config(), interval=0.1)
    runner = web.AppRunner(exporter.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    series = 'ov_rwo_vm_disks{eviction_strategy="LiveMigrate",namespace="team-0",node="rhel-1",vm="vm-00"} 1.0'
    try:
        async with aiohttp.ClientSession() as session:

            async def metrics() -> str:
                async with session.get(f"{url}/metrics") as resp:
                    return await resp.text() if resp.status == 200 else ""

            async def ready() -> dict:
                async with session.get(f"{url}/readyz") as resp:
                    return await resp.json()

            deadline = time.monotonic() + 15
            while series not in await metrics():
                assert time.monotonic() < deadline, "series never appeared"
                await asyncio.sleep(0.05)
            detail = await ready()
            assert detail["ready"] and detail["kinds"]["virtualmachines.kubevirt.io"] == "synced"
            body = await metrics()
            assert 'ov_source_kind_state{kind="VirtualMachine",state="synced"} 1.0' in body
            assert 'ov_source_api_requests_total{code="200",verb="list"}' in body
            api.delete("kubevirt.io/v1", "VirtualMachine", "team-0", "vm-00")
            while series in await metrics():
                assert time.monotonic() < deadline, "series of a deleted VM stayed"
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()


async def _cli(*args: str, env: dict | None = None) -> tuple[int, str, str]:
    import os
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ov_exporter",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


async def test_snapshot_export_round_trip_gives_identical_findings(api, tmp_path):
    api.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "team-0"},
            "data": {"password": "aHVudGVyMg=="},
        }
    )
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kc", token="s3cret"))
    code, live_out, err = await _cli("check", "--kubeconfig", kubeconfig, "--output", "json", "--fail-on", "never")
    assert code == 0, err
    code, _, err = await _cli("snapshot", "--kubeconfig", kubeconfig, "--out", str(tmp_path / "snap"))
    assert code == 0 and "wrote" in err, err
    code, snap_out, err = await _cli(
        "check", "--snapshot", str(tmp_path / "snap"), "--output", "json", "--fail-on", "never"
    )
    assert code == 0, err
    live_doc, snap_doc = json.loads(live_out), json.loads(snap_out)
    assert live_doc["findings"] == snap_doc["findings"] and live_doc["findings"]
    assert live_doc["checks"] == snap_doc["checks"]
    written = "".join(p.read_text() for p in (tmp_path / "snap").iterdir())
    assert "aHVudGVyMg==" not in written and '"Secret"' not in written
    assert api.count("secrets") == 0  # never even read


async def test_cli_exits_2_without_credentials(tmp_path):
    code, _, err = await _cli("check", env={"HOME": str(tmp_path), "KUBECONFIG": "", "KUBERNETES_SERVICE_HOST": ""})
    assert code == 2 and "no Kubernetes credentials" in err and "--demo" in err


async def test_cli_check_names_missing_permission(api, tmp_path):
    api.fail("virtualmachines", 403)
    kubeconfig = str(api.write_kubeconfig(tmp_path / "kc", token="s3cret"))
    code, out, err = await _cli("check", "--kubeconfig", kubeconfig, "--output", "json", "--fail-on", "never")
    doc = json.loads(out)
    [rwo] = [c for c in doc["checks"] if c["id"] == "rwo_vm_disks"]
    assert rwo["status"] == "failed" and 'cannot list resource "virtualmachines"' in rwo["error"]
    assert 'cannot list resource "virtualmachines"' in err  # and in the log
    assert {c["id"]: c["status"] for c in doc["checks"]}["rhel_nodes"] == "ok"


async def test_live_state_carries_the_wall_clock(live):
    """Checks that judge time windows (rebalance_watch) read `state.now`: the live source sets it."""
    _, store = live
    before = time.time()
    now = store.state().now
    assert now is not None and before <= now <= time.time()


def _served_demo_objects() -> dict:
    """The embedded demo cluster as the fake API server serves it, by kind the exporter reads."""
    from ov_exporter.records import KINDS
    from ov_exporter.sources.snapshot import demo_path

    server = FakeAPIServer()
    server.load_snapshot(demo_path())
    by_kind: dict = {}
    for kind in KINDS:
        with contextlib.suppress(KeyError):  # a kind the server does not serve
            if objs := server.objects(kind.key):
                by_kind[kind] = objs
    return by_kind


def test_a_page_decoded_whole_equals_its_objects_decoded_one_by_one():
    """The first sync decodes a LIST page in one call; the same objects decoded one by one
    (as a relist, a watch or a page with a bad object is) give equal records, and a page
    with one object that does not decode whole falls back to that path, which keeps the
    others and names it."""
    by_kind = _served_demo_objects()
    assert len(by_kind) >= 8, sorted(k.kind for k in by_kind)
    for kind, objs in by_kind.items():
        reflector = reflector_mod.Reflector(kind, "v1", None, None)
        body = json.dumps({"metadata": {"resourceVersion": "7"}, "items": objs}).encode()
        meta, whole = reflector._whole_page(body)
        problems: dict = {}
        one_by_one = [reflector._decode(raw, problems) for raw in reflector._page(body)[1]]
        assert meta.resourceVersion == "7" and not problems
        assert whole == one_by_one and len(whole) == len(objs), kind.kind
    kind, objs = next((k, o) for k, o in by_kind.items() if k.kind == "Node")
    broken = copy.deepcopy(objs)
    broken[0]["status"]["capacity"] = (
        "sixteen cores"  # a map: NodeStatus.Capacity ResourceList, kubernetes/api core/v1/types.go v0.20.0 and v0.34.0
    )
    reflector = reflector_mod.Reflector(kind, "v1", None, None)
    body = json.dumps({"metadata": {}, "items": broken}).encode()
    assert reflector._whole_page(body) is None
    problems = {}
    kept = [reflector._decode(raw, problems) for raw in reflector._page(body)[1]]
    assert all(r is not None for r in kept) and list(problems) == [f"Node {broken[0]['metadata']['name']}"], problems
