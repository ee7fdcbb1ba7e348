"""The fake API server speaks the real list/watch protocol: real HTTP, no mocks, and
Debian's kubectl against it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakeapi import FakeAPIServer

ROOT = Path(__file__).resolve().parent.parent
VMS = "/apis/kubevirt.io/v1/virtualmachines"


def vm(name: str, ns: str = "ns1", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": meta,
        "spec": {"running": False, **spec},
    }


@pytest.fixture
async def api():
    server = FakeAPIServer(bookmark_interval=0.2)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(api: FakeAPIServer):
    async with aiohttp.ClientSession(api.url) as session:
        yield session


async def get_json(http: aiohttp.ClientSession, path: str, status: int = 200, **params: str) -> Any:
    async with http.get(path, params=params) as resp:
        body = await resp.read()
        assert resp.status == status, body
        assert resp.headers["Content-Type"] == "application/json"
        return json.loads(body)


class Watch:
    """A watch stream read line by line."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp

    async def next(self, timeout: float = 5.0) -> dict[str, Any] | None:
        line = await asyncio.wait_for(self.resp.content.readline(), timeout)
        return json.loads(line) if line else None

    async def until(self, etype: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next(max(0.01, deadline - time.monotonic()))
            assert event is not None, f"stream ended before a {etype} event"
            if event["type"] == etype:
                return event


async def open_watch(http: aiohttp.ClientSession, path: str, **params: str) -> Watch:
    resp = await http.get(path, params={"watch": "true", **params})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    return Watch(resp)


# ---------------------------------------------------------------- discovery


async def test_discovery_documents(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    version = await get_json(http, "/version")
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    assert (await get_json(http, "/api"))["versions"] == ["v1"]
    core = await get_json(http, "/api/v1")
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    nodes = next(r for r in core["resources"] if r["name"] == "nodes")
    assert nodes == {**nodes, "kind": "Node", "namespaced": False, "singularName": "node"}
    assert {"get", "list", "watch", "create", "update", "delete"} <= set(nodes["verbs"])

    # kubectl asks for aggregated discovery first; the legacy document in plain JSON makes it fall back.
    aggregated = (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
    )
    async with http.get("/apis", headers={"Accept": aggregated}) as resp:
        assert resp.headers["Content-Type"] == "application/json"
        groups = {g["name"]: g for g in (await resp.json())["groups"]}
    kubevirt = groups["kubevirt.io"]
    assert [v["version"] for v in kubevirt["versions"]] == ["v1", "v1alpha3"]
    assert kubevirt["preferredVersion"] == {"groupVersion": "kubevirt.io/v1", "version": "v1"}
    assert {
        "storage.k8s.io",
        "hco.kubevirt.io",
        "cdi.kubevirt.io",
        "k8s.cni.cncf.io",
        "nmstate.io",
        "migrations.kubevirt.io",
        "config.openshift.io",
    } <= set(groups)
    assert (await get_json(http, "/apis/kubevirt.io"))["preferredVersion"]["version"] == "v1"

    resources = {r["name"]: r for r in (await get_json(http, "/apis/kubevirt.io/v1"))["resources"]}
    assert resources["virtualmachines"]["kind"] == "VirtualMachine"
    assert resources["virtualmachines"]["namespaced"] is True
    shorts = {r["name"]: r.get("shortNames", []) for r in resources.values()}
    assert "vm" in shorts["virtualmachines"] and "vmi" in shorts["virtualmachineinstances"]
    assert "vmim" in shorts["virtualmachineinstancemigrations"]
    for path, plural, short in [
        ("/apis/hco.kubevirt.io/v1beta1", "hyperconvergeds", "hco"),
        ("/apis/cdi.kubevirt.io/v1beta1", "datavolumes", "dv"),
        ("/apis/k8s.cni.cncf.io/v1", "network-attachment-definitions", "nad"),
        ("/apis/nmstate.io/v1beta1", "nodenetworkstates", "nns"),
    ]:
        listed = {r["name"]: r for r in (await get_json(http, path))["resources"]}
        assert short in listed[plural]["shortNames"]

    # Kinds seen for the first time are registered with their group.
    api.add({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "x"}})
    widget = (await get_json(http, "/apis/example.com/v1"))["resources"][0]
    assert widget["name"] == "widgets" and widget["namespaced"] is True
    assert (await get_json(http, "/apis/example.com/v1/namespaces/x/widgets/w"))["kind"] == "Widget"
    missing = await get_json(http, "/apis/nope.io/v1", status=404)
    assert missing["kind"] == "Status" and missing["reason"] == "NotFound" and missing["code"] == 404


# ---------------------------------------------------------------- LIST and GET


async def test_list_pagination_yields_every_object_once(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    for i in range(23):
        api.add(vm(f"vm-{i:02d}", ns=f"ns{i % 3}"))
    expected = sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in api.objects("virtualmachines"))
    seen: list[tuple[str, str]] = []
    cont, list_rv, pages = "", None, 0
    while True:
        params = {"limit": "5", **({"continue": cont} if cont else {})}
        page = await get_json(http, VMS, **params)
        pages += 1
        assert page["kind"] == "VirtualMachineList" and page["apiVersion"] == "kubevirt.io/v1"
        list_rv = list_rv or page["metadata"]["resourceVersion"]
        assert page["metadata"]["resourceVersion"] == list_rv  # one consistent snapshot
        seen += [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in page["items"]]
        if pages == 2:  # changes in the middle of the list do not show in it
            api.add(vm("vm-late", ns="ns0"))
            api.delete("kubevirt.io/v1", "VirtualMachine", "ns2", "vm-20")
            api.modify(vm("vm-21", ns="ns0", running=True))
        cont = page["metadata"].get("continue", "")
        if not cont:
            break
        assert page["metadata"]["remainingItemCount"] == len(expected) - len(seen)
    assert pages == 5
    assert seen == expected  # sorted by namespace/name, each exactly once
    assert api.count("virtualmachines", "list") == 5

    # A fresh list sees the changes.
    fresh = await get_json(http, VMS)
    names = {i["metadata"]["name"] for i in fresh["items"]}
    assert "vm-late" in names and "vm-20" not in names
    assert int(fresh["metadata"]["resourceVersion"]) == api.rv


async def test_list_filters_and_get(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    api.add(vm("a", "ns1", {"app": "web", "tier": "1"}))
    api.add(vm("b", "ns1", {"app": "db"}))
    api.add(vm("c", "ns2", {"app": "web"}))
    api.add({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})

    def names(doc: dict) -> list[str]:
        return [i["metadata"]["name"] for i in doc["items"]]

    assert names(await get_json(http, "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines")) == ["a", "b"]
    assert names(await get_json(http, VMS, labelSelector="app=web")) == ["a", "c"]
    assert names(await get_json(http, VMS, labelSelector="app=web,tier")) == ["a"]
    assert names(await get_json(http, VMS, labelSelector="app!=web")) == ["b"]
    assert names(await get_json(http, VMS, labelSelector="app in (db,x)")) == ["b"]
    assert names(await get_json(http, VMS, fieldSelector="metadata.name=c")) == ["c"]
    assert names(await get_json(http, VMS, fieldSelector="metadata.namespace=ns1,metadata.name!=a")) == ["b"]
    bad = await get_json(http, VMS, status=400, fieldSelector="spec.running=true")
    assert bad["reason"] == "BadRequest" and "field label not supported" in bad["message"]

    # Built-in lists carry no kind/apiVersion per item; custom resources do.
    nodes = await get_json(http, "/api/v1/nodes")
    assert nodes["kind"] == "NodeList" and "kind" not in nodes["items"][0]
    assert (await get_json(http, VMS))["items"][0]["kind"] == "VirtualMachine"

    obj = await get_json(http, "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines/a")
    assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"] == "1"
    # Older served versions convert (apiVersion only).
    old = await get_json(http, "/apis/kubevirt.io/v1alpha3/namespaces/ns1/virtualmachines/a")
    assert old["apiVersion"] == "kubevirt.io/v1alpha3"
    gone = await get_json(http, "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines/zz", status=404)
    assert gone == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'virtualmachines.kubevirt.io "zz" not found',
        "reason": "NotFound",
        "details": {"name": "zz", "group": "kubevirt.io", "kind": "virtualmachines"},
        "code": 404,
    }
    assert (await get_json(http, "/api/v1/nodes/n1"))["kind"] == "Node"


async def test_expired_continue_token_is_410(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    for i in range(4):
        api.add(vm(f"v{i}"))
    first = await get_json(http, VMS, limit="2")
    api.add(vm("v9"))
    api.compact()
    expired = await get_json(http, VMS, status=410, limit="2", **{"continue": first["metadata"]["continue"]})
    assert expired["reason"] == "Expired" and expired["code"] == 410
    await get_json(http, VMS, status=400, **{"continue": "garbage"})


async def test_writes_over_http(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    path = "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines"
    async with http.post(path, json=vm("w")) as resp:
        assert resp.status == 201
        created = await resp.json()
    async with http.post(path, json=vm("w")) as resp:
        assert resp.status == 409 and (await resp.json())["reason"] == "AlreadyExists"
    stale = {**created, "spec": {"running": True}, "metadata": {**created["metadata"], "resourceVersion": "0"}}
    async with http.put(f"{path}/w", json=stale) as resp:
        assert resp.status == 409 and (await resp.json())["reason"] == "Conflict"
    async with http.put(f"{path}/w", json={**created, "spec": {"running": True}}) as resp:
        assert resp.status == 200
    async with http.patch(
        f"{path}/w",
        data=json.dumps({"metadata": {"labels": {"a": "b"}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    ) as resp:
        assert (await resp.json())["metadata"]["labels"] == {"a": "b"}
    assert api.get("kubevirt.io/v1", "VirtualMachine", "ns1", "w")["spec"]["running"] is True
    async with http.delete(f"{path}/w") as resp:
        assert resp.status == 200
    assert api.get("kubevirt.io/v1", "VirtualMachine", "ns1", "w") is None
    assert [e.type for e in api.resource("virtualmachines").log] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    api.add(vm("x1", labels={"k": "v"}))
    api.add(vm("x2"))
    async with http.delete(path, params={"labelSelector": "k=v"}) as resp:
        assert [i["metadata"]["name"] for i in (await resp.json())["items"]] == ["x1"]
    assert [o["metadata"]["name"] for o in api.objects("virtualmachines")] == ["x2"]
    api.delete("kubevirt.io/v1", "VirtualMachine", "ns1", "x2")


# ---------------------------------------------------------------- WATCH


async def test_watch_replays_from_resource_version_then_streams(
    api: FakeAPIServer, http: aiohttp.ClientSession
) -> None:
    api.add(vm("a"))
    api.add(vm("b"))
    rv = api.rv
    api.modify(vm("a", running=True))
    api.delete("kubevirt.io/v1", "VirtualMachine", "ns1", "b")
    api.add(vm("c", ns="ns2"))
    w = await open_watch(http, VMS, resourceVersion=str(rv))
    replay = [await w.next() for _ in range(3)]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in replay] == [
        ("MODIFIED", "a"),
        ("DELETED", "b"),
        ("ADDED", "c"),
    ]
    assert [int(e["object"]["metadata"]["resourceVersion"]) for e in replay] == [rv + 1, rv + 2, rv + 3]
    assert replay[0]["object"]["spec"]["running"] is True

    api.add(vm("d"))  # live
    event = await w.next()
    assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "d"
    assert event["object"]["kind"] == "VirtualMachine" and event["object"]["apiVersion"] == "kubevirt.io/v1"
    api.add({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})  # another resource: not seen
    api.modify(vm("d", running=True))
    assert (await w.next())["type"] == "MODIFIED"
    api.delete("kubevirt.io/v1", "VirtualMachine", "ns1", "d")
    deleted = await w.next()
    assert deleted["type"] == "DELETED" and deleted["object"]["metadata"]["resourceVersion"] == str(api.rv)
    w.resp.close()
    assert api.count("virtualmachines", "watch") == 1 and api.count("virtualmachines", "list") == 0


async def test_watch_from_zero_namespace_and_selector(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    api.add(vm("a", "ns1", {"app": "web"}))
    api.add(vm("b", "ns2", {"app": "web"}))
    w0 = await open_watch(http, VMS, resourceVersion="0")
    assert [(await w0.next())["object"]["metadata"]["name"] for _ in range(2)] == ["a", "b"]
    ns1 = await open_watch(http, "/apis/kubevirt.io/v1/namespaces/ns1/virtualmachines", resourceVersion=str(api.rv))
    web = await open_watch(http, VMS, resourceVersion=str(api.rv), labelSelector="app=web")
    api.add(vm("c", "ns2"))
    api.modify(vm("a", "ns1", {"app": "db"}))  # leaves the selection
    assert (await ns1.next())["type"] == "MODIFIED"
    left = await web.next()
    assert left["type"] == "DELETED" and left["object"]["metadata"]["labels"] == {"app": "web"}
    assert left["object"]["metadata"]["resourceVersion"] == str(api.rv)
    api.modify(vm("c", "ns2", {"app": "web"}))  # enters it
    entered = await web.next()
    assert (entered["type"], entered["object"]["metadata"]["name"]) == ("ADDED", "c")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in [await w0.next() for _ in range(3)]] == [
        ("ADDED", "c"),
        ("MODIFIED", "a"),
        ("MODIFIED", "c"),
    ]
    for w in (w0, ns1, web):
        w.resp.close()


async def test_bookmarks_and_timeout(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    api.add(vm("a"))
    started = time.monotonic()
    w = await open_watch(http, VMS, resourceVersion=str(api.rv), allowWatchBookmarks="true", timeoutSeconds="1")
    api.add({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})  # moves the global resourceVersion
    bookmark = await w.until("BOOKMARK")
    assert bookmark["object"] == {
        "kind": "VirtualMachine",
        "apiVersion": "kubevirt.io/v1",
        "metadata": {"resourceVersion": str(api.rv)},
    }
    while (event := await w.next()) is not None:  # the server ends the stream at timeoutSeconds
        assert event["type"] == "BOOKMARK"
    assert 0.9 < time.monotonic() - started < 3
    # Without allowWatchBookmarks there are none.
    w = await open_watch(http, VMS, resourceVersion=str(api.rv), timeoutSeconds="1")
    assert await w.next() is None


async def test_410_after_compact_and_expire(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    api.add(vm("a"))
    old = api.rv
    api.add(vm("b"))
    api.compact()
    w = await open_watch(http, VMS, resourceVersion=str(old))
    error = await w.next()
    assert error == {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {old} ({api.rv})",
            "reason": "Expired",
            "code": 410,
        },
    }
    assert await w.next() is None  # the stream ends
    # From the compaction point on, watching works again.
    w = await open_watch(http, VMS, resourceVersion=str(api.rv))
    api.add(vm("c"))
    assert (await w.next())["type"] == "ADDED"
    w.resp.close()

    # expire(): the next watch from a resourceVersion seen so far gets the 410, the one after does not.
    api.expire("virtualmachines")
    w = await open_watch(http, VMS, resourceVersion=str(api.rv))
    assert (await w.next())["object"]["code"] == 410
    w = await open_watch(http, VMS, resourceVersion=str(api.rv))
    api.add(vm("d"))
    assert (await w.next())["type"] == "ADDED"
    # expire(now=True) also ends open watches with the 410 ERROR event.
    api.expire("virtualmachines", now=True)
    assert (await w.next())["object"]["reason"] == "Expired"
    assert await w.next() is None


async def test_drop_watches_closes_streams(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    w = await open_watch(http, VMS, resourceVersion="0")
    nodes = await open_watch(http, "/api/v1/nodes", resourceVersion="0")
    for _ in range(50):
        if api.watch_count() == 2:
            break
        await asyncio.sleep(0.01)
    assert api.drop_watches("virtualmachines") == 1
    with pytest.raises(aiohttp.ClientPayloadError):  # abrupt: no ERROR event, no end of the chunked body
        await w.next()
    api.add({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"}})
    assert (await nodes.next())["type"] == "ADDED"  # other resources keep streaming
    assert api.drop_watches(clean=True) == 1
    assert await nodes.next() is None
    # A client that goes away is noticed without any event to send.
    w = await open_watch(http, VMS, resourceVersion="0")
    await asyncio.sleep(0.05)
    assert api.watch_count("virtualmachines") == 1
    w.resp.close()
    for _ in range(100):
        if api.watch_count() == 0:
            break
        await asyncio.sleep(0.02)
    assert api.watch_count() == 0


# ---------------------------------------------------------------- faults


async def test_faults_answer_real_status_codes(api: FakeAPIServer, http: aiohttp.ClientSession) -> None:
    api.add(vm("a"))
    api.fail("virtualmachines", 403)
    forbidden = await get_json(http, VMS, status=403)
    assert forbidden["reason"] == "Forbidden" and forbidden["code"] == 403
    assert forbidden["message"] == (
        'virtualmachines.kubevirt.io is forbidden: User "system:serviceaccount:openshift-cnv:ov-exporter" '
        'cannot list resource "virtualmachines" in API group "kubevirt.io" at the cluster scope'
    )
    assert forbidden["details"] == {"group": "kubevirt.io", "kind": "virtualmachines"}
    async with http.get(VMS, params={"watch": "true"}) as resp:
        assert resp.status == 403 and "cannot watch resource" in (await resp.json())["message"]
    assert (await get_json(http, "/api/v1/nodes"))["kind"] == "NodeList"  # other resources unaffected
    api.clear_faults()
    await get_json(http, VMS)

    api.fail("kubevirt.io/virtualmachines", 500, times=2)
    assert (await get_json(http, VMS, status=500))["reason"] == "InternalError"
    assert (await get_json(http, VMS, status=500))["code"] == 500
    await get_json(http, VMS)  # the third request passes
    api.fail("nodes", 404, times=1)
    assert (await get_json(http, "/api/v1/nodes", status=404))["reason"] == "NotFound"

    api.absent("hco.kubevirt.io")
    groups = [g["name"] for g in (await get_json(http, "/apis"))["groups"]]
    assert "hco.kubevirt.io" not in groups and "kubevirt.io" in groups
    await get_json(http, "/apis/hco.kubevirt.io/v1beta1", status=404)
    assert (await get_json(http, "/apis/hco.kubevirt.io/v1beta1/hyperconvergeds", status=404))["code"] == 404
    api.present("hco.kubevirt.io")
    await get_json(http, "/apis/hco.kubevirt.io/v1beta1/hyperconvergeds")

    api.delay("virtualmachines", 0.3)
    started = time.monotonic()
    await get_json(http, VMS)
    assert time.monotonic() - started >= 0.3
    api.delay("virtualmachines", 0)

    raw = '{"metadata": {"name": "bad", "namespace": "ns1"}, "spec": {"domain": {"cpu": {"cores": "many"}}}}'
    w = await open_watch(http, VMS, resourceVersion=str(api.rv))
    api.inject_malformed("virtualmachines", raw)
    async with http.get(VMS) as resp:
        text = await resp.text()
    assert raw in text
    assert [i["metadata"]["name"] for i in json.loads(text)["items"]] == ["a", "bad"]
    event = await w.next()
    assert event["type"] == "ADDED" and event["object"]["spec"]["domain"]["cpu"]["cores"] == "many"
    w.resp.close()
    api.clear_faults()
    # By name: a random uid of "a" may hold the letters "bad" (it once did).
    assert [i["metadata"]["name"] for i in (await get_json(http, VMS))["items"]] == ["a"]
    assert api.count("virtualmachines", "list", status=403) == 1
    assert api.count("virtualmachines", "watch", status=403) == 1


async def test_token_auth_and_rotation() -> None:
    server = FakeAPIServer(token="one")
    async with server:
        async with aiohttp.ClientSession(server.url) as http:
            async with http.get("/api/v1/nodes") as resp:
                assert resp.status == 401
                assert (await resp.json())["reason"] == "Unauthorized"
            async with http.get("/apis", headers={"Authorization": "Bearer two"}) as resp:
                assert resp.status == 401
            async with http.get("/api/v1/nodes", headers={"Authorization": "Bearer one"}) as resp:
                assert resp.status == 200
            server.set_token("two")
            async with http.get("/api/v1/nodes", headers={"Authorization": "Bearer one"}) as resp:
                assert resp.status == 401
            async with http.get("/api/v1/nodes", headers={"Authorization": "Bearer two"}) as resp:
                assert resp.status == 200
        assert [(r.method, r.path, r.status) for r in server.requests] == [
            ("GET", "/api/v1/nodes", 401),
            ("GET", "/apis", 401),
            ("GET", "/api/v1/nodes", 200),
            ("GET", "/api/v1/nodes", 401),
            ("GET", "/api/v1/nodes", 200),
        ]


async def test_load_snapshot_and_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "list.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: kubevirt.io/v1, kind: VirtualMachine, metadata: {name: a, namespace: n,"
        " creationTimestamp: 2024-01-01T00:00:00Z}}\n"
        "- {apiVersion: kubevirt.io/v1, kind: VirtualMachine, metadata: {name: b, namespace: n}}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\n"
    )
    (tmp_path / "nodes.json").write_text(
        json.dumps({"kind": "NodeList", "apiVersion": "v1", "items": [{"metadata": {"name": "n1"}}]})
    )
    (tmp_path / "notes.txt").write_text("ignored")
    server = FakeAPIServer()
    assert server.load_snapshot(tmp_path) == 4
    assert (
        server.get("kubevirt.io/v1", "VirtualMachine", "n", "a")["metadata"]["creationTimestamp"]
        == "2024-01-01T00:00:00Z"
    )
    assert server.objects("secrets")[0]["metadata"]["uid"]
    assert server.objects("nodes")[0]["kind"] == "Node"
    async with server:
        import yaml

        config = yaml.safe_load(server.write_kubeconfig(tmp_path / "kc", token="t").read_text())
        assert config["clusters"][0]["cluster"]["server"] == server.url
        assert config["users"][0]["user"] == {"token": "t"}
        assert config["current-context"] == "fake"


async def test_main_serves_a_snapshot(tmp_path: Path) -> None:
    (tmp_path / "vm.yaml").write_text(json.dumps(vm("snap")))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakeapi",
        "--snapshot",
        str(tmp_path),
        "--port",
        "0",
        "--kubeconfig",
        str(tmp_path / "kc"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession(url) as http:
            assert [i["metadata"]["name"] for i in (await get_json(http, VMS))["items"]] == ["snap"]
        assert (tmp_path / "kc").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0


# ---------------------------------------------------------------- kubectl


async def kubectl(cmd: list[str], env: dict[str, str], *args: str, ok: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cmd, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    if ok:
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {err.decode()}"
    return out.decode()


def json_stream(text: str) -> list[dict[str, Any]]:
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return docs  # an incomplete document at the end
        docs.append(doc)


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https+token"])
async def test_kubectl_lists_gets_and_watches(tmp_path: Path, secure: bool) -> None:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not installed; `make test` installs it (Debian package kubernetes-client)")
    # kubectl sends bearer tokens only over TLS (kubernetes/kubectl#744): the token case uses https.
    server = FakeAPIServer(token="s3cret" if secure else None, tls=secure, bookmark_interval=0.5)
    for name, ns in [("vm-a", "ns1"), ("vm-b", "ns2"), ("vm-c", "ns1")]:
        server.add(vm(name, ns))
    async with server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", token="s3cret" if secure else None)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}
        cmd = [binary, "--cache-dir", str(tmp_path / "cache"), "--request-timeout", "20s"]

        table = await kubectl(cmd, env, "get", "virtualmachines", "-A")
        rows = [line.split() for line in table.splitlines()]
        assert rows[0][:2] == ["NAMESPACE", "NAME"]
        assert [r[:2] for r in rows[1:]] == [["ns1", "vm-a"], ["ns1", "vm-c"], ["ns2", "vm-b"]]

        obj = json.loads(await kubectl(cmd, env, "get", "vm", "-n", "ns1", "vm-a", "-o", "json"))
        assert obj["kind"] == "VirtualMachine" and obj["metadata"]["name"] == "vm-a"
        stored = server.get("kubevirt.io/v1", "VirtualMachine", "ns1", "vm-a")
        assert obj["metadata"]["uid"] == stored["metadata"]["uid"]
        missing = await kubectl(cmd, env, "get", "vm", "-n", "ns1", "nope", "-o", "name", "--ignore-not-found")
        assert missing == ""

        watch = await asyncio.create_subprocess_exec(
            *cmd,
            "get",
            "vm",
            "-A",
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 20
            while server.watch_count("virtualmachines") == 0:
                assert watch.returncode is None and time.monotonic() < deadline, "kubectl never watched"
                await asyncio.sleep(0.05)
            server.add(vm("vm-new", "ns3"))
            server.delete("kubevirt.io/v1", "VirtualMachine", "ns1", "vm-a")
            output = ""
            while True:
                events = [
                    (e.get("type"), e.get("object", {}).get("metadata", {}).get("name")) for e in json_stream(output)
                ]
                if ("DELETED", "vm-a") in events:
                    break
                assert time.monotonic() < deadline, f"kubectl saw only {events}"
                assert watch.stdout is not None
                chunk = await asyncio.wait_for(watch.stdout.read(65536), max(0.1, deadline - time.monotonic()))
                assert chunk, f"kubectl ended: {(await watch.stderr.read()).decode()}"  # type: ignore[union-attr]
                output += chunk.decode()
            assert events[:3] == [("ADDED", "vm-a"), ("ADDED", "vm-c"), ("ADDED", "vm-b")]  # the initial list
            assert events[3:] == [("ADDED", "vm-new"), ("DELETED", "vm-a")]
        finally:
            if watch.returncode is None:
                watch.terminate()
            await watch.wait()

        # POST and DELETE through kubectl too (delete --wait watches by fieldSelector).
        manifest = tmp_path / "vm.json"
        manifest.write_text(json.dumps(vm("vm-made", "ns1")))
        assert "created" in await kubectl(cmd, env, "create", "--validate=false", "-f", str(manifest))
        assert server.get("kubevirt.io/v1", "VirtualMachine", "ns1", "vm-made") is not None
        assert "deleted" in await kubectl(cmd, env, "delete", "vm", "-n", "ns1", "vm-made")
        assert server.get("kubevirt.io/v1", "VirtualMachine", "ns1", "vm-made") is None
        assert server.count("virtualmachines", "watch", status=200) >= 1
        if secure:
            assert all(r.status != 401 for r in server.requests)
