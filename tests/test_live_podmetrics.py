"""The metrics API (metrics.k8s.io PodMetrics) has no WATCH: the live source LISTs it
periodically, with the virt-launcher label selector, against the fake API server that
refuses watches on it like the real aggregated API."""

from __future__ import annotations

import copy
import threading

import aiohttp
import pytest
from ov_exporter.config import Config
from ov_exporter.events import Listed
from ov_exporter.runner import evaluate
from ov_exporter.sources import apiclient as apiclient_mod
from ov_exporter.sources import reflector as reflector_mod
from ov_exporter.store import Store

from .checks.builders import pod_metrics
from .fakeapi.server import FakeAPIServer
from .test_live import cluster, eventually, running

PM = "pods.metrics.k8s.io"


def launcher(ns, name, cpu, memory):
    return pod_metrics(name, ns, cpu=cpu, memory=memory, created_by=None)


@pytest.fixture
async def api():
    server = FakeAPIServer(token="s3cret", bookmark_interval=0.2)
    for obj in cluster():
        server.add(copy.deepcopy(obj))
    server.add(launcher("team-1", "vm-01", "100m", "1Gi"))  # 4 vCPU / 8 GiB: over-provisioned
    server.add(launcher("team-0", "vm-03", "2", "4Gi"))  # right-sized
    not_a_vm = launcher("team-0", "web", "5", "1Gi")
    not_a_vm["metadata"]["labels"] = {"app": "web"}
    server.add(not_a_vm)
    await server.start()
    yield server
    await server.stop()


def names(store):
    return sorted(f"{r.metadata.namespace}/{r.metadata.name}" for r in store.state().of(PM))


def metrics_requests(api, verb):
    return [
        r
        for r in api.requests
        if r.path.startswith("/apis/metrics.k8s.io/") and (r.query.get("watch") == "true") == (verb == "watch")
    ]


async def test_fake_api_refuses_watch_on_the_metrics_api_like_the_real_one(api):
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer s3cret"}) as session:
        async with session.get(f"{api.url}/apis/metrics.k8s.io/v1beta1/pods", params={"watch": "true"}) as resp:
            assert resp.status == 405
            assert (await resp.json())["reason"] == "MethodNotAllowed"
        async with session.get(
            f"{api.url}/apis/metrics.k8s.io/v1beta1/pods", params={"labelSelector": "kubevirt.io=virt-launcher"}
        ) as resp:
            assert resp.status == 200
            assert len((await resp.json())["items"]) == 2


async def test_podmetrics_are_polled_with_list_never_watched(api, tmp_path, monkeypatch):
    monkeypatch.setattr(reflector_mod, "POLL_SECONDS", 0.2)
    async with running(api, tmp_path) as (source, store):
        assert names(store) == ["team-0/virt-launcher-vm-03-abcde", "team-1/virt-launcher-vm-01-abcde"]
        result = evaluate(store.state(), Config()).result("vm_right_sizing")
        assert [f.obj.name for f in result.findings] == ["vm-01"]
        # Usage changes and pods go away between polls: the next LIST brings both.
        api.modify(launcher("team-1", "vm-01", "3900m", "1Gi"))
        api.delete("metrics.k8s.io/v1beta1", "PodMetrics", "team-0", "virt-launcher-vm-03-abcde")
        await eventually(lambda: names(store) == ["team-1/virt-launcher-vm-01-abcde"], "pod gone after a poll")
        await eventually(
            lambda: (
                [f.severity.name for f in evaluate(store.state(), Config()).result("vm_right_sizing").findings]
                == ["WARNING"]
            ),
            "new usage after a poll",
        )
        assert len(metrics_requests(api, "list")) >= 2
        assert metrics_requests(api, "watch") == []
        assert all(r.query.get("labelSelector") == "kubevirt.io=virt-launcher" for r in metrics_requests(api, "list"))
        assert store.kinds[PM].relists >= 1 and store.kinds[PM].synced
        # Other kinds still use one LIST and then WATCH.
        assert api.count("virtualmachines", verb="list") == 1


async def test_a_poll_is_applied_off_the_event_loop_the_first_sync_on_it(api, tmp_path, monkeypatch):
    """A poll replaces every PodMetrics (10^4 at XL): indexing them and letting go of the
    old ones must not stall scrapes, so the store applies that LIST in a worker thread."""
    monkeypatch.setattr(reflector_mod, "POLL_SECONDS", 0.2)
    threads: list[bool] = []  # per PodMetrics LIST applied: on the event loop's thread?
    apply = Store.apply

    def recording(store, event):
        if isinstance(event, Listed) and event.kind.key == PM:
            threads.append(threading.get_ident() == loop_thread)
        apply(store, event)

    monkeypatch.setattr(Store, "apply", recording)
    loop_thread = threading.get_ident()
    async with running(api, tmp_path) as (source, store):
        api.modify(launcher("team-1", "vm-01", "3900m", "1Gi"))
        await eventually(lambda: len(threads) >= 3, "two polls after the first sync")
        assert threads[0] is True and not any(threads[1:]), threads
        await eventually(
            lambda: [r.containers[0].usage["cpu"] for r in store.state().of(PM) if "vm-01" in r.metadata.name] == [3.9],
            "the poll's usage in the store",
        )


async def test_absent_metrics_api_makes_the_check_not_applicable(api, tmp_path):
    api.absent("metrics.k8s.io")
    async with running(api, tmp_path) as (source, store):
        assert store.kinds[PM].absent
        result = evaluate(store.state(), Config()).result("vm_right_sizing")
        assert result.status.value == "not_applicable"


async def test_forbidden_metrics_api_fails_the_check_naming_the_permission(api, tmp_path):
    api.fail("pods.metrics.k8s.io", 403)
    async with running(api, tmp_path) as (source, store):
        assert "metrics.k8s.io" in store.kinds[PM].forbidden
        result = evaluate(store.state(), Config()).result("vm_right_sizing")
        assert result.status.value == "failed" and "metrics.k8s.io" in result.error


async def test_a_down_metrics_api_does_not_hold_up_the_first_sync_and_recovers(api, tmp_path, monkeypatch):
    monkeypatch.setattr(reflector_mod, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(apiclient_mod, "BACKOFF_INITIAL", 0.01)
    api.fail("pods.metrics.k8s.io", 503)  # until cleared
    async with running(api, tmp_path) as (source, store):
        # Synced although the metrics API answers 503: reported as a problem, the rest evaluates.
        assert names(store) == []
        assert any(p.where == "PodMetrics list" and "503" in p.message for p in store.problems)
        evaluation = evaluate(store.state(), Config())
        assert evaluation.result("rwo_vm_disks").status.value == "ok"
        assert evaluation.result("vm_right_sizing").status.value == "not_applicable"
        api.clear_faults()
        await eventually(lambda: len(names(store)) == 2, "PodMetrics once the API is back")
        assert not any(p.where == "PodMetrics list" for p in store.problems)
        assert api.count("pods.metrics.k8s.io", verb="list", status=503) >= 1


@pytest.mark.parametrize(
    "command, interval, expected",
    [
        (["serve", "--interval", "300"], 300.0, 300.0),  # at most one read per evaluation
        (["serve", "--interval", "15"], 15.0, reflector_mod.POLL_SECONDS),  # never more often than the default
        (["check"], None, reflector_mod.POLL_SECONDS),
    ],
)
def test_serve_polls_the_metrics_api_at_most_once_per_evaluation_interval(api, tmp_path, command, interval, expected):
    from ov_exporter import cli

    kubeconfig = api.write_kubeconfig(tmp_path / "kc", token="s3cret")
    args = cli._parser().parse_args([*command, "--kubeconfig", str(kubeconfig)])
    assert getattr(args, "interval", None) == interval
    assert cli._source(args).poll_seconds == expected
